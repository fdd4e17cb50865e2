"""The StochasticDepth module (torchvision.ops.StochasticDepth): drops residual branches."""
from ..ops.stochastic_depth import check_arguments, stochastic_depth
from .module import Module


class StochasticDepth(Module):
    """In training, zero the input with probability p, per sample (mode "row") or for the
    whole batch (mode "batch"), and scale what survives by 1/(1 − p); the identity in
    evaluation."""

    def __init__(self, p, mode):
        super().__init__()
        check_arguments(p, mode)
        self.p, self.mode = p, mode

    def forward(self, x):
        return stochastic_depth(x, self.p, self.mode, self.training)

    def extra_repr(self):
        return f"p={self.p}, mode={self.mode}"
