"""Winograd F(2x2, 3x3), F(3x3, 3x3), F(4x4, 3x3) and F(2x2, 5x5) convolution against the
reference, through the CPU kernel's own path."""
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

import kernels.conv_cpu as conv_cpu
import kernels.winograd as winograd
import tinylesion as tl
from kernels import conv2d_backward, conv2d_forward
from tinylesion.testing import gradcheck

# NOTE: errors relative to the same convolution over absolute values (Σ|w||x|, the scale of
# any rounding error of the sums). The transforms scale each term by up to β² before the
# products (β = max over i, k, l of Σⱼ |Aᵀ[i, j] G[j, k] Bᵀ[j, l]|: 2 for F(2, 3), 32/3 for
# F(2, 5), squared in 2D), so float32 errors reach about β² eps where direct sums stay near
# eps (2^-24 = 6e-8). Measured against float64 over 2,000 layers drawn as below: float32 at
# most 2.2e-7 (F(2x2, 3x3)) and 4.1e-6 (F(2x2, 5x5)); over 1,500 for F(4x4, 3x3), 4.7e-6 (the
# input gradient; forward 3.7e-6). The tolerances leave 5-10x of that. Keys: (dtype, kernel
# size, output tile).
TOL = {(np.float32, 3, 2): 2e-6, (np.float32, 3, 3): 2e-6, (np.float32, 3, 4): 3e-5,
       (np.float32, 5, 2): 2e-5, (np.float64, 3, 2): 1e-14, (np.float64, 3, 3): 1e-14,
       (np.float64, 3, 4): 1e-13, (np.float64, 5, 2): 1e-13}


def rel_err(a, b, scale):
    """max |a - b| relative to max |scale|."""
    return float(np.abs(a - b).max() / max(np.abs(scale).max(), 1e-30))


@pytest.fixture(params=[2, 3, 4], ids=["F2x2", "F3x3", "F4x4"])
def small_channels(request):
    """The Winograd path for any layer it applies to (the layers drawn here are small), with
    3x3 kernels on 2x2, 3x3 or 4x4 output tiles for images of any size; yields the 3x3 tile
    size."""
    names = ("WINOGRAD", "WINOGRAD_MIN_CHANNELS", "WINOGRAD_MIN_FILTERS")
    blocks = ("TILE_BLOCK_BYTES", "GW_BLOCK_BYTES", "MIN_COLUMNS", "GW_MIN_COLUMNS", "TILE_3X3",
              "F4_MIN_SIDE", "F3_SHARE", "F3_GW_COLUMNS")
    saved = [getattr(conv_cpu, name) for name in names], [getattr(winograd, n) for n in blocks]
    for name, value in zip(names, (True, 1, 1)):
        setattr(conv_cpu, name, value)
    if request.param == 3:  # F(3x3, 3x3) below F4_MIN_SIDE, wherever
        winograd.TILE_3X3, winograd.F4_MIN_SIDE, winograd.F3_SHARE = 4, 10**9, float("inf")
    else:
        winograd.TILE_3X3, winograd.F4_MIN_SIDE = request.param, 1
    yield request.param
    for name, value in zip(names, saved[0]):
        setattr(conv_cpu, name, value)
    for name, value in zip(blocks, saved[1]):
        setattr(winograd, name, value)


@st.composite
def layers(draw):
    """3x3 or 5x5; batch 1 and below the thread count, odd and non-square images, padding from
    0 to kernel size - 1."""
    R = draw(st.sampled_from([3, 5]))
    PH, PW = draw(st.integers(0, R - 1)), draw(st.integers(0, R - 1))
    N, C, F = draw(st.integers(1, 5)), draw(st.integers(1, 9)), draw(st.integers(1, 9))
    H = max(1, R - 2 * PH) + draw(st.integers(0, 12))
    W = max(1, R - 2 * PW) + draw(st.integers(0, 12))
    dtype = draw(st.sampled_from([np.float32, np.float64]))
    rng = np.random.default_rng(draw(st.integers(0, 2**31)))
    x = rng.standard_normal((N, C, H, W)).astype(dtype)
    Wt = rng.standard_normal((F, C, R, R)).astype(dtype)
    b = rng.standard_normal(F).astype(dtype) if draw(st.booleans()) else None
    return x, Wt, b, (PH, PW), draw(st.booleans()), draw(st.booleans()), rng


@settings(max_examples=100, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(layers())
def test_winograd_equals_reference(small_channels, layer):
    x, W, b, padding, relu, small_blocks, rng = layer
    N, C, H, Wd = x.shape
    kernel = W.shape[2:]
    assert conv_cpu._path(C, kernel, (1, 1), Wd, padding, W.shape[0]) == "winograd"
    if small_blocks:  # one tile row per block; else small images side by side
        winograd.TILE_BLOCK_BYTES = winograd.GW_BLOCK_BYTES = 1
        winograd.MIN_COLUMNS = winograd.GW_MIN_COLUMNS = winograd.F3_GW_COLUMNS = 1
    tile = small_channels if kernel[0] == 3 else 2
    assert winograd.tile_size(kernel[0], H, Wd) == tile
    tol = TOL[x.dtype.type, kernel[0], tile]
    y_ref = conv2d_forward(x, W, b, 1, padding, relu=relu, impl="reference")
    y_abs = conv2d_forward(abs(x), abs(W), abs(b) if b is not None else None, 1, padding,
                           impl="reference")
    y = conv2d_forward(x, W, b, 1, padding, relu=relu, impl="cpu")
    assert y.shape == y_ref.shape and y.dtype == x.dtype
    assert rel_err(y, y_ref, y_abs) < tol
    gy = rng.standard_normal(y.shape).astype(x.dtype)
    want = conv2d_backward(gy, x, W, 1, padding, impl="reference")
    want_abs = conv2d_backward(abs(gy), abs(x), abs(W), 1, padding, impl="reference")
    # NOTE: conv_cpu hands batches smaller than the thread count to another path; the
    # Winograd module itself takes any batch.
    got = winograd.backward(gy, x, W, kernel, (1, 1), padding, *y.shape[2:], True, True)
    for g, g_ref, g_abs in zip(got, want, want_abs):
        assert g.shape == g_ref.shape and g.dtype == x.dtype
        assert rel_err(g, g_ref, g_abs) < tol
    for g, g_ref, g_abs in zip(conv2d_backward(gy, x, W, 1, padding, impl="cpu"), want,
                               want_abs):
        assert rel_err(g, g_ref, g_abs) < tol


@pytest.mark.parametrize("kernel,padding", [(3, (1, 2)), (5, (2, 0)), (5, (4, 3))])
def test_gradient_finite_differences(small_channels, kernel, padding):
    """Float64 central differences through tl.nn.functional.conv2d, on the Winograd path
    forward and backward (a batch of at least the thread count)."""
    rng = np.random.default_rng(4)
    N = max(2, conv_cpu.numba.get_num_threads())
    x = rng.standard_normal((N, 2, 7, 6))
    W = rng.standard_normal((3, 2, kernel, kernel))
    b = rng.standard_normal(3)
    assert conv_cpu._path(2, (kernel, kernel), (1, 1), 6, padding, 3) == "winograd"
    gradcheck(lambda x, W, b: tl.nn.functional.conv2d(x, W, b, padding=padding), x, W, b,
              rtol=1e-6)


@pytest.mark.parametrize("kernel", [3, 5])
def test_need_flags_skip_work(small_channels, kernel):
    rng = np.random.default_rng(1)
    P = kernel // 2
    x = rng.standard_normal((4, 3, 7, 6)).astype(np.float32)
    W = rng.standard_normal((5, 3, kernel, kernel)).astype(np.float32)
    gy = rng.standard_normal((4, 5, 7, 6)).astype(np.float32)
    K = (kernel, kernel)
    gx, gW = winograd.backward(gy, x, W, K, (1, 1), (P, P), 7, 6, False, True)
    assert gx is None and gW.shape == W.shape
    gx, gW = winograd.backward(gy, x, W, K, (1, 1), (P, P), 7, 6, True, False)
    assert gW is None and gx.shape == x.shape


@pytest.mark.parametrize("kernel", [3, 5])
def test_backward_is_bit_reproducible(small_channels, kernel):
    rng = np.random.default_rng(2)
    P = kernel // 2
    x = rng.standard_normal((7, 20, 13, 11)).astype(np.float32)
    W = rng.standard_normal((24, 20, kernel, kernel)).astype(np.float32)
    gy = rng.standard_normal((7, 24, 13, 11)).astype(np.float32)
    assert conv_cpu._path(20, (kernel, kernel), (1, 1), 11, (P, P), 24) == "winograd"
    first = conv2d_backward(gy, x, W, 1, P, impl="cpu")
    for _ in range(3):
        again = conv2d_backward(gy, x, W, 1, P, impl="cpu")
        for a, b in zip(first, again):
            assert np.array_equal(a, b)


def test_path_rule():
    assert conv_cpu.WINOGRAD
    assert conv_cpu._path(64, (3, 3), (1, 1), 50, (1, 1), 64) == "winograd"
    assert conv_cpu._path(3, (3, 3), (1, 1), 100, (1, 1), 32) == "grid"  # RGB input
    assert conv_cpu._path(16, (3, 3), (1, 1), 64, (1, 1), 32) == "winograd"  # F(4x4, 3x3)
    assert conv_cpu._path(16, (3, 3), (1, 1), 100, (1, 1), 32, H=9) == "shift"  # F(3x3)
    assert conv_cpu._path(64, (3, 3), (2, 2), 50, (1, 1), 64) != "winograd"
    assert conv_cpu._path(64, (3, 3), (1, 1), 50, (3, 3), 64) != "winograd"
    assert conv_cpu._path(32, (5, 5), (1, 1), 112, (2, 2), 64) == "winograd"  # melanoma_cnn
    assert conv_cpu._path(32, (5, 5), (1, 1), 116, (0, 0), 64) == "winograd"  # after ZeroPad2d
    assert conv_cpu._path(64, (5, 5), (1, 1), 50, (5, 5), 64) != "winograd"
    assert conv_cpu._path(64, (5, 5), (2, 2), 50, (2, 2), 64) != "winograd"
    assert conv_cpu._path(64, (5, 3), (1, 1), 50, (2, 1), 64) != "winograd"
    assert conv_cpu._path(64, (7, 7), (1, 1), 50, (3, 3), 64) != "winograd"


@pytest.mark.parametrize("kernel", [3, 5])
def test_one_image_split_across_threads(small_channels, kernel):
    rng = np.random.default_rng(3)
    P = kernel // 2
    x = rng.standard_normal((1, 64, 19, 26)).astype(np.float32)
    W = (rng.standard_normal((64, 64, kernel, kernel)) * 0.1).astype(np.float32)
    b = rng.standard_normal(64).astype(np.float32)
    assert conv_cpu._path(64, (kernel, kernel), (1, 1), 26, (P, P), 64) == "winograd"
    tol = TOL[np.float32, kernel, small_channels if kernel == 3 else 2]
    y = conv2d_forward(x, W, b, 1, P, relu=True, impl="cpu")
    y_abs = conv2d_forward(abs(x), abs(W), abs(b), 1, P, impl="reference")
    assert rel_err(y, conv2d_forward(x, W, b, 1, P, relu=True, impl="reference"), y_abs) < tol
    gy = rng.standard_normal(y.shape).astype(np.float32)
    want = conv2d_backward(gy, x, W, 1, P, impl="reference")
    want_abs = conv2d_backward(abs(gy), abs(x), abs(W), 1, P, impl="reference")
    for g, g_ref, g_abs in zip(conv2d_backward(gy, x, W, 1, P, impl="cpu"), want, want_abs):
        assert rel_err(g, g_ref, g_abs) < tol


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(layers(), st.integers(1, 3))
def test_one_image_in_three_stages_equals_reference(small_channels, layer, threads):
    """kernels/winograd_latency.py (batch 1 on several threads): channels and filters fewer
    than the threads, odd sizes; the same numbers whatever the thread count."""
    from kernels.conv_parts import single_blas
    from kernels.winograd_latency import forward_one
    x, W, b, padding, relu, _, _ = layer
    x = np.ascontiguousarray(x[:1])
    R, (OH, OW) = W.shape[2], (x.shape[2] + 2 * padding[0] - W.shape[2] + 1,
                               x.shape[3] + 2 * padding[1] - W.shape[3] + 1)
    m = winograd.tile_size(R, OH, OW)
    U = winograd.filter_transform(W, m)
    with single_blas():
        y = forward_one(x, U, b, m, padding, OH, OW, relu, threads)
        y1 = forward_one(x, U, b, m, padding, OH, OW, relu, 1)
    y_ref = conv2d_forward(x, W, b, 1, padding, relu=relu, impl="reference")
    y_abs = conv2d_forward(abs(x), abs(W), abs(b) if b is not None else None, 1, padding,
                           impl="reference")
    assert y.shape == y_ref.shape and y.dtype == x.dtype
    assert rel_err(y, y_ref, y_abs) < TOL[x.dtype.type, R, m]
    np.testing.assert_array_equal(y, y1)


def test_batch_one_takes_the_three_stages_where_they_fit(monkeypatch):
    """resnet50's 14x14 layer at batch 1 on 2 threads runs kernels/winograd_latency.py (the
    blocks' kernel is not called), a 56x56 one the blocks; both equal the reference."""
    import numba
    import kernels.threads as threads
    import kernels.winograd_latency as one
    if numba.config.NUMBA_NUM_THREADS < 2:
        pytest.skip("one Numba thread")
    rng = np.random.default_rng(8)
    calls = []
    monkeypatch.setattr(one, "forward_one", lambda *a, _f=one.forward_one:
                        calls.append(1) or _f(*a))
    before = threads.get_num_threads()
    threads.set_num_threads(2)
    try:
        for C, side, used in [(256, 14, [1]), (64, 56, [])]:
            calls.clear()
            x = rng.standard_normal((1, C, side, side)).astype(np.float32)
            W = (rng.standard_normal((C, C, 3, 3)) * 0.05).astype(np.float32)
            y = winograd.forward(x, W, None, (3, 3), (1, 1), (1, 1), side, side, False)
            y_abs = conv2d_forward(abs(x), abs(W), None, 1, 1, impl="reference")
            m = winograd.tile_size(3, side, side)
            assert rel_err(y, conv2d_forward(x, W, None, 1, 1, impl="reference"), y_abs) < \
                TOL[np.float32, 3, m]
            assert calls == used
    finally:
        threads.set_num_threads(before)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("N, padding", [(3, 0), (5, 1)])
@pytest.mark.parametrize("C, F", [(12, 40), (40, 257)])
def test_f3_on_a_9x12_layer_with_many_filters(dtype, threads, N, padding, C, F):
    """padua4's 9x12 layers (F(3x3, 3x3)), cut to 12->40 and 40->257 channels (counts that
    blocks of filters or channels would not divide): the forward pass with bias and ReLU, the
    input gradient as a forward pass of gy (masked by a ReLU's output, with its channel sums)
    and the one-pass backward against the reference; odd batches on 1 and 2 threads, padding
    0 and 1."""
    import numba
    from kernels.channel_sums import channel_sums
    rng = np.random.default_rng(11)
    H, Wd = 9 + 2 - 2 * padding, 12 + 2 - 2 * padding   # a 9x12 output either way
    x = np.maximum(rng.standard_normal((N, C, H, Wd)), 0).astype(dtype)
    W = (rng.standard_normal((F, C, 3, 3)) * 0.1).astype(dtype)
    b = rng.standard_normal(F).astype(dtype)
    gy = rng.standard_normal((N, F, 9, 12)).astype(dtype)
    assert winograd.tile_size(3, 9, 12) == 3
    tol, pad = TOL[dtype, 3, 3], (padding, padding)
    saved = numba.get_num_threads()
    numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
    try:
        y = winograd.forward(x, W, b, (3, 3), (1, 1), pad, 9, 12, True)
        gx2, _, sums = winograd._backward(gy, x, W, pad, 9, 12, True, False, True)
        gx, gW, sums1 = winograd.backward(gy, x, W, (3, 3), (1, 1), pad, 9, 12, True, True,
                                          relu_input=True)
    finally:
        numba.set_num_threads(saved)
    y_abs = conv2d_forward(abs(x), abs(W), abs(b), 1, padding, impl="reference")
    assert rel_err(y, conv2d_forward(x, W, b, 1, padding, relu=True, impl="reference"),
                   y_abs) < tol
    want = conv2d_backward(gy, x, W, 1, padding, need_gb=False, impl="reference")
    scale = conv2d_backward(abs(gy), abs(x), abs(W), 1, padding, need_gb=False,
                            impl="reference")
    keep = x > 0
    for g in (gx, gx2):
        assert g.dtype == dtype and rel_err(g, want[0] * keep, scale[0]) < tol
        assert np.array_equal(g[~keep], np.zeros_like(g[~keep]))
    np.testing.assert_array_equal(sums, channel_sums(gx2))
    np.testing.assert_array_equal(sums1, channel_sums(gx))
    assert gW.dtype == dtype and rel_err(gW, want[1], scale[1]) < tol
