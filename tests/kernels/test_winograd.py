"""Winograd F(2x2, 3x3) convolution against the reference, through the CPU kernel's own path."""
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

import kernels.conv_cpu as conv_cpu
import kernels.winograd as winograd
from kernels import conv2d_backward, conv2d_forward

TOL = {np.float32: 1e-5, np.float64: 1e-12}


def rel_err(a, b):
    """max |a - b| relative to max |b|."""
    return float(np.abs(a - b).max() / max(np.abs(b).max(), 1e-30))


@pytest.fixture
def small_channels():
    """The Winograd path for any layer it applies to (the layers drawn here are small)."""
    names = ("WINOGRAD", "WINOGRAD_MIN_CHANNELS", "WINOGRAD_MIN_FILTERS")
    blocks = ("TILE_BLOCK_BYTES", "MIN_COLUMNS", "GW_MIN_COLUMNS")
    saved = [getattr(conv_cpu, name) for name in names], [getattr(winograd, n) for n in blocks]
    for name, value in zip(names, (True, 1, 1)):
        setattr(conv_cpu, name, value)
    yield
    for name, value in zip(names, saved[0]):
        setattr(conv_cpu, name, value)
    for name, value in zip(blocks, saved[1]):
        setattr(winograd, name, value)


@st.composite
def layers(draw):
    """Batch 1 and below the thread count, odd and non-square images, padding 0, 1 or 2."""
    PH, PW = draw(st.integers(0, 2)), draw(st.integers(0, 2))
    N, C, F = draw(st.integers(1, 5)), draw(st.integers(1, 9)), draw(st.integers(1, 9))
    H = max(1, 3 - 2 * PH) + draw(st.integers(0, 12))
    W = max(1, 3 - 2 * PW) + draw(st.integers(0, 12))
    dtype = draw(st.sampled_from([np.float32, np.float64]))
    rng = np.random.default_rng(draw(st.integers(0, 2**31)))
    x = rng.standard_normal((N, C, H, W)).astype(dtype)
    Wt = rng.standard_normal((F, C, 3, 3)).astype(dtype)
    b = rng.standard_normal(F).astype(dtype) if draw(st.booleans()) else None
    return x, Wt, b, (PH, PW), draw(st.booleans()), draw(st.booleans()), rng


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(layers())
def test_winograd_equals_reference(small_channels, layer):
    x, W, b, padding, relu, small_blocks, rng = layer
    N, C, H, Wd = x.shape
    assert conv_cpu._path(C, (3, 3), (1, 1), Wd, padding, W.shape[0]) == "winograd"
    if small_blocks:  # one tile row per block; else small images side by side
        winograd.TILE_BLOCK_BYTES = winograd.MIN_COLUMNS = winograd.GW_MIN_COLUMNS = 1
    tol = TOL[x.dtype.type]
    y_ref = conv2d_forward(x, W, b, 1, padding, relu=relu, impl="reference")
    y = conv2d_forward(x, W, b, 1, padding, relu=relu, impl="cpu")
    assert y.shape == y_ref.shape and y.dtype == x.dtype
    assert rel_err(y, y_ref) < tol
    gy = rng.standard_normal(y.shape).astype(x.dtype)
    want = conv2d_backward(gy, x, W, 1, padding, impl="reference")
    # NOTE: conv_cpu hands batches smaller than the thread count to another path; the
    # Winograd module itself takes any batch.
    got = winograd.backward(gy, x, W, (3, 3), (1, 1), padding, *y.shape[2:], True, True)
    for g, g_ref in zip(got, want):
        assert g.shape == g_ref.shape and g.dtype == x.dtype
        assert rel_err(g, g_ref) < tol
    for g, g_ref in zip(conv2d_backward(gy, x, W, 1, padding, impl="cpu"), want):
        assert rel_err(g, g_ref) < tol


def test_need_flags_skip_work(small_channels):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((4, 3, 7, 6)).astype(np.float32)
    W = rng.standard_normal((5, 3, 3, 3)).astype(np.float32)
    gy = rng.standard_normal((4, 5, 7, 6)).astype(np.float32)
    gx, gW = winograd.backward(gy, x, W, (3, 3), (1, 1), (1, 1), 7, 6, False, True)
    assert gx is None and gW.shape == W.shape
    gx, gW = winograd.backward(gy, x, W, (3, 3), (1, 1), (1, 1), 7, 6, True, False)
    assert gW is None and gx.shape == x.shape


def test_backward_is_bit_reproducible(small_channels):
    rng = np.random.default_rng(2)
    x = rng.standard_normal((7, 20, 13, 11)).astype(np.float32)
    W = rng.standard_normal((24, 20, 3, 3)).astype(np.float32)
    gy = rng.standard_normal((7, 24, 13, 11)).astype(np.float32)
    assert conv_cpu._path(20, (3, 3), (1, 1), 11, (1, 1), 24) == "winograd"
    first = conv2d_backward(gy, x, W, 1, 1, impl="cpu")
    for _ in range(3):
        again = conv2d_backward(gy, x, W, 1, 1, impl="cpu")
        for a, b in zip(first, again):
            assert np.array_equal(a, b)


def test_path_rule():
    assert conv_cpu.WINOGRAD
    assert conv_cpu._path(64, (3, 3), (1, 1), 50, (1, 1), 64) == "winograd"
    assert conv_cpu._path(3, (3, 3), (1, 1), 100, (1, 1), 32) == "grid"  # RGB input
    assert conv_cpu._path(16, (3, 3), (1, 1), 64, (1, 1), 32) == "shift"  # does not pay
    assert conv_cpu._path(64, (3, 3), (2, 2), 50, (1, 1), 64) != "winograd"
    assert conv_cpu._path(64, (3, 3), (1, 1), 50, (3, 3), 64) != "winograd"
    assert conv_cpu._path(64, (5, 5), (1, 1), 50, (2, 2), 64) != "winograd"


def test_one_image_split_across_threads():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((1, 64, 19, 26)).astype(np.float32)
    W = (rng.standard_normal((64, 64, 3, 3)) * 0.1).astype(np.float32)
    b = rng.standard_normal(64).astype(np.float32)
    assert conv_cpu._path(64, (3, 3), (1, 1), 26, (1, 1), 64) == "winograd"
    y = conv2d_forward(x, W, b, 1, 1, relu=True, impl="cpu")
    assert rel_err(y, conv2d_forward(x, W, b, 1, 1, relu=True, impl="reference")) < 1e-5
    gy = rng.standard_normal(y.shape).astype(np.float32)
    want = conv2d_backward(gy, x, W, 1, 1, impl="reference")
    for g, g_ref in zip(conv2d_backward(gy, x, W, 1, 1, impl="cpu"), want):
        assert rel_err(g, g_ref) < 1e-5
