"""The JPEG fast path gives the Pillow path's pixels, and leaves every other file to Pillow."""
import io

import numpy as np
import pytest
from PIL import Image, JpegImagePlugin

from tinylesion.data import imageio, jpeg
from tinylesion.data.imageio import ImageReadError, read_rgb


def jpeg_bytes(x, **options):
    buf = io.BytesIO()
    Image.fromarray(x).save(buf, "JPEG", **options)
    return buf.getvalue()


def photo(h, w, seed=0):
    """A smooth picture with some texture: what draft decoding and resizing are for."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    x = np.stack([128 + 100 * np.sin(xx / 17 + c) * np.cos(yy / 23 - c) for c in range(3)], -1)
    return np.clip(x + rng.normal(0, 12, x.shape), 0, 255).astype(np.uint8)


def by_pillow(data, size, preprocess, draft):
    with Image.open(io.BytesIO(data)) as im:
        return imageio._read(im, size, preprocess, draft)


FILES = [  # (height, width, options): subsampling, progressive, restarts, odd sizes, EXIF/XMP
    (450, 600, {"quality": 90}),
    (450, 600, {"quality": 75, "subsampling": "4:4:4"}),
    (451, 601, {"quality": 85, "subsampling": "4:2:2", "progressive": True}),
    (333, 517, {"quality": 95, "restart_marker_blocks": 3}),
    (1024, 1365, {"quality": 80}),
    (96, 128, {"quality": 70, "subsampling": "4:2:0"}),
    (300, 300, {"quality": 90, "exif": b"Exif\x00\x00MM\x00*\x00\x00\x00\x08\x00\x01\x01\x12"
                b"\x00\x03\x00\x00\x00\x01\x00\x01\x00\x00\x00\x00\x00\x00"}),   # orientation 1
    (300, 400, {"quality": 90, "xmp": b"<x:xmpmeta><rdf:Description tiff:Orientation=\"1\"/>"}),
]
SIZES = [((100, 75), "resize"), ((120, 90), "resize"), ((200, 150), "resize"),
         ((128, 128), "resize"), ((224, 224), "half_crop224"), ((96, 96), "half_crop224")]


@pytest.mark.parametrize("h, w, options", FILES)
def test_fast_path_equals_pillow_path(h, w, options):
    data = jpeg_bytes(photo(h, w), **options)
    for draft in (True, False):
        for size, pre in SIZES:
            need_for = (lambda full: imageio._draft_need(full, size, pre)) if draft \
                else (lambda full: None)
            assert jpeg.decode(data, need_for) is not None, (size, pre, draft)
            fast = imageio._fit(*jpeg.decode(data, need_for), size, pre)
            np.testing.assert_array_equal(fast, by_pillow(data, size, pre, draft),
                                          err_msg=f"{(h, w, options, size, pre, draft)}")


def test_read_rgb_takes_the_fast_path_for_plain_jpegs(tmp_path, monkeypatch):
    p = tmp_path / "a.jpg"
    p.write_bytes(jpeg_bytes(photo(450, 600)))
    opened = []
    monkeypatch.setattr(imageio.Image, "open", lambda *a, **k: opened.append(a))
    assert read_rgb(p, (100, 75)).shape == (75, 100, 3)
    assert opened == []


def test_draft_scale_is_pillows():
    rng = np.random.default_rng(4)
    for _ in range(300):
        w, h = (int(v) for v in rng.integers(16, 2000, 2))
        need = (int(rng.integers(1, w // 2 + 1)), int(rng.integers(1, h // 2 + 1)))
        im = JpegImagePlugin.JpegImageFile.__new__(JpegImagePlugin.JpegImageFile)
        im._size, im.decoderconfig = (w, h), ()
        im.tile = [("jpeg", (0, 0, w, h), 0, ("RGB", ""))]
        im._mode = "RGB"
        im.draft("RGB", need)
        s = jpeg.draft_scale((w, h), need)
        assert im.size == (-(-w // s), -(-h // s)), ((w, h), need, s)


def exif_orientation(value):
    exif = Image.Exif()
    exif[0x0112] = value
    return exif


@pytest.mark.parametrize("make", [
    lambda: jpeg_bytes(photo(60, 80)[..., 0]),                                   # greyscale
    lambda: jpeg_bytes(photo(60, 80), exif=exif_orientation(6)),                 # rotated
    lambda: jpeg_bytes(photo(60, 80), xmp=b'<r tiff:Orientation="3"/>'),         # rotated (XMP)
    lambda: jpeg_bytes(photo(60, 80))[:-300],                                    # truncated
    lambda: b"\x89PNG\r\n\x1a\n" + bytes(40),                                    # not a JPEG
    lambda: b"\xff\xd8\xff\xe1\x00",                                             # bad markers
])
def test_files_left_to_pillow(make):
    assert jpeg.decode(make(), lambda full: None) is None


def test_cmyk_and_rotated_jpegs_still_read(tmp_path):
    cmyk = Image.fromarray(photo(40, 60)).convert("CMYK")
    cmyk.save(tmp_path / "c.jpg")
    data = (tmp_path / "c.jpg").read_bytes()
    np.testing.assert_array_equal(read_rgb(tmp_path / "c.jpg", (30, 20)),
                                  by_pillow(data, (30, 20), "resize", True))
    (tmp_path / "r.jpg").write_bytes(jpeg_bytes(photo(40, 60), exif=exif_orientation(6)))
    assert read_rgb(tmp_path / "r.jpg", (20, 30)).shape == (30, 20, 3)


def test_truncated_jpeg_still_raises_with_its_path(tmp_path):
    p = tmp_path / "cut.jpg"
    p.write_bytes(jpeg_bytes(photo(200, 300))[:-2000])
    with pytest.raises(ImageReadError, match="cut.jpg"):
        read_rgb(p, (100, 75))


@pytest.mark.parametrize("damage", ["junk before the end marker", "corrupt scan data"])
def test_a_damaged_jpeg_pillow_can_read_reads_as_pillow_reads_it(tmp_path, damage):
    data = jpeg_bytes(photo(120, 160))
    if damage == "junk before the end marker":
        data = data[:-2] + b"\x00\x00" + data[-2:]
    else:                                                 # libjpeg warns; Pillow reads on
        data = data[:len(data) // 2] + b"\xff\xd3" + data[len(data) // 2 + 2:]
    p = tmp_path / "w.jpg"
    p.write_bytes(data)
    np.testing.assert_array_equal(read_rgb(p, (40, 30)), by_pillow(data, (40, 30), "resize", True))


def test_not_an_image_names_the_file(tmp_path):
    p = tmp_path / "notes.jpg"
    p.write_text("not a picture")
    with pytest.raises(ImageReadError, match="notes.jpg.*identify"):
        read_rgb(p, (10, 10))
