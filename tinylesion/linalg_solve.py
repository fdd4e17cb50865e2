"""torch.linalg.inv, det and solve (also torch.inverse and torch.det): square matrices in the
last two dimensions, batched, differentiable."""
from . import ops
from .errors import InputError
from .functions import _check_tensor


def _square(A, name):
    A = _check_tensor(A, name)
    if A.ndim < 2 or A.shape[-1] != A.shape[-2]:
        raise InputError(f"linalg.{name}: A must be batches of square matrices, but they are "
                         f"{A.shape[-2] if A.ndim >= 2 else '?'} by "
                         f"{A.shape[-1] if A.ndim else '?'} matrices (shape {A.shape})")
    if A.dtype.kind != "f":
        raise TypeError(f"linalg.{name}: Expected a floating point tensor as input. Got "
                        f"{A.dtype}")
    return A


def _singular(name):
    return RuntimeError(f"linalg.{name}: The diagonal element of the matrix is zero, the "
                        f"inversion could not be completed because the input matrix is "
                        f"singular.")


def inv(A):
    """The inverse of each square matrix (RuntimeError when one is singular)."""
    A = _square(A, "inv")
    try:
        return ops.Inverse.apply(A)
    except Exception as exc:   # numpy.linalg.LinAlgError and CuPy's
        if "singular" in str(exc).lower():
            raise _singular("inv") from None
        raise


def det(A):
    """The determinant of each square matrix."""
    return ops.Det.apply(_square(A, "det"))


def solve(A, B, *, left=True):
    """X with A X = B (B a vector or a batch of matrices, broadcast with A's batch)."""
    A = _square(A, "solve")
    B = _check_tensor(B, "solve")
    if not left:
        raise NotImplementedError("linalg.solve: left=False is not implemented (solve the "
                                  "transposed system instead)")
    if B.dtype != A.dtype:
        raise TypeError(f"linalg.solve: Expected A and B to have the same dtype, but found "
                        f"A of type {A.dtype} and B of type {B.dtype} instead")
    vector = B.ndim == 1 or (B.ndim == A.ndim - 1 and B.shape == A.shape[:-1])
    Bm = B.unsqueeze(-1) if vector else B
    if Bm.shape[-2] != A.shape[-1]:
        raise InputError(f"linalg.solve: Incompatible shapes of A and B for the equation "
                         f"AX = B ({A.shape[-2]}x{A.shape[-1]} and {Bm.shape[-2]}x"
                         f"{Bm.shape[-1]})")
    if Bm.ndim < A.ndim:
        Bm = Bm.reshape((1,) * (A.ndim - Bm.ndim) + Bm.shape)
    try:
        X = ops.Solve.apply(A, Bm)
    except Exception as exc:
        if "singular" in str(exc).lower():
            raise _singular("solve") from None
        raise
    return X.squeeze(-1) if vector else X


inverse = inv
