"""Reading one image file into a uint8 RGB array of a given size: the loader's hot path."""
import io
import os
import struct

import numpy as np
from PIL import Image

from . import jpeg
from .resample import resize

PREPROCESS = ("resize", "half_crop224", "imagenet_crop")
CROP = 224                   # the side of the "half_crop224" centre crop
# "imagenet_crop": the centre crop is this fraction of the resized image's shorter side, as in
# torchvision's ImageNet evaluation transforms (resize 256, crop 224; resize 342, crop 299)
IMAGENET_CROP_FRACTION = 0.875

_ORIENTATION = 0x0112        # the EXIF tag
_TRANSPOSE = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}
_ALPHA_MODES = ("RGBA", "RGBa", "LA", "La", "PA")


class ImageReadError(OSError):
    """An image file that is missing, truncated, or cannot be decoded; the message names it."""


def check_size(size, name="image_size"):
    """Return size as a (width, height) tuple of positive ints, or raise a ValueError."""
    try:
        w, h = (int(v) for v in size)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be (width, height), got {size!r}") from None
    if w <= 0 or h <= 0 or (w, h) != tuple(size):
        raise ValueError(f"{name} must be two positive integers (width, height), got {size!r}")
    return w, h


def check_preprocess(preprocess):
    """Raise a ValueError unless preprocess is one of PREPROCESS."""
    if preprocess not in PREPROCESS:
        raise ValueError(f"preprocess must be one of {', '.join(PREPROCESS)}; got {preprocess!r}")
    return preprocess


def _orientation(im):
    """The EXIF orientation (1 to 8) of an opened image, 1 when absent or unreadable."""
    try:
        value = im.getexif().get(_ORIENTATION, 1)
    except Exception:  # a damaged EXIF block should not make the pixels unreadable
        return 1
    return value if value in _TRANSPOSE else 1


def _half_geometry(width, height):
    """For "half_crop224": the size of the halved image and the crop box inside it.

    The image is halved; if a side of the half is then shorter than 224 it is scaled up so that
    its short side is 224; a 224 x 224 square is cut from its centre.
    """
    hw, hh = width / 2.0, height / 2.0
    grow = max(1.0, CROP / min(hw, hh))
    hw, hh = max(CROP, round(hw * grow)), max(CROP, round(hh * grow))
    left, top = (hw - CROP) // 2, (hh - CROP) // 2
    return (hw, hh), (left, top, left + CROP, top + CROP)


def _imagenet_geometry(width, height, size):
    """For "imagenet_crop": the scale of the resize and the crop box in the source pixels.

    NOTE: the image is scaled so that it just covers (W, H) / 0.875 with the sides rounded
    (a W x W output: its shorter side becomes round(W / 0.875), 256 for 224 and 342 for 299),
    then the W x H centre of the scaled image is cut: one resize of that box of the source.
    """
    W, H = size
    scale = max(round(W / IMAGENET_CROP_FRACTION) / width,
                round(H / IMAGENET_CROP_FRACTION) / height)
    crop_w, crop_h = W / scale, H / scale
    left, top = (width - crop_w) / 2.0, (height - crop_h) / 2.0
    return scale, (left, top, left + crop_w, top + crop_h)


def _to_rgb(im):
    """Convert an image in any Pillow mode to 8-bit RGB.

    NOTE: transparent pixels are composited over black (the colour a premultiplied image
    has there, and the colour of a dermatoscope's vignette): out = rgb * alpha / 255.
    16-bit images ("I;16*", and "I", which Pillow uses for 16-bit greyscale) are scaled from
    [0, 65535] to [0, 255] with rounding (not clipped at 255); "F" is read as [0, 1].
    """
    mode = im.mode
    if mode == "RGB":
        return im
    if mode == "P":
        has_alpha = "transparency" in im.info or im.palette.mode == "RGBA"
        return _to_rgb(im.convert("RGBA" if has_alpha else "RGB"))
    if mode in _ALPHA_MODES:
        rgba = np.asarray(im.convert("RGBA"), dtype=np.uint16)
        rgb = (rgba[..., :3] * rgba[..., 3:] + 127) // 255
        return Image.fromarray(rgb.astype(np.uint8), "RGB")
    if mode.startswith("I;16") or mode == "I":
        x = np.asarray(im).astype(np.int64)
        x = (np.clip(x, 0, 65535) * 255 + 32767) // 65535
        return Image.fromarray(x.astype(np.uint8), "L").convert("RGB")
    if mode == "F":
        x = np.asarray(im, dtype=np.float64)
        x = np.rint(np.clip(np.nan_to_num(x), 0.0, 1.0) * 255.0)
        return Image.fromarray(x.astype(np.uint8), "L").convert("RGB")
    # L, 1, CMYK, YCbCr, HSV, LAB: Pillow's own conversions
    return im.convert("RGB")


def read_rgb(path, size, preprocess="resize", draft=True):
    """Read an image file as a uint8 array (height, width, 3) of size (width, height).

    preprocess "resize" scales the whole image to size; "half_crop224" halves the image, cuts the
    224 x 224 centre, then scales that to size; "imagenet_crop" resizes the image so that its
    shorter side is size / 0.875 (256 for 224, 342 for 299) and cuts the centre of that size,
    as torchvision's ImageNet evaluation transforms do. With draft, a JPEG is decoded by libjpeg straight
    at 1/2, 1/4 or 1/8 scale when the result is still at least as large as what is needed.
    Plain colour JPEGs are decoded and resized without the GIL (jpeg.py); every other file, and
    every JPEG that path leaves, is read with Pillow, to the same pixels.
    Raises ImageReadError naming the path when the file is missing, truncated or unreadable.
    """
    if preprocess not in PREPROCESS:
        check_preprocess(preprocess)
    try:
        data = _read_bytes(path)
    except FileNotFoundError:
        raise ImageReadError(f"image file not found: {os.fspath(path)}") from None
    except OSError as exc:
        raise ImageReadError(f"cannot read image {os.fspath(path)}: {exc}") from exc
    return decode_rgb(data, size, preprocess, draft, name=os.fspath(path))


def decode_rgb(data, size, preprocess="resize", draft=True, name="<bytes>"):
    """read_rgb on the bytes of an image file already in memory; `name` is what errors call it.
    """
    if preprocess not in PREPROCESS:
        check_preprocess(preprocess)
    decoded = jpeg.decode(data, lambda full: _draft_need(full, size, preprocess) if draft
                          else None)
    if decoded is not None:
        return _fit(decoded[0], decoded[1], size, preprocess)
    try:
        with Image.open(io.BytesIO(data)) as im:
            return _read(im, size, preprocess, draft)
    except ImageReadError:
        raise
    except (OSError, SyntaxError, ValueError, EOFError, IndexError, KeyError, struct.error,
            Image.DecompressionBombError) as exc:  # what Pillow's decoders raise on bad data
        # (Pillow's own message would name the in-memory copy, not the file)
        reason = "not an image file Pillow can identify" if isinstance(
            exc, Image.UnidentifiedImageError) else exc
        raise ImageReadError(f"cannot read image {name}: {reason}") from exc


def _read_bytes(path):
    """The whole file, in four system calls.

    NOTE: open(path, "rb").read() makes eight (isatty, seeks, a second fstat, a read to find
    the end); each lets go of the GIL, and a loader thread taking it back while another holds
    it waits for that one to let go.
    """
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_BINARY", 0))
    try:
        size = os.fstat(fd).st_size
        data = os.read(fd, size + 1)     # one byte more: 0 bytes left to read proves the end
        if len(data) == size:
            return data
        chunks = [data]                  # it changed, or is not a regular file: read to the end
        while chunks[-1]:
            chunks.append(os.read(fd, 1 << 20))
        return b"".join(chunks)
    finally:
        os.close(fd)


def _draft_need(full, size, preprocess):
    """The smallest (width, height) of an upright image of size `full` that `size` needs, or
    None when decoding at less than full size would not pay (draft halves at least)."""
    width, height = size
    if preprocess == "resize":
        need = (width, height)
    elif preprocess == "imagenet_crop":
        scale, _ = _imagenet_geometry(*full, size)
        need = (int(np.ceil(full[0] * scale)), int(np.ceil(full[1] * scale)))
    else:
        (hw, hh), _ = _half_geometry(*full)
        # scale "half" so that its crop still has at least the pixels of the output
        grow = max(1.0, width / CROP, height / CROP)
        need = (int(hw * grow), int(hh * grow))
    if need[0] * 2 <= full[0] and need[1] * 2 <= full[1]:
        return need
    return None


def _fit(x, full, size, preprocess):
    """Resize the RGB array x, decoded from an upright image of size `full`, to `size`."""
    if preprocess == "resize":
        return resize(x, size, reducing_gap=3.0)
    if preprocess == "imagenet_crop":
        _, (left, top, right, bottom) = _imagenet_geometry(*full, size)
        sx, sy = x.shape[1] / full[0], x.shape[0] / full[1]
        return resize(x, size, box=(left * sx, top * sy, right * sx, bottom * sy),
                      reducing_gap=3.0)
    (hw, hh), (left, top, right, bottom) = _half_geometry(*full)
    # the crop box in the decoded image's pixels (a draft image is smaller than the file)
    sx, sy = x.shape[1] / hw, x.shape[0] / hh
    return resize(x, size, box=(left * sx, top * sy, right * sx, bottom * sy))


def _read(im, size, preprocess, draft):
    """read_rgb on an image opened with Pillow."""
    is_jpeg = im.format == "JPEG"
    orientation = _orientation(im) if is_jpeg else 1
    if draft and is_jpeg:
        # the upright size of the file, and the smallest upright size that is needed of it
        full = im.size if orientation < 5 else im.size[::-1]
        need = _draft_need(full, size, preprocess)
        if need is not None:
            im.draft("RGB", need if orientation < 5 else need[::-1])
    im.load()
    if not is_jpeg:
        orientation = _orientation(im)
    if orientation != 1:
        im = im.transpose(_TRANSPOSE[orientation])
    if not (draft and is_jpeg):
        full = im.size
    x = np.asarray(_to_rgb(im))
    y = _fit(x, full, size, preprocess)
    if y.shape != (size[1], size[0], 3):  # pragma: no cover - the resize guarantees this
        raise ImageReadError(f"unexpected decoded shape {y.shape}")
    return y


def verify_image(path):
    """Cheap check that a file is a readable image: header verify, and JPEG end marker.

    Returns None when the file looks good, else a short reason. A file damaged in the middle of
    its compressed data passes; read_rgb still raises ImageReadError on it.
    """
    try:
        with Image.open(path) as im:
            fmt = im.format
            im.verify()
    except FileNotFoundError:
        return "file not found"
    except Exception as exc:  # verify raises many exception types on damaged files
        return f"{type(exc).__name__}: {exc}"
    if fmt == "JPEG":
        # NOTE: inside JPEG entropy-coded data a 0xFF byte is always followed by 0x00 or a
        # restart marker, so FF D9 near the end of the file is the end-of-image marker.
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - 4096))
            if b"\xff\xd9" not in f.read():
                return "JPEG data is truncated (no end-of-image marker)"
    return None

