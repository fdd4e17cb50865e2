"""tl.Generator: a random generator object of its own, as torch.Generator (CPU draws)."""
import numpy as np


class Generator:
    """A seeded random generator passed as generator= (DataLoader, samplers, random_split,
    tl.rand...). Its draws are independent of the global generator that tl.manual_seed seeds.
    """

    def __init__(self, device="cpu"):
        if str(device).split(":")[0] not in ("cpu",):
            raise ValueError(f"tl.Generator(device={device!r}): only 'cpu' generators exist; "
                             "GPU draws are seeded from the CPU generator")
        self.device = "cpu"
        self.seed()

    def manual_seed(self, seed):
        """Restart from `seed`; returns the generator (as torch's, for chaining)."""
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
            raise TypeError(f"Generator.manual_seed: seed must be an int, not {seed!r}")
        self._initial = int(seed) % 2**64
        self.rng = np.random.default_rng(self._initial)
        return self

    def seed(self):
        """Restart from a fresh non-deterministic seed and return it."""
        self.manual_seed(int(np.random.SeedSequence().entropy % 2**63))
        return self._initial

    def initial_seed(self):
        """The seed this generator was last started from."""
        return self._initial

    def get_state(self):
        """The generator's state (a dict); set_state puts it back."""
        return self.rng.bit_generator.state

    def set_state(self, state):
        """Restore a state returned by get_state."""
        self.rng.bit_generator.state = state
        return self


def numpy_generator(generator):
    """The numpy Generator behind a tl.Generator (or a numpy Generator given as such)."""
    if isinstance(generator, Generator):
        return generator.rng
    if isinstance(generator, np.random.Generator):
        return generator
    raise TypeError(f"generator= must be a tl.Generator, not {type(generator).__name__}")
