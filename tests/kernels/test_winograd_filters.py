"""kernels/winograd_filters.py (the filter transforms on Numba's threads) against the NumPy
Kronecker products they replace, for every tile size and layout."""
import numpy as np
import pytest

import kernels.threads as threads
import kernels.winograd as winograd
import kernels.winograd_filters as winograd_filters

SHAPES = [(1, 1), (3, 5), (64, 7), (33, 130)]  # (F, C): fewer columns than a block, and more


def numpy_transform(W, G):
    """U (α², F, C) = (G ⊗ G) @ W's rows, in NumPy (the kernels' former version)."""
    F, C, R = W.shape[:3]
    K = np.kron(G, G).astype(W.dtype)
    return np.ascontiguousarray((K @ W.reshape(F * C, R * R).T).reshape(K.shape[0], F, C))


def numpy_adjoint(dU, F, C, R, G):
    K = np.kron(G, G).astype(dU.dtype)
    return np.ascontiguousarray((K.T @ dU.reshape(K.shape[0], F * C)).T.reshape(F, C, R, R))


def tolerance(dtype):
    return dict(rtol=1e-5, atol=1e-6) if dtype == np.float32 else dict(rtol=1e-13, atol=1e-13)


@pytest.fixture(params=[1, 2], ids=["1thread", "2threads"])
def thread_count(request):
    before = threads.get_num_threads()
    threads.set_num_threads(request.param)
    yield request.param
    threads.set_num_threads(before)


@pytest.mark.parametrize("key", sorted(winograd.FILTER_MATRICES), ids=str)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_transforms_equal_the_numpy_products(key, dtype, thread_count):
    m, R = key
    G = winograd.FILTER_MATRICES[key]
    rng = np.random.default_rng(m * 10 + R)
    for F, C in SHAPES:
        W = rng.standard_normal((F, C, R, R)).astype(dtype)
        U = winograd.filter_transform(W, m)
        assert U.shape == ((m + R - 1) ** 2, F, C) and U.dtype == dtype
        np.testing.assert_allclose(U, numpy_transform(W, G), **tolerance(dtype))
        flipped = np.ascontiguousarray(W[:, :, ::-1, ::-1].transpose(1, 0, 2, 3))
        Ut = winograd_filters.transform_flipped(W, G)
        assert Ut.shape == ((m + R - 1) ** 2, C, F) and Ut.dtype == dtype
        np.testing.assert_allclose(Ut, numpy_transform(flipped, G), **tolerance(dtype))
        dU = rng.standard_normal(U.shape).astype(dtype)
        gW = winograd.filter_transform_adjoint(dU, F, C, R, m)
        assert gW.shape == W.shape and gW.dtype == dtype
        np.testing.assert_allclose(gW, numpy_adjoint(dU, F, C, R, G), **tolerance(dtype))


def test_adjoint_is_the_transforms_transpose():
    """<U(W), dU> = <W, adjoint(dU)> in float64: the weight gradient's filter pass."""
    rng = np.random.default_rng(5)
    for (m, R), G in winograd.FILTER_MATRICES.items():
        W = rng.standard_normal((6, 70, R, R))
        dU = rng.standard_normal(((m + R - 1) ** 2, 6, 70))
        left = float((winograd_filters.transform(W, G) * dU).sum())
        right = float((W * winograd_filters.adjoint(dU, 6, 70, R, G)).sum())
        assert abs(left - right) < 1e-10 * max(1.0, abs(left))


def test_strided_weights_are_read_as_their_values():
    """A non-contiguous W (a view, as a caller may pass) gives the transform of its values."""
    rng = np.random.default_rng(6)
    W = rng.standard_normal((8, 12, 3, 3)).astype(np.float32)[::2, 1::2]
    for m in (2, 3, 4):
        np.testing.assert_allclose(winograd.filter_transform(W, m),
                                   numpy_transform(np.ascontiguousarray(W),
                                                   winograd.FILTER_MATRICES[m, 3]),
                                   **tolerance(np.float32))
