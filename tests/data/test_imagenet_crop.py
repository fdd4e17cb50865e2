"""preprocess="imagenet_crop": torchvision's ImageNet evaluation geometry (resize the shorter
side to size / 0.875, cut the centre), done while reading, and the ImageNet statistics."""
import numpy as np
import pytest
from PIL import Image

from tinylesion.data import IMAGENET_MEAN, IMAGENET_STD, ImageFolder, normalize, read_rgb
from tinylesion.data.imageio import _imagenet_geometry


def _smooth_image(width, height, seed=0):
    """A smooth RGB picture (gradients and a blob), so that resampling differences stay small."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float64)
    rng = np.random.default_rng(seed)
    cx, cy = rng.uniform(0.3, 0.7) * width, rng.uniform(0.3, 0.7) * height
    blob = np.exp(-((x - cx) ** 2 + (y - cy) ** 2) / (0.1 * width * height))
    rgb = np.stack([x / width, y / height, blob], axis=-1) * 255
    return rgb.round().astype(np.uint8)


@pytest.mark.parametrize("full, size, short_side", [((500, 375), (224, 224), 256),
                                                    ((375, 500), (299, 299), 342),
                                                    ((600, 450), (224, 224), 256)])
def test_the_shorter_side_is_resized_as_torchvision_then_the_centre_cut(full, size, short_side):
    scale, (left, top, right, bottom) = _imagenet_geometry(*full, size)
    assert round(min(full) * scale) == short_side
    assert right - left == pytest.approx(size[0] / scale)
    assert bottom - top == pytest.approx(size[1] / scale)
    assert left == pytest.approx(full[0] - right) and top == pytest.approx(full[1] - bottom)


@pytest.mark.parametrize("fmt", ["png", "jpeg"])
def test_read_rgb_equals_resizing_then_cropping(tmp_path, fmt):
    width, height = 500, 375
    path = tmp_path / f"lesion.{fmt}"
    Image.fromarray(_smooth_image(width, height), "RGB").save(path, quality=95)
    got = read_rgb(path, (224, 224), preprocess="imagenet_crop")
    assert got.shape == (224, 224, 3) and got.dtype == np.uint8
    # the same in two steps with Pillow: shorter side to 256, then the 224 x 224 centre
    with Image.open(path) as im:
        resized = im.convert("RGB").resize((round(width * 256 / height), 256),
                                           Image.Resampling.BILINEAR)
    left, top = (resized.width - 224) // 2, (resized.height - 224) // 2
    expected = np.asarray(resized.crop((left, top, left + 224, top + 224)))
    diff = np.abs(got.astype(int) - expected.astype(int))
    assert diff.mean() < 1.5 and np.percentile(diff, 99) <= 6
    # and it is not the whole image squeezed (what "resize" gives)
    whole = read_rgb(path, (224, 224), preprocess="resize")
    assert np.abs(whole.astype(int) - expected.astype(int)).mean() > 5


def test_a_dataset_reads_with_it_and_normalises_with_imagenet_statistics(tmp_path):
    for label in ("mel", "nv"):
        (tmp_path / label).mkdir()
        Image.fromarray(_smooth_image(120, 90), "RGB").save(tmp_path / label / "a.png")
    ds = ImageFolder(tmp_path, image_size=(64, 64), preprocess="imagenet_crop")
    image, _ = ds[0]
    np.testing.assert_array_equal(image, read_rgb(tmp_path / "mel" / "a.png", (64, 64),
                                                  "imagenet_crop"))
    batch = np.full((1, 3, 2, 2), 255, np.uint8)
    out = normalize(batch, IMAGENET_MEAN, IMAGENET_STD)
    np.testing.assert_allclose(out[0, :, 0, 0], (1 - np.array(IMAGENET_MEAN))
                               / np.array(IMAGENET_STD), rtol=1e-6)


def test_an_unknown_preprocessing_is_named():
    with pytest.raises(ValueError, match="resize, half_crop224, imagenet_crop"):
        read_rgb("x.png", (8, 8), preprocess="imagenet")
