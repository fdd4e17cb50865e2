"""Stochastic depth (torchvision.ops.stochastic_depth): drop whole residual branches."""
from .. import backend
from .layers import Dropout

MODES = ("batch", "row")


def check_arguments(p, mode):
    """ValueError (torchvision's message) unless 0 <= p <= 1 and mode is "batch" or "row"."""
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"drop probability has to be between 0 and 1, but got {p}")
    if mode not in MODES:
        raise ValueError(f"mode has to be either 'batch' or 'row', but got {mode}")


def stochastic_depth(input, p, mode, training=True):
    """Zero `input` with probability p and scale what survives by 1/(1 − p), as torchvision:
    mode "row" draws once per sample (the first axis), "batch" once for the whole batch.
    The identity when not training or p == 0; zeros when p == 1."""
    check_arguments(p, mode)
    x = input
    if not training or p == 0.0:
        return x
    if p == 1.0:
        return x * 0.0
    shape = (x.shape[0],) + (1,) * (x.ndim - 1) if mode == "row" else (1,) * x.ndim
    return Dropout.apply(x, p=p, rng=backend.generator(x.device), shape=shape)
