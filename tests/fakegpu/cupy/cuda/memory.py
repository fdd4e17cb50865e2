"""cupy.cuda.memory of the stand-in: the out-of-memory error, memory pointers."""


class OutOfMemoryError(MemoryError):
    """Raised when the device has no memory left for an allocation (as CuPy's)."""

    def __init__(self, size=0, total=0, limit=0):
        super().__init__(f"Out of memory allocating {size:,} bytes "
                         f"(allocated so far: {total:,} bytes).")


class MemoryPointer:
    """A pointer into device memory (an address of host memory in the stand-in)."""

    def __init__(self, ptr):
        self.ptr = int(ptr)
