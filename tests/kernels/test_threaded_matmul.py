"""kernels.threaded_matmul (the linear layers' products on Numba threads) against NumPy's products."""
import numpy as np
import pytest

from kernels import threaded_matmul as matmul_module, threads
from kernels.threaded_matmul import matmul

# (M, K, N) and the way `plan` cuts it: NumPy's own product below TINY_FLOPS; several row and
# column blocks with ragged edges; blocks of whole rows for a short K (K = 1 too); blocks
# widened for few rows (an outer product), made taller for few columns; one block with K in two
# chunks (the second one shorter); a row or a column times a matrix (gemv), and a long dot
# product
SHAPES = {(3, 4, 5): "tiny", (33, 700, 300): "blocks", (1100, 100, 530): "blocks",
          (1100, 40, 530): "rows", (600, 1, 700): "rows", (8, 3, 40000): "wide",
          (40000, 100, 8): "tall",
          (20, 5000, 30): "chunks", (1, 300, 20000): "vector", (5000, 300, 1): "vector",
          (1, 200000, 1): "vector"}


def _kind(M, K, N):
    how = matmul_module.plan(M, N, K)
    if how[0] != "blocks":
        return how[0]
    _, bm, bn, kc = how
    if kc < K:
        return "chunks"
    if K <= matmul_module.SMALL_K and bn == N and bm < M:
        return "rows"
    if bn > matmul_module.BLOCK_COLUMNS:
        return "wide"
    return "tall" if bm > matmul_module.BLOCK_ROWS else "blocks"


def test_the_shapes_take_the_paths_they_are_meant_to():
    assert {shape: _kind(*shape) for shape in SHAPES} == SHAPES


def _operands(rng, M, K, N, trans_a, trans_b, dtype):
    A = rng.standard_normal((K, M) if trans_a else (M, K)).astype(dtype)
    B = rng.standard_normal((N, K) if trans_b else (K, N)).astype(dtype)
    want = (A.T if trans_a else A).astype(np.float64) @ (B.T if trans_b else B)
    return A, B, want


@pytest.mark.parametrize("shape", list(SHAPES))
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


@pytest.mark.parametrize("shape", [s for s, kind in SHAPES.items() if kind != "tiny"])
@pytest.mark.parametrize("trans_a", [False, True])
def test_bits_do_not_depend_on_the_thread_count(shape, trans_a):
    rng = np.random.default_rng(1)
    A, B, _ = _operands(rng, *shape, trans_a, True, np.float32)
    before = threads.get_num_threads()
    try:
        threads.set_num_threads(2)
        two = matmul(A, B, trans_a, trans_b=True)
        threads.set_num_threads(1)
        one = matmul(A, B, trans_a, trans_b=True)
    finally:
        threads.set_num_threads(before)
    assert np.array_equal(one, two)
    assert np.array_equal(matmul(A, B, trans_a, trans_b=True), two)


def test_plan_cuts_large_products_into_tasks_of_their_shape_only():
    # padua4's linear layers (batch 32): several blocks, none over BLOCK_ROWS x BLOCK_COLUMNS
    for M, K, N in [(32, 6144, 512), (32, 512, 6144)]:
        _, bm, bn, kc = matmul_module.plan(M, N, K)
        assert kc == K and -(-M // bm) * -(-N // bn) >= 2 and bm * bn <= 512 * 256
    # its weight gradient (K = the batch): four blocks of whole rows
    assert matmul_module.plan(512, 6144, 32) == ("blocks", 128, 6144, 32)
    # the logistic regression's gradient (a (1 x 32) x (32 x 150,528) product): gemv blocks
    how = matmul_module.plan(1, 150528, 32)
    assert how[0] == "vector" and 4 <= -(-150528 // how[1]) <= matmul_module.TASKS


def test_single_blas_holds_every_blas_at_one_thread_and_restores_it():
    from threadpoolctl import threadpool_info
    from kernels.conv_parts import single_blas

    def counts():
        return [i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"]
    before = threads.get_num_threads()
    try:
        threads.set_num_threads(2)
        with single_blas():
            with single_blas():
                assert set(counts()) == {1}
            assert set(counts()) == {1}
        assert set(counts()) == {2}
    finally:
        threads.set_num_threads(before)


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
