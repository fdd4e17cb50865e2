"""Differences from PyTorch found by the review's differential runs, each pinned by values
worked out by hand (or stored from PyTorch): pooling with a kernel larger than the padded
input under ceil_mode, 3-D max-pooling input, ..."""
import numpy as np
import pytest

import tinylesion as tl
from kernels.pool import maxpool2d_forward
from tinylesion.nn import functional as F
from tinylesion.testing import gradcheck


# ---- pooling ----------------------------------------------------------------------------------
def _plane():
    return tl.tensor(np.arange(6.0).reshape(1, 1, 2, 3))


def test_ceil_mode_keeps_one_window_larger_than_the_input():
    # NOTE: H=2, k=3, s=2, ceil: ⌈(2 − 3) / 2⌉ + 1 = 1 window, rows 0-1 of the clipped window;
    # PyTorch gives max 5 and mean 15 / 6 (the window clipped to the input's 2x3)
    x = _plane()
    assert F.max_pool2d(x, 3, 2, ceil_mode=True).numpy().tolist() == [[[[5.0]]]]
    assert F.avg_pool2d(x, 3, 2, ceil_mode=True).numpy().tolist() == [[[[2.5]]]]
    y, _ = maxpool2d_forward(x.numpy(), (3, 3), (2, 2), (0, 0), True)
    assert y.tolist() == [[[[5.0]]]]


def test_ceil_mode_windows_larger_than_the_padded_input_divide_as_pytorch():
    # kernel (3, 4), stride 2, padding 1 on 2x3: the padded input is 4x5, 2x2 windows; the
    # first covers padded rows -1..1 and columns -1..2: 15 / 12
    y = F.avg_pool2d(_plane(), (3, 4), 2, padding=(1, 1), ceil_mode=True)
    np.testing.assert_allclose(y.numpy()[0, 0], [[1.25, 4 / 3], [1.5, 1.5]])


def test_too_small_without_ceil_mode_still_raises():
    with pytest.raises(ValueError, match="smaller than"):
        F.max_pool2d(_plane(), 3, 2)
    with pytest.raises(ValueError, match="smaller than"):
        F.avg_pool2d(_plane(), 3, 2)


def test_ceil_mode_large_window_gradient():
    x = np.random.default_rng(0).standard_normal((1, 2, 2, 3))
    gradcheck(lambda t: F.avg_pool2d(t, (3, 4), 2, padding=(1, 1), ceil_mode=True,
                                     count_include_pad=False), x)
    gradcheck(lambda t: F.max_pool2d(t, 3, 2, ceil_mode=True), x)


def test_max_pool2d_takes_a_chw_input():
    y = F.max_pool2d(_plane()[0], 2, 1, padding=1)
    assert y.shape == (1, 3, 4)
    assert y.numpy()[0].tolist() == [[0, 1, 2, 2], [3, 4, 5, 5], [3, 4, 5, 5]]
    assert tl.nn.MaxPool2d(2)(tl.tensor(np.ones((3, 4, 4)))).shape == (3, 2, 2)


# ---- grouped convolution ----------------------------------------------------------------------
def test_grouped_conv_of_an_empty_batch():
    x = tl.tensor(np.zeros((0, 4, 5, 5)), requires_grad=True)
    w = tl.tensor(np.ones((6, 2, 3, 3)), requires_grad=True)
    y = F.conv2d(x, w, tl.tensor(np.ones(6)), padding=1, groups=2)
    assert y.shape == (0, 6, 5, 5)
    y.sum().backward()
    assert x.grad.shape == (0, 4, 5, 5)
    assert w.grad.numpy().tolist() == np.zeros((6, 2, 3, 3)).tolist()


# ---- vision transforms ------------------------------------------------------------------------
def test_tensor_resize_without_antialias_is_plain_bilinear():
    from tinylesion.vision import transforms as T
    x = tl.tensor(np.arange(16, dtype=np.float32).reshape(1, 4, 4))
    # NOTE: output pixel i samples input position (i + 0.5) · 2 − 0.5 = 0.5, 2.5: the mean of
    # a 2x2 block (torchvision's antialias=False); the antialiased filter gives 3.571... here
    y = T.Resize(2, antialias=False)(x)
    np.testing.assert_allclose(y.numpy()[0], [[2.5, 4.5], [10.5, 12.5]], rtol=1e-6)
    up = T.Resize(3, antialias=False)(x).numpy()[0]
    np.testing.assert_allclose(up[0], [5 / 6, 13 / 6, 3.5], rtol=1e-5)
    assert T.Resize(2, antialias=False)(tl.tensor(np.full((3, 4, 4), 200, np.uint8))) \
        .numpy().tolist() == np.full((3, 2, 2), 200).tolist()
    with pytest.raises(NotImplementedError, match="bicubic"):
        T.Resize(2, interpolation=T.InterpolationMode.BICUBIC, antialias=False)(x)


def test_pil_pad_with_an_int_fill_fills_every_band():
    from PIL import Image
    from tinylesion.vision import transforms as T
    out = np.asarray(T.Pad((1, 2, 3, 4), fill=7)(Image.new("RGB", (3, 2), (100, 100, 100))))
    assert out.shape == (8, 7, 3)
    assert out[0, 0].tolist() == [7, 7, 7] and out[2, 1].tolist() == [100, 100, 100]


# ---- tensor methods with NaN ------------------------------------------------------------------
def _nan_row():
    return tl.tensor(np.array([np.nan, 1.0, np.inf, np.nan, -1.0, np.inf]))


def test_descending_sort_and_topk_put_nan_first_as_pytorch():
    # PyTorch orders NaN above +inf: descending values nan, nan, inf, inf, 1, -1
    values, indices = _nan_row().sort(descending=True)
    assert str(values.numpy().tolist()) == "[nan, nan, inf, inf, 1.0, -1.0]"
    assert indices.numpy().tolist() == [0, 3, 2, 5, 1, 4]
    assert _nan_row().argsort(descending=True, stable=True).numpy().tolist() == [0, 3, 2, 5, 1, 4]
    assert _nan_row().topk(2).indices.numpy().tolist() == [0, 3]
    # ascending: NaN last (unchanged), and a 2-D sort along dim 0
    assert _nan_row().sort().indices.numpy().tolist() == [4, 1, 2, 5, 0, 3]
    col = tl.tensor(np.array([[1.0, np.nan], [np.nan, 2.0], [3.0, 0.0]]))
    assert col.argsort(dim=0, descending=True).numpy().tolist() == [[1, 0], [2, 1], [0, 2]]


def test_sign_of_nan_is_zero():
    assert _nan_row().sign().numpy().tolist() == [0.0, 1.0, 1.0, 0.0, -1.0, 1.0]
    assert tl.tensor(np.array([-3, 0, 2])).sign().numpy().tolist() == [-1, 0, 1]
