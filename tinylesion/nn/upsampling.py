"""F.interpolate and nn.Upsample: nearest and (bi)linear resizing of (N, C, L) and
(N, C, H, W) tensors, with PyTorch's sampling positions (align_corners either way)."""
from .. import ops as _ops  # noqa: F401  (ops before ops.resample: the package's import order)
from ..ops.resample import Resample, interpolation_matrix, output_size
from .module import Module

_LINEAR = {3: "linear", 4: "bilinear"}
_MODES = ("nearest", "nearest-exact", "linear", "bilinear")


def interpolate(input, size=None, scale_factor=None, mode="nearest", align_corners=None,
                recompute_scale_factor=None, antialias=False):
    """Resize the trailing dimensions to `size` or by `scale_factor` (floor(in · factor)):
    mode "nearest", "nearest-exact", "linear" (3-D input) or "bilinear" (4-D input)."""
    if mode not in _MODES:
        raise NotImplementedError(f"interpolate: mode {mode!r} is not implemented; "
                                  f"tinylesion has {', '.join(_MODES)}")
    if antialias:
        raise NotImplementedError("interpolate: antialias=True is not implemented")
    if input.ndim not in (3, 4):
        raise ValueError(f"interpolate expects a 3-D (N, C, L) or 4-D (N, C, H, W) input, got "
                         f"shape {tuple(input.shape)}")
    linear = mode in ("linear", "bilinear")
    if linear and mode != _LINEAR[input.ndim]:
        raise ValueError(f"interpolate: mode {mode!r} needs a "
                         f"{3 if mode == 'linear' else 4}-D input, got {input.ndim}-D")
    if align_corners is not None and not linear:
        raise ValueError("align_corners option can only be set with the interpolating modes: "
                         "linear | bilinear | bicubic | trilinear")
    in_sizes = tuple(input.shape[2:])
    out_sizes, factors = output_size(in_sizes, size, scale_factor)
    if any(n <= 0 for n in out_sizes):
        raise ValueError(f"interpolate: the output size {out_sizes} must be positive")
    matrices = []
    for k, (n_in, n_out) in enumerate(zip(in_sizes, out_sizes)):
        # NOTE: a given scale_factor sets the sampling step (1/factor), unless
        # recompute_scale_factor asks for in/out, as PyTorch.
        use_factor = factors is not None and not recompute_scale_factor
        scale = 1.0 / float(factors[k]) if use_factor else n_in / n_out
        matrices.append(interpolation_matrix(n_in, n_out, scale, mode, bool(align_corners)))
    return Resample.apply(input, matrices=tuple(matrices))


def upsample(input, size=None, scale_factor=None, mode="nearest", align_corners=None):
    """interpolate under its older name."""
    return interpolate(input, size, scale_factor, mode, align_corners)


class Upsample(Module):
    """interpolate as a layer (size or scale_factor, mode, align_corners)."""

    def __init__(self, size=None, scale_factor=None, mode="nearest", align_corners=None,
                 recompute_scale_factor=None):
        super().__init__()
        if mode not in _MODES:
            raise NotImplementedError(f"Upsample: mode {mode!r} is not implemented; "
                                      f"tinylesion has {', '.join(_MODES)}")
        self.size, self.scale_factor, self.mode = size, scale_factor, mode
        self.align_corners = align_corners
        self.recompute_scale_factor = recompute_scale_factor

    def forward(self, input):
        return interpolate(input, self.size, self.scale_factor, self.mode, self.align_corners,
                           self.recompute_scale_factor)

    def extra_repr(self):
        what = f"size={self.size}" if self.size is not None else \
            f"scale_factor={self.scale_factor}"
        return f"{what}, mode={self.mode!r}"


class UpsamplingNearest2d(Upsample):
    """Upsample with mode="nearest"."""

    def __init__(self, size=None, scale_factor=None):
        super().__init__(size, scale_factor, mode="nearest")


class UpsamplingBilinear2d(Upsample):
    """Upsample with mode="bilinear" and align_corners=True (as torch's)."""

    def __init__(self, size=None, scale_factor=None):
        super().__init__(size, scale_factor, mode="bilinear", align_corners=True)
