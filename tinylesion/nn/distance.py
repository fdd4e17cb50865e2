"""F.cosine_similarity and F.pairwise_distance (and their layers): how alike two batches of
vectors are."""
from ..linalg import vector_norm
from .module import Module


def cosine_similarity(x1, x2, dim=1, eps=1e-8):
    """x1 · x2 / (max(‖x1‖, eps) · max(‖x2‖, eps)) along dim (x1 and x2 broadcast), as
    torch.nn.functional.cosine_similarity."""
    a, b = x1._operands(x2)   # one dtype, as PyTorch's promotion
    dot = (a * b).sum(dim)
    return dot / (vector_norm(a, 2, dim).clamp_min(eps) * vector_norm(b, 2, dim).clamp_min(eps))


def pairwise_distance(x1, x2, p=2.0, eps=1e-6, keepdim=False):
    """‖x1 − x2 + eps‖_p over the last dimension, as torch.nn.functional.pairwise_distance."""
    return vector_norm(x1 - x2 + eps, p, -1, keepdim)


class CosineSimilarity(Module):
    """F.cosine_similarity as a layer."""

    def __init__(self, dim=1, eps=1e-8):
        super().__init__()
        self.dim, self.eps = dim, eps

    def forward(self, x1, x2):
        return cosine_similarity(x1, x2, self.dim, self.eps)


class PairwiseDistance(Module):
    """F.pairwise_distance as a layer."""

    def __init__(self, p=2.0, eps=1e-6, keepdim=False):
        super().__init__()
        self.norm, self.eps, self.keepdim = p, eps, keepdim

    def forward(self, x1, x2):
        return pairwise_distance(x1, x2, self.norm, self.eps, self.keepdim)
