"""Training-mode batch norm over (N,C) or (N,C,H,W) arrays: reference, Numba CPU and GPU."""
import math

import numpy as np
from numba import njit, prange

from kernels._xp import get_array_module, is_gpu_array

IMPLS = ("reference", "cpu", "gpu")


def _pick(impl, *arrays):
    """The implementation to run: `impl` if given, else by array type."""
    if impl is None:
        return "gpu" if any(is_gpu_array(a) for a in arrays) else "cpu"
    if impl not in IMPLS:
        raise ValueError(f"impl must be one of {IMPLS}, got {impl!r}")
    return impl


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
    """Reference training-mode batch norm: (y, mean, biased var), statistics over all but C."""
    xp = get_array_module(x)
    axes = _axes(x)
    x64 = x.astype(xp.float64)
    mean = x64.mean(axis=axes)
    var = ((x64 - _bcast(mean, x)) ** 2).mean(axis=axes)
    mean, var = mean.astype(x.dtype), var.astype(x.dtype)
    invstd = (1.0 / xp.sqrt(var.astype(xp.float64) + eps)).astype(x.dtype)
    y = (x - _bcast(mean, x)) * _bcast(invstd, x)
    if gamma is not None:
        y = y * _bcast(gamma.astype(x.dtype), x)
    if beta is not None:
        y = y + _bcast(beta.astype(x.dtype), x)
    return y, mean, var


def batchnorm_backward_reference(gy, x, gamma, mean, var, eps):
    """Reference gradient of training-mode batch norm through the batch statistics."""
    xp = get_array_module(gy, x)
    axes = _axes(x)
    M = x.size // x.shape[1]
    invstd = 1.0 / xp.sqrt(var.astype(xp.float64) + eps)
    xhat = (x.astype(xp.float64) - _bcast(mean.astype(xp.float64), x)) * _bcast(invstd, x)
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

@njit(parallel=True, cache=True)
def _plane_stats(x):
    """Per (n, c) plane: mean and sum of squared deviations, float64, exact two-pass within
    the plane (the plane is in cache for the second pass)."""
    N, C, L = x.shape
    pmean = np.empty((N, C), np.float64)
    pm2 = np.empty((N, C), np.float64)
    for t in prange(N * C):
        n = t // C
        c = t % C
        s = 0.0
        for i in range(L):
            s += x[n, c, i]
        mu = s / L
        d = 0.0
        q = 0.0
        for i in range(L):
            e = x[n, c, i] - mu
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


@njit(parallel=True, cache=True)
def _affine(x, shift, scale, beta):
    """y = (x - shift[c]) * scale[c] + beta[c], in x's dtype."""
    N, C, L = x.shape
    y = np.empty_like(x)
    for t in prange(N * C):
        n = t // C
        c = t % C
        m = shift[c]
        s = scale[c]
        b = beta[c]
        for i in range(L):
            y[n, c, i] = (x[n, c, i] - m) * s + b
    return y


@njit(parallel=True, cache=True)
def _plane_grad_sums(gy, x, mean):
    """Per (n, c) plane: sum(gy) and sum(gy * (x - mean)), float64."""
    N, C, L = x.shape
    sg = np.empty((N, C), np.float64)
    sgx = np.empty((N, C), np.float64)
    for t in prange(N * C):
        n = t // C
        c = t % C
        m = mean[c]
        a = 0.0
        b = 0.0
        for i in range(L):
            g = gy[n, c, i]
            a += g
            b += g * (x[n, c, i] - m)
        sg[n, c] = a
        sgx[n, c] = b
    return sg, sgx


@njit(parallel=True, cache=True)
def _grad_input(gy, x, mean, k, a, b):
    """gx = k[c] * (gy - a[c] - (x - mean[c]) * b[c]), in x's dtype."""
    N, C, L = x.shape
    gx = np.empty_like(x)
    for t in prange(N * C):
        n = t // C
        c = t % C
        m = mean[c]
        kc = k[c]
        ac = a[c]
        bc = b[c]
        for i in range(L):
            gx[n, c, i] = kc * (gy[n, c, i] - ac - (x[n, c, i] - m) * bc)
    return gx


def _as3d(a):
    """A C-contiguous (N, C, L) view (or copy) of an (N, C) or (N, C, H, W) array."""
    return np.ascontiguousarray(a).reshape(a.shape[0], a.shape[1], -1)


def batchnorm_forward_cpu(x, gamma, beta, eps):
    """Numba training-mode batch norm: one pass over memory for the statistics, one for y."""
    x3 = _as3d(x)
    N, C, L = x3.shape
    pmean, pm2 = _plane_stats(x3)
    mean64, m2 = _combine_stats(pmean, pm2, L)
    var64 = m2 / (N * L)
    mean, var = mean64.astype(x.dtype), var64.astype(x.dtype)
    scale = 1.0 / np.sqrt(var.astype(np.float64) + eps)
    if gamma is not None:
        scale = scale.astype(x.dtype) * gamma.astype(x.dtype)
    beta = np.zeros(C, x.dtype) if beta is None else beta.astype(x.dtype)
    y = _affine(x3, mean, scale.astype(x.dtype), beta)
    return y.reshape(x.shape), mean, var


def batchnorm_backward_cpu(gy, x, gamma, mean, var, eps):
    """Numba gradient of training-mode batch norm: one pass for the sums, one for gx."""
    x3, gy3 = _as3d(x), _as3d(gy)
    N, C, L = x3.shape
    M = N * L
    sg, sgx = _plane_grad_sums(gy3, x3, mean.astype(x.dtype))
    gbeta, gxc = sg.sum(axis=0), sgx.sum(axis=0)
    invstd = 1.0 / np.sqrt(var.astype(np.float64) + eps)
    ggamma = gxc * invstd
    g = np.ones(C) if gamma is None else gamma.astype(np.float64)
    k = g * invstd
    a = gbeta / M
    b = ggamma * invstd / M
    gx = _grad_input(gy3, x3, mean.astype(x.dtype), k.astype(x.dtype), a.astype(x.dtype),
                     b.astype(x.dtype))
    return gx.reshape(x.shape), ggamma.astype(x.dtype), gbeta.astype(x.dtype)


# --------------------------------------------------------------------------------------------
# GPU: array expressions with float64 reductions (no float64 copy of x); CuPy's reductions are
# the fused kernels here, and the code runs unchanged on NumPy in the tests
# --------------------------------------------------------------------------------------------

def batchnorm_forward_gpu(x, gamma, beta, eps):
    """Training-mode batch norm for CuPy arrays: reductions accumulate in float64."""
    xp = get_array_module(x)
    axes = _axes(x)
    f64 = xp.float64
    mean64 = x.mean(axis=axes, dtype=f64)
    d = x - _bcast(mean64.astype(x.dtype), x)
    dmean = d.mean(axis=axes, dtype=f64)
    # NOTE: corrected two-pass variance, mean(d²) - mean(d)², where d = x - rounded(mean):
    # the second term removes the error of having rounded the mean to x's dtype.
    var64 = (d * d).mean(axis=axes, dtype=f64) - dmean * dmean
    mean, var = (mean64 + dmean).astype(x.dtype), xp.maximum(var64, 0).astype(x.dtype)
    scale = 1.0 / xp.sqrt(var.astype(f64) + eps)
    if gamma is not None:
        scale = scale * gamma.astype(f64)
    d -= _bcast(dmean.astype(x.dtype), x)
    d *= _bcast(scale.astype(x.dtype), x)
    if beta is not None:
        d += _bcast(beta.astype(x.dtype), x)
    return d, mean, var


def batchnorm_backward_gpu(gy, x, gamma, mean, var, eps):
    """Gradient of training-mode batch norm for CuPy arrays: float64 reductions."""
    xp = get_array_module(gy, x)
    axes = _axes(x)
    f64 = xp.float64
    M = x.size // x.shape[1]
    d = x - _bcast(mean.astype(x.dtype), x)
    gbeta = gy.sum(axis=axes, dtype=f64)
    invstd = 1.0 / xp.sqrt(var.astype(f64) + eps)
    ggamma = (gy * d).sum(axis=axes, dtype=f64) * invstd
    g = xp.ones_like(invstd) if gamma is None else gamma.astype(f64)
    k, a, b = g * invstd, gbeta / M, ggamma * invstd / M
    d *= _bcast(b.astype(x.dtype), x)
    gx = gy - _bcast(a.astype(x.dtype), x)
    gx -= d
    gx *= _bcast(k.astype(x.dtype), x)
    return gx, ggamma.astype(x.dtype), gbeta.astype(x.dtype)


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
    return _FORWARD[_pick(impl, x)](x, gamma, beta, float(eps))


def batchnorm_backward(gy, x, gamma, mean, var, eps=1e-5, impl=None):
    """Gradient of training-mode batch norm through the batch statistics: (gx, ggamma, gbeta).

    mean and var are those batchnorm_forward returned for x; gamma None means 1.
    """
    _check("batchnorm_backward", x, ("gamma", gamma), ("mean", mean), ("var", var))
    if gy.shape != x.shape:
        raise ValueError(f"batchnorm_backward: gy {gy.shape} and x {x.shape} differ in shape")
    return _BACKWARD[_pick(impl, gy, x)](gy, x, gamma, mean, var, float(eps))
