"""bench/train_step_flops.py: the FLOP count behind the benchmark's effective GFLOP/s."""
import os
import sys

import pytest

# NOTE: appended, not inserted first: bench/kernels.py must not shadow the kernels package
sys.path.append(os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "bench"))
from train_step_flops import conv2d_flops, forward_flops, linear_flops  # noqa: E402

from tinylesion import nn  # noqa: E402
from tinylesion.nn import functional as F  # noqa: E402


def test_conv_and_linear_formulas():
    # 3x3, 16 -> 32 channels, 10x12 output: 2 * 16 * 9 multiply-adds per output value
    assert conv2d_flops(16, 32, (3, 3), 1, 10, 12) == 2 * 16 * 9 * 32 * 120
    # depthwise: each output reads one input channel
    assert conv2d_flops(32, 32, (3, 3), 32, 4, 4) == 2 * 9 * 32 * 16
    assert linear_flops(8, 5) == 80
    assert linear_flops(8, 5, rows=3) == 240


def test_forward_flops_walks_the_model_at_its_output_sizes():
    model = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                          nn.Conv2d(4, 8, 3, stride=2, groups=2), nn.Flatten(), nn.Linear(8, 5))
    model.train()
    # 8x6 input: conv 1 keeps 6x8 (2*27*4*48); the pool halves it to 3x4; conv 2 (stride 2,
    # no padding, 2 input channels per group) gives 1x1 (2*2*9*8); the linear layer 2*8*5
    assert forward_flops(model, (8, 6)) == 2 * 27 * 4 * 48 + 2 * 2 * 9 * 8 + 2 * 8 * 5
    assert model.training  # the count leaves the mode as it found it
    assert all("forward" not in vars(m) for m in model.modules())  # and the layers' forward


def test_a_layer_used_without_its_forward_is_an_error():
    class ConvByHand(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 2, 1)

        def forward(self, x):  # the layer's weights, not its forward: the count cannot see it
            return F.conv2d(x, self.conv.weight, self.conv.bias)

    with pytest.raises(RuntimeError, match="Conv2d"):
        forward_flops(ConvByHand(), (4, 4))
