"""The "space_to_depth" convolution path (stride >= kernel) against the plain reference."""
import numpy as np
import pytest

import kernels.conv_cpu as conv_cpu
from kernels import conv2d_backward, conv2d_forward, conv_space_to_depth, threads

TOL = {np.float32: 2e-5, np.float64: 1e-12}

# (N, C, F, kernel, stride, padding, H, W): odd sizes, padding, rectangular windows, gaps
# between windows (stride > kernel), a last window short of the image's edge, batch 1
CASES = [
    (4, 128, 16, (3, 3), (3, 3), (0, 0), 28, 28),   # melanoma_cnn's conv4, fewer filters
    (5, 3, 4, (3, 3), (3, 3), (1, 1), 11, 13),
    (1, 2, 3, (3, 3), (3, 3), (2, 2), 7, 8),
    (4, 2, 3, (2, 2), (3, 3), (1, 1), 9, 11),
    (3, 4, 5, (2, 3), (3, 4), (1, 2), 10, 13),
    (9, 3, 4, (1, 1), (2, 2), (0, 0), 7, 9),
    (7, 2, 2, (2, 2), (2, 2), (0, 0), 40, 40),      # large images: blocks of one image's rows
    (1, 5, 6, (2, 2), (2, 2), (1, 0), 41, 33),
    # windows 3 wide and 3 apart inside the width (the unrolled copies): padded rows, columns
    # past the last window, other window heights and row strides; batches odd
    (5, 3, 4, (3, 3), (3, 3), (2, 0), 10, 14),
    (3, 2, 3, (2, 3), (4, 3), (1, 0), 13, 11),
    (3, 4, 2, (3, 3), (3, 3), (0, 0), 9, 9),
    # other strides and kernels: 3x3 / 4, 1x1 / 3, 2x2 / 4
    (3, 3, 4, (3, 3), (4, 4), (1, 1), 15, 17),
    (5, 2, 3, (1, 1), (3, 3), (0, 0), 10, 11),
    (3, 3, 2, (2, 2), (4, 4), (1, 0), 13, 9),
]


def rel_err(got, ref, scale):
    return float(np.abs(got - ref).max() / max(np.abs(scale).max(), 1e-30))


@pytest.fixture(params=[1, 2], ids=["1 thread", "2 threads"])
def thread_count(request):
    before = threads.get_num_threads()
    threads.set_num_threads(request.param)
    yield request.param
    threads.set_num_threads(before)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("N, C, F, kernel, stride, padding, H, W", CASES)
def test_space_to_depth_equals_the_reference(N, C, F, kernel, stride, padding, H, W, dtype,
                                             thread_count):
    assert conv_cpu._path(C, kernel, stride, W, padding, F) == "space_to_depth"
    rng = np.random.default_rng(N * H + W)
    x = rng.standard_normal((N, C, H, W)).astype(dtype)
    w = rng.standard_normal((F, C) + kernel).astype(dtype)
    b = rng.standard_normal(F).astype(dtype)
    for relu in (False, True):
        y = conv2d_forward(x, w, b, stride, padding, relu=relu, impl="cpu")
        ref = conv2d_forward(x, w, b, stride, padding, relu=relu, impl="reference")
        scale = conv2d_forward(abs(x), abs(w), abs(b), stride, padding, impl="reference")
        assert y.shape == ref.shape and y.dtype == dtype
        assert rel_err(y, ref, scale) < TOL[dtype], relu
    gy = rng.standard_normal(y.shape).astype(dtype)
    ref = conv2d_backward(gy, x, w, stride, padding, impl="reference")
    scale = conv2d_backward(abs(gy), abs(x), abs(w), stride, padding, impl="reference")
    # both gradients, each alone, and a first layer's (no input gradient)
    for need_gx, need_gW in ((True, True), (True, False), (False, True)):
        got = conv2d_backward(gy, x, w, stride, padding, need_gx=need_gx, need_gW=need_gW,
                              impl="cpu")
        for g, r, sc, wanted, what in zip(got, ref, scale, (need_gx, need_gW, True), "xWb"):
            if not wanted:
                assert g is None, what
                continue
            assert g.shape == r.shape and g.dtype == dtype, what
            assert rel_err(g, r, sc) < TOL[dtype], (what, need_gx, need_gW)


def test_input_gradient_is_written_everywhere():
    """gx is one-to-one from the columns: the pixels that no window reads (the gaps and past the
    last window) must be zero, not left over from the allocation."""
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 3, 13, 16))
    w = rng.standard_normal((4, 3, 2, 2))
    gy = rng.standard_normal((2, 4, 4, 5))
    for _ in range(3):   # fresh buffers may reuse memory that held non-zero values
        gx, _, _ = conv2d_backward(gy, x, w, (3, 3), (0, 0), impl="cpu")
        assert np.all(gx[:, :, 2::3] == 0) and np.all(gx[:, :, :, 2::3] == 0)
        assert np.all(gx[:, :, 12:] == 0) and np.all(gx[:, :, :, 15:] == 0)
        assert np.all(gx[:, :, :12:3, :15:3] != 0)
        ref, _, _ = conv2d_backward(gy, x, w, (3, 3), (0, 0), impl="reference")
        np.testing.assert_allclose(gx, ref, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("N, OH, OW, tasks", [(32, 9, 9, 4), (3, 9, 9, 4), (2, 56, 56, 4),
                                              (1, 3, 3, 2), (32, 1, 1, 2)])
def test_blocking_covers_the_batch_in_wide_tasks(N, OH, OW, tasks):
    B, RB = conv_space_to_depth.blocking(N, OH, OW, tasks)
    assert B >= 1 and 1 <= RB <= OH
    assert B == 1 or RB == OH   # several images only when each is whole
    count = -(-N // B) if B > 1 else N * -(-OH // RB)
    assert count >= min(tasks, N)   # enough tasks to share out (when the batch allows)
    assert B * RB * OW <= max(conv_space_to_depth.TASK_COLUMNS, OW)
