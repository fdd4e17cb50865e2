"""Where the samplers and random_split draw from: a tl.Generator, or the global generator."""
import numpy as np

from ... import backend
from ...rng import numpy_generator


def draw_seed(generator=None):
    """A fresh seed in [0, 2**63) from `generator`, or from the generator tl.manual_seed seeds."""
    rng = backend.generator() if generator is None else numpy_generator(generator)
    return int(rng.integers(2**63))


def pass_rng(generator=None):
    """The numpy Generator one pass of a sampler draws from: the tl.Generator given (so its
    state advances from pass to pass), else a new one seeded from the global generator."""
    if generator is not None:
        return numpy_generator(generator)
    return np.random.default_rng(draw_seed())
