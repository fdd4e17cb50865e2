"""PyTorch's results for tests/test_pytorch_habits_torchops2.py: the transposed and 1-D
convolutions, 1-D pooling, instance norm, the reflect/replicate/circular paddings, pixel
shuffle, unfold and fold, adaptive max pooling, Softmax2d, Softmin, GLU, Threshold, Unflatten,
Bilinear and the Poisson, Gaussian, soft margin, multi-label soft margin, hinge embedding and
multi-margin losses, and torch's order statistics (median, quantile, kthvalue, mode),
summaries, running, special, layout and linear-algebra functions and scatter_reduce, written to
tests/fixtures/torchops2_reference.npz.

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


def _conv1d_module(t, x, w):
    """nn.Conv1d(padding='same', dilation=2) with its weight set to w's values."""
    conv = t.nn.Conv1d(4, 2, 3, padding="same", dilation=2, bias=False, dtype=x.dtype,
                       device=x.device)
    with t.no_grad():
        conv.weight.copy_(w)
    return conv(x)


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
    ("conv1d/dilation", lambda t, F, x, w, b: F.conv1d(x, w, b, padding=2, dilation=3),
     [SEQ, _gaussian((3, 4, 2), 95), _gaussian(3, 96)]),
    ("Conv1d/dilation_same", lambda t, F, x, w: _conv1d_module(t, x, w), [SEQ, _gaussian(
        (2, 4, 3), 97)]),
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
    ("pad/circular_crop", lambda t, F, x: F.pad(x, (-1, 2), mode="circular"), [SEQ]),
    ("pad/reflect_crop", lambda t, F, x: F.pad(x, (2, -1, -1, 1), mode="reflect"), [IMG]),
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
def _with_nans(shape, seed):
    """Random values with a NaN in row 0 and a row of NaNs only (row 1)."""
    x = _gaussian(shape, seed)
    x[0, 1] = np.nan
    x[1] = np.nan
    return x


def _uniform(shape, seed, low, high):
    return np.random.default_rng(seed).uniform(low, high, shape)


def _singular(seed):
    a = _gaussian((3, 3), seed)
    a[2] = a[0] * 2 - a[1]
    return a


M35 = _gaussian((3, 5), 60)
M43 = _gaussian((4, 3), 61)
NANS = _with_nans((3, 5), 62)
SORTED = np.sort(_gaussian(6, 63))
TIES = _index([[1, 3, 3, 2, 1, 0], [4, 4, 4, 0, 0, 9], [5, 2, 2, 5, 7, 7]])
SCATTER = _index([[0, 1, 0, 3], [2, 2, 2, 0], [1, 3, 1, 1]])
FUNCTION_CASES = [
    ("median/all", lambda t, F, x: t.median(x), [M35]),
    ("median/dim", lambda t, F, x: t.median(x, 1), [M35]),
    ("median/even_keepdim", lambda t, F, x: x.median(0, keepdim=True), [M43]),
    ("median/nan", lambda t, F, x: t.median(x.detach(), 1), [NANS]),
    ("median/int", lambda t, F, i: t.median(i, 1), [TIES]),
    ("nanmedian/dim", lambda t, F, x: t.nanmedian(x.detach(), 1), [NANS]),
    ("nanmedian/all", lambda t, F, x: x.nanmedian(), [M43]),
    ("kthvalue/dim1", lambda t, F, x: t.kthvalue(x, 2, 1), [M35]),
    ("kthvalue/keepdim", lambda t, F, x: x.kthvalue(3, 0, True), [M43]),
    ("quantile/scalar", lambda t, F, x: t.quantile(x, 0.3), [M35]),
    ("quantile/tensor_q", lambda t, F, x: t.quantile(
        x, t.tensor([0.1, 0.5, 0.95], dtype=x.dtype, device=x.device), dim=1, keepdim=True),
     [M35]),
    ("quantile/lower", lambda t, F, x: x.quantile(0.4, 0, interpolation="lower"), [M43]),
    ("quantile/higher", lambda t, F, x: x.quantile(0.4, 0, interpolation="higher"), [M43]),
    ("quantile/midpoint", lambda t, F, x: x.quantile(0.4, 0, interpolation="midpoint"),
     [M43]),
    ("quantile/nearest_half", lambda t, F, x: t.quantile(x, 0.5, 0, interpolation="nearest"),
     [M43]),
    ("quantile/nan", lambda t, F, x: t.quantile(x.detach(), 0.5, 1), [NANS]),
    ("nanquantile/nan", lambda t, F, x: t.nanquantile(x.detach(), 0.25, 1), [NANS]),
    ("nanquantile/keepdim", lambda t, F, x: x.nanquantile(0.7, 0, keepdim=True), [M43]),
    ("mode/int", lambda t, F, i: t.mode(i, 1), [TIES]),
    ("mode/float", lambda t, F, x: x.mode(0), [M43]),
    ("std_mean/dim", lambda t, F, x: t.std_mean(x, 1), [M35]),
    ("var_mean/dims", lambda t, F, x: t.var_mean(x, (0, 1), correction=0, keepdim=True),
     [M35]),
    ("std_mean/all", lambda t, F, x: t.std_mean(x), [M43]),
    ("aminmax/dim", lambda t, F, x: t.aminmax(x, dim=1), [M35]),
    ("aminmax/all", lambda t, F, x: x.aminmax(), [M43]),
    ("cummax/dim1", lambda t, F, x: t.cummax(x, 1), [M35]),
    ("cummin/dim0", lambda t, F, x: x.cummin(0), [M43]),
    ("cummax/int_ties", lambda t, F, i: t.cummax(i, 1), [TIES]),
    ("cummin/int_ties", lambda t, F, i: t.cummin(i, 1), [TIES]),
    ("cummax/nan", lambda t, F, x: t.cummax(x.detach(), 1), [NANS]),
    ("logcumsumexp/large", lambda t, F, x: t.logcumsumexp(x * 300, 1), [M35]),
    ("logcumsumexp/dim0", lambda t, F, x: x.logcumsumexp(0), [M43]),
    ("diff/default", lambda t, F, x: t.diff(x), [M35]),
    ("diff/second_dim0", lambda t, F, x: x.diff(2, 0), [M43]),
    ("diff/prepend_append", lambda t, F, x, p, a: t.diff(x, dim=1, prepend=p, append=a),
     [M35, _gaussian((3, 2), 64), _gaussian((3, 1), 65)]),
    ("diff/bool", lambda t, F, x: t.diff(x.detach() > 0, dim=1), [M35]),
    ("erf/function", lambda t, F, x: t.erf(x), [M35 * 2]),
    ("erfc/method", lambda t, F, x: x.erfc(), [M35 * 2]),
    ("erfinv/function", lambda t, F, x: t.erfinv(x), [_uniform((3, 5), 66, -0.9, 0.9)]),
    ("logit/plain", lambda t, F, x: t.logit(x), [_uniform((3, 5), 67, 0.05, 0.95)]),
    ("logit/eps", lambda t, F, x: x.logit(eps=0.2), [_uniform((3, 5), 68, 0.02, 0.98)]),
    ("atan2/broadcast", lambda t, F, a, b: t.atan2(a, b), [M35, _gaussian(5, 69)]),
    ("hypot/broadcast", lambda t, F, a, b: a.hypot(b), [M35, _gaussian(5, 70)]),
    ("lerp/small_weight", lambda t, F, a, b: t.lerp(a, b, 0.3), [M35, _gaussian((3, 5), 71)]),
    ("lerp/large_weight", lambda t, F, a, b: a.lerp(b, 0.7), [M35, _gaussian((3, 5), 71)]),
    ("lerp/tensor_weight", lambda t, F, a, b, w: t.lerp(a, b, w),
     [M35, _gaussian((3, 5), 71), _uniform(5, 72, -0.2, 1.2)]),
    ("isclose/tolerances", lambda t, F, a, b: t.isclose(a, b, rtol=0.1, atol=0.05),
     [M35, M35 + 0.1 * _gaussian((3, 5), 73)]),
    ("histc/data_range", lambda t, F, x: t.histc(x.detach(), 5), [M35]),
    ("histc/range", lambda t, F, x: x.detach().histc(bins=4, min=-1, max=1), [M35]),
    ("searchsorted/left", lambda t, F, s, v: t.searchsorted(s.detach(), v.detach()),
     [SORTED, _gaussian((2, 4), 74)]),
    ("searchsorted/right_int32", lambda t, F, s: t.searchsorted(
        s.detach(), s.detach()[1:4], right=True, out_int32=True), [SORTED]),
    ("searchsorted/rows_side", lambda t, F, s, v: t.searchsorted(
        s.detach().sort(1).values, v.detach(), side="right"), [M35, _gaussian((3, 2), 75)]),
    ("searchsorted/sorter", lambda t, F, s, v: t.searchsorted(
        s.detach(), v.detach(), sorter=s.detach().argsort()), [_gaussian(6, 76),
                                                               _gaussian(4, 77)]),
    ("bucketize/left", lambda t, F, v, b: t.bucketize(v.detach(), b.detach()),
     [_gaussian((2, 4), 78), SORTED]),
    ("bucketize/right", lambda t, F, b: t.bucketize(b.detach(), b.detach(), right=True),
     [SORTED]),
    ("cdist/p2", lambda t, F, a, b: t.cdist(a, b), [M43, _gaussian((5, 3), 79)]),
    ("cdist/p1_batch", lambda t, F, a, b: t.cdist(a, b, p=1), [_gaussian((2, 4, 3), 80),
                                                                _gaussian((5, 3), 79)]),
    ("cdist/inf", lambda t, F, a, b: t.cdist(a, b, p=float("inf")),
     [M43, _gaussian((5, 3), 79)]),
    ("cdist/p3", lambda t, F, a, b: t.cdist(a, b, p=3.0), [M43, _gaussian((5, 3), 79)]),
    ("meshgrid/ij", lambda t, F, a, b: t.meshgrid(a, b, indexing="ij"),
     [_gaussian(3, 81), _gaussian(4, 82)]),
    ("meshgrid/xy_three", lambda t, F, a, b, c: t.meshgrid([a, b, c], indexing="xy"),
     [_gaussian(3, 81), _gaussian(4, 82), _gaussian(2, 83)]),
    ("broadcast_to/new_dims", lambda t, F, x: t.broadcast_to(x[:, :1], (2, -1, 4)), [M35]),
    ("take_along_dim/dim1", lambda t, F, x, i: t.take_along_dim(x, i, 1),
     [M35, _index([[4, 0], [1, 1], [3, 2]])]),
    ("take_along_dim/flat", lambda t, F, x, i: x.take_along_dim(i), [M35, _index([14, 0, 7])]),
    ("take_along_dim/broadcast", lambda t, F, x, i: t.take_along_dim(x, i, 1),
     [M35, _index([[4, 0, 4]])]),
    ("movedim/one", lambda t, F, x: t.movedim(x.reshape(3, 5, 1), 0, 2), [M35]),
    ("movedim/two", lambda t, F, x: x.reshape(1, 3, 5).movedim((0, 1), (2, 0)), [M35]),
    ("swapaxes/method", lambda t, F, x: x.swapaxes(0, 1), [M35]),
    ("narrow/negative_start", lambda t, F, x: t.narrow(x, 1, -3, 2), [M35]),
    ("tile/short_dims", lambda t, F, x: x.tile((2,)), [M35]),
    ("tile/long_dims", lambda t, F, x: t.tile(x, (2, 1, 2)), [M35]),
    ("rot90/k1", lambda t, F, x: t.rot90(x), [M35]),
    ("rot90/k2_dims", lambda t, F, x: t.rot90(x.reshape(3, 5, 1), 2, (0, 1)), [M35]),
    ("rot90/k3", lambda t, F, x: x.rot90(3, [1, 0]), [M35]),
    ("rot90/k-1", lambda t, F, x: t.rot90(x, -1), [M35]),
    ("kron/matrices", lambda t, F, a, b: t.kron(a, b), [_gaussian((2, 3), 84),
                                                       _gaussian((3, 2), 85)]),
    ("kron/ranks", lambda t, F, a, b: a.kron(b), [_gaussian(3, 86), _gaussian((2, 2), 87)]),
    ("scatter_reduce/sum_exclude", lambda t, F, x, s, i: t.scatter_reduce(
        x, 1, i, s, "sum", include_self=False), [M35, M43.T.copy(), SCATTER]),
    ("scatter_reduce/prod_zeros", lambda t, F, x, s, i: x.scatter_reduce(
        1, i, s * (s.detach().abs() > 0.4), "prod"), [M35, M43.T.copy(), SCATTER]),
    ("scatter_reduce/mean", lambda t, F, x, s, i: t.scatter_reduce(x, 1, i, s, "mean"),
     [M35, M43.T.copy(), SCATTER]),
    ("scatter_reduce/mean_exclude", lambda t, F, x, s, i: t.scatter_reduce(
        x, 1, i, s, "mean", include_self=False), [M35, M43.T.copy(), SCATTER]),
    ("scatter_reduce/amax", lambda t, F, x, s, i: t.scatter_reduce(x, 1, i, s, "amax"),
     [M35, M43.T.copy(), SCATTER]),
    ("scatter_reduce/amin_exclude", lambda t, F, x, s, i: t.scatter_reduce(
        x, 1, i, s, "amin", include_self=False), [M35, M43.T.copy(), SCATTER]),
    ("linalg_inv/batch", lambda t, F, a: t.linalg.inv(a), [_gaussian((2, 3, 3), 88)]),
    ("inverse/function", lambda t, F, a: t.inverse(a), [_gaussian((3, 3), 89)]),
    ("linalg_det/batch", lambda t, F, a: t.linalg.det(a), [_gaussian((2, 3, 3), 88)]),
    ("det/singular", lambda t, F, a: a.det(), [_singular(90)]),
    ("linalg_solve/vector", lambda t, F, a, b: t.linalg.solve(a, b),
     [_gaussian((3, 3), 91), _gaussian(3, 92)]),
    ("linalg_solve/broadcast", lambda t, F, a, b: t.linalg.solve(a, b),
     [_gaussian((2, 3, 3), 93), _gaussian((3, 2), 94)]),
]
CASES = LAYER_CASES + FUNCTION_CASES


def main(argv=None):
    from habits_fixtures import write_fixture
    from torchops_fixtures import run_torch
    return write_fixture((functools.partial(run_torch, cases=CASES),), __doc__.splitlines()[0],
                         DEFAULT_OUT, "bench/torchops2_fixtures.py", argv)


if __name__ == "__main__":
    sys.exit(main())
