"""PyTorch's results for tests/test_pytorch_habits_torchops2.py: the transposed and 1-D
convolutions, 1-D pooling, instance norm, the reflect/replicate/circular paddings, pixel
shuffle, unfold and fold, adaptive max pooling, Softmax2d, Softmin, GLU, Threshold, Unflatten,
Bilinear and the Poisson, Gaussian, soft margin, multi-label soft margin, hinge embedding and
multi-margin losses, written to tests/fixtures/torchops2_reference.npz.

    /work/venv-torch/bin/python bench/torchops2_fixtures.py [--out PATH]   # needs PyTorch

The cases are written as in bench/torchops_fixtures.py (one call for both libraries, inputs
stored with outputs and gradients, its helpers reused).
"""
import functools
import os
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from torchops_fixtures import _gaussian, _index, as_inputs, output_grads, outputs  # noqa: E402,F401

ROOT = os.path.dirname(HERE)
DEFAULT_OUT = os.path.join(ROOT, "tests", "fixtures", "torchops2_reference.npz")


def _positive(shape, seed):
    return np.abs(_gaussian(shape, seed)) + 0.2


def _signs(shape, seed):
    return np.where(_gaussian(shape, seed) > 0, 1.0, -1.0)


def _bits(shape, seed):
    return (_gaussian(shape, seed) > 0).astype(np.float64)


def _counts(shape, seed):
    return np.floor(np.abs(_gaussian(shape, seed)) * 2.5)


def _stats(t, x):
    """Running statistics (zeros, ones) for x's channels, of x's dtype and device."""
    return (t.zeros(x.shape[1], dtype=x.dtype, device=x.device),
            t.ones(x.shape[1], dtype=x.dtype, device=x.device))


def _instance_norm_running(t, F, x, momentum):
    rm, rv = _stats(t, x)
    return F.instance_norm(x, rm, rv, momentum=momentum), rm, rv


X4 = _gaussian((2, 4, 3, 4), 1)
IMG = _gaussian((2, 3, 5, 6), 2)
SEQ = _gaussian((2, 4, 9), 3)
# (name, the call on (torch, torch.nn.functional, *inputs), inputs as float64 or int64 arrays)
LAYER_CASES = [
    ("conv_transpose2d/stride2_bias", lambda t, F, x, w, b: F.conv_transpose2d(x, w, b, 2),
     [X4, _gaussian((4, 3, 3, 3), 4), _gaussian(3, 5)]),
    ("conv_transpose2d/padding_output_padding", lambda t, F, x, w: F.conv_transpose2d(
        x, w, stride=2, padding=1, output_padding=1), [X4, _gaussian((4, 2, 3, 3), 6)]),
    ("conv_transpose2d/groups_dilation", lambda t, F, x, w, b: F.conv_transpose2d(
        x, w, b, stride=(1, 2), padding=(1, 0), output_padding=(0, 1), groups=2,
        dilation=(2, 1)), [X4, _gaussian((4, 3, 2, 3), 7), _gaussian(6, 8)]),
    ("conv_transpose2d/output_padding_below_dilation", lambda t, F, x, w: F.conv_transpose2d(
        x, w, stride=1, output_padding=1, dilation=2), [X4, _gaussian((4, 2, 2, 2), 9)]),
    ("conv_transpose2d/depthwise", lambda t, F, x, w: F.conv_transpose2d(
        x, w, stride=2, padding=1, groups=4), [X4, _gaussian((4, 1, 3, 3), 10)]),
    ("conv_transpose2d/unbatched", lambda t, F, x, w: F.conv_transpose2d(x[0], w, stride=2),
     [X4, _gaussian((4, 2, 2, 2), 11)]),
    ("conv1d/stride_padding", lambda t, F, x, w, b: F.conv1d(x, w, b, stride=2, padding=1),
     [SEQ, _gaussian((3, 4, 3), 12), _gaussian(3, 13)]),
    ("conv1d/groups", lambda t, F, x, w: F.conv1d(x, w, groups=2), [SEQ, _gaussian((4, 2, 3),
                                                                                  14)]),
    ("conv1d/same_even", lambda t, F, x, w: F.conv1d(x, w, padding="same"),
     [SEQ, _gaussian((2, 4, 4), 15)]),
    ("max_pool1d/padding", lambda t, F, x: F.max_pool1d(x, 3, 2, 1), [SEQ]),
    ("max_pool1d/ceil_module", lambda t, F, x: t.nn.MaxPool1d(2, ceil_mode=True)(x), [SEQ]),
    ("avg_pool1d/exclude_pad", lambda t, F, x: F.avg_pool1d(x, 3, 2, 1,
                                                            count_include_pad=False), [SEQ]),
    ("avg_pool1d/ceil_module", lambda t, F, x: t.nn.AvgPool1d(4, 3, ceil_mode=True)(x), [SEQ]),
    ("instance_norm/plain", lambda t, F, x: F.instance_norm(x), [IMG * 2 + 1]),
    ("instance_norm/affine", lambda t, F, x, w, b: F.instance_norm(x, weight=w, bias=b,
                                                                   eps=1e-3),
     [SEQ, _gaussian(4, 16), _gaussian(4, 17)]),
    ("instance_norm/running", lambda t, F, x: _instance_norm_running(t, F, x, 0.3), [IMG]),
    ("instance_norm/use_running", lambda t, F, x, m, v: F.instance_norm(
        x, m.detach(), v.detach(), use_input_stats=False), [IMG, _gaussian(3, 18),
                                                            _positive(3, 19)]),
    ("InstanceNorm2d/affine", lambda t, F, x: t.nn.InstanceNorm2d(
        3, affine=True, dtype=x.dtype, device=x.device)(x), [IMG]),
    ("InstanceNorm2d/unbatched", lambda t, F, x: t.nn.InstanceNorm2d(3)(x[1]), [IMG]),
    ("pad/reflect_2d", lambda t, F, x: F.pad(x, (1, 2, 2, 0), mode="reflect"), [IMG]),
    ("pad/replicate_1d", lambda t, F, x: F.pad(x, (2, 3), mode="replicate"), [SEQ]),
    ("pad/circular_2d", lambda t, F, x: F.pad(x, (1, 2, 2, 1), mode="circular"), [IMG]),
    ("pad/reflect_3d", lambda t, F, x: F.pad(x.reshape(1, 2, 3, 5, 6), (1, 1, 2, 0, 1, 2),
                                             mode="reflect"), [IMG]),
    ("pad/replicate_unbatched", lambda t, F, x: F.pad(x[0], (3, 1, 0, 2), mode="replicate"),
     [IMG]),
    ("ReflectionPad2d/int", lambda t, F, x: t.nn.ReflectionPad2d(2)(x), [IMG]),
    ("ReplicationPad2d/tuple", lambda t, F, x: t.nn.ReplicationPad2d((1, 0, 2, 3))(x), [IMG]),
    ("ConstantPad2d/crop", lambda t, F, x: t.nn.ConstantPad2d((1, 2, -1, 0), 2.5)(x), [IMG]),
    ("ReflectionPad1d/tuple", lambda t, F, x: t.nn.ReflectionPad1d((3, 1))(x), [SEQ]),
    ("ConstantPad1d/int", lambda t, F, x: t.nn.ConstantPad1d(2, -1.0)(x), [SEQ]),
    ("pixel_shuffle/2", lambda t, F, x: F.pixel_shuffle(x, 2), [_gaussian((2, 8, 3, 2), 20)]),
    ("pixel_shuffle/lead_dims", lambda t, F, x: t.nn.PixelShuffle(2)(x),
     [_gaussian((2, 1, 4, 2, 3), 21)]),
    ("pixel_unshuffle/2", lambda t, F, x: t.nn.PixelUnshuffle(2)(x),
     [_gaussian((2, 2, 4, 6), 22)]),
    ("unfold/options", lambda t, F, x: F.unfold(x, (2, 3), dilation=(1, 2), padding=1,
                                                stride=(2, 1)), [IMG]),
    ("unfold/module", lambda t, F, x: t.nn.Unfold(2)(x), [IMG]),
    ("fold/plain", lambda t, F, c: F.fold(c, (4, 5), 2), [_gaussian((2, 12, 12), 23)]),
    ("fold/options", lambda t, F, c: t.nn.Fold((5, 6), (2, 3), dilation=(2, 1),
                                               padding=(1, 0), stride=(1, 2))(c),
     [_gaussian((2, 18, 10), 24)]),
    ("fold/unbatched", lambda t, F, c: F.fold(c, 3, 2), [_gaussian((8, 4), 25)]),
    ("adaptive_max_pool2d/uneven", lambda t, F, x: F.adaptive_max_pool2d(x, (3, 4)), [IMG]),
    ("adaptive_max_pool2d/indices", lambda t, F, x: t.nn.AdaptiveMaxPool2d(
        (None, 4), return_indices=True)(x), [IMG]),
    ("adaptive_max_pool1d/indices", lambda t, F, x: F.adaptive_max_pool1d(
        x, 4, return_indices=True), [SEQ]),
    ("Softmax2d/module", lambda t, F, x: t.nn.Softmax2d()(x), [IMG]),
    ("softmin/dim1", lambda t, F, x: F.softmin(x, dim=1), [IMG]),
    ("Softmin/module", lambda t, F, x: t.nn.Softmin(-1)(x), [SEQ]),
    ("glu/dim1", lambda t, F, x: F.glu(x, 1), [X4]),
    ("GLU/module", lambda t, F, x: t.nn.GLU()(x), [X4]),
    ("threshold/function", lambda t, F, x: F.threshold(x, 0.1, 20.0), [IMG]),
    ("Threshold/module", lambda t, F, x: t.nn.Threshold(-0.5, 0.0)(x), [IMG]),
    ("Unflatten/module", lambda t, F, x: t.nn.Unflatten(1, (2, -1))(x), [X4]),
    ("bilinear/bias", lambda t, F, a, b, w, c: F.bilinear(a, b, w, c),
     [_gaussian((3, 4), 26), _gaussian((3, 5), 27), _gaussian((2, 4, 5), 28), _gaussian(2, 29)]),
    ("bilinear/lead_dims", lambda t, F, a, b, w: F.bilinear(a, b, w),
     [_gaussian((2, 3, 4), 30), _gaussian((2, 3, 5), 31), _gaussian((2, 4, 5), 28)]),
    ("poisson_nll_loss/log_input", lambda t, F, x, y: F.poisson_nll_loss(x, y),
     [_gaussian((4, 3), 32), _counts((4, 3), 33)]),
    ("poisson_nll_loss/full_rates", lambda t, F, x, y: t.nn.PoissonNLLLoss(
        log_input=False, full=True, reduction="sum")(x, y.detach()),
     [_positive((4, 3), 34), _counts((4, 3), 35)]),
    # (targets held constant with full=True: PyTorch's target gradient is NaN at 0)
    ("poisson_nll_loss/none", lambda t, F, x, y: F.poisson_nll_loss(x, y.detach(),
                                                                    reduction="none", full=True),
     [_gaussian((4, 3), 36), _counts((4, 3), 37)]),
    ("gaussian_nll_loss/same_shape", lambda t, F, x, y, v: F.gaussian_nll_loss(x, y, v),
     [_gaussian((4, 3), 38), _gaussian((4, 3), 39), _positive((4, 3), 40)]),
    ("gaussian_nll_loss/one_per_sample", lambda t, F, x, y, v: t.nn.GaussianNLLLoss(
        full=True, reduction="sum")(x, y, v),
     [_gaussian((4, 3), 38), _gaussian((4, 3), 39), _positive(4, 41)]),
    ("gaussian_nll_loss/last_dim_1", lambda t, F, x, y, v: F.gaussian_nll_loss(
        x, y, v, reduction="none"),
     [_gaussian((4, 3), 38), _gaussian((4, 3), 39), _positive((4, 1), 42)]),
    ("gaussian_nll_loss/clamped", lambda t, F, x, y, v: F.gaussian_nll_loss(
        x, y, v * 1e-8, eps=1e-3), [_gaussian((4, 3), 38), _gaussian((4, 3), 39),
                                    _positive((4, 3), 43)]),
    ("soft_margin_loss/default", lambda t, F, x, y: F.soft_margin_loss(x, y.detach()),
     [_gaussian((4, 3), 44) * 3, _signs((4, 3), 45)]),
    ("SoftMarginLoss/none", lambda t, F, x, y: t.nn.SoftMarginLoss(reduction="none")(x, y.detach()),
     [_gaussian((4, 3), 44), _signs((4, 3), 45)]),
    ("multilabel_soft_margin_loss/default", lambda t, F, x, y: F.multilabel_soft_margin_loss(
        x, y), [_gaussian((4, 5), 46) * 3, _bits((4, 5), 47)]),
    ("multilabel_soft_margin_loss/weight", lambda t, F, x, y, w: t.nn.MultiLabelSoftMarginLoss(
        w.detach(), reduction="none")(x, y), [_gaussian((4, 5), 46), _bits((4, 5), 47),
                                              _positive(5, 48)]),
    ("hinge_embedding_loss/default", lambda t, F, x, y: F.hinge_embedding_loss(x, y.detach()),
     [_gaussian((4, 3), 49) * 2, _signs((4, 3), 50)]),
    ("HingeEmbeddingLoss/margin_none", lambda t, F, x, y: t.nn.HingeEmbeddingLoss(
        0.5, reduction="none")(x, y), [_gaussian((4, 3), 49), _signs((4, 3), 50)]),
    ("multi_margin_loss/default", lambda t, F, x, y: F.multi_margin_loss(x, y),
     [_gaussian((5, 4), 51), _index([0, 3, 3, 1, 2])]),
    ("multi_margin_loss/p2_weight", lambda t, F, x, y, w: t.nn.MultiMarginLoss(
        p=2, margin=0.7, weight=w.detach(), reduction="none")(x, y),
     [_gaussian((5, 4), 51), _index([0, 3, 3, 1, 2]), _positive(4, 52)]),
    ("multi_margin_loss/vector", lambda t, F, x, y: F.multi_margin_loss(x, y, reduction="sum"),
     [_gaussian(4, 53), _index(2)]),
]
FUNCTION_CASES = []
CASES = LAYER_CASES + FUNCTION_CASES


def main(argv=None):
    from habits_fixtures import write_fixture
    from torchops_fixtures import run_torch
    return write_fixture((functools.partial(run_torch, cases=CASES),), __doc__.splitlines()[0],
                         DEFAULT_OUT, "bench/torchops2_fixtures.py", argv)


if __name__ == "__main__":
    sys.exit(main())
