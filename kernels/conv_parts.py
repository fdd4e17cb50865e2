"""Building blocks of the CPU convolution: task counter, padded copies, block copies, BLAS mode."""
# NOTE: the copies are element loops over 1-D views indexed by the loop counter alone (an
# index that may be negative for all Numba knows gets a wraparound check that keeps the loop
# from vectorizing), not slice assignments: Numba's slice assignment runs its general copy for
# every row (baseline_cnn's 16->32 layer, 1 thread: the
# output pass 1.9 -> 0.8 ms, the padded copy 1.0 -> 0.8 ms a batch of 32).
import threading

import numpy as np
from numba import njit
from numba.core import cgutils, types
from numba.extending import intrinsic


class single_blas:
    """Context: every loaded BLAS at one thread (Numba threads call it concurrently), restored
    when the last of any overlapping uses (from several Python threads) ends."""
    _libraries = None   # threadpoolctl's controllers of the BLAS libraries, found once
    _saved = None       # [(library, its thread count before)] of those set to one thread
    _depth = 0
    _lock = threading.Lock()

    # NOTE: the libraries' own get/set calls, not threadpoolctl's limit(): that one gathers
    # every library's info each time (15 us against 5 per use, and a batch-1 resnet50 forward
    # pass enters this context once per convolution, 54 times).
    def __enter__(self):
        with single_blas._lock:
            if single_blas._depth == 0:
                if single_blas._libraries is None:
                    import scipy.linalg.cython_blas  # noqa: F401  (the BLAS kernels.blas calls)
                    from threadpoolctl import ThreadpoolController
                    single_blas._libraries = [
                        lib for lib in ThreadpoolController().lib_controllers
                        if lib.user_api == "blas"]
                saved = []
                for lib in single_blas._libraries:
                    n = lib.get_num_threads()
                    if n not in (1, None):
                        lib.set_num_threads(1)
                        saved.append((lib, n))
                single_blas._saved = saved
            single_blas._depth += 1
        return self

    def __exit__(self, *exc):
        with single_blas._lock:
            single_blas._depth -= 1
            if single_blas._depth == 0:
                for lib, n in single_blas._saved:
                    lib.set_num_threads(n)
                single_blas._saved = None


@intrinsic
def _claim(typingctx, counter):
    """Atomically counter[0] += 1, returning the old value: the next task for this thread."""
    if not (isinstance(counter, types.Array) and counter.dtype == types.int64):
        return None

    def codegen(context, builder, signature, args):
        arr = context.make_array(signature.args[0])(context, builder, args[0])
        ptr = cgutils.get_item_pointer(context, builder, signature.args[0], arr,
                                       [context.get_constant(types.intp, 0)])
        return builder.atomic_rmw("add", ptr, context.get_constant(types.int64, 1), "seq_cst")

    return types.int64(counter), codegen


@njit(cache=True, inline="always")
def _task_blocks(task, tiles, per_image):
    """(image, first block, end block) of a task: a whole image, or one of its blocks."""
    if per_image:
        return task, 0, tiles
    return task // tiles, task % tiles, task % tiles + 1


@njit(cache=True, inline="always")
def _pad_into(src, n, top, left, Wp, dst):
    """dst[c, (h+top)*Wp + w+left] = src[n, c, h, w]; dst's border is zero already."""
    C, H, W = src.shape[1], src.shape[2], src.shape[3]
    for c in range(C):
        for h in range(H):
            s = src[n, c, h]
            o = (h + top) * Wp + left
            d = dst[c, o:o + W]
            for w in range(W):
                d[w] = s[w]


@njit(cache=True, inline="always")
def _compact(out, n, r0, r1, Wp, OW, b, has_b, relu, y):
    """y[n, f, oh, :] = out[f, (oh-r0)*Wp : +OW] (+ b[f], then ReLU) for oh in [r0, r1)."""
    zero = np.float32(0)   # (an int 0 would make every value float64)
    for f in range(y.shape[1]):
        bf = b[f]
        for oh in range(r0, r1):
            src = out[f, (oh - r0) * Wp:(oh - r0) * Wp + OW]
            dst = y[n, f, oh]
            if relu:
                for ow in range(OW):
                    dst[ow] = max(src[ow] + bf, zero)
            elif has_b:
                for ow in range(OW):
                    dst[ow] = src[ow] + bf
            else:
                for ow in range(OW):
                    dst[ow] = src[ow]


@njit(cache=True, inline="always")
def _gy_on_grid(gy, n, r0, r1, Wp, g):
    """g[f, (oh-r0)*Wp + ow] = gy[n, f, oh, ow], zero in the Wp - OW extra columns."""
    OW = gy.shape[3]
    for f in range(gy.shape[1]):
        for oh in range(r0, r1):
            s = gy[n, f, oh]
            d = g[f, (oh - r0) * Wp:(oh - r0 + 1) * Wp]
            for ow in range(OW):
                d[ow] = s[ow]
            for ow in range(OW, Wp):
                d[ow] = 0


@njit(cache=True, inline="always")
def _grid_cols(pad, KH, KW, Wp, r0, P, col):
    """col[(c*KH + i)*KW + j, :P] = pad[c, (r0+i)*Wp + j : +P]: one contiguous copy per row."""
    for c in range(pad.shape[0]):
        for i in range(KH):
            for j in range(KW):
                s = (r0 + i) * Wp + j
                src = pad[c, s:s + P]
                d = col[(c * KH + i) * KW + j]
                for p in range(P):
                    d[p] = src[p]


@njit(cache=True, inline="always")
def _padded_cols(pad, KH, KW, SH, SW, Wp, r0, r1, OW, col):
    """im2col of output rows [r0, r1) from the zero-padded image: no bounds to check."""
    for c in range(pad.shape[0]):
        for i in range(KH):
            for j in range(KW):
                r = (c * KH + i) * KW + j
                for oh in range(r0, r1):
                    s = (oh * SH + i) * Wp + j
                    d = (oh - r0) * OW
                    if SW == 1:
                        src, dst = pad[c, s:s + OW], col[r, d:d + OW]
                        for ow in range(OW):
                            dst[ow] = src[ow]
                    else:
                        for ow in range(OW):
                            col[r, d + ow] = pad[c, s + ow * SW]


@njit(cache=True, inline="always")
def _grid_col2im(col, KH, KW, Wp, r0, P, gpad):
    """The adjoint of _grid_cols: add each column row into its window of the padded gradient."""
    for c in range(gpad.shape[0]):
        for i in range(KH):
            for j in range(KW):
                s = (r0 + i) * Wp + j
                d = gpad[c, s:s + P]
                src = col[(c * KH + i) * KW + j]
                for p in range(P):
                    d[p] += src[p]


@njit(cache=True, inline="always")
def _padded_col2im(col, KH, KW, SH, SW, Wp, r0, r1, OW, gpad):
    """The adjoint of _padded_cols: add the columns into the padded gradient."""
    for c in range(gpad.shape[0]):
        for i in range(KH):
            for j in range(KW):
                r = (c * KH + i) * KW + j
                for oh in range(r0, r1):
                    s = (oh * SH + i) * Wp + j
                    d = (oh - r0) * OW
                    if SW == 1:
                        src, dst = col[r, d:d + OW], gpad[c, s:s + OW]
                        for ow in range(OW):
                            dst[ow] += src[ow]
                    else:
                        for ow in range(OW):
                            gpad[c, s + ow * SW] += col[r, d + ow]


@njit(cache=True, inline="always")
def _interior(pad, n, top, left, Wp, gx):
    """gx[n, c, h, w] = pad[c, (h+top)*Wp + w+left]."""
    C, H, W = gx.shape[1], gx.shape[2], gx.shape[3]
    for c in range(C):
        for h in range(H):
            o = (h + top) * Wp + left
            s, d = pad[c, o:o + W], gx[n, c, h]
            for w in range(W):
                d[w] = s[w]
