"""The Winograd variants' matrices and block transforms, F(2x2, 3x3), F(3x3, 3x3),
F(4x4, 3x3) and F(2x2, 5x5) (the convolution itself: test_winograd.py)."""
import numpy as np
import pytest
from numba import types

import kernels.winograd as winograd
import kernels.winograd23 as winograd23
import kernels.winograd25 as winograd25
import kernels.winograd33 as winograd33
import kernels.winograd43 as winograd43

# (module, output tile m, kernel size r); α = m + r - 1
VARIANTS = [(winograd23, 2, 3), (winograd33, 3, 3), (winograd43, 4, 3), (winograd25, 2, 5)]
IDS = ["F2x2_3x3", "F3x3_3x3", "F4x4_3x3", "F2x2_5x5"]


@pytest.mark.parametrize("module,m,r", VARIANTS, ids=IDS)
def test_matrices_compute_m_outputs_of_r_taps(module, m, r):
    # NOTE: y[i] = Σₖ g[k] d[i + k] for every g and d exactly when tap k and sample l give
    # Aᵀ (G[:, k] ⊙ Bᵀ[:, l]) = [l == i + k] for i < m.
    AT, G, BT = module.AT, module.G, module.BT
    assert AT.shape == (m, m + r - 1) and G.shape == (m + r - 1, r) and BT.shape == (m + r - 1,) * 2
    for k in range(r):
        for sample in range(m + r - 1):
            want = [float(sample == i + k) for i in range(m)]
            np.testing.assert_allclose(AT @ (G[:, k] * BT[:, sample]), want, atol=1e-15)
    assert winograd.FILTER_MATRICES[m, r] is G


@pytest.mark.parametrize("module,m,r", VARIANTS, ids=IDS)
def test_input_transform_is_bt_d_b(module, m, r):
    alpha, rng = m + r - 1, np.random.default_rng(0)
    count = 2  # two tiles on one combined row, wide enough for their α columns
    Wv = m * winograd.virtual_tiles(count, m, alpha)
    d = rng.standard_normal((alpha, Wv + 2 * m))
    # rows: image rows split by row modulo m, row m*i + k' at plane[k', i*Wv:]
    plane = np.zeros((m, 4 * (Wv + 2 * m)))
    for h in range(alpha):
        plane[h % m, (h // m) * Wv:(h // m) * Wv + Wv] = d[h, :Wv]
    rows = np.zeros((alpha, Wv + 2 * m))
    module.combine_rows(plane, Wv, Wv, rows)
    np.testing.assert_allclose(rows[:, :Wv], module.BT @ d[:, :Wv], rtol=1e-13, atol=1e-13)
    V = np.zeros((alpha * alpha, 5))
    for a in range(alpha):
        ph = np.zeros((4, count + 3))
        for k in range(m):
            ph[k, :count + 2] = rows[a, k:m * (count + 2):m][:count + 2]
        module.columns(ph, count, V, alpha * a, 1)  # tiles in columns 1 and 2
    for u in range(count):
        got = V[:, 1 + u].reshape(alpha, alpha)
        np.testing.assert_allclose(got, module.BT @ d[:, m * u:m * u + alpha] @ module.BT.T,
                                   rtol=1e-12, atol=1e-12)
    assert not V[:, 0].any() and not V[:, 3:].any()


@pytest.mark.parametrize("module,m,r", VARIANTS, ids=IDS)
def test_output_transform_and_its_adjoint(module, m, r):
    alpha, rng = m + r - 1, np.random.default_rng(1)
    M = rng.standard_normal((alpha * alpha, 5))
    S = np.zeros((winograd43.SCRATCH_ROWS, 3))
    module.output(M, 1, 3, S)  # the tiles in columns 1, 2 and 3
    for t in range(3):
        want = module.AT @ M[:, 1 + t].reshape(alpha, alpha) @ module.AT.T
        np.testing.assert_allclose(S[:m * m, t].reshape(m, m), want, rtol=1e-13, atol=1e-13)
    dY = rng.standard_normal((m, m, 2))
    S[:m * m, :2] = dY.reshape(m * m, 2)
    dM = np.zeros((alpha * alpha, 4))
    module.adjoint(S, 2, dM, 1)  # into columns 1 and 2
    for t in range(2):
        np.testing.assert_allclose(dM[:, 1 + t].reshape(alpha, alpha),
                                   module.AT.T @ dY[:, :, t] @ module.AT, rtol=1e-13, atol=1e-13)
    assert not dM[:, 0].any() and not dM[:, 3].any()


@pytest.mark.parametrize("module,m,r", VARIANTS, ids=IDS)
def test_float32_transforms_stay_float32(module, m, r):
    """Numba computes the float32 transforms in float32 (not widened to float64 by constants)."""
    alpha = m + r - 1
    for transform, n in ((module._bt, alpha), (module._at, alpha), (module._a, m)):
        transform(*np.ones(n, np.float32))
        returns = {sig.return_type for sig in transform.nopython_signatures}
        assert all(t.dtype == types.float32 for t in returns), (transform, returns)


def test_f3_real_tiles_are_the_virtual_layout_without_its_extra_tiles():
    """winograd33's columns_real, split_real and interleave_real (F(3x3, 3x3) leaves each tile
    row's extra tile out of V and M) give columns, split and interleave's columns for the real
    tiles only: 3 tile rows of 4 real tiles and 1 extra (a 9x12 image); interleave_real keeps
    the extra tiles' columns of its row."""
    rng = np.random.default_rng(6)
    lines, TW, TWv = 3, 4, 5
    real = [TWv * i + j for i in range(lines) for j in range(TW)]
    r = rng.standard_normal(3 * (lines * TWv + 2))
    ph = np.zeros((4, lines * TWv + 2))
    winograd33.split(r, lines * TWv + 2, ph)
    V = np.zeros((5, lines * TWv + 1))
    winograd33.columns(ph, lines * TWv, V, 0, 0)
    Vr = np.zeros((5, lines * TW + 1))
    winograd33.columns_real(ph, lines, TW, TWv, Vr, 0, 1)  # from column 1
    np.testing.assert_array_equal(Vr[:, 1:], V[:, real])
    assert not Vr[:, 0].any()
    S = np.zeros((3, lines * TW))
    winograd33.split_real(r, lines, TW, TWv, S)
    np.testing.assert_array_equal(S, ph[:3, real])
    out = np.full(3 * lines * TWv, 7.0)
    winograd33.interleave_real(S, lines, TW, TWv, out)
    kept = np.zeros(3 * lines * TWv, bool)
    for u in real:
        kept[3 * u:3 * u + 3] = True
    np.testing.assert_array_equal(out[kept], r[:3 * lines * TWv][kept])
    assert (out[~kept] == 7).all()
