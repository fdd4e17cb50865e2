"""torch.backends.cudnn's flags, accepted: tinylesion's kernels pick no algorithm by timing
(benchmark has no effect) and give the same results run after run (deterministic holds)."""
from .. import backend

enabled = True
benchmark = False
deterministic = False
allow_tf32 = True


def is_available():
    """True when a CUDA device works (tinylesion's GPU path does not need cuDNN itself)."""
    return backend.gpu_available()


def version():
    """None: tinylesion does not call cuDNN."""
    return None
