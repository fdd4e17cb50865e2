"""PyTorch's results for tests/test_conv_transpose1d.py: F.conv_transpose1d and
nn.ConvTranspose1d (stride, padding, output_padding, groups, dilation, output_size, unbatched
input), written to tests/fixtures/conv_transpose1d_reference.npz.

    /work/venv-torch/bin/python bench/conv_transpose1d_fixtures.py [--out PATH]  # needs PyTorch

The cases are written as in bench/torchops_fixtures.py (one call for both libraries, inputs
stored with outputs and gradients, its helpers reused).
"""
import functools
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from torchops_fixtures import _gaussian, as_inputs, output_grads, outputs  # noqa: E402,F401

ROOT = os.path.dirname(HERE)
DEFAULT_OUT = os.path.join(ROOT, "tests", "fixtures", "conv_transpose1d_reference.npz")


def _module(t, x, w, b, output_size=None, **options):
    """nn.ConvTranspose1d(**options) with its weight and bias set to w's and b's values."""
    up = t.nn.ConvTranspose1d(w.shape[0], w.shape[1] * options.get("groups", 1), w.shape[2],
                              dtype=x.dtype, device=x.device, **options)
    with t.no_grad():
        up.weight.copy_(w)
        up.bias.copy_(b)
    return up(x, output_size=output_size)


SEQ = _gaussian((2, 4, 7), 1)
# (name, the call on (torch, torch.nn.functional, *inputs), inputs as float64 arrays)
CASES = [
    ("conv_transpose1d/stride2_bias", lambda t, F, x, w, b: F.conv_transpose1d(x, w, b, 2),
     [SEQ, _gaussian((4, 3, 3), 2), _gaussian(3, 3)]),
    ("conv_transpose1d/padding_output_padding", lambda t, F, x, w: F.conv_transpose1d(
        x, w, stride=3, padding=1, output_padding=2), [SEQ, _gaussian((4, 2, 4), 4)]),
    ("conv_transpose1d/groups_dilation", lambda t, F, x, w, b: F.conv_transpose1d(
        x, w, b, stride=2, padding=2, output_padding=1, groups=2, dilation=3),
     [SEQ, _gaussian((4, 3, 3), 5), _gaussian(6, 6)]),
    ("conv_transpose1d/depthwise_tuples", lambda t, F, x, w: F.conv_transpose1d(
        x, w, stride=(2,), padding=(1,), groups=4), [SEQ, _gaussian((4, 1, 3), 7)]),
    ("conv_transpose1d/unbatched", lambda t, F, x, w: F.conv_transpose1d(x[0], w, stride=2),
     [SEQ, _gaussian((4, 2, 2), 8)]),
    ("ConvTranspose1d/options", lambda t, F, x, w, b: _module(
        t, x, w, b, stride=2, padding=1, output_padding=1, groups=2, dilation=2),
     [SEQ, _gaussian((4, 1, 3), 9), _gaussian(2, 10)]),
    ("ConvTranspose1d/output_size", lambda t, F, x, w, b: _module(
        t, x, w, b, output_size=[15], stride=2, padding=1),
     [SEQ, _gaussian((4, 3, 4), 11), _gaussian(3, 12)]),
]


def main(argv=None):
    from habits_fixtures import write_fixture
    from torchops_fixtures import run_torch
    return write_fixture((functools.partial(run_torch, cases=CASES),), __doc__.splitlines()[0],
                         DEFAULT_OUT, "bench/conv_transpose1d_fixtures.py", argv)


if __name__ == "__main__":
    sys.exit(main())
