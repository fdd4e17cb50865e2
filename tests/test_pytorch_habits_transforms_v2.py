"""tinylesion.vision.transforms.v2 against torchvision v2's results stored by
bench/vision_fixtures.py, and a v2 classification pipeline on images and samples."""
import numpy as np
import pytest
from PIL import Image

import tinylesion as tl
from bench.vision_fixtures import MIX_BOX, MIX_LABELS, mix_batch
from tinylesion.vision.transforms import v2
from tinylesion.vision.transforms.v2 import functional as F2
from tinylesion.vision.transforms.v2.mixing import cutmix, mixup
import test_pytorch_habits_augment as augment_tests
from test_pytorch_habits_augment import AFFINE, CORNERS, I, T, check, image, inputs

ref = augment_tests.ref          # the stored torchvision results, as a module fixture


def test_v2_matches_torchvision(ref):
    pil, x, u = inputs()
    mean, std = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]
    check(ref, "v2/pipeline", v2.Compose([v2.ToImage(), v2.ToDtype(tl.float32, scale=True),
                                          v2.Normalize(mean, std)])(pil))
    check(ref, "v2/to_image_array", v2.ToImage()(image()))
    check(ref, "v2/to_dtype_uint8", v2.ToDtype(tl.uint8, scale=True)(x))
    check(ref, "v2/to_dtype_float", v2.ToDtype(tl.float32, scale=True)(u), atol=0)
    check(ref, "v2/to_dtype_noscale", v2.ToDtype(tl.float32)(u), atol=0)
    check(ref, "v2/resize_pil", F2.resize(pil, [7, 9]))
    # Pillow's rounding (ours) and torchvision's uint8 resize kernel differ by at most 1
    check(ref, "v2/resize_uint8", F2.resize(u, [7, 9]), uint8_off_by_one=30)
    check(ref, "v2/affine_uint8", F2.affine(u, *AFFINE, interpolation=I.BILINEAR),
          uint8_off_by_one=2)
    check(ref, "v2/rotate_float", F2.rotate(x, 30.0, I.BILINEAR), atol=1e-6)
    check(ref, "v2/perspective_float", F2.perspective(x, *CORNERS), atol=1e-5)
    check(ref, "v2/blur_uint8", F2.gaussian_blur(u, [5, 5], [1.5, 1.5]), uint8_off_by_one=2)
    check(ref, "v2/erase_pil",
          F2.erase(pil, 2, 3, 4, 5, np.array([10.7, 20.2, 250.9])[:, None, None]))
    check(ref, "v2/autocontrast_uint8", F2.autocontrast(u))
    check(ref, "v2/equalize_uint8", F2.equalize(u))
    check(ref, "v2/sharpness_uint8", F2.adjust_sharpness(u, 1.7), uint8_off_by_one=2)


def test_v2_classification_pipeline_on_samples():
    pil = Image.fromarray(image(3, (40, 50, 3)))
    mean, std = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]
    pipeline = v2.Compose([v2.RandomResizedCrop(24, antialias=True), v2.RandomHorizontalFlip(),
                           v2.ToImage(), v2.ToDtype(tl.float32, scale=True),
                           v2.Normalize(mean, std)])
    # v1 with the same seed draws the same crop and flip: the results agree
    v1 = T.Compose([T.RandomResizedCrop(24), T.RandomHorizontalFlip(), T.ToTensor(),
                    T.Normalize(mean, std)])
    for seed in range(3):
        tl.manual_seed(seed)
        ours = pipeline(pil)
        tl.manual_seed(seed)
        np.testing.assert_allclose(ours.numpy(), v1(pil).numpy(), atol=1e-6)
        assert ours.shape == (3, 24, 24) and ours.dtype == np.float32
    tl.manual_seed(0)
    single = pipeline(pil)
    tl.manual_seed(0)
    image_out, label = pipeline(pil, 4)                 # (image, label) samples
    np.testing.assert_array_equal(image_out.numpy(), single.numpy())
    assert label == 4
    tl.manual_seed(0)
    sample = pipeline({"image": pil, "label": tl.tensor(2), "name": "ISIC_0001"})
    np.testing.assert_array_equal(sample["image"].numpy(), single.numpy())
    assert sample["name"] == "ISIC_0001" and int(sample["label"].item()) == 2
    tensors = pipeline(T.PILToTensor()(pil))            # uint8 tensors too
    assert tensors.shape == (3, 24, 24) and tensors.dtype == np.float32
    # every class a v2 script names exists and takes samples
    for name in ("AutoAugment", "RandAugment", "TrivialAugmentWide", "RandomErasing",
                 "GaussianBlur", "RandomAffine", "RandomPerspective", "ColorJitter",
                 "RandomRotation", "RandomVerticalFlip", "CenterCrop", "Resize", "Identity",
                 "ToPureTensor", "RandomApply", "RandomChoice", "RandomOrder"):
        assert hasattr(v2, name), name
    u = T.PILToTensor()(pil)
    out, label = v2.RandAugment()(u, 1)
    assert out.shape == u.shape and label == 1
    erased = v2.RandomErasing(p=1.0, value=255)(pil)       # v2 erases PIL images too
    assert erased.size == pil.size and (np.asarray(erased) == 255).all(axis=2).sum() > 0
    assert v2.ConvertImageDtype(tl.float32)(u).dtype == np.float32
    assert v2.RandomApply([v2.RandomInvert(p=1.0)], p=0.0)(u) is u
    with pytest.raises(TypeError, match="ToDtype: per-type dtypes"):
        v2.ToDtype({"image": tl.float32})
    with pytest.raises(TypeError, match="dtype should be"):
        v2.ToDtype("float-ish")
    with pytest.raises(TypeError, match="put ToImage"):
        v2.functional.to_dtype(pil)


def test_mixup_and_cutmix_match_torchvision(ref):
    batch, labels = tl.from_numpy(mix_batch()), tl.tensor(MIX_LABELS)
    images, soft = mixup(batch, labels, 0.3, num_classes=3)
    check(ref, "v2/mixup/images", images)
    check(ref, "v2/mixup/labels", soft)
    images, soft = cutmix(batch, labels, MIX_BOX, num_classes=3)
    check(ref, "v2/cutmix/images", images, atol=0)
    check(ref, "v2/cutmix/labels", soft)


def test_mixup_and_cutmix_classes():
    batch, labels = tl.from_numpy(mix_batch()), tl.tensor(MIX_LABELS)
    both = v2.RandomChoice([v2.CutMix(num_classes=3), v2.MixUp(num_classes=3)])
    tl.manual_seed(0)
    first = [both(batch, labels) for _ in range(6)]
    tl.manual_seed(0)
    again = [both((batch, labels)) for _ in range(6)]
    for (xa, ya), (xb, yb) in zip(first, again):
        np.testing.assert_array_equal(xa.numpy(), xb.numpy())
        np.testing.assert_array_equal(ya.numpy(), yb.numpy())
        assert xa.shape == (4, 3, 6, 7) and ya.shape == (4, 3)
        np.testing.assert_allclose(ya.numpy().sum(axis=1), 1.0, rtol=1e-6)
    # MixUp: lam from the generator's Beta(alpha, alpha)
    tl.manual_seed(5)
    lam = float(tl.backend.generator().beta(0.4, 0.4))
    tl.manual_seed(5)
    images, soft = v2.MixUp(alpha=0.4, num_classes=3)(batch, labels)
    want = mixup(batch, labels, lam, 3)
    np.testing.assert_array_equal(images.numpy(), want[0].numpy())
    # CutMix: the box holds the rolled batch, the labels the kept area
    tl.manual_seed(1)
    boxes = [v2.CutMix.get_params(60, 80, 0.5) for _ in range(100)]
    for x1, y1, x2, y2 in boxes:
        assert 0 <= x1 <= x2 <= 80 and 0 <= y1 <= y2 <= 60
        assert x2 - x1 <= 2 * int(0.5 * 0.5 ** 0.5 * 80)
    assert max(x2 - x1 for x1, _, x2, _ in boxes) == 2 * int(0.5 * 0.5 ** 0.5 * 80)
    with pytest.raises(ValueError, match="num_classes must be given"):
        v2.MixUp()(batch, labels)
    with pytest.raises(TypeError, match="mixup: images should be floats"):
        v2.MixUp(num_classes=3)(tl.from_numpy(np.zeros((4, 3, 2, 2), np.uint8)), labels)
    with pytest.raises(ValueError, match=r"batch of images \(N, C, H, W\)"):
        v2.CutMix(num_classes=3)(batch[0], labels)
    with pytest.raises(ValueError, match="alpha"):
        v2.CutMix(alpha=0)
    with pytest.raises(ValueError, match="mix\\(images, labels\\)"):
        v2.MixUp(num_classes=3)(batch)


def test_v2_custom_transform_subclass():
    class AddBrightness(v2.Transform):
        """A user's v2 transform written with make_params and transform."""

        def make_params(self, flat_inputs):
            return {"factor": 1.5}

        def transform(self, inpt, params):
            return v2.functional.adjust_brightness(inpt, params["factor"])

    pil = Image.fromarray(image())
    out, label = v2.Compose([v2.ToImage(), AddBrightness()])(pil, 7)
    np.testing.assert_array_equal(out.numpy(), v2.functional.adjust_brightness(
        v2.functional.to_image(pil), 1.5).numpy())
    assert label == 7

    class Unfinished(v2.Transform):
        pass

    with pytest.raises(NotImplementedError, match="Unfinished defines neither"):
        Unfinished()(pil)
    # a sample without any image is passed through untouched
    assert v2.RandomHorizontalFlip(p=1.0)(("text", 3)) == ("text", 3)


def test_v2_photometric_extras(ref):
    pil, x, u = inputs()
    check(ref, "v2/permute_channels", F2.permute_channels(x, [2, 0, 1]), atol=0)
    check(ref, "v2/permute_channels_pil", F2.permute_channels(pil, [1, 2, 0]))
    with pytest.raises(ValueError, match="permutation should reorder"):
        F2.permute_channels(x, [0, 0, 1])
    # noise: float images get mean + sigma * N(0, 1), clipped; uint8 in levels of 1/255
    tl.manual_seed(0)
    flat = tl.from_numpy(np.full((3, 64, 64), 0.5, np.float32))
    noisy = F2.gaussian_noise(flat, mean=0.1, sigma=0.05).numpy() - 0.5
    assert abs(noisy.mean() - 0.1) < 0.005 and abs(noisy.std() - 0.05) < 0.005
    assert F2.gaussian_noise(flat, sigma=5.0).numpy().max() <= 1.0
    tl.manual_seed(0)
    levels = F2.gaussian_noise(tl.from_numpy(np.full((3, 64, 64), 128, np.uint8)),
                               sigma=0.02).numpy().astype(int) - 128
    assert abs(levels.std() - 0.02 * 255) < 0.5
    tl.manual_seed(0)
    again = F2.gaussian_noise(tl.from_numpy(np.full((3, 64, 64), 128, np.uint8)),
                              sigma=0.02).numpy().astype(int) - 128
    np.testing.assert_array_equal(levels, again)
    with pytest.raises(TypeError, match="tensor images"):
        v2.GaussianNoise()(pil)
    with pytest.raises(ValueError, match="sigma"):
        v2.GaussianNoise(sigma=-1)
    # channel permutation and the photometric distortion: reproducible, drawn as documented
    tl.manual_seed(3)
    order = tl.backend.generator().permutation(3).tolist()
    tl.manual_seed(3)
    np.testing.assert_array_equal(v2.RandomChannelPermutation()(u).numpy(),
                                  u.numpy()[order])
    distort = v2.RandomPhotometricDistort(p=1.0)
    tl.manual_seed(4)
    params = distort.make_params(3)
    assert 0.875 <= params["brightness"] <= 1.125 and 0.5 <= params["contrast"] <= 1.5
    assert 0.5 <= params["saturation"] <= 1.5 and -0.05 <= params["hue"] <= 0.05
    assert sorted(params["channel_permutation"]) == [0, 1, 2]
    want = F2.adjust_brightness(pil, params["brightness"])
    if params["contrast_before"]:
        want = F2.adjust_contrast(want, params["contrast"])
    want = F2.adjust_hue(F2.adjust_saturation(want, params["saturation"]), params["hue"])
    if not params["contrast_before"]:
        want = F2.adjust_contrast(want, params["contrast"])
    want = F2.permute_channels(want, params["channel_permutation"])
    tl.manual_seed(4)
    np.testing.assert_array_equal(np.asarray(distort(pil)), np.asarray(want))
    assert v2.RandomPhotometricDistort(p=0.0)(u).numpy().tobytes() == u.numpy().tobytes()
    with pytest.raises(ValueError, match="probability"):
        v2.RandomPhotometricDistort(p=2)
