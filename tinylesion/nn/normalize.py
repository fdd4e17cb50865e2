"""F.normalize: each vector along a dimension divided by its p-norm (at least eps)."""
from ..linalg import vector_norm


def normalize(input, p=2.0, dim=1, eps=1e-12, out=None):
    """input / max(‖input‖_p along dim, eps), as torch.nn.functional.normalize; a zero
    vector stays zero (with gradient input/eps there)."""
    if out is not None:
        raise NotImplementedError("normalize: out= is not implemented")
    norm = vector_norm(input, p, dim, keepdim=True)
    return input / norm.clamp_min(eps)
