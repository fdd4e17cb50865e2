"""Training-mode batch norm over (N,C) or (N,C,H,W) arrays: reference, Numba CPU and GPU; the
backward pass optionally with the per-channel sums of its input gradient (the bias gradient of
the convolution before it)."""

import numpy as np
from numba import njit, prange

from kernels import threads
from kernels._xp import get_array_module, pick_impl
from kernels.channel_sums import _plane_sum


def _check(name, x, *per_channel):
    """Shape and dtype checks; returns C. `per_channel` are (label, array-or-None) pairs."""
    if x.ndim not in (2, 4):
        raise ValueError(f"{name}: x must be (N, C) or (N, C, H, W), got shape {x.shape}")
    if x.dtype not in (np.float32, np.float64):
        raise ValueError(f"{name} supports float32 and float64, got {x.dtype}")
    C = x.shape[1]
    M = x.size // C if C else 0
    if M < 1:
        raise ValueError(f"{name}: x of shape {x.shape} has no values per channel")
    for label, a in per_channel:
        if a is not None and tuple(a.shape) != (C,):
            raise ValueError(f"{name}: {label} must have shape ({C},) for x of shape "
                             f"{x.shape}, got {tuple(a.shape)}")
    return C


def _axes(x):
    return (0,) if x.ndim == 2 else (0, 2, 3)


def _bcast(a, x):
    """A (C,) array shaped to broadcast against x."""
    return a.reshape((1, -1) + (1,) * (x.ndim - 2))


# --------------------------------------------------------------------------------------------
# Reference: plain array operations (NumPy or CuPy), statistics accumulated in float64
# --------------------------------------------------------------------------------------------

def batchnorm_forward_reference(x, gamma, beta, eps):
    """Reference training-mode batch norm: (y, mean, biased var), statistics over all but C.
    Computed in float64 throughout and rounded once at the end."""
    xp = get_array_module(x)
    axes = _axes(x)
    x64 = x.astype(xp.float64)
    mean = x64.mean(axis=axes)
    var = ((x64 - _bcast(mean, x)) ** 2).mean(axis=axes)
    invstd = 1.0 / xp.sqrt(var.astype(x.dtype).astype(xp.float64) + eps)
    y = (x64 - _bcast(mean, x)) * _bcast(invstd, x)
    if gamma is not None:
        y = y * _bcast(gamma.astype(xp.float64), x)
    if beta is not None:
        y = y + _bcast(beta.astype(xp.float64), x)
    return y.astype(x.dtype), mean.astype(x.dtype), var.astype(x.dtype)


def batchnorm_backward_reference(gy, x, gamma, mean, var, eps):
    """Reference gradient of training-mode batch norm through the batch statistics."""
    xp = get_array_module(gy, x)
    axes = _axes(x)
    M = x.size // x.shape[1]
    invstd = 1.0 / xp.sqrt(var.astype(xp.float64) + eps)
    d = x.astype(xp.float64) - _bcast(mean.astype(xp.float64), x)
    # NOTE: `mean` was rounded to x's dtype; the exact batch mean is mean + mean(d).
    d -= _bcast(d.mean(axis=axes), x)
    xhat = d * _bcast(invstd, x)
    gy64 = gy.astype(xp.float64)
    gbeta = gy64.sum(axis=axes)
    ggamma = (gy64 * xhat).sum(axis=axes)
    g = xp.ones_like(invstd) if gamma is None else gamma.astype(xp.float64)
    # NOTE: with xhat = (x - mean) * invstd and y = gamma * xhat + beta, the batch statistics
    # depend on x too; differentiating through them gives
    # gx = gamma * invstd / M * (M * gy - sum(gy) - xhat * sum(gy * xhat)).
    gx = _bcast(g * invstd / M, x) * (M * gy64 - _bcast(gbeta, x) - xhat * _bcast(ggamma, x))
    return gx.astype(x.dtype), ggamma.astype(x.dtype), gbeta.astype(x.dtype)


# --------------------------------------------------------------------------------------------
# CPU: Numba over x viewed as (N, C, L), L = H*W (1 for (N, C) inputs)
# --------------------------------------------------------------------------------------------

# NOTE: the reduction kernels allow the compiler to reassociate (fastmath={"reassoc"}; no other
# fast-math flag, so NaN and infinity behave as usual): a float64 sum is otherwise one chain
# of dependent additions, bound by the adder's latency; reassociated, LLVM vectorises it and
# the pass runs at memory speed (about 4x faster here). Only the order of the additions, each
# in float64, changes.
_REDUCE = {"reassoc"}


@njit(parallel=True, cache=True, nogil=True, fastmath=_REDUCE)
def _plane_stats(x):
    """Per (n, c) plane: mean and sum of squared deviations, float64, exact two-pass within
    the plane (the plane is in cache for the second pass)."""
    N, C, L = x.shape
    pmean = np.empty((N, C), np.float64)
    pm2 = np.empty((N, C), np.float64)
    for t in prange(N * C):
        n = t // C
        c = t % C
        r = x[n, c]
        s = 0.0
        for i in range(L):
            s += r[i]
        mu = s / L
        d = 0.0
        q = 0.0
        for i in range(L):
            e = r[i] - mu
            d += e
            q += e * e
        pmean[n, c] = mu
        pm2[n, c] = q - d * d / L  # corrected two-pass: removes the rounding of mu
    return pmean, pm2


@njit(cache=True)
def _combine_stats(pmean, pm2, L):
    """Chan's parallel combination of equal-sized plane statistics into (mean, M2) per C."""
    N, C = pmean.shape
    mean = np.empty(C, np.float64)
    m2 = np.empty(C, np.float64)
    for c in range(C):
        s = 0.0
        for n in range(N):
            s += pmean[n, c]
        mu = s / N
        q = 0.0
        for n in range(N):
            e = pmean[n, c] - mu
            q += pm2[n, c] + L * e * e
        mean[c] = mu
        m2[c] = q
    return mean, m2


@njit(parallel=True, cache=True, nogil=True)
def _affine(x, m_hi, m_lo, scale, beta, y):
    """y = ((x - m_hi[c]) - m_lo[c]) * scale[c] + beta[c], in x's dtype (y allocated by the
    caller: see the NOTE on allocation in pool.py)."""
    N, C, L = x.shape
    for t in prange(N * C):
        n = t // C
        c = t % C
        mh = m_hi[c]
        ml = m_lo[c]
        s = scale[c]
        b = beta[c]
        for i in range(L):
            y[n, c, i] = ((x[n, c, i] - mh) - ml) * s + b


@njit(parallel=True, cache=True, nogil=True, fastmath=_REDUCE)
def _plane_grad_sums(gy, x, mean):
    """Per (n, c) plane, float64: sum(gy), sum(gy * (x - mean)) and sum(x - mean)."""
    N, C, L = x.shape
    sg = np.empty((N, C), np.float64)
    sgd = np.empty((N, C), np.float64)
    sd = np.empty((N, C), np.float64)
    for t in prange(N * C):
        n = t // C
        c = t % C
        m = mean[c]
        g = gy[n, c]
        r = x[n, c]
        a = 0.0
        b = 0.0
        e = 0.0
        for i in range(L):
            d = r[i] - m
            a += g[i]
            b += g[i] * d
            e += d
        sg[n, c] = a
        sgd[n, c] = b
        sd[n, c] = e
    return sg, sgd, sd


@njit(cache=True, inline="always")
def _grad_plane(gy, x, m_hi, m_lo, k, a, b, gx, n, c):
    """gx[n, c] = k[c] * (gy - a[c] - ((x - m_hi[c]) - m_lo[c]) * b[c]) over plane (n, c)."""
    mh, ml, kc, ac, bc = m_hi[c], m_lo[c], k[c], a[c], b[c]
    for i in range(x.shape[2]):
        gx[n, c, i] = kc * (gy[n, c, i] - ac - ((x[n, c, i] - mh) - ml) * bc)


@njit(parallel=True, cache=True, nogil=True)
def _grad_input(gy, x, m_hi, m_lo, k, a, b, gx):
    """gx = k[c] * (gy - a[c] - ((x - m_hi[c]) - m_lo[c]) * b[c]), in x's dtype."""
    N, C = x.shape[0], x.shape[1]
    for t in prange(N * C):
        _grad_plane(gy, x, m_hi, m_lo, k, a, b, gx, t // C, t % C)


@njit(parallel=True, cache=True, nogil=True)
def _grad_input_sums(gy, x, m_hi, m_lo, k, a, b, gx, psums):
    """_grad_input, and psums[n, c] = Σ gx[n, c] in float64 (kernels.channel_sums' order: 64
    lanes in SIMD registers for planes of 256 values or more, eight below), summed while the
    plane just written is in cache."""
    N, C = x.shape[0], x.shape[1]
    for t in prange(N * C):
        n, c = t // C, t % C
        _grad_plane(gy, x, m_hi, m_lo, k, a, b, gx, n, c)
        psums[n, c] = _plane_sum(gx[n, c])


def _as3d(a):
    """A C-contiguous (N, C, L) view (or copy) of an (N, C) or (N, C, H, W) array."""
    return np.ascontiguousarray(a).reshape(a.shape[0], a.shape[1], -1)


def _split(mean64, dtype, xp=np):
    """mean64 as a pair (hi, lo) in `dtype` with hi + lo closer to mean64 than hi alone."""
    # NOTE: x - hi is exact for x near hi (Sterbenz), so (x - hi) - lo keeps the deviations
    # from the mean accurate even when the mean is large against the spread.
    hi = mean64.astype(dtype)
    return hi, (mean64 - hi.astype(xp.float64)).astype(dtype)


def _backward_coefficients(gamma, var, eps, sg, sgd, sd, M, xp=np):
    """Per-channel float64 (ggamma, gbeta, dmean, k, a, b) of the input gradient."""
    # NOTE: sums are taken about the rounded mean m; the exact mean is m + dmean with
    # dmean = sum(x - m) / M, and sum(gy * (x - mean)) = sum(gy * (x - m)) - dmean * sum(gy).
    dmean = sd / M
    invstd = 1.0 / xp.sqrt(var.astype(xp.float64) + eps)
    ggamma = (sgd - dmean * sg) * invstd
    g = xp.ones_like(invstd) if gamma is None else gamma.astype(xp.float64)
    # NOTE: gx = gamma * invstd / M * (M * gy - gbeta - xhat * ggamma)
    #          = k * (gy - a - (x - mean) * b), k = gamma * invstd, a = gbeta / M,
    #            b = ggamma * invstd / M.
    return ggamma, sg, dmean, g * invstd, sg / M, ggamma * invstd / M


@threads.guarded
def batchnorm_forward_cpu(x, gamma, beta, eps):
    """Numba training-mode batch norm: one pass over memory for the statistics, one for y."""
    x3 = _as3d(x)
    N, C, L = x3.shape
    pmean, pm2 = _plane_stats(x3)
    mean64, m2 = _combine_stats(pmean, pm2, L)
    var = (m2 / (N * L)).astype(x.dtype)
    scale = 1.0 / np.sqrt(var.astype(np.float64) + eps)
    if gamma is not None:
        scale = scale * gamma.astype(np.float64)
    beta = np.zeros(C, x.dtype) if beta is None else beta.astype(x.dtype)
    m_hi, m_lo = _split(mean64, x.dtype)
    y = np.empty(x.shape, x.dtype)
    _affine(x3, m_hi, m_lo, scale.astype(x.dtype), beta, y.reshape(x3.shape))
    return y, m_hi, var


@threads.guarded
def batchnorm_backward_cpu(gy, x, gamma, mean, var, eps, channel_sums=False):
    """Numba gradient of training-mode batch norm: one pass for the sums, one for gx; with
    channel_sums, also Σ gx per channel (float64, as kernels.channel_sums gives it) in gx's
    pass."""
    x3, gy3 = _as3d(x), _as3d(gy)
    N, C, L = x3.shape
    m_hi = mean.astype(x.dtype)
    sg, sgd, sd = (s.sum(axis=0) for s in _plane_grad_sums(gy3, x3, m_hi))
    ggamma, gbeta, dmean, k, a, b = _backward_coefficients(gamma, var, eps, sg, sgd, sd, N * L)
    dt = x.dtype
    gx = np.empty(x.shape, dt)
    args = (gy3, x3, m_hi, dmean.astype(dt), k.astype(dt), a.astype(dt), b.astype(dt),
            gx.reshape(x3.shape))
    if not channel_sums:
        _grad_input(*args)
        return gx, ggamma.astype(dt), gbeta.astype(dt)
    psums = np.empty((N, C), np.float64)
    _grad_input_sums(*args, psums)
    sums = np.zeros(C, np.float64)
    for n in range(N):  # NOTE: image by image from 0.0, channel_sums' order: the same bits
        sums += psums[n]
    return gx, ggamma.astype(dt), gbeta.astype(dt), sums


# --------------------------------------------------------------------------------------------
# GPU: array expressions with float64 reductions (no float64 copy of x); CuPy's reductions are
# the fused kernels here, and the code runs unchanged on NumPy in the tests
# --------------------------------------------------------------------------------------------

def batchnorm_forward_gpu(x, gamma, beta, eps):
    """Training-mode batch norm for CuPy arrays: reductions accumulate in float64."""
    xp = get_array_module(x)
    axes = _axes(x)
    f64 = xp.float64
    m_hi = x.mean(axis=axes, dtype=f64).astype(x.dtype)
    d = x - _bcast(m_hi, x)
    dmean = d.mean(axis=axes, dtype=f64)
    # NOTE: corrected two-pass variance, mean(d²) - mean(d)², where d = x - rounded(mean):
    # the second term removes the error of having rounded the mean to x's dtype.
    var64 = (d * d).mean(axis=axes, dtype=f64) - dmean * dmean
    mean64 = m_hi.astype(f64) + dmean
    m_hi, m_lo = _split(mean64, x.dtype, xp)
    var = xp.maximum(var64, 0).astype(x.dtype)
    scale = 1.0 / xp.sqrt(var.astype(f64) + eps)
    if gamma is not None:
        scale = scale * gamma.astype(f64)
    d = x - _bcast(m_hi, x)
    d -= _bcast(m_lo, x)
    d *= _bcast(scale.astype(x.dtype), x)
    if beta is not None:
        d += _bcast(beta.astype(x.dtype), x)
    return d, m_hi, var


def batchnorm_backward_gpu(gy, x, gamma, mean, var, eps):
    """Gradient of training-mode batch norm for CuPy arrays: float64 reductions."""
    xp = get_array_module(gy, x)
    axes = _axes(x)
    f64 = xp.float64
    dt = x.dtype
    d = x - _bcast(mean.astype(dt), x)
    sg = gy.sum(axis=axes, dtype=f64)
    sgd = (gy * d).sum(axis=axes, dtype=f64)
    sd = d.sum(axis=axes, dtype=f64)
    ggamma, gbeta, dmean, k, a, b = _backward_coefficients(
        gamma, var, eps, sg, sgd, sd, x.size // x.shape[1], xp)
    d -= _bcast(dmean.astype(dt), x)
    d *= _bcast(b.astype(dt), x)
    gx = gy - _bcast(a.astype(dt), x)
    gx -= d
    gx *= _bcast(k.astype(dt), x)
    return gx, ggamma.astype(dt), gbeta.astype(dt)


# --------------------------------------------------------------------------------------------
# Public functions
# --------------------------------------------------------------------------------------------

_FORWARD = {"reference": batchnorm_forward_reference, "cpu": batchnorm_forward_cpu,
            "gpu": batchnorm_forward_gpu}
_BACKWARD = {"reference": batchnorm_backward_reference, "cpu": batchnorm_backward_cpu,
             "gpu": batchnorm_backward_gpu}


def batchnorm_forward(x, gamma, beta, eps=1e-5, impl=None):
    """Training-mode batch norm of x (N,C) or (N,C,H,W), statistics per channel C.

    Returns (y, mean, var): mean and biased var over (N, H, W), shape (C,), x's dtype;
    y = (x - mean) / sqrt(var + eps) * gamma + beta (gamma or beta None: 1 or 0).
    """
    C = _check("batchnorm_forward", x, ("gamma", gamma), ("beta", beta))
    if x.size // C < 2:
        raise ValueError(f"batchnorm_forward: training needs more than 1 value per channel, "
                         f"got x of shape {x.shape}")
    return _FORWARD[pick_impl(impl, x)](x, gamma, beta, float(eps))


def _check_backward(gy, x, gamma, mean, var):
    _check("batchnorm_backward", x, ("gamma", gamma), ("mean", mean), ("var", var))
    if gy.shape != x.shape:
        raise ValueError(f"batchnorm_backward: gy {gy.shape} and x {x.shape} differ in shape")


def batchnorm_backward(gy, x, gamma, mean, var, eps=1e-5, impl=None):
    """Gradient of training-mode batch norm through the batch statistics: (gx, ggamma, gbeta).

    mean and var are those batchnorm_forward returned for x; gamma None means 1.
    """
    _check_backward(gy, x, gamma, mean, var)
    return _BACKWARD[pick_impl(impl, gy, x)](gy, x, gamma, mean, var, float(eps))


def batchnorm_backward_channel_sums(gy, x, gamma, mean, var, eps=1e-5, impl=None):
    """(gx, ggamma, gbeta, sums): batchnorm_backward's gradients and sums = Σ gx over every
    axis but 1 (the bias gradient of a convolution whose output x is), in float64 on the CPU
    (as kernels.channel_sums gives them, summed in the pass that writes gx), in gx's dtype
    elsewhere (as the convolution's own backward sums them there)."""
    _check_backward(gy, x, gamma, mean, var)
    impl = pick_impl(impl, gy, x)
    if impl == "cpu":
        return batchnorm_backward_cpu(gy, x, gamma, mean, var, float(eps), channel_sums=True)
    gx, ggamma, gbeta = _BACKWARD[impl](gy, x, gamma, mean, var, float(eps))
    return gx, ggamma, gbeta, gx.sum(axis=_axes(x))
