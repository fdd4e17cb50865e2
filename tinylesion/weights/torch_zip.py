"""Read PyTorch's zip files (torch.save since 1.6) into NumPy arrays, without torch and
without running anything from the file."""
import collections
import io
import pickle
import zipfile
import zlib

import numpy as np

from ..io import CheckpointError

# torch.<Name>Storage → the NumPy dtype of its bytes (bfloat16 is read as its 16 bits)
STORAGE_DTYPES = {
    "FloatStorage": np.float32, "DoubleStorage": np.float64, "HalfStorage": np.float16,
    "BFloat16Storage": np.uint16, "LongStorage": np.int64, "IntStorage": np.int32,
    "ShortStorage": np.int16, "CharStorage": np.int8, "ByteStorage": np.uint8,
    "BoolStorage": np.bool_,
}


class _StorageType:
    """What the pickle's global torch.<Name>Storage stands for: a dtype, nothing callable."""

    def __init__(self, name):
        self.name, self.dtype = name, np.dtype(STORAGE_DTYPES[name])


class _Storage:
    """One data/<key> entry of the archive as a flat array of `numel` entries."""

    def __init__(self, name, name_of_type, array):
        self.name, self.name_of_type, self.array = name, name_of_type, array


def _ints(value, what):
    if not isinstance(value, tuple) or not all(
            isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in value):
        raise CheckpointError(f"{what} must be a tuple of non-negative ints, not {value!r}")
    return value


def _rebuild_tensor(storage, offset, size, stride, requires_grad=False, hooks=None,
                    metadata=None):
    """A copy of the strided view (offset, size, stride) of `storage`, bounds-checked."""
    if not isinstance(storage, _Storage):
        raise CheckpointError(f"a tensor's storage is a {type(storage).__name__}, not a "
                              "data entry of the archive")
    _ints((offset,), "a tensor's storage offset")
    size, stride = _ints(size, "a tensor's size"), _ints(stride, "a tensor's stride")
    if len(size) != len(stride):
        raise CheckpointError(f"a tensor's size {size} and stride {stride} differ in length")
    array = storage.array
    if 0 in size:
        return np.zeros(size, np.float32 if storage.name_of_type == "BFloat16Storage"
                        else array.dtype)
    # NOTE: the last entry the view reads is offset + Σ (size_i − 1)·stride_i
    end = offset + sum((n - 1) * s for n, s in zip(size, stride)) + 1
    if end > array.size:
        raise CheckpointError(f"a tensor of size {size}, stride {stride} at offset {offset} "
                              f"reads entry {end - 1} of storage {storage.name!r}, which has "
                              f"only {array.size}")
    view = np.array(np.lib.stride_tricks.as_strided(
        array[offset:], shape=size, strides=[s * array.itemsize for s in stride],
        writeable=False))
    if storage.name_of_type == "BFloat16Storage":  # NOTE: bfloat16 is float32's upper half
        return (view.astype(np.uint32) << 16).view(np.float32)
    return view


def _rebuild_parameter(data, requires_grad=True, hooks=None, state=None):
    if not isinstance(data, np.ndarray):
        raise CheckpointError(f"a parameter holds a {type(data).__name__}, not a tensor")
    return data


# the only globals a state_dict's pickle names (what torch.load(weights_only=True) admits for
# one), each mapped to a function of this module or to a plain container
_ALLOWED = {
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    ("torch._utils", "_rebuild_parameter_with_state"): _rebuild_parameter,
}
_ALLOWED.update({("torch", name): _StorageType(name) for name in STORAGE_DTYPES})


class _Unpickler(pickle.Unpickler):
    """pickle.Unpickler that resolves only the globals of _ALLOWED and reads storages from
    the archive; any other global is refused by name, before anything is called."""

    def __init__(self, data, archive, prefix, byteorder):
        super().__init__(io.BytesIO(data))
        self.archive, self.prefix, self.byteorder = archive, prefix, byteorder
        self.storages = {}

    def find_class(self, module, name):
        try:
            return _ALLOWED[(module, name)]
        except (KeyError, TypeError):
            raise CheckpointError(f"it names the global {module}.{name}, which a weights file "
                                  "does not need (only tensors and dicts are read): refused, "
                                  "nothing was run") from None

    def persistent_load(self, pid):
        if not (isinstance(pid, tuple) and len(pid) == 5 and pid[0] == "storage"
                and isinstance(pid[1], _StorageType) and isinstance(pid[2], str)
                and isinstance(pid[4], int) and pid[4] >= 0):
            raise CheckpointError(f"unexpected persistent id {pid!r} (a storage is "
                                  "('storage', type, key, location, size))")
        _, kind, key, _, numel = pid
        if key not in self.storages:
            entry = f"{self.prefix}/data/{key}"
            try:
                raw = self.archive.read(entry)
            except KeyError:
                raise CheckpointError(f"storage {key!r} has no entry {entry}") from None
            dtype = kind.dtype.newbyteorder("<" if self.byteorder == "little" else ">")
            if len(raw) < numel * dtype.itemsize:
                raise CheckpointError(f"storage {key!r} ({kind.name}) should hold {numel} "
                                      f"entries ({numel * dtype.itemsize} bytes) but its entry "
                                      f"has {len(raw)} bytes")
            array = np.frombuffer(raw, dtype, count=numel).astype(kind.dtype.newbyteorder("="))
            self.storages[key] = _Storage(key, kind.name, array)
        storage = self.storages[key]
        if storage.name_of_type != kind.name:
            raise CheckpointError(f"storage {key!r} is read both as {storage.name_of_type} and "
                                  f"as {kind.name}")
        return storage


def _find_pickle(names, path):
    pickles = [n for n in names if n.count("/") == 1 and n.endswith("/data.pkl")]
    if len(pickles) != 1:
        raise CheckpointError(f"{path}: a PyTorch zip file has one <name>/data.pkl entry; "
                              f"this one has {len(pickles)}")
    return pickles[0][:-len("/data.pkl")]


def is_torch_zip(path):
    """True when `path` is a zip archive with PyTorch's <name>/data.pkl entry."""
    try:
        with zipfile.ZipFile(path) as archive:
            return any(n.count("/") == 1 and n.endswith("/data.pkl") for n in archive.namelist())
    except (zipfile.BadZipFile, OSError, EOFError):
        return False


def read_torch_zip(path):
    """The dict of NumPy arrays saved by torch.save(state_dict, path) (a zip file).

    Only dicts, tensors, parameters and plain values are rebuilt; strides and storage
    offsets are honoured and bounds-checked; bfloat16 tensors come back as float32.
    Anything else (another global, a truncated archive, a storage too short) raises
    CheckpointError naming the file and the problem, and no code from the file runs.
    """
    try:
        with zipfile.ZipFile(path) as archive:
            prefix = _find_pickle(archive.namelist(), path)
            names = set(archive.namelist())
            byteorder = "little"
            if f"{prefix}/byteorder" in names:
                byteorder = archive.read(f"{prefix}/byteorder").decode("ascii").strip()
                if byteorder not in ("little", "big"):
                    raise CheckpointError(f"unknown byte order {byteorder!r}")
            unpickler = _Unpickler(archive.read(f"{prefix}/data.pkl"), archive, prefix,
                                   byteorder)
            state = unpickler.load()
    except CheckpointError as exc:
        raise CheckpointError(f"{path}: {exc}" if not str(exc).startswith(str(path))
                              else str(exc)) from None
    except (zipfile.BadZipFile, EOFError, zlib.error) as exc:
        raise CheckpointError(f"{path} is not a complete zip archive (truncated or damaged: "
                              f"{exc})") from None
    except Exception as exc:  # a malformed pickle: unpickling errors of every kind
        raise CheckpointError(f"{path}: its data.pkl is not a readable state_dict pickle "
                              f"({type(exc).__name__}: {exc})") from None
    if not isinstance(state, dict):
        raise CheckpointError(f"{path} holds a {type(state).__name__}, not a dict of tensors "
                              "(a state_dict)")
    return _plain(state, path)


def _plain(node, path, where=""):
    """OrderedDicts as dicts, values checked."""
    if isinstance(node, dict):
        out = {}
        for key, value in node.items():
            if not isinstance(key, (str, int)) or isinstance(key, bool):
                raise CheckpointError(f"{path}: key {key!r} under '{where or '<top level>'}' "
                                      "is neither str nor int")
            out[key] = _plain(value, path, f"{where}/{key}" if where else str(key))
        return out
    if isinstance(node, (list, tuple)):
        return [_plain(v, path, where) for v in node]
    if isinstance(node, np.ndarray):
        return node
    if node is None or isinstance(node, (bool, int, float, str)):
        return node
    raise CheckpointError(f"{path}: '{where}' holds a {type(node).__name__}, which a weights "
                          "file does not need")
