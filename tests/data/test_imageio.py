"""read_rgb: every image mode to 8-bit RGB, EXIF orientation, draft decoding, errors."""
import numpy as np
import pytest
from PIL import Image, JpegImagePlugin

from tinylesion.data import jpeg
from tinylesion.data.imageio import ImageReadError, read_rgb, verify_image


def save(im, path, **kw):
    im.save(path, **kw)
    return path


# -- modes -----------------------------------------------------------------------------------

def test_rgb_passes_through_exactly(tmp_path):
    x = np.random.default_rng(0).integers(0, 256, (9, 13, 3), dtype=np.uint8)
    p = save(Image.fromarray(x), tmp_path / "a.png")
    y = read_rgb(p, (13, 9))
    assert y.dtype == np.uint8 and y.shape == (9, 13, 3)
    np.testing.assert_array_equal(y, x)


def test_greyscale_and_bilevel(tmp_path):
    np.testing.assert_array_equal(read_rgb(save(Image.new("L", (5, 4), 100), tmp_path / "l.png"),
                                           (5, 4)), np.full((4, 5, 3), 100))
    bits = Image.new("1", (5, 4), 0)
    bits.putpixel((2, 1), 1)
    y = read_rgb(save(bits, tmp_path / "b.png"), (5, 4))
    assert y[1, 2].tolist() == [255, 255, 255] and y[0, 0].tolist() == [0, 0, 0]


@pytest.mark.parametrize("alpha, expect", [(255, (200, 100, 50)), (0, (0, 0, 0)),
                                           (128, (100, 50, 25))])
def test_rgba_is_composited_over_black(tmp_path, alpha, expect):
    p = save(Image.new("RGBA", (4, 3), (200, 100, 50, alpha)), tmp_path / "a.png")
    np.testing.assert_array_equal(read_rgb(p, (4, 3))[0, 0], expect)


def test_la_is_composited_over_black(tmp_path):
    p = save(Image.new("LA", (4, 3), (200, 128)), tmp_path / "la.png")
    np.testing.assert_array_equal(read_rgb(p, (4, 3)), np.full((3, 4, 3), 100))


def test_palette_with_and_without_transparency(tmp_path):
    im = Image.new("P", (4, 3), 0)
    im.putpalette([250, 10, 20, 0, 200, 30] + [0] * 762)
    im.putpixel((1, 0), 1)
    y = read_rgb(save(im, tmp_path / "p.png"), (4, 3))
    assert y[0, 0].tolist() == [250, 10, 20] and y[0, 1].tolist() == [0, 200, 30]
    y = read_rgb(save(im, tmp_path / "pt.png", transparency=0), (4, 3))
    assert y[0, 0].tolist() == [0, 0, 0] and y[0, 1].tolist() == [0, 200, 30]


def test_cmyk(tmp_path):
    im = Image.new("CMYK", (4, 3), (255, 0, 0, 0))          # pure cyan
    im.putpixel((1, 0), (0, 0, 0, 0))                       # white
    y = read_rgb(save(im, tmp_path / "c.tif"), (4, 3))
    assert y[0, 0].tolist() == [0, 255, 255] and y[0, 1].tolist() == [255, 255, 255]
    y = read_rgb(save(im, tmp_path / "c.jpg", quality=95), (4, 3))    # a CMYK JPEG
    assert np.abs(y[2, 3].astype(int) - [0, 255, 255]).max() < 20


def test_16_bit_png_is_scaled_not_clipped(tmp_path):
    values = np.array([[0, 257 * 50, 257 * 128, 65535]], dtype=np.uint16)
    p = save(Image.fromarray(values), tmp_path / "g16.png")
    assert Image.open(p).mode.startswith("I;16")
    y = read_rgb(p, (4, 1))
    np.testing.assert_array_equal(y[0, :, 0], [0, 50, 128, 255])
    np.testing.assert_array_equal(y[..., 0], y[..., 2])


def test_32_bit_int_and_float_images(tmp_path):
    p = save(Image.new("I", (3, 2), 257 * 77), tmp_path / "i.tif")
    assert Image.open(p).mode == "I"
    np.testing.assert_array_equal(read_rgb(p, (3, 2)), np.full((2, 3, 3), 77))
    p = save(Image.new("F", (3, 2), 0.5), tmp_path / "f.tif")
    np.testing.assert_array_equal(read_rgb(p, (3, 2)), np.full((2, 3, 3), 128))


# -- EXIF orientation ------------------------------------------------------------------------

def halves_jpeg(path, orientation):
    """A 40 x 20 JPEG, left half red and right half blue, with an EXIF orientation tag."""
    x = np.zeros((20, 40, 3), np.uint8)
    x[:, :20] = (255, 0, 0)
    x[:, 20:] = (0, 0, 255)
    exif = Image.Exif()
    exif[0x0112] = orientation
    Image.fromarray(x).save(path, exif=exif, quality=95)
    return path


@pytest.mark.parametrize("draft", [True, False])
def test_exif_rotation(tmp_path, draft):
    # orientation 6: the camera was turned; viewers rotate 90 degrees clockwise
    y = read_rgb(halves_jpeg(tmp_path / "r6.jpg", 6), (10, 20), draft=draft)
    assert y.shape == (20, 10, 3)
    assert y[2, 5, 0] > 200 and y[2, 5, 2] < 60        # top: red
    assert y[17, 5, 2] > 200 and y[17, 5, 0] < 60      # bottom: blue
    y = read_rgb(halves_jpeg(tmp_path / "r3.jpg", 3), (40, 20), draft=draft)   # 180 degrees
    assert y[10, 3, 2] > 200 and y[10, 36, 0] > 200    # left blue, right red


# -- resizing, draft decoding, the "half_crop224" preprocessing --------------------------------

def test_draft_on_and_off_agree(tmp_path, gradient_rgb):
    p = save(Image.fromarray(gradient_rgb), tmp_path / "g.jpg", quality=92)
    for size, pre in (((100, 75), "resize"), ((150, 112), "resize"), ((112, 112), "half_crop224"),
                      ((224, 224), "half_crop224")):
        a = read_rgb(p, size, pre, draft=True).astype(int)
        b = read_rgb(p, size, pre, draft=False).astype(int)
        assert np.abs(a - b).mean() < 2.0, (size, pre)
        assert np.percentile(np.abs(a - b), 99) < 12, (size, pre)


def test_draft_is_asked_for_only_when_it_can_help(tmp_path, gradient_rgb, monkeypatch):
    # the Pillow path (the JPEG fast path, which picks the same scale, is in test_jpeg.py)
    monkeypatch.setattr(jpeg, "decode", lambda data, need_for: None)
    p = save(Image.fromarray(gradient_rgb), tmp_path / "g.jpg")
    asked = []
    original = JpegImagePlugin.JpegImageFile.draft

    def spy(self, mode, size):
        asked.append(size)
        return original(self, mode, size)

    monkeypatch.setattr(JpegImagePlugin.JpegImageFile, "draft", spy)
    read_rgb(p, (100, 75))
    read_rgb(p, (400, 300))                 # more than half the file's size: no draft
    read_rgb(p, (100, 75), draft=False)
    read_rgb(p, (224, 224), "half_crop224")
    assert asked == [(100, 75), (300, 225)]


def test_resize_matches_pillow(tmp_path, gradient_rgb):
    p = save(Image.fromarray(gradient_rgb), tmp_path / "g.png")
    ref = np.asarray(Image.fromarray(gradient_rgb).resize((100, 75), Image.BILINEAR)).astype(int)
    assert np.abs(read_rgb(p, (100, 75)).astype(int) - ref).max() <= 2


def test_half_crop224_is_halve_then_centre_crop(tmp_path, gradient_rgb):
    p = save(Image.fromarray(gradient_rgb), tmp_path / "g.png")
    half = Image.fromarray(gradient_rgb).resize((300, 225), Image.BILINEAR)
    ref = np.asarray(half.crop((38, 0, 262, 224))).astype(int)
    y = read_rgb(p, (224, 224), "half_crop224")
    assert y.shape == (224, 224, 3)
    assert np.abs(y.astype(int) - ref).mean() < 1.0
    small = read_rgb(p, (112, 112), "half_crop224").astype(int)      # then scaled to size
    ref_small = np.asarray(Image.fromarray(ref.astype(np.uint8)).resize((112, 112),
                                                                         Image.BILINEAR))
    assert np.abs(small - ref_small).mean() < 2.0


def test_half_crop224_grows_small_images_first(tmp_path, gradient_rgb):
    # 300 x 200 halves to 150 x 100, too small: scaled to 336 x 224, then the centre is cut
    src = Image.fromarray(gradient_rgb).resize((300, 200), Image.BILINEAR)
    p = save(src, tmp_path / "s.png")
    ref = np.asarray(src.resize((336, 224), Image.BILINEAR).crop((56, 0, 280, 224))).astype(int)
    y = read_rgb(p, (224, 224), "half_crop224")
    assert np.abs(y.astype(int) - ref).mean() < 2.0


def test_bad_arguments(tmp_path):
    p = save(Image.new("RGB", (8, 8)), tmp_path / "a.png")
    with pytest.raises(ValueError, match="preprocess"):
        read_rgb(p, (4, 4), preprocess="crop")


# -- unreadable files ------------------------------------------------------------------------

def test_missing_file_names_path(tmp_path):
    p = tmp_path / "nowhere" / "x.jpg"
    with pytest.raises(ImageReadError, match="not found.*x.jpg") as info:
        read_rgb(p, (10, 10))
    assert isinstance(info.value, OSError) and str(p) in str(info.value)


def test_truncated_and_garbage_files_name_path(tmp_path, gradient_rgb):
    good = save(Image.fromarray(gradient_rgb), tmp_path / "good.jpg")
    data = good.read_bytes()
    cut = tmp_path / "cut.jpg"
    cut.write_bytes(data[: len(data) // 2])
    junk = tmp_path / "junk.jpg"
    junk.write_bytes(b"this is not an image" * 10)
    for p in (cut, junk, tmp_path):
        for draft in (True, False):
            with pytest.raises(ImageReadError) as info:
                read_rgb(p, (100, 75), draft=draft)
            assert str(p) in str(info.value)


def test_verify_image(tmp_path, gradient_rgb):
    good = save(Image.fromarray(gradient_rgb), tmp_path / "good.jpg")
    assert verify_image(good) is None
    assert verify_image(save(Image.new("RGBA", (5, 5)), tmp_path / "a.png")) is None
    cut = tmp_path / "cut.jpg"
    cut.write_bytes(good.read_bytes()[:-3000])
    assert "truncated" in verify_image(cut)
    junk = tmp_path / "junk.png"
    junk.write_bytes(b"\x89PNG nonsense")
    assert verify_image(junk) is not None
    assert verify_image(tmp_path / "missing.jpg") == "file not found"


def test_read_bytes_reads_every_kind_of_file_whole(tmp_path):
    import os
    import threading

    from tinylesion.data.imageio import _read_bytes
    for n in (0, 1, 4096, (1 << 20) + 3):
        p = tmp_path / f"f{n}"
        data = np.random.default_rng(n).integers(0, 256, n, dtype=np.uint8).tobytes()
        p.write_bytes(data)
        assert _read_bytes(p) == data
    if not hasattr(os, "mkfifo"):
        pytest.skip("no named pipes here (os.mkfifo)")
    fifo = tmp_path / "pipe"              # size 0 to fstat: read on to the end all the same
    os.mkfifo(fifo)
    payload = b"x" * ((3 << 20) + 5)

    def write():
        with open(fifo, "wb") as f:
            f.write(payload)
    writer = threading.Thread(target=write)
    writer.start()
    try:
        assert _read_bytes(fifo) == payload
    finally:
        writer.join(5)
