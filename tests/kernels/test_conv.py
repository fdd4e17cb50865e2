"""Convolution kernels: Numba/BLAS CPU against the reference, PyTorch, finite differences."""
import os
import threading

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

import kernels.conv_cpu as conv_cpu
import kernels.conv_products as conv_products
import kernels.conv_rows as conv_rows
from kernels import conv2d_backward, conv2d_forward

import torch_reference as reference
from cudasim import run_under_simulator

TOL = {np.float32: 1e-5, np.float64: 1e-12}


def rel_err(a, b, scale=None):
    """max |a - b| relative to max |scale| (default: max |b|)."""
    scale = b if scale is None else scale
    return float(np.abs(a - b).max() / max(np.abs(scale).max(), 1e-30))


@st.composite
def conv_cases(draw):
    """Batch 1, odd sizes, stride > kernel, padding > 0, non-square kernels and strides."""
    KH, KW = draw(st.integers(1, 5)), draw(st.integers(1, 5))
    SH, SW = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    PH, PW = draw(st.integers(0, 3)), draw(st.integers(0, 3))
    N, C, F = draw(st.integers(1, 4)), draw(st.integers(1, 4)), draw(st.integers(1, 5))
    H = max(1, KH - 2 * PH) + draw(st.integers(0, 8))
    W = max(1, KW - 2 * PW) + draw(st.integers(0, 8))
    dtype = draw(st.sampled_from([np.float32, np.float64]))
    return (N, C, H, W), (F, C, KH, KW), (SH, SW), (PH, PW), dtype, draw(st.integers(0, 2**31))


def make(case):
    x_shape, w_shape, stride, padding, dtype, seed = case
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(x_shape).astype(dtype)
    W = rng.standard_normal(w_shape).astype(dtype)
    b = rng.standard_normal(w_shape[0]).astype(dtype)
    return x, W, b, rng


# (SHIFT_MIN_CHANNELS, MAX_GRID_WASTE, ROWS_MIN_CHANNELS) that force each of the CPU kernel's
# four paths ("rows" where the kernel is wider than 1, else "grid")
# (the forward's "products" path (kernels/conv_products.py) is forced for the backward's
# "general" path: its backward is the same either way)
PATHS = {"shift": (1, 1e9, 1), "grid": (10**9, 1e9, 10**9), "general": (1, -1.0, 1),
         "rows": (10**9, 1e9, 1), "products": (1, -1.0, 1)}


def set_cpu_path(path, small_blocks):
    """Force one CPU path, and blocks of one output row (the products path: of one filter and
    one pixel) when small_blocks."""
    conv_cpu.SHIFT_MIN_CHANNELS, conv_cpu.MAX_GRID_WASTE, conv_cpu.ROWS_MIN_CHANNELS = \
        PATHS[path]
    conv_cpu.PRODUCTS = "always" if path == "products" else "never"
    conv_cpu.SPACE_TO_DEPTH = path != "general"   # (stride >= kernel: tested on its own)
    blocks = 1 if small_blocks else (2 << 20)
    conv_cpu.COL_BLOCK_BYTES = conv_cpu.OUT_BLOCK_BYTES = conv_cpu.GRID_BLOCK_BYTES = blocks
    conv_cpu.SHIFT_ROWS = 1 if small_blocks else None
    conv_cpu.ROWS_BAND_BYTES = 1 if small_blocks else (512 << 10)
    conv_cpu.ROWS_GW_COLUMNS = 1 if small_blocks else 1024
    conv_products.BLOCK_BYTES = 1 if small_blocks else (512 << 10)
    conv_products.MIN_COLUMNS = conv_products.MIN_FILTERS = 1 if small_blocks else 128


@pytest.fixture
def restore_cpu_settings():
    names = ("SHIFT_MIN_CHANNELS", "MAX_GRID_WASTE", "ROWS_MIN_CHANNELS", "COL_BLOCK_BYTES",
             "OUT_BLOCK_BYTES", "GRID_BLOCK_BYTES", "SHIFT_ROWS", "PRODUCTS", "ROWS_BAND_BYTES",
             "ROWS_GW_COLUMNS", "SPACE_TO_DEPTH", "WINOGRAD_F4_MIN_CHANNELS")
    saved = {name: getattr(conv_cpu, name) for name in names}
    kept = {name: getattr(conv_products, name)
            for name in ("BLOCK_BYTES", "MIN_COLUMNS", "MIN_FILTERS")}
    yield
    for name, value in saved.items():
        setattr(conv_cpu, name, value)
    for name, value in kept.items():
        setattr(conv_products, name, value)


@settings(max_examples=50, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])  # each example sets all
@given(conv_cases(), st.sampled_from(sorted(PATHS)), st.booleans())
def test_cpu_equals_reference(restore_cpu_settings, case, path, small_blocks):
    x, W, b, rng = make(case)
    stride, padding, dtype = case[2], case[3], case[4]
    set_cpu_path(path, small_blocks)
    # NOTE: the error of a sum is bounded by eps times the sum of the magnitudes of its terms,
    # so errors are measured relative to the same sums taken over absolute values.
    y_ref = conv2d_forward(x, W, b, stride, padding, impl="reference")
    y_abs = conv2d_forward(abs(x), abs(W), abs(b), stride, padding, impl="reference")
    y = conv2d_forward(x, W, b, stride, padding, impl="cpu")
    assert y.shape == y_ref.shape and y.dtype == dtype
    assert rel_err(y, y_ref, y_abs) < TOL[dtype]
    gy = rng.standard_normal(y.shape).astype(dtype)
    ref = conv2d_backward(gy, x, W, stride, padding, impl="reference")
    ref_abs = conv2d_backward(abs(gy), abs(x), abs(W), stride, padding, impl="reference")
    got = conv2d_backward(gy, x, W, stride, padding, impl="cpu")
    for g, r, r_abs in zip(got, ref, ref_abs):
        assert g.shape == r.shape and g.dtype == dtype
        assert rel_err(g, r, r_abs) < TOL[dtype]
    gx, gW, _ = conv2d_backward(gy, x, W, stride, padding, need_gx=False, need_gb=False,
                                impl="cpu")
    assert gx is None and rel_err(gW, ref[1], ref_abs[1]) < TOL[dtype]


@pytest.mark.parametrize("impl", ["reference", "shift", "grid", "general", "rows", "products"])
def test_gradient_finite_differences(restore_cpu_settings, impl):
    """Float64 central differences of L = Σ gy·conv2d(x, W, b) at an odd geometry."""
    if impl in PATHS:
        set_cpu_path(impl, small_blocks=True)
        impl = "cpu"
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 3, 7, 6))
    W = rng.standard_normal((4, 3, 3, 2))
    b = rng.standard_normal(4)
    stride, padding = ((2, 1) if conv_cpu.MAX_GRID_WASTE < 0 else (1, 1)), (1, 2)
    gy = rng.standard_normal(conv2d_forward(x, W, b, stride, padding, impl=impl).shape)
    gx, gW, gb = conv2d_backward(gy, x, W, stride, padding, impl=impl)

    def loss(x_, W_, b_):
        return np.vdot(gy, conv2d_forward(x_, W_, b_, stride, padding, impl=impl))

    h = 1e-6
    for arr, grad in ((x, gx), (W, gW), (b, gb)):
        num = np.empty_like(arr)
        for k in range(arr.size):
            old = arr.flat[k]
            arr.flat[k] = old + h
            up = loss(x, W, b)
            arr.flat[k] = old - h
            down = loss(x, W, b)
            arr.flat[k] = old
            num.flat[k] = (up - down) / (2 * h)
        np.testing.assert_allclose(grad, num, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("impl", ["reference", "shift", "grid", "general", "rows", "products"])
def test_need_flags_and_relu(restore_cpu_settings, impl):
    if impl in PATHS:
        set_cpu_path(impl, small_blocks=False)
        impl = "cpu"
    rng = np.random.default_rng(1)
    x = rng.standard_normal((3, 2, 6, 5)).astype(np.float32)
    W = rng.standard_normal((4, 2, 3, 3)).astype(np.float32)
    b = rng.standard_normal(4).astype(np.float32)
    y = conv2d_forward(x, W, b, 1, 1, impl=impl)
    y_relu = conv2d_forward(x, W, b, 1, 1, relu=True, impl=impl)
    np.testing.assert_array_equal(y_relu, np.maximum(y, 0))
    y_nob = conv2d_forward(x, W, None, 1, 1, impl=impl)
    assert rel_err(y_nob + b.reshape(1, 4, 1, 1), y) < 1e-6
    gy = rng.standard_normal(y.shape).astype(np.float32)
    full = conv2d_backward(gy, x, W, 1, 1, impl=impl)
    for need in [(False, True, True), (True, False, False), (False, False, True)]:
        got = conv2d_backward(gy, x, W, 1, 1, *need, impl=impl)
        for flag, g, r in zip(need, got, full):
            assert (g is None) == (not flag)
            if flag:
                assert rel_err(g, r) < 1e-6


@pytest.mark.parametrize("case", reference.cases("conv"))
def test_torch_agrees(case):
    """PyTorch's conv2d and its gradients, stored by bench/torch_fixtures.py."""
    key = f"conv/{case}"
    x, W, b, gy = (reference.load(f"{key}/{name}") for name in ("x", "W", "b", "gy"))
    stride, padding = (tuple(int(v) for v in reference.load(f"{key}/{name}"))
                       for name in ("stride", "padding"))
    tol = TOL[x.dtype.type]
    y = conv2d_forward(x, W, b, stride, padding)
    assert rel_err(y, reference.load(f"{key}/y")) < tol
    for g, name in zip(conv2d_backward(gy, x, W, stride, padding), ("gx", "gW", "gb")):
        assert rel_err(g, reference.load(f"{key}/{name}")) < tol, name


def test_errors_name_the_problem():
    x = np.ones((2, 3, 5, 5), np.float32)
    W = np.ones((4, 3, 3, 3), np.float32)
    with pytest.raises(ValueError, match="3 channels.*expects 2"):
        conv2d_forward(x, np.ones((4, 2, 3, 3), np.float32))
    with pytest.raises(ValueError, match="output size would be"):
        conv2d_forward(x, np.ones((4, 3, 7, 7), np.float32))
    with pytest.raises(ValueError, match="b must have shape"):
        conv2d_forward(x, W, np.ones(3, np.float32))
    with pytest.raises(ValueError, match="float32 or both float64"):
        conv2d_forward(x, W.astype(np.float64))
    with pytest.raises(ValueError, match="gy has shape"):
        conv2d_backward(np.ones((2, 4, 5, 5), np.float32), x, W)
    with pytest.raises(ValueError, match="stride"):
        conv2d_forward(x, W, stride=(1, 2, 3))


def test_non_contiguous_input_and_other_threads():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((5, 3, 9, 8)).astype(np.float32).transpose(0, 1, 3, 2)
    W = rng.standard_normal((4, 3, 3, 3)).astype(np.float32)
    want = conv2d_forward(x, W, None, 1, 1, impl="reference")
    results = []
    workers = [threading.Thread(target=lambda: results.append(conv2d_forward(x, W, None, 1, 1)))
               for _ in range(3)]
    for t in workers:
        t.start()
    for t in workers:
        t.join()
    assert len(results) == 3
    for y in results:
        assert rel_err(y, want) < 1e-5


def test_gpu_kernels_under_cuda_simulator():
    """The numba.cuda im2col/col2im and the GPU conv path equal the CPU kernels in the simulator."""
    run_under_simulator(os.path.join(os.path.dirname(os.path.abspath(__file__)), "cudasim_conv.py"))


def test_blas_threads_restored_after_concurrent_calls():
    from threadpoolctl import threadpool_info
    rng = np.random.default_rng(4)
    x = rng.standard_normal((4, 16, 12, 11)).astype(np.float32)
    W = rng.standard_normal((16, 16, 3, 3)).astype(np.float32)
    conv2d_forward(x, W)  # loads every BLAS the kernels use
    before = [(i["filepath"], i["num_threads"]) for i in threadpool_info()
              if i["user_api"] == "blas"]
    workers = [threading.Thread(target=lambda: [conv2d_backward(conv2d_forward(x, W), x, W)
                                                for _ in range(3)]) for _ in range(3)]
    for t in workers:
        t.start()
    for t in workers:
        t.join()
    after = [(i["filepath"], i["num_threads"]) for i in threadpool_info()
             if i["user_api"] == "blas"]
    assert after == before


@pytest.mark.parametrize("C,kernel,stride", [(32, 3, 1), (3, 3, 1), (8, 3, 3)])
def test_backward_is_bit_reproducible(C, kernel, stride):
    """Training must repeat exactly (resume, seeds): the same inputs give the same bits."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((9, C, 13, 17)).astype(np.float32)
    W = rng.standard_normal((16, C, kernel, kernel)).astype(np.float32)
    gy = rng.standard_normal(conv2d_forward(x, W, None, stride, 1).shape).astype(
        np.float32)
    first = conv2d_backward(gy, x, W, stride, 1)
    for _ in range(4):
        again = conv2d_backward(gy, x, W, stride, 1)
        for a, b in zip(first, again):
            np.testing.assert_array_equal(a, b)


def test_path_rule_takes_rows_for_wide_kernels_on_few_channels():
    # melanoma_cnn's first layer: 3 channels, 7x7 on 230x230 (padded outside the layer)
    assert conv_cpu._path(3, (7, 7), (1, 1), 230, (0, 0), 32) == "rows"
    assert conv_cpu._path(3, (3, 3), (1, 1), 128, (1, 1), 16) == "grid"      # C*KW = 9
    assert conv_cpu._path(3, (7, 7), (2, 2), 230, (0, 0), 32) == "general"   # strided
    assert conv_cpu._path(16, (7, 7), (1, 1), 230, (0, 0), 32) == "shift"


def test_path_rule_takes_winograd_from_16_channels_on_4x4_tiles(restore_cpu_settings):
    # baseline_cnn's 16->32 layer on 64x64: F(4x4, 3x3) tiles, so Winograd from 16 channels
    assert conv_cpu.winograd.tile_size(3, 64, 64) == 4
    assert conv_cpu._path(16, (3, 3), (1, 1), 64, (1, 1), 32) == "winograd"
    assert conv_cpu.forward_path((32, 16, 64, 64), (32, 16, 3, 3), (1, 1), (1, 1)) == \
        "winograd"
    assert conv_cpu._path(15, (3, 3), (1, 1), 64, (1, 1), 32) != "winograd"
    assert conv_cpu._path(16, (3, 3), (1, 1), 64, (1, 1), 16) != "winograd"   # F < 32
    # smaller tiles (9 rows: F(3x3, 3x3) or F(2x2, 3x3)) and 5x5 layers: from 32 channels
    assert conv_cpu.winograd.tile_size(3, 9, 100) != 4
    assert conv_cpu._path(16, (3, 3), (1, 1), 100, (1, 1), 32, H=9) == "shift"
    assert conv_cpu._path(31, (5, 5), (1, 1), 64, (2, 2), 32) == "shift"
    assert conv_cpu._path(32, (5, 5), (1, 1), 64, (2, 2), 32) == "winograd"
    conv_cpu.WINOGRAD_F4_MIN_CHANNELS = 32
    assert conv_cpu._path(16, (3, 3), (1, 1), 64, (1, 1), 32) == "shift"


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_rows_layout_and_its_adjoint(dtype):
    """The rows layout places x's horizontal taps as channels (every band of rows as the whole
    padded image has it); _fold_rows is its exact adjoint."""
    rng = np.random.default_rng(4)
    x = rng.standard_normal((2, 3, 5, 6)).astype(dtype)
    KW, PH, PW = 4, 2, 2
    OW = x.shape[3] + 2 * PW - KW + 1
    X = conv_rows.expand_reference(x, KW, PH, PW, OW)
    padded = np.pad(x, ((0, 0), (0, 0), (PH, PH), (PW, PW)))
    for c in range(3):
        for j in range(KW):
            np.testing.assert_array_equal(X[:, c * KW + j], padded[:, c, :, j:j + OW])
    for h0, h1 in ((0, 9), (0, 3), (2, 7), (6, 9), (4, 5)):
        band = np.full((3 * KW, (h1 - h0) * OW), np.nan, dtype)
        conv_rows._expand_band(x, 1, KW, PH, PW, OW, h0, h1, band)
        np.testing.assert_array_equal(band, X[1, :, h0:h1].reshape(3 * KW, -1))
    interior = np.ascontiguousarray(X[:, :, PH:PH + x.shape[2]])
    gX = rng.standard_normal(interior.shape).astype(dtype)
    gx = conv_cpu._fold_rows(gX, KW, PW, np.empty(x.shape, dtype))
    np.testing.assert_allclose(np.vdot(gX, interior), np.vdot(gx, x),
                               rtol=1e-5 if dtype == np.float32 else 1e-12)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("N, band_bytes, columns", [(1, 1, 1), (3, 2000, 1), (5, 1, 1),
                                                     (4, 1 << 20, 1024),
                                                     (9, 3000, 20)])
def test_rows_bands_equal_reference(restore_cpu_settings, N, band_bytes, columns, dtype):
    """Bands of one row up to the whole image, tasks per image and per band (few images),
    products of one row and of several: the rows path's forward, weight and input gradient
    against the reference, in float32 and float64."""
    set_cpu_path("rows", small_blocks=False)
    conv_cpu.ROWS_BAND_BYTES, conv_cpu.ROWS_GW_COLUMNS = band_bytes, columns
    rng = np.random.default_rng(N)
    x = rng.standard_normal((N, 3, 13, 11)).astype(dtype)
    W = rng.standard_normal((8, 3, 7, 5)).astype(dtype)
    b = rng.standard_normal(8).astype(dtype)
    assert conv_cpu.forward_path(x.shape, W.shape, (1, 1), (3, 1)) == "rows"
    y = conv2d_forward(x, W, b, 1, (3, 1), relu=True, impl="cpu")
    ref = conv2d_forward(x, W, b, 1, (3, 1), relu=True, impl="reference")
    assert y.dtype == dtype and rel_err(y, ref) < TOL[dtype]
    gy = rng.standard_normal(y.shape).astype(dtype)
    got = conv2d_backward(gy, x, W, 1, (3, 1), impl="cpu")
    want = conv2d_backward(gy, x, W, 1, (3, 1), impl="reference")
    for g, r in zip(got, want):
        assert g.dtype == dtype and rel_err(g, r) < 10 * TOL[dtype]
    again = conv2d_backward(gy, x, W, 1, (3, 1), need_gx=False, need_gb=False, impl="cpu")
    np.testing.assert_array_equal(again[1], got[1])   # the same bits however tasks ran


def test_forward_path_rule_takes_products_for_pointwise_layers_and_small_batches():
    T = conv_cpu.numba.get_num_threads()
    path = conv_cpu._forward_path_of
    assert path(64, 256, (1, 1), (1, 1), 56, (0, 0), 64, 56, 56) == "products"
    assert path(64, 256, (1, 1), (2, 2), 56, (0, 0), 512, 28, 28) == "space_to_depth"
    assert path(64, 128, (3, 3), (1, 1), 28, (1, 1), 128, 28, 28) == "winograd"
    assert path(2 * T, 512, (3, 3), (1, 1), 7, (1, 1), 512, 7, 7) == "winograd"
    assert path(1, 512, (3, 3), (1, 1), 7, (1, 1), 512, 7, 7) == "products"
    assert path(1, 64, (3, 3), (1, 1), 56, (1, 1), 64, 56, 56) == "winograd"   # 784 tiles
    assert path(1, 128, (3, 3), (2, 2), 56, (1, 1), 128, 28, 28) == "products"
    assert path(1, 3, (7, 7), (2, 2), 224, (3, 3), 64, 112, 112) == "general"


@pytest.mark.parametrize("N", [1, 5])
def test_pointwise_forward_allocates_only_its_output(N):
    """A 1x1 stride-1 layer is a product on the image as it stands: no column matrix, no
    padded copy (NumPy's traced peak is the output, plus a few kB)."""
    import tracemalloc
    rng = np.random.default_rng(0)
    x = rng.standard_normal((N, 96, 20, 30)).astype(np.float32)
    W = rng.standard_normal((64, 96, 1, 1)).astype(np.float32)
    b = rng.standard_normal(64).astype(np.float32)
    conv2d_forward(x, W, b, 1, 0, impl="cpu")
    tracemalloc.start()
    y = conv2d_forward(x, W, b, 1, 0, relu=True, impl="cpu")
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < y.nbytes + W.nbytes + (64 << 10)
    ref = conv2d_forward(x, W, b, 1, 0, relu=True, impl="reference")
    assert rel_err(y, ref) < 1e-5


# F(4x4, 3x3) rounds more than the direct sums (its transforms scale by up to 8): the Winograd
# tests' bounds (tests/kernels/test_winograd.py)
F4_TOL = {np.float32: 3e-5, np.float64: 1e-13}


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("padding", [0, 1, 2])
@pytest.mark.parametrize("threads", [1, 2])
def test_winograd_at_16_channels_equals_reference(restore_cpu_settings, dtype, padding, threads):
    """A 16-channel 3x3 layer on F(4x4, 3x3) tiles (the path rule sends baseline_cnn's 16->32
    layer there): forward, each gradient alone, both, and need_gx=False, against the plain
    reference, odd sizes, a batch that the threads do not divide."""
    import kernels.threads as kthreads
    rng = np.random.default_rng(padding)
    x = rng.standard_normal((5, 16, 19, 21)).astype(dtype)
    W = (rng.standard_normal((32, 16, 3, 3)) * 0.1).astype(dtype)
    b = rng.standard_normal(32).astype(dtype)
    assert conv_cpu.forward_path(x.shape, W.shape, (1, 1), (padding, padding)) == "winograd"
    before = kthreads.get_num_threads()
    kthreads.set_num_threads(min(threads, conv_cpu.numba.config.NUMBA_NUM_THREADS))
    try:
        y = conv2d_forward(x, W, b, 1, padding, impl="cpu")
        y_abs = conv2d_forward(abs(x), abs(W), abs(b), 1, padding, impl="reference")
        assert y.dtype == dtype
        assert rel_err(y, conv2d_forward(x, W, b, 1, padding, impl="reference"), y_abs) < \
            F4_TOL[dtype]
        gy = rng.standard_normal(y.shape).astype(dtype)
        ref = conv2d_backward(gy, x, W, 1, padding, impl="reference")
        ref_abs = conv2d_backward(abs(gy), abs(x), abs(W), 1, padding, impl="reference")
        for need_gx, need_gW in [(True, True), (True, False), (False, True)]:
            got = conv2d_backward(gy, x, W, 1, padding, need_gx=need_gx, need_gW=need_gW,
                                  impl="cpu")
            for need, g, r, r_abs in zip((need_gx, need_gW, True), got, ref, ref_abs):
                if not need:
                    assert g is None
                else:
                    assert g.dtype == dtype and rel_err(g, r, r_abs) < F4_TOL[dtype]
    finally:
        kthreads.set_num_threads(before)
