"""Gradient clipping, as torch.nn.utils: by total norm, or element by element."""
import math

from ... import backend
from ...tensor import Tensor
from ._params import as_tensor_list


def _vector_norm(xp, a, norm_type):
    """torch.linalg.vector_norm of an array (all its elements) as a 0-d array on its device."""
    a = xp.abs(a.reshape(-1))
    if a.size == 0:
        return xp.zeros((), a.dtype)
    if norm_type == math.inf:
        return a.max()
    if norm_type == -math.inf:
        return a.min()
    if norm_type == 0:
        return (a != 0).sum().astype(a.dtype)     # the number of non-zero elements
    if norm_type == 2:
        return xp.sqrt((a * a).sum())
    return (a ** norm_type).sum() ** (1.0 / norm_type)


def clip_grad_norm_(parameters, max_norm, norm_type=2.0, error_if_nonfinite=False,
                    foreach=None):
    """Scale the gradients in place so that their total norm is at most `max_norm`; returns
    the total norm before clipping, a 0-d Tensor on the gradients' device.

    As in PyTorch: the total norm is the `norm_type` norm of the per-parameter norms (the norm
    of all gradients joined into one vector; `norm_type` may be inf), and every gradient is
    multiplied by min(1, max_norm / (total + 1e-6)). Parameters without a gradient are skipped;
    with none at all the result is tensor(0.). `foreach` is accepted for compatibility (the
    gradients are updated one by one).
    """
    grads = [p.grad for p in as_tensor_list(parameters, "clip_grad_norm_") if p.grad is not None]
    max_norm, norm_type = float(max_norm), float(norm_type)
    if not grads:
        return Tensor(0.0)
    device = grads[0].device
    # NOTE: the per-parameter norms stay on the device; only error_if_nonfinite reads the
    # total on the host (PyTorch synchronises there too).
    norms = [backend.to_device(_vector_norm(g.xp, g.array, norm_type), device) for g in grads]
    xp = device.xp
    total = _vector_norm(xp, xp.stack(norms), norm_type)
    if error_if_nonfinite and not bool(xp.isfinite(total)):
        raise RuntimeError(f"The total norm of order {norm_type} for gradients from "
                           "`parameters` is non-finite, so it cannot be clipped. To disable "
                           "this error and scale the gradients by the non-finite norm anyway, "
                           "set `error_if_nonfinite=False`")
    coef = xp.minimum(max_norm / (total + 1e-6), 1.0)
    for g in grads:
        g.array *= backend.to_device(coef, g.device)
    return Tensor._wrap(total)


def clip_grad_value_(parameters, clip_value, foreach=None):
    """Clamp every gradient element into [-clip_value, clip_value] in place, as PyTorch;
    returns None. `foreach` is accepted for compatibility."""
    clip_value = float(clip_value)
    for p in as_tensor_list(parameters, "clip_grad_value_"):
        if p.grad is not None:
            p.grad.xp.clip(p.grad.array, -clip_value, clip_value, out=p.grad.array)
