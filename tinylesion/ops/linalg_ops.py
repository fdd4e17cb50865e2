"""Matrix inverse, determinant and linear solve of (batches of) square matrices, with their
gradients."""
from ..autograd import Function
from ..backend import get_array_module
from ._util import sum_to


def _mT(a):
    return a.swapaxes(-1, -2)


class Inverse(Function):
    """A⁻¹; gA = −A⁻ᵀ gY A⁻ᵀ."""

    def forward(self, A):
        self.Y = get_array_module(A).linalg.inv(A)
        return self.Y

    def backward(self, gy):
        Yt = _mT(self.Y)
        return -(Yt @ gy @ Yt)


class Det(Function):
    """det A; gA = g · adj(A)ᵀ, the adjugate from the SVD so that singular matrices have their
    gradient too."""

    def forward(self, A):
        xp = get_array_module(A)
        self.A = A
        return xp.linalg.det(A)

    def backward(self, g):
        xp = get_array_module(g)
        # NOTE: A = U S Vᵀ gives adj(A) = det(U)·det(V) · V adj(S) Uᵀ with adj(S) the diagonal
        # of the products of the other singular values (prefix times suffix products)
        U, s, Vt = xp.linalg.svd(self.A)
        n = s.shape[-1]
        ones = xp.ones(s.shape[:-1] + (1,), s.dtype)
        before = xp.cumprod(xp.concatenate([ones, s[..., :-1]], -1), -1)
        after = xp.flip(xp.cumprod(xp.concatenate([ones, xp.flip(s, -1)[..., :-1]], -1), -1), -1)
        sign = xp.linalg.det(U) * xp.linalg.det(Vt)
        adj = (_mT(Vt) * (before * after)[..., None, :]) @ _mT(U)
        adj = adj * sign[..., None, None]
        return (g[..., None, None] * _mT(adj)) if n else xp.zeros_like(self.A)


class Solve(Function):
    """X with A X = B (B a batch of matrices, broadcast with A); gB = A⁻ᵀ gX and
    gA = −gB Xᵀ."""

    def forward(self, A, B):
        xp = get_array_module(A)
        self.A, self.B_shape = A, B.shape
        self.X = xp.linalg.solve(A, B)
        return self.X

    def backward(self, gx):
        xp = get_array_module(gx)
        gB = xp.linalg.solve(_mT(self.A), gx)
        gA = -(gB @ _mT(self.X)) if self.needs_input_grad[0] else None
        if gA is not None:
            gA = sum_to(gA, self.A.shape)
        return gA, sum_to(gB, self.B_shape) if self.needs_input_grad[1] else None
