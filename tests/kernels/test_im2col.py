"""im2col and col2im: the Numba CPU kernels against the reference, the adjoint identity, errors."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from kernels import col2im, im2col
from kernels.im2col import conv_output_size


@st.composite
def geometry(draw):
    """Shapes, kernels, strides and paddings: batch 1, odd sizes, stride > kernel, non-square."""
    KH, KW = draw(st.integers(1, 5)), draw(st.integers(1, 5))
    SH, SW = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    PH, PW = draw(st.integers(0, 3)), draw(st.integers(0, 3))
    N, C = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    H = max(1, KH - 2 * PH) + draw(st.integers(0, 7))
    W = max(1, KW - 2 * PW) + draw(st.integers(0, 7))
    dtype = draw(st.sampled_from([np.float32, np.float64]))
    return (N, C, H, W), (KH, KW), (SH, SW), (PH, PW), dtype, draw(st.integers(0, 2**31 - 1))


@settings(max_examples=40, deadline=None)
@given(geometry())
def test_cpu_equals_reference(case):
    shape, kernel, stride, padding, dtype, seed = case
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape).astype(dtype)
    col = im2col(x, kernel, stride, padding, impl="cpu")
    col_ref = im2col(x, kernel, stride, padding, impl="reference")
    OH, OW = conv_output_size(shape, kernel, stride, padding)
    assert col.shape == (shape[0], shape[1] * kernel[0] * kernel[1], OH * OW)
    assert col.dtype == dtype
    np.testing.assert_array_equal(col, col_ref)
    g = rng.standard_normal(col.shape).astype(dtype)
    gx = col2im(g, shape, kernel, stride, padding, impl="cpu")
    gx_ref = col2im(g, shape, kernel, stride, padding, impl="reference")
    assert gx.shape == shape and gx.dtype == dtype
    tol = 1e-5 if dtype == np.float32 else 1e-12
    assert np.abs(gx - gx_ref).max() <= tol * max(np.abs(gx_ref).max(), 1.0)
    # NOTE: col2im is the adjoint of im2col: <im2col(x), g> = <x, col2im(g)>.
    x64, g64 = x.astype(np.float64), g.astype(np.float64)
    lhs = np.vdot(im2col(x64, kernel, stride, padding), g64)
    rhs = np.vdot(x64, col2im(g64, shape, kernel, stride, padding))
    assert abs(lhs - rhs) <= 1e-10 * max(1.0, abs(lhs))


def test_layout_by_hand():
    x = np.arange(2 * 3 * 4, dtype=np.float64).reshape(1, 2, 3, 4)
    for impl in ("reference", "cpu"):
        col = im2col(x, (2, 3), (1, 2), (1, 0), impl=impl)
        # OH = (3 + 2 - 2) + 1 = 4, OW = (4 - 3) // 2 + 1 = 1; row (c, i, j), column oh
        assert col.shape == (1, 2 * 2 * 3, 4)
        np.testing.assert_array_equal(col[0, 0], [0, 0, 4, 8])          # c=0, i=0, j=0
        np.testing.assert_array_equal(col[0, 5], [2, 6, 10, 0])          # c=0, i=1, j=2
        np.testing.assert_array_equal(col[0, 6], [0, 12, 16, 20])       # c=1, i=0, j=0


def test_im2col_as_conv_shapes_and_ints():
    x = np.ones((1, 1, 5, 5), np.float32)
    assert im2col(x, 3, 1, 1).shape == (1, 9, 25)
    assert im2col(x, 3, (2, 1), 0).shape == (1, 9, 2 * 3)


@pytest.mark.parametrize("bad,match", [
    (dict(kernel=(6, 1)), "output size"),
    (dict(kernel=0), "kernel size"),
    (dict(stride=(1, 0)), "stride"),
    (dict(padding=-1), "padding"),
    (dict(stride=1.5), "stride"),
])
def test_bad_arguments(bad, match):
    args = dict(kernel=3, stride=1, padding=0)
    args.update(bad)
    with pytest.raises(ValueError, match=match):
        im2col(np.ones((1, 1, 4, 4), np.float32), **args)


def test_bad_arrays():
    with pytest.raises(ValueError, match="float32 or float64"):
        im2col(np.ones((1, 1, 4, 4), np.int64), 3)
    with pytest.raises(ValueError, match="4 dimensions"):
        im2col(np.ones((4, 4), np.float32), 3)
    with pytest.raises(ValueError, match="col has shape"):
        col2im(np.ones((1, 9, 5), np.float32), (1, 1, 4, 4), 3)
    with pytest.raises(ValueError, match="impl"):
        im2col(np.ones((1, 1, 4, 4), np.float32), 3, impl="fast")
