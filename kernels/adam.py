"""One fused Adam update per parameter (PyTorch's Adam): reference, Numba CPU and numba.cuda."""
import math

import numpy as np
from numba import njit, prange

from kernels import threads
from kernels._xp import cuda_simulator_enabled, get_array_module, launch, pick_impl

SERIAL_MAX = 4096  # up to this many elements, waking the thread pool costs more than it saves


def adam_coefficients(lr, beta1, step, nesterov=False):
    """(c_m, c_g) of the update param -= (c_m * m + c_g * g) / (sqrt(v / bc2) + eps).

    Adam: c_m = lr / (1 - beta1**step), c_g = 0. With nesterov, Dozat's NAdam with a constant
    momentum (no momentum decay): the next step's momentum applied to m plus the bias-corrected
    current gradient, c_m = lr * beta1 / (1 - beta1**(step+1)), c_g = lr * (1 - beta1) /
    (1 - beta1**step).
    """
    if nesterov:
        return (lr * beta1 / (1.0 - beta1 ** (step + 1)),
                lr * (1.0 - beta1) / (1.0 - beta1 ** step))
    return lr / (1.0 - beta1 ** step), 0.0


# --------------------------------------------------------------------------------------------
# Reference: the plain array expression (NumPy or CuPy), in place
# --------------------------------------------------------------------------------------------

def adam_update_reference(param, grad, m, v, beta1, beta2, eps, weight_decay, c_m, c_g, bc2):
    """Reference update in place, written as PyTorch's Adam writes it."""
    xp = get_array_module(param, grad, m, v)
    g = grad + weight_decay * param if weight_decay else grad
    m += (1.0 - beta1) * (g - m)          # PyTorch's lerp
    v *= beta2
    v += (1.0 - beta2) * g * g
    denom = xp.sqrt(v) / math.sqrt(bc2) + eps
    if c_g:
        param -= (c_m * m + c_g * g) / denom
    else:
        param -= c_m * m / denom


# --------------------------------------------------------------------------------------------
# CPU: one pass over the four arrays, arithmetic in the parameter's dtype
# --------------------------------------------------------------------------------------------

@njit(parallel=True, cache=True, nogil=True)
def _adam_parallel(p, g, m, v, b1c, b2, b2c, eps, wd, c_m, c_g, inv_sqrt_bc2):
    for i in prange(p.size):
        gi = g[i] + wd * p[i]
        mi = m[i] + b1c * (gi - m[i])
        vi = b2 * v[i] + b2c * gi * gi
        m[i] = mi
        v[i] = vi
        p[i] -= (c_m * mi + c_g * gi) / (math.sqrt(vi) * inv_sqrt_bc2 + eps)


@njit(cache=True)
def _adam_serial(p, g, m, v, b1c, b2, b2c, eps, wd, c_m, c_g, inv_sqrt_bc2):
    for i in range(p.size):
        gi = g[i] + wd * p[i]
        mi = m[i] + b1c * (gi - m[i])
        vi = b2 * v[i] + b2c * gi * gi
        m[i] = mi
        v[i] = vi
        p[i] -= (c_m * mi + c_g * gi) / (math.sqrt(vi) * inv_sqrt_bc2 + eps)


def _scalars(dtype, beta1, beta2, eps, weight_decay, c_m, c_g, bc2):
    """The kernel's scalar arguments, typed as the parameter (float32 math for float32)."""
    t = np.dtype(dtype).type
    return (t(1.0 - beta1), t(beta2), t(1.0 - beta2), t(eps), t(weight_decay), t(c_m), t(c_g),
            t(1.0 / math.sqrt(bc2)))


@threads.guarded
def adam_update_cpu(param, grad, m, v, beta1, beta2, eps, weight_decay, c_m, c_g, bc2):
    """Numba fused update in place (falls back to the reference for non-contiguous arrays)."""
    arrays = (param, grad, m, v)
    if not all(a.flags.c_contiguous for a in arrays):
        return adam_update_reference(*arrays, beta1, beta2, eps, weight_decay, c_m, c_g, bc2)
    flat = [a.reshape(-1) for a in arrays]
    # NOTE: the parallel kernel is vectorised (the serial loop over four arrays is not) and
    # wins from a few thousand floats on; below, waking the sleeping pool (~8 us) dominates.
    kernel = _adam_serial if param.size <= SERIAL_MAX else _adam_parallel
    kernel(*flat, *_scalars(param.dtype, beta1, beta2, eps, weight_decay, c_m, c_g, bc2))


# --------------------------------------------------------------------------------------------
# GPU: one numba.cuda thread per element
# --------------------------------------------------------------------------------------------

# NOTE: the simulator runs each CUDA thread as a Python thread: small blocks keep it quick
# (and make the tiny test shapes span several blocks).
_THREADS = 32 if cuda_simulator_enabled() else 256
_gpu = {}
cuda = None  # numba.cuda once a GPU kernel is needed (a module global: the simulator swaps it)


def _gpu_kernel():
    """Compile the CUDA kernel on first use, so that the CPU path never imports numba.cuda."""
    global cuda
    if _gpu:
        return _gpu["adam"]
    from numba import cuda as numba_cuda
    cuda = numba_cuda

    @cuda.jit
    def adam(p, g, m, v, b1c, b2, b2c, eps, wd, c_m, c_g, inv_sqrt_bc2):
        i = cuda.grid(1)
        if i < p.size:
            gi = g[i] + wd * p[i]
            mi = m[i] + b1c * (gi - m[i])
            vi = b2 * v[i] + b2c * gi * gi
            m[i] = mi
            v[i] = vi
            p[i] = p[i] - (c_m * mi + c_g * gi) / (math.sqrt(vi) * inv_sqrt_bc2 + eps)

    _gpu["adam"] = adam
    return adam


def adam_update_gpu(param, grad, m, v, beta1, beta2, eps, weight_decay, c_m, c_g, bc2):
    """numba.cuda fused update in place on CuPy arrays (NumPy arrays in the simulator)."""
    xp = get_array_module(param, grad, m, v)
    arrays = (param, grad, m, v)
    if not all(a.flags.c_contiguous for a in arrays):
        return adam_update_reference(*arrays, beta1, beta2, eps, weight_decay, c_m, c_g, bc2)
    kernel = _gpu_kernel()
    flat = [a.reshape(-1) for a in arrays]
    args = (*flat, *_scalars(param.dtype, beta1, beta2, eps, weight_decay, c_m, c_g, bc2))
    launch(cuda, kernel, max(1, math.ceil(param.size / _THREADS)), _THREADS, xp, *args)


# --------------------------------------------------------------------------------------------
# Public functions
# --------------------------------------------------------------------------------------------

_UPDATE = {"reference": adam_update_reference, "cpu": adam_update_cpu, "gpu": adam_update_gpu}


def adam_update(param, grad, m, v, beta1, beta2, eps, weight_decay, c_m, c_g, bc2, impl=None):
    """The general fused update in place, for optimizers of the Adam family:

    g = grad + weight_decay * param; m += (1 - beta1) * (g - m); v = beta2 v + (1 - beta2) g²;
    param -= (c_m * m + c_g * g) / (sqrt(v) / sqrt(bc2) + eps).
    (PyTorch's NAdam: c_m = lr mu_{t+1} / (1 - prod mu_{1..t+1}), c_g = lr (1 - mu_t) /
    (1 - prod mu_{1..t}), bc2 = 1 - beta2**t.)
    """
    arrays = {"param": param, "grad": grad, "m": m, "v": v}
    for name, a in arrays.items():
        if a.shape != param.shape or a.dtype != param.dtype:
            raise ValueError(f"adam: {name} has shape {a.shape} and dtype {a.dtype}, param "
                             f"{param.shape} and {param.dtype}; they must match")
    if param.dtype not in (np.float32, np.float64):
        raise ValueError(f"adam supports float32 and float64 parameters, got {param.dtype}")
    if not bc2 > 0:
        raise ValueError(f"adam: bias correction 1 - beta2**step must be > 0, got {bc2}")
    _UPDATE[pick_impl(impl, param)](param, grad, m, v, beta1, beta2, eps, weight_decay, c_m,
                                    c_g, bc2)


def adam_step(param, grad, m, v, lr, beta1, beta2, eps, weight_decay, step, nesterov=False,
              impl=None):
    """One Adam step in place on param, m and v (PyTorch's Adam; `step` counts from 1).

    weight_decay is L2 (added to the gradient); m and v start at zero. nesterov=True gives
    NAdam with a constant momentum (see adam_coefficients).
    """
    if not (isinstance(step, (int, np.integer)) and step >= 1):
        raise ValueError(f"adam_step: step counts from 1, got {step!r}")
    for name, b in (("beta1", beta1), ("beta2", beta2)):
        if not 0.0 <= b < 1.0:
            raise ValueError(f"adam_step: {name} must be in [0, 1), got {b}")
    c_m, c_g = adam_coefficients(lr, beta1, int(step), nesterov)
    adam_update(param, grad, m, v, beta1, beta2, eps, weight_decay, c_m, c_g,
                1.0 - beta2 ** int(step), impl=impl)
