"""tl.save / tl.load: nested dicts of arrays and JSON values in one .npz file, never pickled.

Layout of the file (a zip archive that numpy.load reads, as written by numpy.savez):
- each array is an entry named by the "/"-joined keys leading to it ("model/0.weight");
- each other value (number, str, bool, None, list, tuple) is an entry holding its JSON text
  as a 0-d unicode array ("epoch" → '3');
- the entry "__tinylesion__" holds JSON describing the tree (key order, integer keys, empty
  dicts, which entries are JSON), so that load() rebuilds exactly what save() was given,
  except that tuples come back as lists and arrays come back as NumPy arrays.
"""
import json
import os
import zipfile

import numpy as np

from . import backend

MANIFEST = "__tinylesion__"
FORMAT_VERSION = 1


class CheckpointError(ValueError):
    """A file that is not a readable tinylesion checkpoint, or a value that cannot be saved."""


def _as_array(value):
    """The NumPy array behind an ndarray, a CuPy array, a Tensor or another library's array
    (anything with shape, dtype and __array__, such as the tensors of a PyTorch model's
    state_dict); None for other values."""
    if isinstance(value, np.ndarray) or backend.is_cupy_array(value):
        return backend.to_numpy(value)
    data = getattr(value, "array", None)
    if isinstance(data, np.ndarray) or backend.is_cupy_array(data):
        return backend.to_numpy(data)
    if not isinstance(value, np.generic) and all(
            hasattr(value, name) for name in ("__array__", "shape", "dtype")):
        return np.asarray(value)
    return None


def _json_default(value):
    """Let json.dumps write NumPy scalars; refuse everything else by name."""
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"a {type(value).__name__} inside a list cannot be stored as JSON")


def _pack(node, keys, entries):
    """Flatten `node` into `entries` (name → array) and return its description for the
    manifest: {"dict": [[key, child], ...]}, {"array": name} or {"json": name}."""
    where = "/".join(map(str, keys)) or "<top level>"
    if isinstance(node, dict):
        children = []
        for key, value in node.items():
            if isinstance(key, bool) or not isinstance(key, (str, int, np.integer)):
                raise CheckpointError(f"cannot save key {key!r} under '{where}': keys must be "
                                      f"str or int, not {type(key).__name__}")
            key = key if isinstance(key, str) else int(key)
            children.append([key, _pack(value, keys + (key,), entries)])
        return {"dict": children}
    name = "/".join(map(str, keys))
    if name in entries or name == MANIFEST:
        raise CheckpointError(f"cannot save: two values (or the reserved name '{MANIFEST}') "
                              f"flatten to the same entry '{name}'; rename a key")
    array = _as_array(node)
    if array is not None:
        if array.dtype.hasobject:
            raise CheckpointError(f"cannot save '{where}': an array of Python objects "
                                  "would need pickle; convert it to a numeric array")
        entries[name] = array
        return {"array": name}
    if isinstance(node, np.generic):
        node = node.item()
    if not isinstance(node, (list, tuple, str, int, float, type(None))):
        raise CheckpointError(f"cannot save '{where}': a {type(node).__name__} is neither an "
                              "array nor a JSON value")
    try:
        text = json.dumps(node, default=_json_default)
    except (TypeError, ValueError) as exc:
        raise CheckpointError(f"cannot save '{where}': {exc}") from None
    entries[name] = np.array(text)
    return {"json": name}


def _final_path(path):
    """The path save() writes: exactly `path`, whatever its extension ("x.pt" as torch.save)."""
    return os.fspath(path)


def _npz_fallback(path):
    """Where an older tinylesion (which appended ".npz") saved `path`."""
    return path if path.endswith(".npz") else path + ".npz"


def save(state, path, pickle_module=None, pickle_protocol=None,
         _use_new_zipfile_serialization=True):
    """Write a dict (of arrays, Tensors, nested dicts and JSON values) to `path` atomically.

    The file is written at exactly `path` ("model.pt" as torch.save; the format is .npz
    whatever the extension); the path written is returned. The file appears whole or not at
    all: it is written to a temporary file in the same folder, then renamed over `path`, so a
    failure leaves an older file intact. torch.save's pickle arguments are accepted and
    ignored: nothing is ever pickled.
    """
    if not isinstance(state, dict):
        raise CheckpointError(f"tl.save expects a dict (e.g. model.state_dict()), "
                              f"not {type(state).__name__}")
    path = _final_path(path)
    entries = {}
    tree = _pack(state, (), entries)
    manifest = {"format": "tinylesion", "version": FORMAT_VERSION, "tree": tree}
    entries[MANIFEST] = np.array(json.dumps(manifest))
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"cannot save {path}: folder {folder} does not exist")
    if os.path.isdir(path):
        raise IsADirectoryError(f"cannot save {path}: it is a folder (give a file name in it)")
    write_atomic(path, lambda f: _write_npz(f, entries))
    return path


def write_atomic(path, fill, mode="wb"):
    """Write a file whole or not at all: fill(f) writes into a new temporary file (opened
    with `mode`, "wb" or "w") beside `path`, which is flushed to disk and renamed over
    `path`; on any failure it is removed and an OSError naming `path` (not the temporary
    name) is raised."""
    path = str(path)
    tmp = None
    try:
        tmp = _create_temp(os.path.dirname(os.path.abspath(path)), os.path.basename(path))
        with open(tmp, mode) as f:
            fill(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        if tmp is not None:
            try:
                os.unlink(tmp)
            except OSError:
                pass
        if isinstance(exc, OSError) and exc.errno is not None:  # e.g. a full disk: name
            exc.filename = path                                  # the file, not the temporary
        raise


def _create_temp(folder, base):
    """Create an empty, uniquely named file in `folder` (mode 0666 less the umask)."""
    for _ in range(100):
        tmp = os.path.join(folder, f".{base}.{os.getpid()}.{os.urandom(4).hex()}.tmp")
        try:
            os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
            return tmp
        except FileExistsError:
            continue
    raise OSError(f"cannot create a temporary file in {folder}")


def _write_npz(f, entries):
    """What numpy.savez writes, entry by entry, with pickling forbidden.

    (numpy.savez takes the names as keyword arguments, which would clash with its own
    `file` and `allow_pickle` parameters.)
    """
    with zipfile.ZipFile(f, mode="w", compression=zipfile.ZIP_STORED, allowZip64=True) as zf:
        for name, array in entries.items():
            with zf.open(name + ".npy", "w", force_zip64=True) as entry:
                np.lib.format.write_array(entry, np.asanyarray(array), allow_pickle=False)


def _map_location(map_location):
    """The Device that map_location names (None: where the file's arrays go, the CPU)."""
    if map_location is None or callable(map_location) or isinstance(map_location, dict):
        return None   # NOTE: arrays always load on the CPU; a dict or function has no GPU to map
    try:
        return backend.device(map_location)
    except (TypeError, ValueError, backend.DeviceError) as exc:
        raise ValueError(f"tl.load: map_location {map_location!r} is not a device: {exc}") \
            from None


def _to_device(node, device):
    if isinstance(node, dict):
        return {k: _to_device(v, device) for k, v in node.items()}
    return backend.to_device(node, device) if isinstance(node, np.ndarray) else node


def load(path, map_location=None, pickle_module=None, *, weights_only=None, mmap=None,
         **pickle_load_args):
    """Read a file written by tl.save: nested dicts of NumPy arrays and JSON values; also a
    state_dict saved by torch.save (zip format: only tensors and dicts are rebuilt, see
    tinylesion/weights/torch_zip.py) or a .safetensors file, as a dict of NumPy arrays.

    map_location "cuda" (or a GPU Device) puts the arrays on the GPU; None, "cpu", a dict or a
    function leave them on the CPU (load_state_dict copies them to each parameter's device
    anyway). weights_only, mmap and torch.load's pickle arguments are accepted: every load is
    weights-only, and no code from a file ever runs. A path without ".npz" that does not exist
    is also looked for with ".npz" appended (where older versions of save wrote it). A file
    that needs pickle, or was not written by tl.save, raises CheckpointError naming the path.
    """
    device = _map_location(map_location)
    state = _load(os.fspath(path))
    return state if device is None or device.name == "cpu" else _to_device(state, device)


ZIP_MAGIC, EMPTY_ZIP_MAGIC, NPY_MAGIC = b"PK\x03\x04", b"PK\x05\x06", b"\x93NUMPY"
WEIGHTS_FORMATS = "a .npz written by tl.save, a PyTorch .pt/.pth zip file or a .safetensors file"


def _load(path):
    if not os.path.exists(path):
        if os.path.exists(_npz_fallback(path)):
            path = _npz_fallback(path)
        else:
            raise FileNotFoundError(f"no checkpoint file at {path}")
    if os.path.isdir(path):
        raise CheckpointError(f"{path} is a folder, not a checkpoint file (give the file in it "
                              "that tl.save or torch.save wrote)")
    from .weights import foreign_reader  # PyTorch's zip files and .safetensors
    reader = foreign_reader(path)
    if reader is not None:
        return reader(path)
    # NOTE: np.load takes any file that is neither a zip nor a .npy for a pickle ("pickled
    # (object) data"): a text file or an image is said to be what it is not
    with open(path, "rb") as f:
        head = f.read(6)
    if not head.startswith((ZIP_MAGIC, EMPTY_ZIP_MAGIC, NPY_MAGIC)):
        raise CheckpointError(f"{path} is not a tinylesion checkpoint nor another weights file "
                              f"tinylesion reads ({WEIGHTS_FORMATS})")
    try:
        archive = np.load(path, allow_pickle=False)
    except Exception as exc:  # truncated zips, broken .npy files: all "not a checkpoint"
        raise CheckpointError(f"{path} is not a tinylesion checkpoint (.npz written by "
                              f"tl.save): {type(exc).__name__}: {exc}") from None
    if not isinstance(archive, np.lib.npyio.NpzFile):
        raise CheckpointError(f"{path} holds a single NumPy array (.npy), not a tinylesion "
                              "checkpoint (.npz written by tl.save)")
    with archive:
        if MANIFEST not in archive.files:
            raise CheckpointError(f"{path} is a .npz file but not a tinylesion checkpoint "
                                  f"(it has no '{MANIFEST}' entry); read it with numpy.load")
        try:
            manifest = json.loads(str(archive[MANIFEST][()]))
            version = manifest["version"]
            tree = manifest["tree"]
        except Exception as exc:
            raise CheckpointError(f"{path}: unreadable '{MANIFEST}' entry ({exc})") from None
        if manifest.get("format") != "tinylesion" or not isinstance(version, int):
            raise CheckpointError(f"{path}: '{MANIFEST}' does not describe a tinylesion file")
        if version > FORMAT_VERSION:
            raise CheckpointError(f"{path} was written in checkpoint format {version}; this "
                                  f"tinylesion reads formats up to {FORMAT_VERSION}: upgrade it")
        try:
            return _unpack(tree, archive, path)
        except (TypeError, KeyError, AttributeError, ValueError) as exc:
            if isinstance(exc, CheckpointError):
                raise
            raise CheckpointError(f"{path}: malformed '{MANIFEST}' entry ({exc})") from None


def _unpack(node, archive, path):
    """Rebuild the value a manifest node describes, reading its entries from `archive`."""
    if "dict" in node:
        return {key: _unpack(child, archive, path) for key, child in node["dict"]}
    kind = "array" if "array" in node else "json"
    name = node[kind]
    if name not in archive.files:
        raise CheckpointError(f"{path} is damaged: its manifest lists entry '{name}', "
                              "which is missing")
    try:
        array = archive[name]
    except ValueError as exc:  # an object array: numpy refuses it without allow_pickle
        raise CheckpointError(f"{path}: entry '{name}' holds pickled Python objects, which "
                              f"tinylesion never loads ({exc})") from None
    except Exception as exc:
        raise CheckpointError(f"{path}: entry '{name}' is unreadable "
                              f"({type(exc).__name__}: {exc})") from None
    if kind == "array":
        return array
    try:
        return json.loads(str(array[()]))
    except (ValueError, IndexError) as exc:
        raise CheckpointError(f"{path}: entry '{name}' is not the JSON text it should "
                              f"be ({exc})") from None
