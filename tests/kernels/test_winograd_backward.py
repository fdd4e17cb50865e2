"""The one-pass Winograd backward (kernels/winograd_backward.py) against the reference, the
two-pass path and the ReLU's backward with channel sums."""
import numba
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings

import kernels.winograd as winograd
import kernels.winograd_backward as fused
from kernels import conv2d_backward, conv2d_backward_relu_input
from kernels.conv_parts import single_blas
from kernels.relu import relu_backward_channel_sums
from kernels.winograd23 import BT as BT4
from kernels.winograd25 import BT as BT6
from kernels.winograd33 import BT as BT5
# the Winograd path for the small layers drawn, tolerances, draws (tests/kernels/)
from test_winograd import TOL, layers, rel_err, small_channels  # noqa: F401


def test_adjoint_rows_are_b():
    """_b6, _b5 and _b4 apply B = (Bᵀ)ᵀ, the adjoint of the input transform's Bᵀ."""
    rng = np.random.default_rng(0)
    for BT, b in ((BT6, fused._b6), (BT5, fused._b5), (BT4, fused._b4)):
        for v in rng.standard_normal((5, BT.shape[0])):
            np.testing.assert_allclose(b(*v), BT.T @ v, rtol=1e-13, atol=1e-13)


def _two_pass(gy, x, W, padding, OH, OW, relu_input):
    with single_blas():
        return winograd._backward(gy, x, W, padding, OH, OW, True, True, relu_input)


@settings(max_examples=80, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(layers())
def test_one_pass_equals_reference(small_channels, layer):
    """gx and gW within the Winograd tolerances of the direct convolution's (float64 and
    float32; one tile row per block, where the blocks' patches overlap, or several small
    images per block); gW with the two-pass path's bits (the same products in the same order);
    with a ReLU on the input, gx masked and summed as kernels.relu does it."""
    x, W, _, padding, _, small_blocks, rng = layer
    if small_blocks:
        winograd.GW_BLOCK_BYTES, winograd.GW_MIN_COLUMNS, winograd.F3_GW_COLUMNS = 1, 1, 1
    R = W.shape[2]
    OH, OW = x.shape[2] + 2 * padding[0] - R + 1, x.shape[3] + 2 * padding[1] - R + 1
    assert fused.applies(R, OH, OW)
    tol = TOL[x.dtype.type, R, winograd.tile_size(R, OH, OW)]
    gy = rng.standard_normal((x.shape[0], W.shape[0], OH, OW)).astype(x.dtype)
    with single_blas():
        gx, gW, sums = fused.backward(gy, x, W, padding, OH, OW)
    assert sums is None and gx.dtype == gW.dtype == x.dtype
    want = conv2d_backward(gy, x, W, 1, padding, need_gb=False, impl="reference")
    scale = conv2d_backward(abs(gy), abs(x), abs(W), 1, padding, need_gb=False,
                            impl="reference")
    assert rel_err(gx, want[0], scale[0]) < tol
    assert rel_err(gW, want[1], scale[1]) < tol
    np.testing.assert_array_equal(gW, _two_pass(gy, x, W, padding, OH, OW, False)[1])
    z = np.maximum(x, 0)   # a ReLU's output, zero at about half the entries
    with single_blas():
        gz, gWz, sums = fused.backward(gy, z, W, padding, OH, OW, relu_input=True)
        plain = fused.backward(gy, z, W, padding, OH, OW)[0]
    masked, want_sums = relu_backward_channel_sums(plain, z)
    np.testing.assert_array_equal(gz, masked)
    np.testing.assert_array_equal(sums, want_sums)


def test_conv_backward_takes_one_pass_for_both_gradients(small_channels, monkeypatch):
    """kernels.conv2d_backward (and its ReLU-input form) runs the one pass where both
    gradients are wanted, the two passes for one gradient or with FUSED off; the results
    agree."""
    rng = np.random.default_rng(5)
    x = np.maximum(rng.standard_normal((4, 6, 11, 13)), 0)
    W = rng.standard_normal((8, 6, 3, 3))
    gy = rng.standard_normal((4, 8, 11, 13))
    calls = []
    monkeypatch.setattr(fused, "backward", lambda *a, _f=fused.backward, **k:
                        calls.append(1) or _f(*a, **k))
    gx, gW, gb = conv2d_backward(gy, x, W, 1, 1, impl="cpu")
    assert calls == [1]
    gz, gWz, gbz, sums = conv2d_backward_relu_input(gy, x, W, 1, 1, impl="cpu")
    assert calls == [1, 1]
    only_gx = conv2d_backward(gy, x, W, 1, 1, need_gW=False, impl="cpu")[0]
    only_gW = conv2d_backward(gy, x, W, 1, 1, need_gx=False, impl="cpu")[1]
    assert calls == [1, 1]
    monkeypatch.setattr(fused, "FUSED", False)
    two = conv2d_backward(gy, x, W, 1, 1, impl="cpu")
    assert calls == [1, 1]
    for a, b in ((gx, two[0]), (gx, only_gx), (gW, two[1]), (gW, only_gW), (gb, two[2])):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-10)
    masked, want_sums = relu_backward_channel_sums(gx, x)
    np.testing.assert_array_equal(gz, masked)
    np.testing.assert_array_equal(sums, want_sums)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_one_pass_on_a_doubling_layer(dtype):
    """padua4's 32->64 layer (37x50 cut to 17x50: F(4x4, 3x3)), 4 images, against the
    reference, both gradients through kernels.conv2d_backward, float32 and float64."""
    rng = np.random.default_rng(6)
    x = rng.standard_normal((4, 32, 17, 50)).astype(dtype)
    W = (rng.standard_normal((64, 32, 3, 3)) * 0.1).astype(dtype)
    gy = rng.standard_normal((4, 64, 17, 50)).astype(dtype)
    got = conv2d_backward(gy, x, W, 1, 1, need_gb=False, impl="cpu")
    want = conv2d_backward(gy, x, W, 1, 1, need_gb=False, impl="reference")
    scale = conv2d_backward(abs(gy), abs(x), abs(W), 1, 1, need_gb=False, impl="reference")
    m = winograd.tile_size(3, 17, 50)
    assert m == 4
    for g, g_ref, g_abs in zip(got[:2], want[:2], scale[:2]):
        assert g.dtype == dtype and rel_err(g, g_ref, g_abs) < TOL[dtype, 3, m]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("N, padding", [(1, 1), (3, 0), (5, 1)])
def test_one_pass_on_a_9x12_layer(dtype, threads, N, padding):
    """padua4's 9x12 layers (F(3x3, 3x3), cut to 12->20 channels) in one pass, against the
    reference: batch 1 and odd batches, padding 0 and 1, 1 and 2 threads; gW with the two
    passes' bits."""
    rng = np.random.default_rng(7)
    H, Wd = 9 + 2 - 2 * padding, 12 + 2 - 2 * padding   # a 9x12 output either way
    x = rng.standard_normal((N, 12, H, Wd)).astype(dtype)
    W = (rng.standard_normal((20, 12, 3, 3)) * 0.1).astype(dtype)
    gy = rng.standard_normal((N, 20, 9, 12)).astype(dtype)
    assert winograd.tile_size(3, 9, 12) == 3 and fused.applies(3, 9, 12)
    saved = numba.get_num_threads()
    numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
    try:
        with single_blas():
            gx, gW, _ = fused.backward(gy, x, W, (padding, padding), 9, 12)
        two = _two_pass(gy, x, W, (padding, padding), 9, 12, False)
    finally:
        numba.set_num_threads(saved)
    want = conv2d_backward(gy, x, W, 1, padding, need_gb=False, impl="reference")
    scale = conv2d_backward(abs(gy), abs(x), abs(W), 1, padding, need_gb=False,
                            impl="reference")
    for g, g_ref, g_abs in ((gx, want[0], scale[0]), (gW, want[1], scale[1])):
        assert g.dtype == dtype and rel_err(g, g_ref, g_abs) < TOL[dtype, 3, 3]
    np.testing.assert_array_equal(gW, two[1])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("N", [2, 5])
def test_several_small_images_a_block_on_f4(dtype, threads, N):
    """F(4x4, 3x3) on images that are one block each (as baseline_cnn's 32x32, here 16x18 and
    4->6 channels): the weight gradient's blocks take several images (winograd.gw_images), in
    one pass and in two; against the reference, odd batches, 1 and 2 threads; gW with the two
    passes' bits, gx masked as a ReLU's backward with its sums."""
    rng = np.random.default_rng(8)
    x = rng.standard_normal((N, 4, 16, 18)).astype(dtype)
    W = (rng.standard_normal((6, 4, 3, 3)) * 0.1).astype(dtype)
    gy = rng.standard_normal((N, 6, 16, 18)).astype(dtype)
    assert winograd.tile_size(3, 16, 18) == 4 and fused.applies(3, 16, 18)
    # one 16x18 image: 36 * (4 + 6) * 4 * 6 elements of V and M, many of them in the budget
    per_image = 36 * 10 * 4 * 6 * x.itemsize
    assert winograd.gw_images(4, 4, 4, 1, 3, per_image) == 3
    assert winograd.gw_images(3, 4, 4, 1, 3, per_image) == 1   # F(3x3, 3x3): as it was
    assert winograd.gw_images(4, 2, 4, 1, 3, per_image) == 1   # blocks of tile rows: as it was
    saved = numba.get_num_threads()
    numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
    try:
        with single_blas():
            gx, gW, _ = fused.backward(gy, x, W, (1, 1), 16, 18)
            gz, gW_masked, sums = fused.backward(gy, x, W, (1, 1), 16, 18, relu_input=True)
        two = _two_pass(gy, x, W, (1, 1), 16, 18, False)
        only_gW = winograd.backward(gy, x, W, (3, 3), (1, 1), (1, 1), 16, 18, False, True)[1]
    finally:
        numba.set_num_threads(saved)
    want = conv2d_backward(gy, x, W, 1, 1, need_gb=False, impl="reference")
    scale = conv2d_backward(abs(gy), abs(x), abs(W), 1, 1, need_gb=False, impl="reference")
    for g, g_ref, g_abs in ((gx, want[0], scale[0]), (gW, want[1], scale[1]),
                            (two[0], want[0], scale[0]), (only_gW, want[1], scale[1])):
        assert g.dtype == dtype and rel_err(g, g_ref, g_abs) < TOL[dtype, 3, 4]
    np.testing.assert_array_equal(gW, two[1])
    np.testing.assert_array_equal(gW_masked, gW)
    masked, want_sums = relu_backward_channel_sums(gx, x)
    np.testing.assert_array_equal(gz, masked)
    np.testing.assert_array_equal(sums, want_sums)
