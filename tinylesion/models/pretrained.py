"""Loading a weights file into a model: a head for other classes is dropped and said, every
other missing, unexpected or mis-shaped key is an error naming it."""
import warnings

import numpy as np

from ..nn.module import StateDictError

SHOWN_KEYS = 8  # keys named in an error before "... (N in all)"


class HeadDroppedWarning(UserWarning):
    """A weights file's classifier did not fit the model's classes and was left out."""


def _names(keys):
    shown = ", ".join(keys[:SHOWN_KEYS])
    return shown + (f", ... ({len(keys)} in all)" if len(keys) > SHOWN_KEYS else "")


def _state_dict_of(state, where):
    """The state_dict inside what a file holds: itself, or its "state_dict" or "model" entry
    (training checkpoints)."""
    if not isinstance(state, dict):
        raise StateDictError(f"{where} holds a {type(state).__name__}, not a state_dict")
    if not any(hasattr(v, "shape") for v in state.values()):
        for key in ("state_dict", "model"):
            if isinstance(state.get(key), dict):
                return state[key]
    return state


def _shape(value):
    return tuple(np.shape(value))


def load_weights(model, weights, log=None, *, _stacklevel=2):
    """Load `weights` (a file tl.load reads: .npz, PyTorch .pth/.pt, .safetensors; or a
    state_dict) into `model`; return the keys of the head that was dropped.

    The file's keys are first put in the model's names (model.adapt_state_dict: DenseNet's
    older names; inception_v3's auxiliary head set aside when the model has none). A head
    (model.head_keys) whose shape does not fit the model's classes is dropped, and `log`
    (default: a HeadDroppedWarning) says which keys; missing num_batches_tracked counters
    (files older than PyTorch 0.4.1) start at 0 as in PyTorch. Any other missing, unexpected
    or mis-shaped key raises StateDictError naming it, before the model changes.
    """
    where = str(weights) if not isinstance(weights, dict) else "the state_dict"
    if not isinstance(weights, dict):
        from ..io import load
        weights = load(weights)
    state = dict(_state_dict_of(weights, where))
    adapt = getattr(model, "adapt_state_dict", None)
    if adapt is not None:
        state = dict(adapt(state))
    own = model.state_dict()
    head_layers = {key.rsplit(".", 1)[0] for key in getattr(model, "head_keys", ())
                   if key in state and key in own and _shape(state[key]) != _shape(own[key])}
    order = {k: i for i, k in enumerate(own)}  # the model's order, whatever the file's
    dropped = sorted((k for k in state if k.rsplit(".", 1)[0] in head_layers),
                     key=lambda k: order.get(k, len(order)))
    sizes = {k: (_shape(state[k]), _shape(own[k])) for k in dropped if k in own}
    for key in dropped:
        del state[key]
    missing = [k for k in own if k not in state and k not in sizes]
    for key in [k for k in missing if k.endswith(".num_batches_tracked")]:
        state[key] = np.zeros((), np.int64)
    missing = [k for k in missing if k not in state]
    unexpected = [k for k in state if k not in own]
    mismatched = [f"{k} (file {_shape(state[k])}, model {_shape(own[k])})" for k in own
                  if k in state and _shape(state[k]) != _shape(own[k])]
    problems = [f"{label}: {_names(keys)}" for label, keys in (
        ("missing keys", missing), ("unexpected keys", unexpected),
        ("mis-shaped keys", mismatched)) if keys]
    if problems:
        raise StateDictError(f"{where} does not fit {getattr(model, 'name', type(model).__name__)}"
                             f": " + "; ".join(problems))
    bad = [k for k, v in state.items() if isinstance(v, np.ndarray) and v.dtype.kind in "fc"
           and not np.isfinite(v).all()]
    if bad:
        raise StateDictError(f"{where}: {_names(bad)} hold NaN or infinite values (weights of "
                             "a diverged run?)")
    model.load_state_dict(state, strict=False)  # checked above; only a dropped head is missing
    if dropped:
        text = (f"{where}: its head does not fit {getattr(model, 'num_classes', '?')} classes; "
                f"dropped {', '.join(f'{k} {a}' for k, (a, _) in sizes.items())} (the model's "
                f"new head keeps its initialisation)")
        if log is None:
            warnings.warn(text, HeadDroppedWarning, stacklevel=_stacklevel)
        else:
            log(text)
    return dropped
