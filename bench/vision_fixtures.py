"""torchvision's transforms on fixed images, written to tests/fixtures/torchvision_reference.npz
and (the augmentations: affine, perspective, blur, erase, AutoAugment's ops and tables)
tests/fixtures/torchvision_augment_reference.npz.

    /work/venv-torch/bin/python bench/vision_fixtures.py [--out PATH] [--augment-out PATH]

Only bench/ imports torchvision: tests/test_pytorch_habits_vision.py and
tests/test_pytorch_habits_augment.py compare tinylesion.vision.transforms with what this
stores (inputs are rebuilt from the same seed there). torchvision's compiled ops are not
needed: a torchvision installed without its extension fails to import its operator
registrations, which are skipped here.
"""
import argparse
import os
import sys
import types

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_OUT = os.path.join(ROOT, "tests", "fixtures", "torchvision_reference.npz")
AUGMENT_OUT = os.path.join(ROOT, "tests", "fixtures", "torchvision_augment_reference.npz")


def image(seed=0, shape=(13, 17, 3)):
    """The test image: random uint8 (H, W, 3); tests build the same one."""
    return np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)


def cases(T, F, torch, Image):
    """(key, value) pairs of torchvision's results."""
    arr = image()
    pil = Image.fromarray(arr)
    x = T.ToTensor()(pil)                     # float32 (3, 13, 17)
    u = T.PILToTensor()(pil)                  # uint8 (3, 13, 17)
    I = F.InterpolationMode
    yield "input", arr
    yield "to_tensor", x
    yield "pil_to_tensor", u
    yield "resize/pil_short7", np.asarray(F.resize(pil, 7))
    yield "resize/pil_max", np.asarray(F.resize(Image.fromarray(image(1, (13, 40, 3))), 7,
                                                max_size=9))
    yield "resize/float_short7", F.resize(x, 7)
    yield "resize/float_up", F.resize(x, [20, 25])
    yield "resize/float_bicubic", F.resize(x, [9, 11], I.BICUBIC)
    yield "resize/float_nearest", F.resize(x, [5, 9], I.NEAREST)
    yield "resize/float_nearest_up", F.resize(x, [20, 30], I.NEAREST)
    yield "resize/float_nearest_exact", F.resize(x, [5, 9], I.NEAREST_EXACT)
    yield "resize/uint8_short7", F.resize(u, 7)
    yield "center_crop/pil9", np.asarray(F.center_crop(pil, 9))
    yield "center_crop/float_pad", F.center_crop(x, [15, 20])
    yield "center_crop/float_odd", F.center_crop(x, [6, 9])
    for mode in ("constant", "edge", "reflect", "symmetric"):
        yield f"pad/{mode}", F.pad(x, [2, 1, 3, 0], padding_mode=mode)
    yield "pad/pil_reflect", np.asarray(F.pad(pil, [2, 1], padding_mode="reflect"))
    yield "crop/outside", F.crop(x, -2, 10, 6, 9)
    yield "rotate/pil30", np.asarray(F.rotate(pil, 30, I.BILINEAR))
    yield "rotate/pil_expand", np.asarray(F.rotate(pil, 45, expand=True))
    yield "rotate/float90", F.rotate(x, 90)
    for name, fn, factor in (("brightness", F.adjust_brightness, 1.3),
                             ("contrast", F.adjust_contrast, 0.6),
                             ("saturation", F.adjust_saturation, 1.7),
                             ("hue", F.adjust_hue, 0.2)):
        yield f"color/{name}/float", fn(x, factor)
        yield f"color/{name}/uint8", fn(u, factor)
        yield f"color/{name}/pil", np.asarray(fn(pil, factor))
    yield "color/hue/negative", F.adjust_hue(x, -0.35)
    yield "grey/float", F.rgb_to_grayscale(x)
    yield "grey/uint8", F.rgb_to_grayscale(u, 3)
    yield "grey/pil", np.asarray(F.rgb_to_grayscale(pil))
    yield "dtype/float_to_uint8", F.convert_image_dtype(x, torch.uint8)
    yield "dtype/uint8_to_float", F.convert_image_dtype(u, torch.float32)
    yield "normalize", F.normalize(x, [0.485, 0.456, 0.406], [0.229, 0.224, 0.225])
    # RandomResizedCrop's fallback when no draw fits: deterministic (top, left, h, w)
    for k, (scale, ratio) in enumerate((((5.0, 5.0), (1.0, 1.0)), ((5.0, 5.0), (3.0, 4.0)),
                                        ((5.0, 5.0), (0.2, 0.5)))):
        yield f"rrc_fallback/{k}", np.array(T.RandomResizedCrop.get_params(x, scale, ratio))


# The fixed parameters of the augmentation cases, which tests/test_pytorch_habits_augment.py
# imports (with image) to repeat them with tinylesion.
AFFINE = (30.0, [2, -1], 1.2, [10.0, 5.0])
CORNERS = ([[0, 0], [16, 0], [16, 12], [0, 12]], [[2, 1], [15, 0], [13, 10], [1, 12]])
AUTOAUGMENT_OPS = (("ShearX", 0.3), ("ShearY", -0.2), ("TranslateX", 5.0),
                   ("TranslateY", -4.0), ("Rotate", 20.0), ("Brightness", 0.5),
                   ("Color", -0.3), ("Contrast", 0.4), ("Sharpness", 0.6), ("Posterize", 4.0),
                   ("Solarize", 100.0), ("AutoContrast", 0.0), ("Equalize", 0.0),
                   ("Invert", 0.0), ("Identity", 0.0))


def displacement(seed=1, shape=(13, 17)):
    """A fixed smooth-ish (1, H, W, 2) float32 displacement for elastic_transform."""
    noise = np.random.default_rng(seed).normal(0.0, 0.08, (1,) + shape + (2,))
    return noise.astype(np.float32)


MIX_LABELS, MIX_BOX = [0, 2, 1, 2], (1, 2, 5, 6)


def mix_batch(seed=2):
    """A float32 batch (4, 3, 6, 7) for MixUp and CutMix."""
    return np.random.default_rng(seed).random((4, 3, 6, 7), dtype=np.float32)


def augment_cases(T, F, torch, Image):
    """(key, value) pairs of torchvision's augmentations at fixed parameters."""
    from torchvision.transforms import autoaugment
    arr = image()
    pil = Image.fromarray(arr)
    x = T.ToTensor()(pil)
    u = T.PILToTensor()(pil)
    I = F.InterpolationMode
    flat = u.clone()
    flat[0] = 7                                  # a constant channel for autocontrast
    yield "input", arr
    yield "affine/pil_nearest", np.asarray(F.affine(pil, *AFFINE))
    yield "affine/pil_bilinear_fill", np.asarray(F.affine(pil, *AFFINE, I.BILINEAR,
                                                          fill=[10, 20, 30]))
    yield "affine/pil_center", np.asarray(F.affine(pil, -15.0, [0, 0], 1.0, [0.0, 0.0],
                                                   center=[3, 4]))
    yield "affine/float_nearest", F.affine(x, *AFFINE)
    yield "affine/float_bilinear", F.affine(x, *AFFINE, I.BILINEAR)
    yield "affine/float_bilinear_fill", F.affine(x, *AFFINE, I.BILINEAR, fill=[0.2, 0.5, 0.9])
    yield "affine/float_nearest_fill", F.affine(x, *AFFINE, fill=[0.5])
    yield "affine/float_center", F.affine(x, -15.0, [0, 0], 1.0, [0.0, 0.0], center=[3, 4])
    yield "affine/uint8_bilinear", F.affine(u, *AFFINE, I.BILINEAR)
    yield "rotate/float_bilinear", F.rotate(x, 30.0, I.BILINEAR)
    yield "rotate/float_nearest_center", F.rotate(x, -50.0, center=[4, 3])
    yield "rotate/uint8_expand_fill", F.rotate(u, 35.0, I.BILINEAR, expand=True,
                                               fill=[10.0, 200.0, 60.0])
    yield "rotate/float_expand", F.rotate(x, 90.0, expand=True)
    for k, part in enumerate(F.ten_crop(x, [6, 9])):
        yield f"ten_crop/float/{k}", part
    for k, part in enumerate(F.ten_crop(pil, 7, vertical_flip=True)):
        yield f"ten_crop/pil_vertical/{k}", np.asarray(part)
    shift = torch.from_numpy(displacement())
    yield "elastic/float_bilinear", F.elastic_transform(x, shift)
    yield "elastic/uint8_nearest_fill", F.elastic_transform(u, shift, I.NEAREST, fill=[9.0])
    yield "elastic/pil", np.asarray(F.elastic_transform(pil, shift))
    start, end = CORNERS
    yield "perspective/coeffs", np.array(F._get_perspective_coeffs(start, end))
    yield "perspective/pil_bilinear", np.asarray(F.perspective(pil, start, end))
    yield "perspective/pil_nearest_fill", np.asarray(F.perspective(pil, start, end, I.NEAREST,
                                                                   fill=[200, 0, 50]))
    yield "perspective/float_bilinear", F.perspective(x, start, end)
    yield "perspective/float_nearest", F.perspective(x, start, end, I.NEAREST)
    yield "perspective/float_fill", F.perspective(x, start, end, fill=[0.3, 0.3, 0.3])
    yield "perspective/uint8_bilinear", F.perspective(u, start, end)
    yield "blur/float5", F.gaussian_blur(x, 5, 1.5)
    yield "blur/float_3x7", F.gaussian_blur(x, [3, 7], [0.8, 2.0])
    yield "blur/float_default_sigma", F.gaussian_blur(x, [5, 3])
    yield "blur/uint8", F.gaussian_blur(u, 5, 1.5)
    yield "blur/pil", np.asarray(F.gaussian_blur(pil, 5, 1.5))
    yield "erase/channels", F.erase(x, 2, 3, 4, 5, torch.tensor([0.1, 0.2, 0.3])[:, None, None])
    yield "erase/zero", F.erase(u, 5, 0, 8, 17, torch.tensor(0))
    for kind, img in (("float", x), ("uint8", u), ("pil", pil)):
        wrap = np.asarray if kind == "pil" else (lambda t: t)
        yield f"tone/invert/{kind}", wrap(F.invert(img))
        yield f"tone/solarize/{kind}", wrap(F.solarize(img, 0.5 if kind == "float" else 128))
        yield f"tone/autocontrast/{kind}", wrap(F.autocontrast(img))
        yield f"tone/gamma/{kind}", wrap(F.adjust_gamma(img, 0.6, 1.1))
        yield f"tone/gamma_dark/{kind}", wrap(F.adjust_gamma(img, 2.2))
        yield f"tone/sharpness/{kind}", wrap(F.adjust_sharpness(img, 1.7))
        yield f"tone/sharpness_low/{kind}", wrap(F.adjust_sharpness(img, 0.3))
        if kind != "float":
            yield f"tone/posterize/{kind}", wrap(F.posterize(img, 3))
            yield f"tone/equalize/{kind}", wrap(F.equalize(img))
    yield "tone/autocontrast/flat", F.autocontrast(flat)
    yield "tone/equalize/batch", F.equalize(torch.stack([u, flat]))
    for name, magnitude in AUTOAUGMENT_OPS:
        yield f"op/{name}/pil", np.asarray(autoaugment._apply_op(pil, name, magnitude,
                                                                 I.NEAREST, None))
        yield f"op/{name}/uint8", autoaugment._apply_op(u, name, magnitude, I.NEAREST,
                                                        [40.0, 80.0, 120.0])
    yield from v2_cases(torch, pil, x, u)
    for policy in autoaugment.AutoAugmentPolicy:
        yield f"policy/{policy.value}", np.array(repr(T.AutoAugment(policy).policies))
    spaces = (("autoaugment", T.AutoAugment()._augmentation_space(10, (13, 17))),
              ("randaugment", T.RandAugment()._augmentation_space(31, (13, 17))),
              ("trivialaugmentwide", T.TrivialAugmentWide()._augmentation_space(31)),
              ("augmix", T.AugMix()._augmentation_space(10, (13, 17))),
              ("augmix_some", T.AugMix(all_ops=False)._augmentation_space(10, (13, 17))))
    for kind, space in spaces:
        yield f"space/{kind}/names", np.array(list(space))
        for name, (magnitudes, signed) in space.items():
            yield f"space/{kind}/{name}", magnitudes
            yield f"space/{kind}/{name}/signed", np.array(signed)


def v2_cases(torch, pil, x, u):
    """torchvision.transforms.v2's conversions and kernels at fixed parameters."""
    from torchvision.transforms import v2
    from torchvision.transforms.v2 import functional as F2
    I = F2.InterpolationMode
    mean, std = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]
    yield "v2/pipeline", v2.Compose([v2.ToImage(), v2.ToDtype(torch.float32, scale=True),
                                     v2.Normalize(mean, std)])(pil)
    yield "v2/to_image_array", v2.ToImage()(image())
    yield "v2/to_dtype_uint8", v2.ToDtype(torch.uint8, scale=True)(x)
    yield "v2/to_dtype_float", v2.ToDtype(torch.float32, scale=True)(u)
    yield "v2/to_dtype_noscale", v2.ToDtype(torch.float32)(u)
    yield "v2/resize_pil", np.asarray(F2.resize(pil, [7, 9]))
    yield "v2/resize_uint8", F2.resize(u, [7, 9])
    yield "v2/affine_uint8", F2.affine(u, *AFFINE, interpolation=I.BILINEAR)
    yield "v2/rotate_float", F2.rotate(x, 30.0, I.BILINEAR)
    yield "v2/perspective_float", F2.perspective(x, *CORNERS)
    yield "v2/blur_uint8", F2.gaussian_blur(u, [5, 5], [1.5, 1.5])
    yield "v2/erase_pil", np.asarray(F2.erase(pil, 2, 3, 4, 5, torch.tensor(
        [10.7, 20.2, 250.9])[:, None, None]))
    yield "v2/autocontrast_uint8", F2.autocontrast(u)
    yield "v2/equalize_uint8", F2.equalize(u)
    yield "v2/sharpness_uint8", F2.adjust_sharpness(u, 1.7)
    yield "v2/permute_channels", F2.permute_channels(x, [2, 0, 1])
    yield "v2/permute_channels_pil", np.asarray(F2.permute_channels(pil, [1, 2, 0]))
    # MixUp and CutMix at fixed parameters (their draws aside)
    batch = torch.from_numpy(mix_batch())
    labels = torch.tensor(MIX_LABELS)
    mixup = v2.MixUp(num_classes=3)
    params = {"lam": 0.3, "labels": labels, "batch_size": 4}
    yield "v2/mixup/images", mixup.transform(batch, params)
    yield "v2/mixup/labels", mixup.transform(labels, params)
    cutmix = v2.CutMix(num_classes=3)
    x1, y1, x2, y2 = MIX_BOX
    params = {"box": MIX_BOX, "labels": labels, "batch_size": 4,
              "lam_adjusted": 1.0 - (x2 - x1) * (y2 - y1) / (6 * 7)}
    yield "v2/cutmix/images", cutmix.transform(batch, params)
    yield "v2/cutmix/labels", cutmix.transform(labels, params)


def _save(path, pairs, torch, torchvision):
    out = {}
    for key, value in pairs:
        out[key] = value.numpy() if isinstance(value, torch.Tensor) else np.asarray(value)
    out["versions"] = np.array(f"torch {torch.__version__}, torchvision "
                               f"{torchvision.__version__}")
    np.savez_compressed(path, **out)
    print(f"wrote {len(out)} entries to {path}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=DEFAULT_OUT)
    parser.add_argument("--augment-out", default=AUGMENT_OUT)
    args = parser.parse_args(argv)
    # NOTE: torchvision registers meta kernels of its compiled operators on import; without
    # the compiled library those operators do not exist and the import fails.
    sys.modules.setdefault("torchvision._meta_registrations",
                           types.ModuleType("torchvision._meta_registrations"))
    import torch
    import torchvision
    import torchvision.transforms as T
    import torchvision.transforms.functional as F
    from PIL import Image
    _save(args.out, cases(T, F, torch, Image), torch, torchvision)
    _save(args.augment_out, augment_cases(T, F, torch, Image), torch, torchvision)


if __name__ == "__main__":
    main()
