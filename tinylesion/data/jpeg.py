"""The loader's fast path for plain colour JPEGs: decode and resize without holding the GIL.

Pillow decodes without the GIL too, but opening a JPEG with Pillow parses its markers in Python
(~100 us per file) and moving the pixels into and out of Pillow images costs as much again; a
thread holds the GIL all that time, so two loader threads wait on each other. Here the file's
bytes go to libjpeg-turbo in one call (simplejpeg, which releases the GIL), at the same 1/2, 1/4
or 1/8 scale Pillow's draft mode picks, and the resize is Pillow's bilinear arithmetic compiled
with Numba (resample.py), which imageio applies to both paths. The pixels are those of the
Pillow path: libjpeg-turbo's, at the same scale (tests/data/test_jpeg.py checks it).

`decode` returns None for every file this path does not take, and the caller reads it with
Pillow: anything but a 3-channel YCbCr JPEG, an EXIF or XMP orientation other than upright,
files Pillow would refuse as decompression bombs, and any file whose decoding libjpeg-turbo
reports a problem with, even one it calls a warning (Pillow ignores libjpeg's warnings and
raises on truncation: leaving those files to Pillow keeps its behaviour exactly).
"""
import os
import re
import struct

import simplejpeg
from PIL import Image

_SOI = b"\xff\xd8"
_EXIF = b"Exif\x00\x00"
_XMP = b"http://ns.adobe.com/xap/1.0/\x00"
_XMP_ORIENTATION = re.compile(rb'tiff:Orientation(="|>)([0-9])')
_STANDALONE = frozenset([0x01] + list(range(0xD0, 0xD8)))   # markers without a length
_ORIENTATION = 0x0112

# Set to False (or TINYLESION_FAST_JPEG=0 in the environment) to read every file with Pillow,
# e.g. to compare; the pixels are the same either way.
ENABLED = os.environ.get("TINYLESION_FAST_JPEG", "1") != "0"


def _upright(data):
    """True when the file's EXIF/XMP orientation is 1 or absent, as Pillow's getexif reads it.

    False when it is not, and None when the markers before the image data do not parse (the
    caller then leaves the file to Pillow).
    """
    exif, xmp = None, None
    i, n = 2, len(data)
    while True:
        if i + 2 > n or data[i] != 0xFF:
            return None
        marker = data[i + 1]
        if marker == 0xFF:           # fill byte
            i += 1
            continue
        if marker == 0xDA:           # start of scan: the markers Pillow reads are behind us
            break
        if marker in _STANDALONE:
            i += 2
            continue
        if i + 4 > n:
            return None
        length = struct.unpack_from(">H", data, i + 2)[0]
        if length < 2 or i + 2 + length > n:
            return None
        if marker == 0xE1:
            segment = data[i + 4:i + 2 + length]
            if segment.startswith(_EXIF):
                exif = segment if exif is None else exif + segment[6:]   # as Pillow joins them
            elif segment.startswith(_XMP):
                xmp = segment.split(b"\x00", 1)[1]
        i += 2 + length
    if exif is None and xmp is None:
        return True
    try:                             # Pillow's reading of the tag; a damaged block reads as 1
        tags = Image.Exif()
        if exif is not None:
            tags.load(exif)
        orientation = tags.get(_ORIENTATION)
        if orientation is None and xmp:
            match = _XMP_ORIENTATION.search(xmp)
            orientation = int(match[2]) if match else None
    except Exception:
        return True
    return orientation not in (2, 3, 4, 5, 6, 7, 8)


def draft_scale(file_size, need):
    """The reduction (1, 2, 4 or 8) Pillow's JPEG draft mode picks for at least `need` pixels."""
    scale = min(file_size[0] // need[0], file_size[1] // need[1])
    for s in (8, 4, 2, 1):
        if scale >= s:
            return s
    return 1


def decode(data, need_for):
    """Decode JPEG bytes as ((height, width, 3) uint8 RGB, the file's (width, height)), or None.

    need_for(file_size) gives the smallest (width, height) worth decoding at, or None for the
    full size; the scale is then the one Pillow's draft mode would pick. None: read the file with
    Pillow instead (see the module's note for which files those are).
    """
    if not ENABLED or not data.startswith(_SOI):
        return None
    try:
        height, width, colorspace, _ = simplejpeg.decode_jpeg_header(data)
    except Exception:   # whatever it is, Pillow reads the file and names the problem
        return None
    limit = Image.MAX_IMAGE_PIXELS
    if colorspace != "YCbCr" or (limit and width * height > limit):
        return None
    if not _upright(data):
        return None
    need = need_for((width, height))
    scale = draft_scale((width, height), need) if need is not None else 1
    dw, dh = -(-width // scale), -(-height // scale)
    try:
        image = simplejpeg.decode_jpeg(data, colorspace="RGB", fastdct=False,
                                       fastupsample=False, min_height=dh, min_width=dw)
    except Exception:
        return None
    if image.shape != (dh, dw, 3):   # libjpeg-turbo chose another scale: not Pillow's pixels
        return None
    return image, (width, height)
