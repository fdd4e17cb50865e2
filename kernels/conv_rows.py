"""The "rows" convolution path's forward and weight gradient on bands of expanded image rows.

A few-channel layer with a wide kernel (melanoma_cnn's 7x7 RGB layer) becomes a KH x 1
convolution of the expanded image X[c*KW + j, h, ow] = x[c, h - PH, ow + j - PW] (zero outside
x; h counts the rows of the vertically padded image): KH products with K = C*KW read X in place
(see kernels/conv_cpu.py). X is KW times the input, so it is never made for the batch: each
thread expands one band of rows of one image at a time into its own buffer (a few hundred kB,
in its cache), and runs the band's products from there. The output rows [r0, r1) of a band read
the expanded rows [r0, r1 + KH - 1): KH - 1 rows a band are expanded twice.
"""
import numpy as np
from numba import njit, prange

from .blas import gemm
from .conv_parts import _claim, _task_blocks


@njit(cache=True, inline="always")
def _expand_band(x, n, KW, PH, PW, OW, h0, h1, dst):
    """dst[c*KW + j, (h - h0)*OW + ow] = x[n, c, h - PH, ow + j - PW] for the rows h in
    [h0, h1) of the vertically padded image, zero outside x."""
    C, H, Wd = x.shape[1], x.shape[2], x.shape[3]
    for c in range(C):
        for j in range(KW):
            r = c * KW + j
            lo = min(OW, max(0, PW - j))      # output columns whose input column is inside
            hi = max(lo, min(OW, Wd + PW - j))
            for hp in range(h0, h1):
                o = (hp - h0) * OW
                h = hp - PH
                d = dst[r, o:o + OW]
                if h < 0 or h >= H:
                    for ow in range(OW):
                        d[ow] = 0
                else:
                    s = x[n, c, h, lo + j - PW:hi + j - PW]
                    inside = d[lo:hi]
                    for ow in range(lo):
                        d[ow] = 0
                    for k in range(hi - lo):
                        inside[k] = s[k]
                    for ow in range(hi, OW):
                        d[ow] = 0


def expand_reference(x, KW, PH, PW, OW):
    """X (N, C*KW, H + 2*PH, OW) of the whole batch by array operations (for the tests)."""
    N, C, H, Wd = x.shape
    padded = np.pad(x, ((0, 0), (0, 0), (PH, PH), (PW, max(PW, OW + KW - 1 - Wd - PW))))
    X = np.empty((N, C, KW, H + 2 * PH, OW), x.dtype)
    for j in range(KW):
        X[:, :, j] = padded[:, :, :, j:j + OW]
    return X.reshape(N, C * KW, H + 2 * PH, OW)


@njit(cache=True, inline="always")
def _bias_relu(out, b, has_b, relu):
    """out[f, p] = out[f, p] + b[f] (then ReLU), in place."""
    zero = np.float32(0)   # (an int 0 would make every value float64)
    for f in range(out.shape[0]):
        bf = b[f]   # (zero without a bias)
        row = out[f]
        if relu:
            for p in range(row.shape[0]):
                row[p] = max(row[p] + bf, zero)
        elif has_b:
            for p in range(row.shape[0]):
                row[p] += bf


@njit(parallel=True, cache=True, nogil=True)
def _forward_bands(x, Wk, b, has_b, relu, KH, KW, PH, PW, RB, BH, bands, y):
    """y = conv(x) (+ b, ReLU): tasks of (image, band of BH output rows) claimed from a shared
    counter; per band, the expanded rows, then KH products per block of RB output rows, written
    straight into y (the layout has no extra columns), then the bias and ReLU in place."""
    N, F = x.shape[0], Wk.shape[1]
    OH, OW = y.shape[2], y.shape[3]
    T = bands.shape[0]
    per_image = -(-OH // BH)
    y2 = y.reshape(N, F, OH * OW)
    counter = np.zeros(1, np.int64)
    for t in prange(T):
        while True:
            task = _claim(counter)
            if task >= N * per_image:
                break
            n, b0 = task // per_image, (task % per_image) * BH
            b1 = min(OH, b0 + BH)
            band = bands[t]
            _expand_band(x, n, KW, PH, PW, OW, b0, b1 + KH - 1, band)
            for r0 in range(b0, b1, RB):
                r1 = min(b1, r0 + RB)
                P = (r1 - r0) * OW
                out = y2[n, :, r0 * OW:r1 * OW]
                for i in range(KH):
                    s = (r0 - b0 + i) * OW
                    gemm(False, False, Wk[i], band[:, s:s + P], out, 1.0 if i > 0 else 0.0)
                if has_b or relu:
                    _bias_relu(out, b, has_b, relu)
    return y


@njit(parallel=True, cache=True, nogil=True)
def _weight_gradient_bands(gy, x, KH, KW, PH, PW, RBW, BH, per_image, bands, gWs):
    """gWs[task, i, f, c*KW + j]: the weight gradient of one task's images or band of rows.

    Tasks are claimed from a shared counter (a core slowed by other work takes fewer), yet
    the result does not depend on which thread ran which: each task has its own partial sum,
    added in the tasks' order afterwards."""
    N, F, OH, OW = gy.shape
    T = bands.shape[0]
    tiles = -(-OH // BH)
    counter = np.zeros(1, np.int64)
    for t in prange(T):
        while True:
            task = _claim(counter)
            if task >= (N if per_image else N * tiles):
                break
            n, k0, k1 = _task_blocks(task, tiles, per_image)
            g = gy[n].reshape(F, OH * OW)
            gW = gWs[task]
            gW[:] = 0
            band = bands[t]
            for k in range(k0, k1):
                b0 = k * BH
                b1 = min(OH, b0 + BH)
                _expand_band(x, n, KW, PH, PW, OW, b0, b1 + KH - 1, band)
                # NOTE: gW[:, :, i, j] = Σ g @ X_windowᵀ: per tap row i, a product of the
                # gradient's block (F x P) with the expanded rows i below it (C*KW x P)
                for r0 in range(b0, b1, RBW):
                    r1 = min(b1, r0 + RBW)
                    P = (r1 - r0) * OW
                    for i in range(KH):
                        s = (r0 - b0 + i) * OW
                        gemm(False, True, g[:, r0 * OW:r0 * OW + P], band[:, s:s + P], gW[i],
                             1.0)
    return gWs


def band_rows(block_rows, KH, row_bytes, band_bytes, OH):
    """Output rows per band: a multiple of block_rows whose expanded rows (band + KH - 1, of
    row_bytes each) stay under band_bytes where they can."""
    rows = max(1, band_bytes // max(1, row_bytes) - (KH - 1))
    return min(max(block_rows, rows // block_rows * block_rows), -(-OH // block_rows)
               * block_rows)


def forward(x, W, b, kernel, padding, OH, OW, relu, RB, T, band_bytes):
    """y (N, F, OH, OW) of the stride-1 convolution, RB output rows a product, T threads
    (their BLAS single-threaded by the caller)."""
    N, C = x.shape[:2]
    F, dt = W.shape[0], x.dtype
    (KH, KW), (PH, PW) = kernel, padding
    Wk = np.ascontiguousarray(W.transpose(2, 0, 1, 3).reshape(KH, F, C * KW))
    BH = band_rows(RB, KH, C * KW * OW * dt.itemsize, band_bytes, OH)
    if N * -(-OH // BH) < 2 * T:   # too few tasks to share out: bands of one block
        BH = RB
    bb = np.zeros(F, dt) if b is None else np.ascontiguousarray(b, dtype=dt)
    bands = np.empty((T, C * KW, (BH + KH - 1) * OW), dt)
    y = np.empty((N, F, OH, OW), dt)
    return _forward_bands(x, Wk, bb, b is not None, relu, KH, KW, PH, PW, RB, BH, bands, y)


def weight_gradient(gy, x, kernel, padding, RBW, T, band_bytes):
    """gW (F, C, KH, KW) of the stride-1 convolution, products of RBW output rows (their inner
    dimension), T threads (their BLAS single-threaded by the caller)."""
    N, C = x.shape[:2]
    F, OH, OW = gy.shape[1:]
    dt = x.dtype
    (KH, KW), (PH, PW) = kernel, padding
    BH = band_rows(RBW, KH, C * KW * OW * dt.itemsize, band_bytes, OH)
    per_image = N >= 2 * T
    tasks = N if per_image else N * -(-OH // BH)
    bands = np.empty((T, C * KW, (BH + KH - 1) * OW), dt)
    gWs = np.empty((tasks, KH, F, C * KW), dt)
    _weight_gradient_bands(gy, x, KH, KW, PH, PW, RBW, BH, per_image, bands, gWs)
    # (KH, F, C, KW) -> (F, C, KH, KW)
    return np.ascontiguousarray(gWs.sum(axis=0).reshape(KH, F, C, KW).transpose(1, 2, 0, 3))
