"""tinylesion.vision.transforms' AutoAugment, RandAugment, TrivialAugmentWide and AugMix:
their ops and tables against torchvision's stored by bench/vision_fixtures.py, their draws,
reproducibility and argument checks."""
import numpy as np
import pytest
from PIL import Image

import tinylesion as tl
from bench.vision_fixtures import AUTOAUGMENT_OPS
from tinylesion.vision.transforms.autoaugment import apply_op, augmentation_space, augmix_space
import test_pytorch_habits_augment as augment_tests
from test_pytorch_habits_augment import I, T, as_array, check, draws, image, inputs

ref = augment_tests.ref          # the stored torchvision results, as a module fixture


def test_autoaugment_ops_match_torchvision(ref):
    pil, _, u = inputs()
    fill = [40.0, 80.0, 120.0]
    for name, magnitude in AUTOAUGMENT_OPS:
        check(ref, f"op/{name}/pil", apply_op(pil, name, magnitude))
        check(ref, f"op/{name}/uint8", apply_op(u, name, magnitude, I.NEAREST, fill))
    with pytest.raises(ValueError, match="unknown augmentation op 'Blur'"):
        apply_op(u, "Blur", 1.0)


def test_autoaugment_tables_match_torchvision(ref):
    for policy in T.AutoAugmentPolicy:
        assert repr(T.AutoAugment(policy).policies) == str(ref[f"policy/{policy.value}"])
    spaces = {kind: augmentation_space(kind, bins, size) for kind, bins, size in
              (("autoaugment", 10, (13, 17)), ("randaugment", 31, (13, 17)),
               ("trivialaugmentwide", 31, None))}
    spaces["augmix"] = augmix_space(10, (13, 17))
    spaces["augmix_some"] = augmix_space(10, (13, 17), all_ops=False)
    for kind, space in spaces.items():
        assert list(space) == list(ref[f"space/{kind}/names"]), kind
        for name, (magnitudes, signed) in space.items():
            want = ref[f"space/{kind}/{name}"]
            assert bool(ref[f"space/{kind}/{name}/signed"]) == signed, (kind, name)
            if magnitudes is None:
                assert want.shape == () and float(want) == 0.0, (kind, name)
            else:
                np.testing.assert_allclose(magnitudes, want, rtol=1e-6, atol=1e-6,
                                           err_msg=f"{kind} {name}")


def test_autoaugment_family_classes():
    pil, x, u = inputs()
    big = T.PILToTensor()(Image.fromarray(image(7, (32, 32, 3))))
    for transform in (T.AutoAugment(), T.AutoAugment(T.AutoAugmentPolicy.CIFAR10, fill=128),
                      T.AutoAugment(T.AutoAugmentPolicy.SVHN, I.BILINEAR), T.RandAugment(),
                      T.RandAugment(num_ops=3, magnitude=30, fill=[1, 2, 3]),
                      T.TrivialAugmentWide(), T.TrivialAugmentWide(num_magnitude_bins=5),
                      T.AugMix(), T.AugMix(severity=10, mixture_width=2, chain_depth=3)):
        for img in (pil, big):
            a, b = draws(transform, img, n=12), draws(transform, img, n=12)
            for first, second in zip(a, b):
                np.testing.assert_array_equal(first, second)
            assert first.shape == as_array(img).shape and first.dtype == np.uint8
            assert sum(not np.array_equal(a[0], other) for other in a[1:]) >= 6, transform
    # one RandAugment op at its bin, with the sign drawn after the op
    tl.manual_seed(8)
    rng = tl.backend.generator()
    space = augmentation_space("randaugment", 31, (32, 32))
    name = list(space)[int(rng.integers(0, len(space)))]
    magnitude = 0.0 if space[name][0] is None else float(space[name][0][9])
    if space[name][1] and int(rng.integers(0, 2)):
        magnitude = -magnitude
    tl.manual_seed(8)
    np.testing.assert_array_equal(T.RandAugment(num_ops=1)(big).numpy(),
                                  apply_op(big, name, magnitude).numpy())
    # AugMix with one chain of one op: the original and the op's result mixed by weight
    for img in (big, pil):
        tl.manual_seed(6)
        rng = tl.backend.generator()
        share = rng.dirichlet([1.0, 1.0], size=1).astype(np.float32)
        weight = rng.dirichlet([1.0], size=1).astype(np.float32) * share[:, 1:]
        space = augmix_space(10, (32, 32) if img is big else (13, 17))
        name = list(space)[int(rng.integers(0, len(space)))]
        magnitude = 0.0 if space[name][0] is None else float(space[name][0][int(
            rng.integers(0, 3))])
        if space[name][1] and int(rng.integers(0, 2)):
            magnitude = -magnitude
        tensor = img if isinstance(img, tl.Tensor) else T.PILToTensor()(img)
        done = apply_op(tensor, name, magnitude, I.BILINEAR).numpy()
        want = (share[0, 0] * tensor.numpy() + weight[0, 0] * done).astype(np.uint8)
        tl.manual_seed(6)
        got = as_array(T.AugMix(mixture_width=1, chain_depth=1)(img))
        np.testing.assert_array_equal(got if img is big else got.transpose(2, 0, 1), want)
    with pytest.raises(ValueError, match="severity"):
        T.AugMix(severity=11)
    with pytest.raises(ValueError, match="chain_depth"):
        T.AugMix(chain_depth=0)
    with pytest.raises(TypeError, match="uint8|solarize: threshold"):
        for _ in range(50):          # float tensors fail (posterize, equalize, solarize's
            # 0..255 thresholds) as in torchvision
            T.AutoAugment()(x)
    with pytest.raises(ValueError, match="magnitude should be below num_magnitude_bins"):
        T.RandAugment(magnitude=31)
    with pytest.raises(ValueError, match="num_ops"):
        T.RandAugment(num_ops=-1)
    with pytest.raises(ValueError, match="policy"):
        T.AutoAugment("imagenet")
    with pytest.raises(ValueError, match="num_magnitude_bins"):
        T.TrivialAugmentWide(num_magnitude_bins=1)
    with pytest.raises(TypeError, match="fill"):
        T.TrivialAugmentWide(fill="black")
