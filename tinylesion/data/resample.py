"""Pillow's bilinear resize of an 8-bit RGB image, bit for bit, in Numba without the GIL.

`Image.resize(size, BILINEAR, box)` on an RGB image gives exactly `bilinear_resize(x, size, box)`
on its array (tests/test_resample.py checks this on random sizes and boxes). The loader's JPEG
path uses it so that a worker thread holds the GIL only to start the call: Pillow's resize also
runs without the GIL, but getting an array into and out of a Pillow image costs ~90 us of
Python per image, during which the other threads wait.

The arithmetic is Pillow's (src/libImaging/Resample.c): per output pixel, filter weights in
double precision normalised to sum 1, then rounded to fixed point with 22 fractional bits; a
horizontal pass over the rows the vertical pass needs, then a vertical pass; each pass rounds
to uint8. The box is single precision, as Pillow parses it.
"""
import math

import numpy as np
from numba import njit
from PIL import Image

PRECISION_BITS = 32 - 8 - 2


@njit(cache=True, nogil=True)
def _coefficients(in_size, in0, in1, out_size):
    """Bilinear taps of each output pixel: (first input pixel, tap count, fixed-point weights).

    in0 and in1 are float32, and their difference is taken in float32, as in Pillow.
    """
    scale = np.float64(np.float32(in1 - in0)) / out_size
    filterscale = max(scale, 1.0)
    support = 1.0 * filterscale          # the bilinear filter's support is 1
    ksize = int(math.ceil(support)) * 2 + 1
    bounds = np.zeros((out_size, 2), np.int64)
    weights = np.zeros((out_size, ksize), np.int64)
    taps = np.zeros(ksize, np.float64)
    for xx in range(out_size):
        center = np.float64(in0) + (xx + 0.5) * scale
        ss = 1.0 / filterscale
        xmin = int(center - support + 0.5)   # C's cast: truncation toward zero
        if xmin < 0:
            xmin = 0
        xmax = int(center + support + 0.5)
        if xmax > in_size:
            xmax = in_size
        xmax -= xmin
        total = 0.0
        for x in range(xmax):
            t = abs((x + xmin - center + 0.5) * ss)
            w = 1.0 - t if t < 1.0 else 0.0
            taps[x] = w
            total += w
        for x in range(xmax):
            w = taps[x] / total if total != 0.0 else taps[x]
            # rounded half away from zero, as (int)(w * 2^22 +- 0.5) in C
            if w < 0:
                weights[xx, x] = int(-0.5 + w * (1 << PRECISION_BITS))
            else:
                weights[xx, x] = int(0.5 + w * (1 << PRECISION_BITS))
        bounds[xx, 0] = xmin
        bounds[xx, 1] = max(xmax, 0)
    return bounds, weights


@njit(cache=True, nogil=True)
def _resize_into(src, box, out):
    """Resize src (h, w, 3) uint8, the float32 box (x0, y0, x1, y1) of it, into out (H, W, 3).

    Sums are int32 as in Pillow (at most 255 * 2^22 + 2^21: no overflow, and exact in any order).
    """
    in_h, in_w = src.shape[0], src.shape[1]
    out_h, out_w = out.shape[0], out.shape[1]
    half = np.int32(1 << (PRECISION_BITS - 1))
    need_horizontal = out_w != in_w or box[0] != 0 or box[2] != out_w
    need_vertical = out_h != in_h or box[1] != 0 or box[3] != out_h
    hbounds, hweights = _coefficients(in_w, box[0], box[2], out_w)
    vbounds, vweights = _coefficients(in_h, box[1], box[3], out_h)
    hweights, vweights = hweights.astype(np.int32), vweights.astype(np.int32)
    # rows of src that the vertical pass reads
    first = vbounds[0, 0] if need_horizontal else 0
    last = vbounds[out_h - 1, 0] + vbounds[out_h - 1, 1] if need_horizontal else in_h
    flat = src.reshape(in_h, in_w * 3)
    rows = np.empty((last - first, out_w * 3), np.int32)   # uint8 values, kept wide
    for y in range(last - first):
        line, row = flat[y + first], rows[y]
        if not need_horizontal:
            row[:] = line
            continue
        for xx in range(out_w):
            xmin, count = hbounds[xx, 0], hbounds[xx, 1]
            a0 = a1 = a2 = half
            for x in range(count):
                k = hweights[xx, x]
                i = 3 * (x + xmin)
                a0 += np.int32(line[i]) * k
                a1 += np.int32(line[i + 1]) * k
                a2 += np.int32(line[i + 2]) * k
            row[3 * xx] = min(max(a0 >> PRECISION_BITS, 0), 255)
            row[3 * xx + 1] = min(max(a1 >> PRECISION_BITS, 0), 255)
            row[3 * xx + 2] = min(max(a2 >> PRECISION_BITS, 0), 255)
    flat_out = out.reshape(out_h, out_w * 3)
    if not need_vertical:
        for y in range(out_h):
            for i in range(out_w * 3):
                flat_out[y, i] = rows[y, i]
        return
    acc = np.empty(out_w * 3, np.int32)
    for yy in range(out_h):
        ymin, count = vbounds[yy, 0] - first, vbounds[yy, 1]
        acc[:] = half
        for y in range(count):        # whole rows at a time: the compiler vectorises this
            k = vweights[yy, y]
            row = rows[y + ymin]
            for i in range(out_w * 3):
                acc[i] += row[i] * k
        for i in range(out_w * 3):
            flat_out[yy, i] = min(max(acc[i] >> PRECISION_BITS, 0), 255)


def bilinear_resize(src, size, box=None):
    """Pillow's `Image.fromarray(src).resize(size, BILINEAR, box=box)` as a (H, W, 3) array.

    src: uint8 (h, w, 3); size: (width, height); box: (x0, y0, x1, y1) in src's pixels,
    default the whole image. Like Pillow, a box of whole pixels the size of the output is a
    plain crop. Without reducing_gap (the caller reduces first when it wants that).
    """
    width, height = size
    in_h, in_w = src.shape[:2]
    if src.dtype != np.uint8 or src.ndim != 3 or src.shape[2] != 3:
        raise ValueError(f"bilinear_resize takes uint8 (h, w, 3), got {src.dtype} {src.shape}")
    box = np.asarray((0, 0, in_w, in_h) if box is None else box, dtype=np.float32)
    x0, y0, x1, y1 = box.tolist()
    if not (0 <= x0 < x1 <= in_w and 0 <= y0 < y1 <= in_h):
        raise ValueError(f"box {(x0, y0, x1, y1)} is not inside the {in_w}x{in_h} image")
    if x0 == int(x0) and y0 == int(y0) and x1 - x0 == width and y1 - y0 == height:
        return src[int(y0):int(y1), int(x0):int(x1)].copy()     # Pillow crops
    out = np.empty((height, width, 3), np.uint8)
    _resize_into(np.ascontiguousarray(src), box, out)
    return out


def resize(image, size, box=None, reducing_gap=None):
    """`Image.resize(size, BILINEAR, box, reducing_gap)` on an RGB array, as a (H, W, 3) array.

    Pillow's arithmetic throughout; bilinear_resize does it without the GIL, except when
    reducing_gap asks for Pillow's box reduction first (an image 3x or more the size, after
    JPEG draft decoding only for huge files), which Pillow itself then does.
    """
    width, height = size
    in_h, in_w = image.shape[:2]
    if reducing_gap is not None:
        x0, y0, x1, y1 = box if box is not None else (0, 0, in_w, in_h)
        if int((x1 - x0) / width / reducing_gap) > 1 or \
                int((y1 - y0) / height / reducing_gap) > 1:
            im = Image.fromarray(image, "RGB")
            return np.asarray(im.resize(size, Image.Resampling.BILINEAR, box, reducing_gap))
    return bilinear_resize(image, size, box)
