"""torchvision's transforms on fixed images, written to tests/fixtures/torchvision_reference.npz.

    /work/venv-torch/bin/python bench/vision_fixtures.py [--out PATH]   # needs torch, torchvision

Only bench/ imports torchvision: tests/test_pytorch_habits_vision.py compares
tinylesion.vision.transforms.functional with what this stores (inputs are rebuilt from the
same seed there). torchvision's compiled ops are not needed: a torchvision installed without
its extension fails to import its operator registrations, which are skipped here.
"""
import argparse
import os
import sys
import types

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_OUT = os.path.join(ROOT, "tests", "fixtures", "torchvision_reference.npz")


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


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=DEFAULT_OUT)
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
    out = {}
    for key, value in cases(T, F, torch, Image):
        out[key] = value.numpy() if isinstance(value, torch.Tensor) else np.asarray(value)
    out["versions"] = np.array(f"torch {torch.__version__}, torchvision "
                               f"{torchvision.__version__}")
    np.savez_compressed(args.out, **out)
    print(f"wrote {len(out)} entries to {args.out}")


if __name__ == "__main__":
    main()
