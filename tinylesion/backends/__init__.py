"""torch.backends' switches that PyTorch scripts set: cudnn.benchmark, cudnn.deterministic."""
from . import cudnn, mps

__all__ = ["cudnn", "mps"]
