"""Padding by copies of the input's own entries (F.pad's 'reflect', 'replicate' and 'circular'
modes) and the padding layers: ReflectionPad, ReplicationPad, CircularPad, ConstantPad (1-D,
2-D, 3-D)."""
import numpy as np

from .. import ops
from .module import Module


def _source_positions(n, before, after, mode):
    """For each output position along an axis of n entries padded by (before, after), the
    input position it copies. Negative widths crop first; the padding then copies from what
    is left, as torch's."""
    start, stop = max(-before, 0), n - max(-after, 0)
    kept = stop - start
    j = np.arange(-max(before, 0), kept + max(after, 0))
    if mode == "reflect":      # the edge entry not repeated
        j = np.abs(j)
        j = np.where(j > kept - 1, 2 * (kept - 1) - j, j)
    elif mode == "replicate":  # the edge entry repeated
        j = np.clip(j, 0, kept - 1)
    else:                      # circular: wrap around
        j = j % kept
    return j + start


def copy_pad(x, pad, mode, value=None):
    """F.pad(x, pad, mode) for mode 'reflect', 'replicate' or 'circular': pad holds (left,
    right) of the last axis, then of the one before, for up to 3 axes of a tensor of one or
    two more dimensions (torch's rule)."""
    if value is not None and value != 0:
        raise ValueError(f"pad: padding mode {mode!r} does not take a value argument "
                         f"(value={value!r})")
    k = len(pad) // 2
    if k > 3 or x.ndim not in (k + 1, k + 2):
        raise NotImplementedError(f"pad: mode {mode!r} pads the last 1, 2 or 3 dimensions of "
                                  f"an input of 1 or 2 more (batch, channels); padding "
                                  f"{tuple(pad)} of input {x.shape} is not supported")
    for i in range(k):
        axis = x.ndim - 1 - i
        before, after, n = int(pad[2 * i]), int(pad[2 * i + 1]), x.shape[axis]
        kept = n - max(-before, 0) - max(-after, 0)
        if kept < 1:
            raise ValueError(f"pad: padding ({before}, {after}) leaves nothing of dimension "
                             f"{axis} of size {n}")
        if mode == "reflect" and (before >= kept or after >= kept):
            raise ValueError(f"pad: reflect padding ({before}, {after}) must be smaller than "
                             f"the input's size {kept} along dimension {axis}")
        if mode == "circular" and (before > kept or after > kept):
            raise ValueError(f"pad: circular padding ({before}, {after}) must not exceed the "
                             f"input's size {kept} along dimension {axis}")
        if before == after == 0:
            continue
        index = _source_positions(n, before, after, mode)
        x = ops.IndexSelect.apply(x, index=x.xp.asarray(index), axis=axis)
    return x


class _Pad(Module):
    """A padding layer: `padding` an int (every side) or the 2·dims numbers F.pad takes."""
    dims, mode = 2, "constant"

    def __init__(self, padding, value=None):
        super().__init__()
        if isinstance(padding, (int, np.integer)) and not isinstance(padding, bool):
            padding = (int(padding),) * (2 * self.dims)
        padding = tuple(padding)
        if len(padding) != 2 * self.dims or not all(
                isinstance(p, (int, np.integer)) for p in padding):
            raise ValueError(f"{type(self).__name__}: padding must be an int or "
                             f"{2 * self.dims} ints, not {padding!r}")
        self.padding, self.value = padding, value

    def forward(self, input):
        from .functional import pad
        if self.mode == "constant":
            return pad(input, self.padding, "constant", self.value)
        return pad(input, self.padding, self.mode)

    def extra_repr(self):
        return f"{self.padding}" + ("" if self.mode != "constant" else f", value={self.value}")


def _layer(name, dims, mode, doc):
    return type(name, (_Pad,), {"dims": dims, "mode": mode, "__doc__": doc,
                                "__module__": __name__})


class _ConstantPad(_Pad):
    def __init__(self, padding, value):
        super().__init__(padding, value)


ReflectionPad1d = _layer("ReflectionPad1d", 1, "reflect", "Reflect-pad the last axis.")
ReflectionPad2d = _layer("ReflectionPad2d", 2, "reflect", "Reflect-pad the last two axes.")
ReflectionPad3d = _layer("ReflectionPad3d", 3, "reflect", "Reflect-pad the last three axes.")
ReplicationPad1d = _layer("ReplicationPad1d", 1, "replicate", "Repeat the edges of the last "
                          "axis.")
ReplicationPad2d = _layer("ReplicationPad2d", 2, "replicate", "Repeat the edges of the last "
                          "two axes.")
ReplicationPad3d = _layer("ReplicationPad3d", 3, "replicate", "Repeat the edges of the last "
                          "three axes.")
CircularPad1d = _layer("CircularPad1d", 1, "circular", "Wrap-around padding of the last axis.")
CircularPad2d = _layer("CircularPad2d", 2, "circular", "Wrap-around padding of the last two "
                       "axes.")
ConstantPad1d = type("ConstantPad1d", (_ConstantPad,), {
    "dims": 1, "__module__": __name__, "__doc__": "Pad the last axis with `value`."})
ConstantPad2d = type("ConstantPad2d", (_ConstantPad,), {
    "dims": 2, "__module__": __name__, "__doc__": "Pad the last two axes with `value`."})
ConstantPad3d = type("ConstantPad3d", (_ConstantPad,), {
    "dims": 3, "__module__": __name__, "__doc__": "Pad the last three axes with `value`."})
