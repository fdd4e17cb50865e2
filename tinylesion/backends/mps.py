"""torch.backends.mps: Apple's GPU, which tinylesion does not use."""


def is_available():
    """Always False: tinylesion computes on the CPU or on CUDA through CuPy."""
    return False


def is_built():
    """Always False."""
    return False
