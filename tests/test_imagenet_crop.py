"""The ImageNet crops (shorter side to 256, centre 224; 342 and 299 for Inception) as a
dataset preprocessing done where the images are read, against Pillow's resize of the box."""
import numpy as np
import pytest
from PIL import Image

from tinylesion.data.imageio import PREPROCESS, read_rgb


@pytest.fixture(scope="module")
def photo(tmp_path_factory):
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:300, 0:400]
    x = np.stack([xx * 255 // 399, yy * 255 // 299, (xx + yy) % 256], axis=-1)
    x = np.clip(x + rng.integers(-20, 20, x.shape), 0, 255).astype(np.uint8)
    path = tmp_path_factory.mktemp("img") / "photo.png"
    Image.fromarray(x).save(path)
    return path


@pytest.mark.parametrize("preprocess, size, box", [
    # 400x300, shorter side 300 → 256: the 224 centre is 224·300/256 = 262.5 source pixels
    ("crop224of256", (224, 224), (68.75, 18.75, 331.25, 281.25)),
    # any size: scaled to cover 112x84 / 0.875, then cut: a 350 x 262.5 box
    ("crop224of256", (112, 84), (25.0, 18.75, 375.0, 281.25)),
    # Inception: 299 of 342 → 299·300/342 = 262.28... source pixels
    ("crop299of342", (299, 299), (200 - 150 * 299 / 342, 150 - 150 * 299 / 342,
                                  200 + 150 * 299 / 342, 150 + 150 * 299 / 342)),
])
def test_the_centre_crop_equals_pillow_on_the_same_box(photo, preprocess, size, box):
    assert preprocess in PREPROCESS
    got = read_rgb(photo, size, preprocess, draft=False)
    with Image.open(photo) as im:
        expected = np.asarray(im.convert("RGB").resize(size, Image.BILINEAR, box=box))
    assert got.shape == (size[1], size[0], 3)
    np.testing.assert_array_equal(got, expected)


def test_the_crop_cuts_the_long_side_not_the_short_one(photo):
    whole = read_rgb(photo, (224, 224), "resize", draft=False).astype(float)
    crop = read_rgb(photo, (224, 224), "crop224of256", draft=False).astype(float)
    # the red channel is the x ramp: the crop spans ~66 % of it, the whole image 100 %
    assert np.ptp(crop[..., 0].mean(axis=0)) < 0.75 * np.ptp(whole[..., 0].mean(axis=0))
    # the green channel is the y ramp: the crop keeps ~87.5 % of the short side
    assert np.ptp(crop[..., 1].mean(axis=1)) > 0.8 * np.ptp(whole[..., 1].mean(axis=1))


def test_a_large_jpeg_decoded_in_draft_gives_nearly_the_same_crop(tmp_path):
    yy, xx = np.mgrid[0:1200, 0:1600]
    x = np.stack([xx * 255 // 1599, yy * 255 // 1199, np.full_like(xx, 128)], axis=-1)
    path = tmp_path / "big.jpg"
    Image.fromarray(x.astype(np.uint8)).save(path, quality=95)
    full = read_rgb(path, (56, 56), "crop224of256", draft=False).astype(float)
    draft = read_rgb(path, (56, 56), "crop224of256", draft=True).astype(float)
    assert draft.shape == full.shape == (56, 56, 3)
    assert np.abs(draft - full).mean() < 2.0
