"""How Linear and Conv2d initialise: PyTorch's defaults, or Keras' inside keras_initialization()
(the papers' model builders, whose published results used Keras' layers)."""
import functools
import math
import threading

from . import init

_mode = threading.local()


def keras_active():
    """True inside a keras_initialization() block of the calling thread."""
    return getattr(_mode, "keras", False)


class keras_initialization:
    """Context manager (and decorator): layers made inside take Keras' defaults, Glorot-uniform
    weights and zero biases, instead of PyTorch's."""

    def __enter__(self):
        self._previous = keras_active()
        _mode.keras = True

    def __exit__(self, *exc):
        _mode.keras = self._previous

    def __call__(self, fn):
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            with keras_initialization():
                return fn(*args, **kwargs)
        return wrapper


def reset_parameters(weight, bias):
    """Initialise a Linear's or Conv2d's weight (out, in[, kh, kw]) and bias (out,) in place.

    PyTorch's defaults: weight from kaiming_uniform_(a=√5), i.e. U(−1/√fan_in, 1/√fan_in),
    then bias from U(−1/√fan_in, 1/√fan_in) (drawn in that order). Under
    keras_initialization(): weight Glorot-uniform, bias zeros (no draw).
    """
    if keras_active():
        init.xavier_uniform_(weight)
        if bias is not None:
            init.zeros_(bias)
        return
    # NOTE: a = √5 gives gain √(2/(1+5)) = 1/√3, so the bound √3·gain/√fan_in is 1/√fan_in
    init.kaiming_uniform_(weight, a=math.sqrt(5))
    if bias is not None:
        fan_in, _ = init._fan_in_and_fan_out(weight)
        bound = 1.0 / math.sqrt(fan_in) if fan_in > 0 else 0.0
        init.uniform_(bias, -bound, bound)
