"""kernels.threaded_matmul (the linear layers' products on Numba threads) against NumPy's products."""
import numpy as np
import pytest

from kernels import threaded_matmul as matmul_module, threads
from kernels.threaded_matmul import matmul

# (M, K, N): one call below MIN_FLOPS; several row and column blocks with ragged edges; K = 1
SHAPES = [(3, 4, 5), (33, 700, 300), (1100, 40, 530), (64, 1, 600)]


def _operands(rng, M, K, N, trans_a, trans_b, dtype):
    A = rng.standard_normal((K, M) if trans_a else (M, K)).astype(dtype)
    B = rng.standard_normal((N, K) if trans_b else (K, N)).astype(dtype)
    want = (A.T if trans_a else A).astype(np.float64) @ (B.T if trans_b else B)
    return A, B, want


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("trans_a", [False, True])
@pytest.mark.parametrize("trans_b", [False, True])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_equals_numpy(shape, trans_a, trans_b, dtype):
    rng = np.random.default_rng(0)
    A, B, want = _operands(rng, *shape, trans_a, trans_b, dtype)
    got = matmul(A, B, trans_a, trans_b)
    assert got.shape == want.shape and got.dtype == dtype
    scale = np.abs(A).max() * np.abs(B).max() * shape[1]
    tol = 1e-6 if dtype == np.float32 else 1e-14
    assert np.abs(got - want).max() <= tol * scale


def test_blocks_are_used_and_bits_do_not_depend_on_the_thread_count():
    M, K, N = 1100, 40, 530
    assert M > matmul_module.BLOCK_ROWS and N > matmul_module.BLOCK_COLUMNS
    assert 2 * M * N * K >= matmul_module.MIN_FLOPS
    rng = np.random.default_rng(1)
    A, B, _ = _operands(rng, M, K, N, False, True, np.float32)
    many = matmul(A, B, trans_b=True)
    before = threads.get_num_threads()
    try:
        threads.set_num_threads(1)
        one = matmul(A, B, trans_b=True)
    finally:
        threads.set_num_threads(before)
    assert np.array_equal(one, many)
    assert np.array_equal(matmul(A, B, trans_b=True), many)


def test_strided_and_empty_operands():
    rng = np.random.default_rng(2)
    A = rng.standard_normal((40, 90))[:, ::3]      # rows not contiguous
    B = rng.standard_normal((30, 20))
    np.testing.assert_allclose(matmul(A, B), A @ B, rtol=1e-12, atol=1e-12)
    row = rng.standard_normal(30)
    for X in (np.broadcast_to(row, (40, 30)), A[::-1], A[:, ::-1]):  # stride 0, negative
        np.testing.assert_allclose(matmul(X, B), X @ B, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(matmul(B, X, trans_a=True, trans_b=True), B.T @ X.T,
                                   rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(matmul(np.ones((3, 0)), np.ones((0, 4))), np.zeros((3, 4)))
    assert matmul(np.ones((0, 5)), np.ones((5, 4))).shape == (0, 4)


def test_bad_operands_are_refused_naming_them():
    with pytest.raises(ValueError, match="float32.*float64"):
        matmul(np.ones((2, 3), np.float32), np.ones((3, 4)))
    with pytest.raises(ValueError, match=r"\(2, 3\).*\(4, 4\).*do not match"):
        matmul(np.ones((2, 3)), np.ones((4, 4)))
    with pytest.raises(ValueError, match="2-D"):
        matmul(np.ones(3), np.ones((3, 4)))
    with pytest.raises(ValueError, match="int64"):
        matmul(np.ones((2, 3), np.int64), np.ones((3, 4), np.int64))
