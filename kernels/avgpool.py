"""Average pooling over NCHW arrays with PyTorch's padding, ceil_mode and divisors: plain
reference (NumPy or CuPy, also the GPU form), a Numba CPU kernel, and the tiled fast path.

The divisor of the window that starts at (h0, w0) = (oh·SH − PH, ow·SW − PW) is PyTorch's:
- divisor_override when given;
- count_include_pad (the default): the window's size after clipping it to the padded input,
  (min(h0 + KH, H + PH) − h0) · (min(w0 + KW, W + PW) − w0), which is KH·KW except for the
  windows that ceil_mode lets hang past the padding;
- otherwise the number of its positions inside the input.
Each is a product of a row factor and a column factor, so the divisors are an outer product.
"""
import numpy as np
from numba import njit, prange

from . import threads
from ._xp import get_array_module, pick_impl
from .im2col import _valid_range
from .pool import _geometry


def _factors(size, kernel, stride, padding, out, count_include_pad):
    """The row (or column) factors of the divisors along one axis, as a list of `out` ints."""
    factors = []
    for o in range(out):
        start = o * stride - padding
        if count_include_pad:
            factors.append(min(start + kernel, size + padding) - start)
        else:
            factors.append(min(start + kernel, size) - max(start, 0))
    return factors


def divisors(x_shape, geometry, count_include_pad, divisor_override, xp, dtype):
    """The (OH, OW) array of PyTorch's divisors (a 0-d array for divisor_override)."""
    KH, KW, SH, SW, PH, PW, OH, OW = geometry
    if divisor_override is not None:
        return xp.asarray(divisor_override, dtype=dtype)
    rows = _factors(x_shape[2], KH, SH, PH, OH, count_include_pad)
    cols = _factors(x_shape[3], KW, SW, PW, OW, count_include_pad)
    return xp.asarray(np.outer(rows, cols).astype(dtype))


def _check(x_shape, kernel, stride, padding, ceil_mode, divisor_override):
    geometry = _geometry(x_shape, kernel, stride, padding, ceil_mode, "average pooling")
    if divisor_override is not None and (not isinstance(divisor_override, (int, np.integer))
                                         or isinstance(divisor_override, bool)
                                         or divisor_override == 0):
        raise ValueError(f"average pooling: divisor_override must be a non-zero int, got "
                         f"{divisor_override!r}")
    return geometry


def _is_tiled(x_shape, geometry):
    """Windows that tile the image without padding (global pooling among them)."""
    KH, KW, SH, SW, PH, PW, OH, OW = geometry
    return ((KH, KW) == (SH, SW) and not (PH or PW) and OH * KH <= x_shape[2]
            and OW * KW <= x_shape[3])


# ---------------------------------------------------------------- reference (NumPy or CuPy)
def _padded_extent(x_shape, geometry):
    """(bottom, right): the zero rows and columns past the input that the windows reach."""
    KH, KW, SH, SW, PH, PW, OH, OW = geometry
    return (max(PH, (OH - 1) * SH + KH - x_shape[2] - PH),
            max(PW, (OW - 1) * SW + KW - x_shape[3] - PW))


def _window_slices(geometry):
    KH, KW, SH, SW, PH, PW, OH, OW = geometry
    return [(Ellipsis, slice(i, i + SH * (OH - 1) + 1, SH), slice(j, j + SW * (OW - 1) + 1, SW))
            for i in range(KH) for j in range(KW)]


def avgpool2d_forward_reference(x, kernel, stride=None, padding=0, ceil_mode=False,
                                count_include_pad=True, divisor_override=None):
    """Plain version: the sum of KH·KW strided views of the zero-padded input, divided."""
    geometry = _check(x.shape, kernel, stride, padding, ceil_mode, divisor_override)
    xp = get_array_module(x)
    PH, PW = geometry[4:6]
    bottom, right = _padded_extent(x.shape, geometry)
    xpad = xp.pad(x, ((0, 0), (0, 0), (PH, bottom), (PW, right)))
    y = sum(xpad[s] for s in _window_slices(geometry))
    div = divisors(x.shape, geometry, count_include_pad, divisor_override, xp, x.dtype)
    return (y / div).astype(x.dtype, copy=False)


def avgpool2d_backward_reference(gy, x_shape, kernel, stride=None, padding=0, ceil_mode=False,
                                 count_include_pad=True, divisor_override=None):
    """Plain version: gy / divisor added into each window of the zero-padded input."""
    geometry = _check(x_shape, kernel, stride, padding, ceil_mode, divisor_override)
    xp = get_array_module(gy)
    N, C, H, W = x_shape
    PH, PW = geometry[4:6]
    bottom, right = _padded_extent(x_shape, geometry)
    g = gy / divisors(x_shape, geometry, count_include_pad, divisor_override, xp, gy.dtype)
    gx = xp.zeros((N, C, H + PH + bottom, W + PW + right), dtype=gy.dtype)
    for s in _window_slices(geometry):  # overlapping windows add up
        gx[s] += g
    return gx[..., PH:PH + H, PW:PW + W]


# ---------------------------------------------------------------- tiled windows (any xp)
def _tiled_forward(x, geometry, div):
    KH, KW, _, _, _, _, OH, OW = geometry
    tiles = x[..., :OH * KH, :OW * KW].reshape(x.shape[:-2] + (OH, KH, OW, KW))
    return (tiles.sum(axis=(-3, -1)) / div).astype(x.dtype, copy=False)


def _tiled_backward(gy, x_shape, geometry, div):
    KH, KW, _, _, _, _, OH, OW = geometry
    xp = get_array_module(gy)
    g = gy / div
    gx = xp.zeros(x_shape, dtype=gy.dtype)
    gx[..., :OH * KH, :OW * KW] = xp.broadcast_to(
        g[..., :, None, :, None], g.shape[:-2] + (OH, KH, OW, KW)).reshape(
        g.shape[:-2] + (OH * KH, OW * KW))
    return gx


# ---------------------------------------------------------------- CPU (Numba)
# NOTE: as in kernels/depthwise.py, each task is one plane and every loop runs along an output
# row with the window offset (i, j) fixed: a contiguous add for stride 1 that LLVM vectorises.
@njit(cache=True, inline="always")
def _row_add(yr, xr, lo, hi, SW, off):
    ys, xs = yr[lo:hi], xr[lo * SW + off:]   # views from 0: see kernels/depthwise.py
    for k in range(hi - lo):
        ys[k] += xs[k * SW]


@njit(cache=True, inline="always")
def _row_spread(gxr, gr, lo, hi, SW, off):
    gxs, grs = gxr[lo * SW + off:], gr[lo:hi]
    for k in range(hi - lo):
        gxs[k * SW] += grs[k]


@njit(parallel=True, cache=True, nogil=True)
def _forward_cpu(x, div, KH, KW, SH, SW, PH, PW, y):
    P, H, W = x.shape
    OH, OW = y.shape[1], y.shape[2]
    for p in prange(P):
        for oh in range(OH):
            yr = y[p, oh]
            for ow in range(OW):
                yr[ow] = 0
            for i in range(KH):
                h = oh * SH - PH + i
                if h < 0 or h >= H:
                    continue
                xr = x[p, h]
                for j in range(KW):
                    lo, hi = _valid_range(j, PW, SW, W, OW)
                    if SW == 1:
                        _row_add(yr, xr, lo, hi, 1, j - PW)
                    elif SW == 2:
                        _row_add(yr, xr, lo, hi, 2, j - PW)
                    else:
                        _row_add(yr, xr, lo, hi, SW, j - PW)
            for ow in range(OW):
                yr[ow] /= div[oh, ow]


@njit(parallel=True, cache=True, nogil=True)
def _backward_cpu(gy, div, KH, KW, SH, SW, PH, PW, gx):
    P, H, W = gx.shape
    OH, OW = gy.shape[1], gy.shape[2]
    for p in prange(P):
        gr = np.empty(OW, gy.dtype)
        for h in range(H):
            for w in range(W):
                gx[p, h, w] = 0
        for oh in range(OH):
            for ow in range(OW):
                gr[ow] = gy[p, oh, ow] / div[oh, ow]
            for i in range(KH):
                h = oh * SH - PH + i
                if h < 0 or h >= H:
                    continue
                gxr = gx[p, h]
                for j in range(KW):
                    lo, hi = _valid_range(j, PW, SW, W, OW)
                    if SW == 1:
                        _row_spread(gxr, gr, lo, hi, 1, j - PW)
                    elif SW == 2:
                        _row_spread(gxr, gr, lo, hi, 2, j - PW)
                    else:
                        _row_spread(gxr, gr, lo, hi, SW, j - PW)


def _div2d(x_shape, geometry, count_include_pad, divisor_override, dtype):
    div = divisors(x_shape, geometry, count_include_pad, divisor_override, np, dtype)
    return np.ascontiguousarray(np.broadcast_to(div, geometry[6:]))


@threads.guarded
def avgpool2d_forward_cpu(x, kernel, stride=None, padding=0, ceil_mode=False,
                          count_include_pad=True, divisor_override=None):
    """Numba threads over the planes; windows that tile the image take one reshape and sum
    when they are large (global pooling, where the kernel's per-window loops cost 15-30x)."""
    geometry = _check(x.shape, kernel, stride, padding, ceil_mode, divisor_override)
    KH, KW, SH, SW, PH, PW, OH, OW = geometry
    N, C, H, W = x.shape
    # NOTE: small tiles are the other way round: DenseNet's 2x2 transition (8x128x56x56, one
    # thread) takes 22 ms as a reshape and sum over the interleaved axes, 4.6 ms in the kernel.
    if _is_tiled(x.shape, geometry) and KH * KW > 9:
        return _tiled_forward(x, geometry, KH * KW if divisor_override is None
                              else divisor_override)
    div = _div2d(x.shape, geometry, count_include_pad, divisor_override, x.dtype)
    y = np.empty((N, C, OH, OW), x.dtype)
    _forward_cpu(np.ascontiguousarray(x).reshape(N * C, H, W), div, KH, KW, SH, SW, PH, PW,
                 y.reshape(N * C, OH, OW))
    return y


@threads.guarded
def avgpool2d_backward_cpu(gy, x_shape, kernel, stride=None, padding=0, ceil_mode=False,
                           count_include_pad=True, divisor_override=None):
    """Numba threads over the planes (each thread owns its planes of gx); windows that tile the
    image take one broadcast copy (faster than the kernel below 56x56 planes)."""
    geometry = _check(x_shape, kernel, stride, padding, ceil_mode, divisor_override)
    KH, KW, SH, SW, PH, PW, OH, OW = geometry
    N, C, H, W = x_shape
    if _is_tiled(x_shape, geometry):
        return _tiled_backward(gy, x_shape, geometry, KH * KW if divisor_override is None
                               else divisor_override)
    div = _div2d(x_shape, geometry, count_include_pad, divisor_override, gy.dtype)
    gx = np.empty(x_shape, gy.dtype)
    _backward_cpu(np.ascontiguousarray(gy).reshape(N * C, OH, OW), div, KH, KW, SH, SW, PH, PW,
                  gx.reshape(N * C, H, W))
    return gx


# ---------------------------------------------------------------- GPU: array expressions
def avgpool2d_forward_gpu(x, kernel, stride=None, padding=0, ceil_mode=False,
                          count_include_pad=True, divisor_override=None):
    """CuPy expressions: the tiled reshape where the windows tile, else the strided views."""
    geometry = _check(x.shape, kernel, stride, padding, ceil_mode, divisor_override)
    if _is_tiled(x.shape, geometry):
        KH, KW = geometry[:2]
        return _tiled_forward(x, geometry, KH * KW if divisor_override is None
                              else divisor_override)
    return avgpool2d_forward_reference(x, kernel, stride, padding, ceil_mode,
                                       count_include_pad, divisor_override)


def avgpool2d_backward_gpu(gy, x_shape, kernel, stride=None, padding=0, ceil_mode=False,
                           count_include_pad=True, divisor_override=None):
    geometry = _check(x_shape, kernel, stride, padding, ceil_mode, divisor_override)
    if _is_tiled(x_shape, geometry):
        KH, KW = geometry[:2]
        return _tiled_backward(gy, x_shape, geometry, KH * KW if divisor_override is None
                               else divisor_override)
    return avgpool2d_backward_reference(gy, x_shape, kernel, stride, padding, ceil_mode,
                                        count_include_pad, divisor_override)


# ---------------------------------------------------------------- public
_FORWARD = {"reference": avgpool2d_forward_reference, "cpu": avgpool2d_forward_cpu,
            "gpu": avgpool2d_forward_gpu}
_BACKWARD = {"reference": avgpool2d_backward_reference, "cpu": avgpool2d_backward_cpu,
             "gpu": avgpool2d_backward_gpu}


def avgpool2d_forward(x, kernel, stride=None, padding=0, ceil_mode=False,
                      count_include_pad=True, divisor_override=None, impl=None):
    """Average pooling of x (N, C, H, W) as PyTorch's avg_pool2d (zero padding of at most half
    the kernel, ceil_mode, count_include_pad, divisor_override); stride defaults to kernel."""
    if x.dtype not in (np.float32, np.float64):
        raise ValueError(f"avgpool2d_forward supports float32 and float64, got {x.dtype}")
    return _FORWARD[pick_impl(impl, x)](x, kernel, stride, padding, ceil_mode,
                                        count_include_pad, divisor_override)


def avgpool2d_backward(gy, x_shape, kernel, stride=None, padding=0, ceil_mode=False,
                       count_include_pad=True, divisor_override=None, impl=None):
    """Gradient of avgpool2d_forward: gx of shape x_shape."""
    x_shape = tuple(int(s) for s in x_shape)
    geometry = _check(x_shape, kernel, stride, padding, ceil_mode, divisor_override)
    if tuple(gy.shape) != tuple(x_shape[:2]) + tuple(geometry[6:]):
        raise ValueError(f"avgpool2d_backward: gy has shape {tuple(gy.shape)}, expected "
                         f"{tuple(x_shape[:2]) + tuple(geometry[6:])}")
    return _BACKWARD[pick_impl(impl, gy)](gy, x_shape, kernel, stride, padding, ceil_mode,
                                          count_include_pad, divisor_override)
