"""The "half_crop224" box, exactly: against Pillow given the box computed by hand, and as a
plain slice where the decoded image is the halved one (JPEG draft decoding)."""
import numpy as np
import pytest
from PIL import Image

from tinylesion.data import read_rgb


def noise(width, height, seed=0):
    """Random pixels: a box one pixel off gives other values almost everywhere."""
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


def png(tmp_path, pixels, name="x.png"):
    path = tmp_path / name
    Image.fromarray(pixels).save(path)
    return path


def pillow(pixels, size, box):
    return np.asarray(Image.fromarray(pixels).resize(size, Image.Resampling.BILINEAR, box=box))


@pytest.mark.parametrize("width, height, box", [
    # 640 x 480 halves to 320 x 240; its centre 224 x 224 starts at (48, 8): (96, 16) in full
    (640, 480, (96, 16, 544, 464)),
    # 480 x 640: the same, upright
    (480, 640, (16, 96, 464, 544)),
    # 450 x 450 halves to 225 x 225 (odd): the spare pixel is on the right and bottom
    (450, 450, (0, 0, 448, 448)),
    # 452 x 460 halves to 226 x 230: one pixel left of the crop, three above
    (452, 460, (2, 6, 450, 454)),
    # 300 x 200 halves to 150 x 100, too small: grown to 336 x 224; the crop's 56 pixels to
    # the left are 50 of the file's
    (300, 200, (50, 0, 250, 200)),
    # 641 x 451 halves to 320.5 x 225.5, rounded (half to even) to 320 x 226: the crop starts
    # at (48, 1) of the half, in the file's pixels times 641/320 and 451/226
    (641, 451, (48 * 641 / 320, 1 * 451 / 226, 272 * 641 / 320, 225 * 451 / 226)),
])
@pytest.mark.parametrize("size", [(224, 224), (96, 96)])
def test_half_crop224_box_by_hand(tmp_path, width, height, box, size):
    pixels = noise(width, height)
    got = read_rgb(png(tmp_path, pixels), size, "half_crop224")
    np.testing.assert_array_equal(got, pillow(pixels, size, box))


def test_half_crop224_of_a_halved_decode_is_a_slice(tmp_path):
    # a JPEG decoded at half size (draft) is the halved image itself: the crop is a slice of it
    path = tmp_path / "x.jpg"
    Image.fromarray(noise(640, 480)).save(path, quality=95)
    with Image.open(path) as im:
        im.draft("RGB", (320, 240))
        half = np.asarray(im.convert("RGB"))
    assert half.shape == (240, 320, 3)
    got = read_rgb(path, (224, 224), "half_crop224")
    np.testing.assert_array_equal(got, half[8:232, 48:272])


def test_resize_takes_the_whole_image(tmp_path):
    pixels = noise(90, 70)
    got = read_rgb(png(tmp_path, pixels), (30, 20), "resize")
    np.testing.assert_array_equal(got, pillow(pixels, (30, 20), (0, 0, 90, 70)))
    assert got.shape == (20, 30, 3)            # (height, width): width is the first of size


@pytest.mark.parametrize("size, drafts", [((336, 336), False), ((224, 224), True),
                                          ((112, 112), True), ((448, 300), False)])
def test_draft_decoding_only_when_the_crop_keeps_its_pixels(tmp_path, size, drafts):
    # 1800 x 1200 halves to 900 x 600; a crop drawn at more than 224 needs the half image
    # grown by size / 224 (1.5 for 336: 1350 x 900, more than half the file), so no draft
    path = tmp_path / "big.jpg"
    Image.fromarray(noise(1800, 1200)).save(path, quality=90)
    fast = read_rgb(path, size, "half_crop224", draft=True)
    full = read_rgb(path, size, "half_crop224", draft=False)
    assert fast.shape == full.shape == (size[1], size[0], 3)
    assert np.array_equal(fast, full) != drafts


@pytest.mark.parametrize("size, drafts", [((600, 100), False), ((400, 200), False),
                                          ((500, 150), True), ((250, 60), True)])
def test_draft_decoding_for_resize_only_when_both_sides_allow_it(tmp_path, size, drafts):
    # a 1000 x 300 file is draft-decoded at half only when the output is at most 500 x 150
    path = tmp_path / "wide.jpg"
    Image.fromarray(noise(1000, 300, seed=1)).save(path, quality=90)
    fast = read_rgb(path, size, "resize", draft=True)
    full = read_rgb(path, size, "resize", draft=False)
    assert np.array_equal(fast, full) != drafts
