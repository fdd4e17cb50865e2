"""The F(2x2, 5x5) matrices and tile transforms (the convolution itself: test_winograd.py)."""
import numpy as np
from numba import types

import kernels.winograd5 as winograd5

AT, G, BT = winograd5.AT, winograd5.G, winograd5.BT


def test_matrices_compute_two_outputs_of_five_taps():
    # NOTE: y[i] = Σₖ g[k] d[i + k] for every g and d exactly when tap k and sample l give
    # Aᵀ (G[:, k] ⊙ Bᵀ[:, l]) = [l == i + k] for i = 0, 1.
    for k in range(5):
        for sample in range(6):
            want = [float(sample == i + k) for i in range(2)]
            np.testing.assert_allclose(AT @ (G[:, k] * BT[:, sample]), want, atol=1e-15)


def test_input_transform_is_bt_d_b():
    rng = np.random.default_rng(0)
    d = rng.standard_normal((6, 6))
    rows = np.zeros((8, 6))  # six combined rows, two of scratch
    V = np.zeros((36, 3))
    winograd5.combine_rows(*d, 6, rows, 0)
    winograd5.combine_columns(rows, 1, V, 2)  # one tile, in column 2
    np.testing.assert_allclose(V[:, 2], (BT @ d @ BT.T).ravel(), rtol=1e-14, atol=1e-13)
    assert not V[:, :2].any()


def test_output_transform_and_its_adjoint():
    rng = np.random.default_rng(1)
    M = rng.standard_normal((36, 5))
    S = np.zeros((16, 3))
    winograd5.output_row(M, 1, 3, S)  # the tiles in columns 1, 2 and 3
    for tj in range(3):
        want = AT @ M[:, 1 + tj].reshape(6, 6) @ AT.T
        np.testing.assert_allclose(S[:4, tj].reshape(2, 2), want, rtol=1e-14)
    dY = rng.standard_normal((2, 2))
    dM = np.zeros((36, 2))
    winograd5.adjoint_tile(dM, 0, dY[0, 0], dY[0, 1], dY[1, 0], dY[1, 1])
    np.testing.assert_allclose(dM[:, 0].reshape(6, 6), AT.T @ dY @ AT, rtol=1e-14)
    assert not dM[:, 1].any()


def test_float32_transforms_stay_float32():
    """Numba computes the float32 transforms in float32 (not widened to float64 by constants)."""
    for transform, n in ((winograd5._bt, 6), (winograd5._at, 6), (winograd5._a, 2)):
        transform(*np.ones(n, np.float32))
        returns = {sig.return_type for sig in transform.nopython_signatures}
        assert all(t.dtype == types.float32 for t in returns), (transform, returns)
