"""torch.compile and the memory-format names, for PyTorch scripts: tinylesion's kernels are
compiled ahead of time (Numba) and its arrays are C-ordered (N, C, H, W), so compile returns
what it is given and the memory formats are accepted names that change nothing."""


class _MemoryFormat:
    """torch.channels_last and its siblings: accepted by .to(memory_format=) and
    .contiguous(memory_format=); the arrays stay C-ordered (N, C, H, W)."""

    def __init__(self, name):
        self.name = name

    def __repr__(self):
        return f"tinylesion.{self.name}"


channels_last = _MemoryFormat("channels_last")
channels_last_3d = _MemoryFormat("channels_last_3d")
contiguous_format = _MemoryFormat("contiguous_format")
preserve_format = _MemoryFormat("preserve_format")
MEMORY_FORMATS = (channels_last, channels_last_3d, contiguous_format, preserve_format)


def check_memory_format(memory_format, where):
    """None or one of the memory formats, else a TypeError naming `where`."""
    if memory_format is not None and not isinstance(memory_format, _MemoryFormat):
        raise TypeError(f"{where}: memory_format must be one of tinylesion.channels_last, "
                        f"contiguous_format, preserve_format, not {memory_format!r}")


def compile(model=None, *, fullgraph=False, dynamic=None, backend="inductor", mode=None,
            options=None, disable=False):
    """torch.compile(model) returns model (a module or a function) itself: tinylesion's
    kernels are compiled already. As a decorator (`@compile` or `@compile(mode=...)`) it
    returns the function."""
    if mode is not None and mode not in ("default", "reduce-overhead", "max-autotune",
                                         "max-autotune-no-cudagraphs"):
        raise ValueError(f"compile: unknown mode {mode!r}")
    if model is None:
        return lambda fn: fn
    if not callable(model):
        raise TypeError(f"compile takes a module or a function, not {type(model).__name__}")
    return model
