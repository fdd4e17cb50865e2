"""tinylesion.vision.transforms' augmentations (affine, perspective, elastic, blur, erasing,
tone operations) against torchvision's results stored by bench/vision_fixtures.py, plus
their random parameters, reproducibility, argument checks and the GPU path."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

import tinylesion as tl
from tinylesion.vision import transforms as T
from tinylesion.vision.transforms import functional as F
# the image and fixed parameters the stored results were computed with (that module imports
# torch only inside its main)
from bench.vision_fixtures import AFFINE, CORNERS, displacement, image
from tinylesion.vision.transforms.geometry import perspective_coefficients

FIXTURE = os.path.join(os.path.dirname(__file__), "fixtures",
                       "torchvision_augment_reference.npz")
I = F.InterpolationMode


@pytest.fixture(scope="module")
def ref():
    with np.load(FIXTURE) as f:
        return dict(f)


def inputs():
    pil = Image.fromarray(image())
    return pil, T.ToTensor()(pil), T.PILToTensor()(pil)


def as_array(value):
    return np.asarray(value.numpy() if isinstance(value, tl.Tensor) else value)


def check(ref, key, value, atol=2e-6, uint8_off_by_one=0):
    """value equals torchvision's: exactly for integers (up to `uint8_off_by_one` pixels
    off by one, from float rounding before the cast), within atol for floats."""
    got, want = as_array(value), ref[key]
    assert got.shape == want.shape and got.dtype == want.dtype, key
    if got.dtype.kind == "f":
        np.testing.assert_allclose(got, want, rtol=0, atol=atol, err_msg=key)
    else:
        diff = np.abs(got.astype(int) - want.astype(int))
        assert diff.max(initial=0) <= (1 if uint8_off_by_one else 0), key
        assert np.count_nonzero(diff) <= uint8_off_by_one, key


def test_affine_matches_torchvision(ref):
    pil, x, u = inputs()
    np.testing.assert_array_equal(ref["input"], image())
    check(ref, "affine/pil_nearest", F.affine(pil, *AFFINE))
    check(ref, "affine/pil_bilinear_fill", F.affine(pil, *AFFINE, I.BILINEAR, fill=[10, 20, 30]))
    check(ref, "affine/pil_center", F.affine(pil, -15.0, [0, 0], 1.0, [0.0, 0.0], center=[3, 4]))
    check(ref, "affine/float_nearest", F.affine(x, *AFFINE))
    check(ref, "affine/float_bilinear", F.affine(x, *AFFINE, I.BILINEAR), atol=1e-6)
    check(ref, "affine/float_bilinear_fill",
          F.affine(x, *AFFINE, I.BILINEAR, fill=[0.2, 0.5, 0.9]), atol=1e-6)
    check(ref, "affine/float_nearest_fill", F.affine(x, *AFFINE, fill=[0.5]))
    check(ref, "affine/float_center",
          F.affine(x, -15.0, [0, 0], 1.0, [0.0, 0.0], center=[3, 4]))
    check(ref, "affine/uint8_bilinear", F.affine(u, *AFFINE, I.BILINEAR), uint8_off_by_one=2)
    # a batch (N, C, H, W) is warped image by image
    batch = tl.from_numpy(np.stack([x.numpy(), x.numpy()[::-1].copy()]))
    warped = F.affine(batch, *AFFINE, I.BILINEAR).numpy()
    np.testing.assert_allclose(warped[0], ref["affine/float_bilinear"], atol=1e-6)
    np.testing.assert_allclose(warped[1], F.affine(tl.from_numpy(x.numpy()[::-1].copy()),
                                                   *AFFINE, I.BILINEAR).numpy(), atol=0)


def test_tensor_rotation_matches_torchvision(ref):
    _, x, u = inputs()
    check(ref, "rotate/float_bilinear", F.rotate(x, 30.0, I.BILINEAR), atol=1e-6)
    check(ref, "rotate/float_nearest_center", F.rotate(x, -50.0, center=[4, 3]))
    check(ref, "rotate/uint8_expand_fill",
          F.rotate(u, 35.0, I.BILINEAR, expand=True, fill=[10.0, 200.0, 60.0]),
          uint8_off_by_one=2)
    check(ref, "rotate/float_expand", F.rotate(x, 90.0, expand=True))
    assert F.rotate(x, 20.0, I.BICUBIC).shape == x.shape       # bicubic: through Pillow


def test_elastic_transform_matches_torchvision(ref):
    pil, x, u = inputs()
    shift = tl.from_numpy(displacement())
    check(ref, "elastic/float_bilinear", F.elastic_transform(x, shift), atol=1e-6)
    check(ref, "elastic/uint8_nearest_fill", F.elastic_transform(u, shift, I.NEAREST, [9.0]))
    check(ref, "elastic/pil", F.elastic_transform(pil, displacement()), uint8_off_by_one=2)
    with pytest.raises(ValueError, match=r"displacement should have shape \(1, 13, 17, 2\)"):
        F.elastic_transform(x, tl.zeros(1, 17, 13, 2))
    with pytest.raises(TypeError, match="displacement should be a tensor"):
        F.elastic_transform(x, [[0.0]])
    # the class: smooth displacements within alpha / size, reproducible, then the warp
    tl.manual_seed(2)
    shift = T.ElasticTransform.get_params([50.0, 20.0], [5.0, 5.0], [40, 60]).numpy()
    assert shift.shape == (1, 40, 60, 2) and shift.dtype == np.float32
    assert np.abs(shift[..., 0]).max() <= 50.0 / 60 and np.abs(shift[..., 1]).max() <= 20.0 / 40
    rough = np.abs(np.diff(shift[0, :, :, 0], axis=1)).mean()
    assert rough < 0.3 * np.abs(shift[..., 0]).mean()   # blurred (raw noise: about 1.3)
    tl.manual_seed(2)
    again = T.ElasticTransform.get_params([50.0, 20.0], [5.0, 5.0], [40, 60]).numpy()
    np.testing.assert_array_equal(shift, again)
    big = T.ToTensor()(Image.fromarray(image(4, (40, 60, 3))))
    tl.manual_seed(2)
    got = T.ElasticTransform(alpha=(50.0, 20.0))(big).numpy()
    np.testing.assert_array_equal(got, F.elastic_transform(big, tl.from_numpy(shift),
                                                           fill=[0.0]).numpy())
    with pytest.raises(TypeError, match="sigma"):
        T.ElasticTransform(sigma="wide")
    with pytest.raises(TypeError, match="fill"):
        T.ElasticTransform(fill=None)


def test_five_and_ten_crops_match_torchvision(ref):
    pil, x, _ = inputs()
    crops = F.ten_crop(x, [6, 9])
    assert len(crops) == 10
    for k, part in enumerate(crops):
        check(ref, f"ten_crop/float/{k}", part, atol=0)
    for k, part in enumerate(T.TenCrop(7, vertical_flip=True)(pil)):
        check(ref, f"ten_crop/pil_vertical/{k}", part)
    five = T.FiveCrop((6, 9))(x)
    for got, want in zip(five, crops[:5]):
        np.testing.assert_array_equal(got.numpy(), want.numpy())
    with pytest.raises(ValueError, match="five_crop: crop size"):
        F.five_crop(x, 14)


def test_perspective_matches_torchvision(ref):
    pil, x, u = inputs()
    start, end = CORNERS
    coeffs = perspective_coefficients(start, end)
    assert abs(coeffs[6]) > 1e-4 and abs(coeffs[7]) > 1e-4      # not an affine map
    np.testing.assert_allclose(coeffs, ref["perspective/coeffs"], rtol=1e-6)
    check(ref, "perspective/pil_bilinear", F.perspective(pil, start, end))
    check(ref, "perspective/pil_nearest_fill",
          F.perspective(pil, start, end, I.NEAREST, fill=[200, 0, 50]))
    check(ref, "perspective/float_bilinear", F.perspective(x, start, end), atol=1e-5)
    check(ref, "perspective/float_nearest", F.perspective(x, start, end, I.NEAREST))
    check(ref, "perspective/float_fill", F.perspective(x, start, end, fill=[0.3] * 3),
          atol=1e-5)
    check(ref, "perspective/uint8_bilinear", F.perspective(u, start, end), uint8_off_by_one=2)


def test_gaussian_blur_and_erase_match_torchvision(ref):
    pil, x, u = inputs()
    check(ref, "blur/float5", F.gaussian_blur(x, 5, 1.5))
    check(ref, "blur/float_3x7", F.gaussian_blur(x, [3, 7], [0.8, 2.0]))
    check(ref, "blur/float_default_sigma", F.gaussian_blur(x, [5, 3]))
    check(ref, "blur/uint8", F.gaussian_blur(u, 5, 1.5), uint8_off_by_one=2)
    check(ref, "blur/pil", F.gaussian_blur(pil, 5, 1.5), uint8_off_by_one=2)
    check(ref, "erase/channels",
          F.erase(x, 2, 3, 4, 5, tl.from_numpy(np.array([0.1, 0.2, 0.3], np.float32)
                                                .reshape(3, 1, 1))))
    check(ref, "erase/zero", F.erase(u, 5, 0, 8, 17, 0))
    before = x.numpy().copy()
    assert F.erase(x, 0, 0, 2, 2, 1.0, inplace=True) is x
    assert (x.numpy()[:, :2, :2] == 1.0).all() and (x.numpy()[:, 2:] == before[:, 2:]).all()
    with pytest.raises(TypeError, match="erase: img should be a Tensor"):
        F.erase(pil, 0, 0, 1, 1, 0)


def test_tone_operations_match_torchvision(ref):
    pil, x, u = inputs()
    for kind, img in (("float", x), ("uint8", u), ("pil", pil)):
        check(ref, f"tone/invert/{kind}", F.invert(img))
        check(ref, f"tone/solarize/{kind}", F.solarize(img, 0.5 if kind == "float" else 128))
        check(ref, f"tone/autocontrast/{kind}", F.autocontrast(img))
        check(ref, f"tone/gamma/{kind}", F.adjust_gamma(img, 0.6, 1.1), atol=1e-6)
        check(ref, f"tone/gamma_dark/{kind}", F.adjust_gamma(img, 2.2), atol=1e-6)
        check(ref, f"tone/sharpness/{kind}", F.adjust_sharpness(img, 1.7), atol=1e-6,
              uint8_off_by_one=2)
        check(ref, f"tone/sharpness_low/{kind}", F.adjust_sharpness(img, 0.3), atol=1e-6,
              uint8_off_by_one=2)
        if kind != "float":
            check(ref, f"tone/posterize/{kind}", F.posterize(img, 3))
            check(ref, f"tone/equalize/{kind}", F.equalize(img))
    flat = u.numpy().copy()
    flat[0] = 7
    check(ref, "tone/autocontrast/flat", F.autocontrast(tl.from_numpy(flat)))
    check(ref, "tone/equalize/batch", F.equalize(tl.from_numpy(np.stack([u.numpy(), flat]))))
    with pytest.raises(TypeError, match="posterize: only uint8"):
        F.posterize(x, 3)
    with pytest.raises(ValueError, match="bits"):
        F.posterize(u, 9)
    with pytest.raises(TypeError, match="solarize: threshold"):
        F.solarize(x, 2.0)
    with pytest.raises(TypeError, match="channels"):
        F.invert(tl.zeros(4, 5, 5))
    with pytest.raises(ValueError, match="sharpness_factor"):
        F.adjust_sharpness(x, -1)
    with pytest.raises(ValueError, match="gamma should be non-negative"):
        F.adjust_gamma(pil, -0.5)


def test_functional_argument_checks():
    _, x, _ = inputs()
    with pytest.raises(TypeError, match="angle"):
        F.affine(x, "30", [0, 0], 1.0, 0)
    with pytest.raises(ValueError, match="translate"):
        F.affine(x, 30, [0, 0, 0], 1.0, 0)
    with pytest.raises(ValueError, match="scale"):
        F.affine(x, 30, [0, 0], 0.0, 0)
    with pytest.raises(ValueError, match="shear"):
        F.affine(x, 30, [0, 0], 1.0, [1, 2, 3])
    with pytest.raises(ValueError, match="nearest and bilinear"):
        F.affine(x, 30, [0, 0], 1.0, 0, I.BICUBIC)
    with pytest.raises(ValueError, match="fill"):
        F.affine(x, 30, [0, 0], 1.0, 0, fill=[1, 2])
    with pytest.raises(ValueError, match="four corners"):
        F.perspective(x, CORNERS[0][:3], CORNERS[1])
    with pytest.raises(ValueError, match="kernel_size should be odd"):
        F.gaussian_blur(x, 4)
    with pytest.raises(ValueError, match="sigma should be positive"):
        F.gaussian_blur(x, 3, 0.0)
    with pytest.raises(TypeError, match="kernel_size"):
        F.gaussian_blur(x, 3.0)
    for message in ("angle", "translate", "kernel_size"):
        try:
            F.affine(x, "a", [0], 0, 0) if message != "kernel_size" else F.gaussian_blur(x, 4)
        except (TypeError, ValueError) as error:
            assert "\n" not in str(error)


def draws(transform, img, n=2, seed=5):
    """n outputs of a random transform after tl.manual_seed(seed)."""
    tl.manual_seed(seed)
    return [as_array(transform(img)) for _ in range(n)]


def test_random_affine_parameters_and_reproducibility():
    tl.manual_seed(0)
    for _ in range(50):
        angle, (tx, ty), scale, (sx, sy) = T.RandomAffine.get_params(
            [-10.0, 20.0], [0.1, 0.2], [0.8, 1.1], [-5.0, 5.0, 2.0, 3.0], [17, 13])
        assert -10 <= angle <= 20 and abs(tx) <= round(1.7) and abs(ty) <= round(2.6)
        assert 0.8 <= scale <= 1.1 and -5 <= sx <= 5 and 2 <= sy <= 3
        assert isinstance(tx, int) and isinstance(ty, int)
    assert T.RandomAffine.get_params([0, 0], None, None, None, [17, 13])[1:] == \
        ((0, 0), 1.0, (0.0, 0.0))
    pil, x, _ = inputs()
    transform = T.RandomAffine(25, translate=(0.1, 0.1), scale=(0.9, 1.1), shear=8)
    for img in (pil, x):
        a, b = draws(transform, img), draws(transform, img)
        np.testing.assert_array_equal(a[0], b[0])
        assert not np.array_equal(a[0], a[1])
    # the class draws its parameters and calls functional.affine with them
    tl.manual_seed(3)
    params = T.RandomAffine.get_params([-25.0, 25.0], [0.1, 0.1], [0.9, 1.1], [-8.0, 8.0],
                                       [17, 13])
    tl.manual_seed(3)
    got = transform(x)
    np.testing.assert_array_equal(got.numpy(), F.affine(x, params[0], list(params[1]), params[2],
                                                        list(params[3]), fill=[0.0] * 3).numpy())
    assert T.RandomAffine(5).degrees == [-5.0, 5.0]
    assert T.RandomAffine(0, shear=[1, 2, 3, 4]).shear == [1.0, 2.0, 3.0, 4.0]
    with pytest.raises(ValueError, match="degrees"):
        T.RandomAffine(-1)
    with pytest.raises(ValueError, match="translate values"):
        T.RandomAffine(0, translate=(0.1, 1.5))
    with pytest.raises(ValueError, match="scale values"):
        T.RandomAffine(0, scale=(0.0, 1.0))
    with pytest.raises(ValueError, match="shear should be a sequence of length 2 or 4"):
        T.RandomAffine(0, shear=[1, 2, 3])
    with pytest.raises(TypeError, match="fill"):
        T.RandomAffine(0, fill="white")


def test_random_perspective_parameters_and_probability():
    tl.manual_seed(0)
    for _ in range(50):
        start, end = T.RandomPerspective.get_params(17, 13, 0.5)
        assert start == [[0, 0], [16, 0], [16, 12], [0, 12]]
        (x0, y0), (x1, y1), (x2, y2), (x3, y3) = end
        assert 0 <= x0 <= 4 and 0 <= y0 <= 3 and 12 <= x1 <= 16 and 0 <= y1 <= 3
        assert 12 <= x2 <= 16 and 9 <= y2 <= 12 and 0 <= x3 <= 4 and 9 <= y3 <= 12
    pil, x, _ = inputs()
    assert T.RandomPerspective(p=0.0)(x) is x
    # the class draws the probability, then the corners, and calls functional.perspective
    tl.manual_seed(4)
    tl.backend.generator().random()
    start, end = T.RandomPerspective.get_params(17, 13, 0.6)
    tl.manual_seed(4)
    np.testing.assert_array_equal(as_array(T.RandomPerspective(0.6, p=1.0)(pil)),
                                  as_array(F.perspective(pil, start, end)))
    a, b = draws(T.RandomPerspective(p=1.0), x), draws(T.RandomPerspective(p=1.0), x)
    np.testing.assert_array_equal(a[0], b[0])
    with pytest.raises(ValueError, match="distortion_scale"):
        T.RandomPerspective(1.5)
    with pytest.raises(ValueError, match="probability"):
        T.RandomPerspective(p=2)


def test_gaussian_blur_class():
    tl.manual_seed(0)
    sigmas = [T.GaussianBlur.get_params(0.5, 1.5) for _ in range(50)]
    assert 0.5 <= min(sigmas) and max(sigmas) <= 1.5 and len(set(sigmas)) == 50
    pil, x, _ = inputs()
    blur = T.GaussianBlur(5, sigma=(0.1, 2.0))
    assert blur.kernel_size == (5, 5) and blur.sigma == (0.1, 2.0)
    a, b = draws(blur, pil), draws(blur, pil)
    np.testing.assert_array_equal(a[0], b[0])
    assert not np.array_equal(a[0], a[1])
    fixed = T.GaussianBlur((3, 5), sigma=1.2)
    np.testing.assert_array_equal(fixed(x).numpy(), F.gaussian_blur(x, [3, 5], 1.2).numpy())
    with pytest.raises(ValueError, match="odd and positive"):
        T.GaussianBlur(4)
    with pytest.raises(ValueError, match="sigma"):
        T.GaussianBlur(3, sigma=(2.0, 1.0))
    with pytest.raises(ValueError, match="sigma"):
        T.GaussianBlur(3, sigma=-1)


def test_random_erasing_class():
    _, x, _ = inputs()
    batch = tl.rand(2, 3, 40, 50)
    tl.manual_seed(0)
    for _ in range(50):
        i, j, h, w, v = T.RandomErasing.get_params(batch, (0.02, 0.33), (0.3, 3.3), [0.5])
        assert 0 < h < 40 and 0 < w < 50 and i + h <= 40 and j + w <= 50
        assert 0.02 * 2000 / 3.3 <= h * w * 1.2 and h * w <= 0.33 * 2000 * 1.2
        assert v.shape == (1, 1, 1) and isinstance(v, tl.Tensor)
    i, j, h, w, v = T.RandomErasing.get_params(batch, (0.1, 0.1), (1.0, 1.0), None)
    assert v.shape == (3, h, w)                               # value None: normal noise
    assert T.RandomErasing.get_params(x, (0.99, 1.0), (1.0, 1.0))[4] is x    # no fit
    erased = T.RandomErasing(p=1.0, value=(0.1, 0.2, 0.3))(x).numpy()
    changed = (erased != x.numpy()).any(axis=0)
    rows, cols = np.nonzero(changed)
    box = erased[:, rows.min():rows.max() + 1, cols.min():cols.max() + 1]
    np.testing.assert_allclose(box, np.array([0.1, 0.2, 0.3], np.float32)[:, None, None]
                               * np.ones_like(box))
    a = draws(T.RandomErasing(p=1.0, value="random"), x)
    b = draws(T.RandomErasing(p=1.0, value="random"), x)
    np.testing.assert_array_equal(a[0], b[0])
    assert not np.array_equal(a[0], a[1])
    assert T.RandomErasing(p=0.0)(x) is x
    with pytest.raises(TypeError, match="tensor images"):
        T.RandomErasing(p=1.0)(Image.fromarray(image()))
    with pytest.raises(ValueError, match="'random'"):
        T.RandomErasing(value="noise")
    with pytest.raises(ValueError, match="scale should be between 0 and 1"):
        T.RandomErasing(scale=(0.1, 1.5))
    with pytest.raises(ValueError, match="probability"):
        T.RandomErasing(p=1.5)
    with pytest.raises(ValueError, match="1 or 3"):
        T.RandomErasing(p=1.0, value=(1, 2))(x)


def test_random_tone_classes():
    pil, x, u = inputs()
    cases = ((T.RandomInvert, (), F.invert), (T.RandomAutocontrast, (), F.autocontrast),
             (T.RandomEqualize, (), F.equalize), (T.RandomPosterize, (3,), F.posterize),
             (T.RandomSolarize, (100,), F.solarize),
             (T.RandomAdjustSharpness, (2.0,), F.adjust_sharpness))
    for cls, args, fn in cases:
        np.testing.assert_array_equal(as_array(cls(*args, p=1.0)(u)), as_array(fn(u, *args)))
        np.testing.assert_array_equal(as_array(cls(*args, p=1.0)(pil)),
                                      as_array(fn(pil, *args)))
        assert cls(*args, p=0.0)(u) is u
        tl.manual_seed(1)
        applied = sum(cls(*args)(u) is not u for _ in range(200))
        assert 60 < applied < 140, cls.__name__
    with pytest.raises(ValueError, match="bits"):
        T.RandomPosterize(9)
    with pytest.raises(ValueError, match="sharpness_factor"):
        T.RandomAdjustSharpness(-1)


GPU_SCRIPT = r"""
import json, numpy as np
import tinylesion as tl
from tinylesion import backend
from tinylesion.vision.transforms import functional as F
from tinylesion.vision.transforms.autoaugment import apply_op
rng = np.random.default_rng(0)
u = tl.from_numpy(rng.integers(0, 256, (3, 13, 17), dtype=np.uint8))
x = tl.from_numpy(rng.random((2, 3, 13, 17), dtype=np.float32))
I = F.InterpolationMode
ops = {
       "affine": lambda t: F.affine(t, 30.0, [2, -1], 1.2, [10.0, 5.0], I.BILINEAR, fill=[0.2]),
    "rotate": lambda t: F.rotate(t, 35.0, I.BILINEAR, expand=True),
    "perspective": lambda t: F.perspective(t, [[0, 0], [16, 0], [16, 12], [0, 12]],
                                           [[2, 1], [15, 0], [13, 10], [1, 12]], I.NEAREST,
                                           fill=[0.5]),
    "blur": lambda t: F.gaussian_blur(t, 5, 1.5),
    "elastic": lambda t: F.elastic_transform(t, np.full((1, 13, 17, 2), 0.05, np.float32),
                                             fill=[0.1]),
    "erase": lambda t: F.erase(t, 2, 3, 4, 5, 0.5),
    "sharp": lambda t: F.adjust_sharpness(t, 1.7),
    "invert": F.invert, "solarize": lambda t: F.solarize(t, 0.5),
    "autocontrast": F.autocontrast,
}
uops = {"posterize": lambda t: F.posterize(t, 3), "equalize": F.equalize,
        "ShearX": lambda t: apply_op(t, "ShearX", 0.3, I.NEAREST, [40.0, 80.0, 120.0])}
out = {}
for name, op in list(ops.items()) + list(uops.items()):
    src = u if name in uops else x
    cpu = op(src).numpy()
    dev = op(src.to("cuda"))
    diff = np.abs(dev.cpu().numpy().astype(float) - cpu).max()
    out[name] = [str(backend.device_of(dev.array)), float(diff)]
from tinylesion.vision.transforms import AugMix
tl.manual_seed(3)
cpu = AugMix(severity=5)(u).numpy()
tl.manual_seed(3)
dev = AugMix(severity=5)(u.to("cuda"))
diff = np.abs(dev.cpu().numpy().astype(float) - cpu).max()
out["augmix"] = [str(backend.device_of(dev.array)), float(diff)]
from tinylesion.vision.transforms.v2.mixing import cutmix, mixup
labels = tl.tensor([0, 2])
for name, mix in (("mixup", lambda b, y: mixup(b, y, 0.3, 3)),
                  ("cutmix", lambda b, y: cutmix(b, y, (1, 2, 5, 6), 3))):
    cpu = np.concatenate([t.numpy().ravel() for t in mix(x, labels)])
    dev = mix(x.to("cuda"), labels.to("cuda"))
    diff = np.abs(np.concatenate([t.cpu().numpy().ravel() for t in dev]) - cpu).max()
    out[name] = [str(backend.device_of(dev[0].array)), float(diff)]
print(json.dumps(out))
"""


def test_augmentations_run_on_the_gpu_path():
    # the stand-in CuPy of tests/fakegpu refuses host arrays mixed with device ones
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    path = os.pathsep.join([os.path.join(root, "tests", "fakegpu"), root])
    env = dict(os.environ, NUMBA_ENABLE_CUDASIM="1", PYTHONPATH=path)
    proc = subprocess.run([sys.executable, "-c", GPU_SCRIPT], capture_output=True, text=True,
                          timeout=600, cwd=root, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = json.loads(proc.stdout.strip().splitlines()[-1])
    assert len(results) == 16
    for name, (device, diff) in results.items():
        assert device == "gpu" and diff == 0.0, name
