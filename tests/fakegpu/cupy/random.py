"""cupy.random of the stand-in: generators whose draws are device arrays.

The draws are NumPy's for the same seed (CuPy's own XORWOW streams differ), so a test can
make the CPU draw the same numbers.
"""
import numpy as _np

from . import _wrap


class Generator:
    """cupy.random.Generator: NumPy's Generator methods, returning cupy arrays."""

    def __init__(self, bit_generator):
        self._rng = _np.random.Generator(bit_generator)

    def __getattr__(self, name):
        method = getattr(self._rng, name)
        if not callable(method):
            return method

        def draw(*args, **kwargs):
            return _wrap(method(*args, **kwargs))
        draw.__name__ = name
        return draw


def default_rng(seed=None):
    """A Generator seeded with `seed` (NumPy's PCG64 stands in for CuPy's XORWOW)."""
    return Generator(_np.random.PCG64(seed))
