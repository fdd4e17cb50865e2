"""The singular values of a (batch of) matrices, differentiable."""
from ..backend import get_array_module
from ..autograd import Function


class Svdvals(Function):
    """The singular values of the matrices in the last two axes, in descending order."""

    def forward(self, A):
        xp = get_array_module(A)
        self.U, s, self.Vh = xp.linalg.svd(A, full_matrices=False)
        return s

    def backward(self, gs):
        # NOTE: A = U diag(s) Vᴴ gives ds_i = u_iᵀ dA v_i, so gA = U diag(gs) Vᴴ (exact where
        # the singular values are distinct, as PyTorch's svdvals gradient)
        return self.U @ (gs[..., :, None] * self.Vh)
