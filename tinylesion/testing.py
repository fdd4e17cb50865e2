"""Finite-difference gradient checks for ops and models (float64 central differences)."""
import numpy as np

from .tensor import Tensor


def numerical_grad(fn, arrays, index, eps=1e-6):
    """d sum(fn(*arrays) · probe) / d arrays[index] by central differences.

    `fn` maps NumPy arrays to a NumPy array; the probe is fixed random weights, so one scalar
    checks every output element.
    """
    x = arrays[index]
    grad = np.zeros_like(x)
    flat, gflat = x.reshape(-1), grad.reshape(-1)
    for i in range(flat.size):
        old = flat[i]
        flat[i] = old + eps
        up = fn(*arrays)
        flat[i] = old - eps
        down = fn(*arrays)
        flat[i] = old
        gflat[i] = (up - down) / (2 * eps)
    return grad


def gradcheck(fn, *arrays, rtol=1e-5, atol=1e-7, eps=1e-6, seed=0, check=None, device="cpu"):
    """Compare backward() with central differences for `fn(*tensors) -> Tensor`.

    `arrays` are float64 NumPy arrays (or None for an absent input); `check` lists which
    indices to differentiate (default: every float input); the tensors live on `device`.
    Raises AssertionError naming the input and the worst element on a mismatch; returns the
    analytic gradients.
    """
    arrays = [None if a is None else np.array(a, dtype=np.float64) for a in arrays]
    check = [i for i, a in enumerate(arrays) if a is not None] if check is None else check
    tensors = [None if a is None else Tensor(a.copy(), requires_grad=i in check, device=device)
               for i, a in enumerate(arrays)]
    y = fn(*tensors)
    probe = np.random.default_rng(seed).standard_normal(y.shape)
    (y * Tensor(probe, device=device)).sum().backward()

    def scalar(*values):
        ts = [None if v is None else Tensor(v, device=device) for v in values]
        return float((fn(*ts).numpy() * probe).sum())

    grads = []
    for i in check:
        analytic = tensors[i].grad.numpy() if tensors[i].grad is not None else np.zeros_like(
            arrays[i])
        numeric = numerical_grad(scalar, arrays, i, eps)
        if not np.allclose(analytic, numeric, rtol=rtol, atol=atol):
            worst = np.unravel_index(np.argmax(abs(analytic - numeric)), analytic.shape)
            raise AssertionError(
                f"gradient of input {i} (shape {arrays[i].shape}) differs at {worst}: "
                f"backward {analytic[worst]:.10g} vs numeric {numeric[worst]:.10g}")
        grads.append(analytic)
    return grads
