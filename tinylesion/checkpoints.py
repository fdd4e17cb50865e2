"""fit's checkpoints: arrays in an .npz, everything else as one JSON document beside them;
read back as untrusted input (check_checkpoint names the entry at fault)."""
import json
import math

import numpy as np

from . import backend
from .tensor import Tensor

HISTORY_KEYS = ("loss", "accuracy", "val_loss", "val_accuracy", "val_macro_f1", "lr")



def _split_arrays(obj, arrays):
    """A JSON-able skeleton of obj, with each array replaced by {"__array__": key}."""
    if isinstance(obj, Tensor):
        obj = obj.array
    if isinstance(obj, np.ndarray) or backend.is_cupy_array(obj):
        key = f"a{len(arrays)}"
        arrays[key] = backend.to_numpy(obj)
        return {"__array__": key}
    if isinstance(obj, dict):
        return {"__dict__": [[_split_arrays(k, arrays), _split_arrays(v, arrays)]
                             for k, v in obj.items()]}
    if isinstance(obj, (list, tuple)):
        return {"__list__": [_split_arrays(v, arrays) for v in obj],
                "tuple": isinstance(obj, tuple)}
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return {"__float__": repr(obj)}
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    raise TypeError(f"cannot store a {type(obj).__name__} in a checkpoint")


def _join_arrays(obj, arrays):
    """Inverse of _split_arrays."""
    if isinstance(obj, dict):
        if "__array__" in obj:
            return arrays[obj["__array__"]]
        if "__dict__" in obj:
            return {_join_arrays(k, arrays): _join_arrays(v, arrays) for k, v in obj["__dict__"]}
        if "__list__" in obj:
            items = [_join_arrays(v, arrays) for v in obj["__list__"]]
            return tuple(items) if obj["tuple"] else items
        if "__float__" in obj:
            return float(obj["__float__"])
    return obj


def save_checkpoint(state, path):
    """Write a nested dict of arrays and plain values to `path` (.npz) atomically."""
    from . import io
    arrays = {}
    skeleton = _split_arrays(state, arrays)
    blob = np.frombuffer(json.dumps(skeleton).encode("utf-8"), dtype=np.uint8)
    io.save({"arrays": arrays, "skeleton": blob}, path)


def load_checkpoint(path):
    """Read what save_checkpoint wrote (io.CheckpointError, naming the path, when it cannot)."""
    from . import io
    raw = io.load(path)
    try:
        skeleton = json.loads(bytes(np.asarray(raw["skeleton"], np.uint8)).decode("utf-8"))
        return _join_arrays(skeleton, raw.get("arrays", {}))
    except (KeyError, TypeError, ValueError, AttributeError, RecursionError) as exc:
        raise io.CheckpointError(f"{path}: not a checkpoint of fit, or damaged "
                                 f"({type(exc).__name__}: {str(exc)[:100]})") from None


def _is_state(value):
    return isinstance(value, dict) and all(
        isinstance(k, str) and (isinstance(v, np.ndarray) or backend.is_cupy_array(v))
        for k, v in value.items())


def _is_int(value):
    """True for an int that is not a bool (JSON's true and false are not numbers here)."""
    return isinstance(value, int) and not isinstance(value, bool)


def check_checkpoint(ck, path):
    """Raise io.CheckpointError naming the first entry of a loaded checkpoint that fit could
    not resume from (a file may have been changed since fit wrote it); return ck."""
    from . import io

    def bad(key, rule):
        raise io.CheckpointError(f"{path}: entry '{key}' " + (
            "is missing" if key not in ck else f"must be {rule}"))

    if not isinstance(ck, dict):
        raise io.CheckpointError(f"{path}: not a checkpoint of fit")
    if not _is_state(ck.get("model")):
        bad("model", "a state_dict (names and arrays)")
    optimizer = ck.get("optimizer")
    if not (isinstance(optimizer, dict) and isinstance(optimizer.get("state"), dict)
            and isinstance(optimizer.get("param_groups"), list)):
        bad("optimizer", "an optimizer state_dict (state, param_groups)")
    if not isinstance(ck.get("scheduler", None), (dict, type(None))):
        bad("scheduler", "a scheduler state_dict or null")
    epoch = ck.get("epoch")
    if not _is_int(epoch) or epoch < 0:
        bad("epoch", "a whole number of epochs")
    history = ck.get("history")
    if not (isinstance(history, dict) and all(
            isinstance(history.get(k, []), list) and len(history.get(k, [])) == epoch
            and all(v is None or isinstance(v, (int, float)) for v in history.get(k, []))
            for k in HISTORY_KEYS)):
        bad("history", f"lists of {epoch} numbers per series")
    if ck.get("best") is not None and not _is_state(ck.get("best")):
        bad("best", "a state_dict or null")
    score = ck.get("best_score")
    if isinstance(score, bool) or not isinstance(score, (int, float)) or math.isnan(score):
        bad("best_score", "a number")
    wait = ck.get("wait")
    if not _is_int(wait) or wait < 0:
        bad("wait", "a whole number")
    if not isinstance(ck.get("stopped"), bool):
        bad("stopped", "true or false")
    try:
        type(backend.generator(backend.CPU).bit_generator)().state = ck.get("rng")
    except (TypeError, ValueError, KeyError, OverflowError):
        bad("rng", "the state of the random generator")
    seed = ck.get("loader_seed")
    if seed is not None and not _is_int(seed):
        bad("loader_seed", "a whole number or null")
    finetune = ck.get("finetune")
    if finetune is not None and not (isinstance(finetune, dict) and finetune.get("phase") in (
            "frozen", "unfrozen") and isinstance(finetune.get("frozen"), list) and all(
            isinstance(k, str) for k in finetune["frozen"])):
        bad("finetune", "{phase: frozen or unfrozen, frozen: [parameter names]} or null")
    best_epoch = ck.get("best_epoch")
    if best_epoch is not None and not (_is_int(best_epoch) and 0 < best_epoch <= epoch):
        bad("best_epoch", f"an epoch from 1 to {epoch} or null")
    return ck
