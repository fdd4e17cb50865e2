"""The ImageNet backbones: registry, torchvision's parameter counts, input sizes, and their
outputs and input gradients against torchvision's on the same weights."""
import numpy as np
import pytest

import tinylesion as tl
from tinylesion import models

import backbone_reference as reference
from torch_reference import directions, sample_index

# torchvision's parameter counts with 1000 classes (bench/torch_backbones.py stores them too)
PARAMETERS_1000 = {
    "resnet18": 11_689_512, "resnet34": 21_797_672, "resnet50": 25_557_032,
    "resnet101": 44_549_160, "resnet152": 60_192_808,
    "resnext50_32x4d": 25_028_904, "resnext101_32x8d": 88_791_336,
    "resnext101_64x4d": 83_455_272, "wide_resnet50_2": 68_883_240,
    "wide_resnet101_2": 126_886_696,
    "vgg16": 138_357_544, "vgg16_bn": 138_365_992, "vgg19": 143_667_240,
    "densenet121": 7_978_856, "densenet169": 14_149_480, "densenet201": 20_013_928,
    "inception_v3": 23_834_568,
    "mobilenet_v2": 3_504_872, "mobilenet_v3_large": 5_483_032,
    "mobilenet_v3_small": 2_542_856, "efficientnet_b0": 5_288_548,
    "efficientnet_b1": 7_794_184, "efficientnet_b2": 9_109_994, "efficientnet_b3": 12_233_232,
    "efficientnet_b4": 19_341_616, "efficientnet_b5": 30_389_784, "efficientnet_b6": 43_040_704,
    "efficientnet_b7": 66_347_960,
    "convnext_tiny": 28_589_128, "convnext_small": 50_223_688, "convnext_base": 88_591_464,
    "convnext_large": 197_767_336,
    "vit_b_16": 86_567_656, "vit_b_32": 88_224_232, "vit_l_16": 304_326_632,
}
INCEPTION_V3_WITH_AUX = 27_161_264
BACKBONES = list(PARAMETERS_1000)

# the largest variants, whose weights would make a parity case slow: their layers are those
# of a smaller variant with a fixture (convnext_large: convnext_base's blocks, wider; vit_l_16:
# vit_b_16's, wider and deeper); they are checked by parameter count and a forward and backward
# pass
WITHOUT_FIXTURE = {"convnext_large", "vit_l_16"}


def test_every_backbone_is_registered():
    assert set(BACKBONES) <= set(models.list_models())
    assert {name for name, _, _ in reference.CASES} == set(BACKBONES) - WITHOUT_FIXTURE


@pytest.mark.parametrize("name", sorted(WITHOUT_FIXTURE))
def test_models_without_a_fixture_count_and_run(name):
    model = models.get_model(name, num_classes=1000, image_size=(32, 32))
    assert model.num_parameters() == _count_with_head(model)
    model.eval().requires_grad_(False)
    rng = np.random.default_rng(0)
    head = dict(model.named_parameters())[model.head_keys[0]]
    # (vit's head starts at zero, so no gradient would reach x; a constant head would give
    # ConvNeXt's sum of outputs a zero gradient, a LayerNorm's outputs summing to zero)
    head.data[...] = rng.standard_normal(head.shape) * 0.01
    x = tl.Tensor(rng.standard_normal((2, 3, 32, 32)).astype(np.float32), requires_grad=True)
    out = model(x)
    assert out.shape == (2, 1000) and np.isfinite(out.numpy()).all()
    out.sum().backward()
    assert x.grad.shape == x.shape and np.abs(x.grad.numpy()).sum() > 0


def _count_with_head(model):
    """torchvision's count with 1000 classes, less what a head of fewer outputs drops."""
    count = INCEPTION_V3_WITH_AUX if model.config.get("aux_logits") else \
        PARAMETERS_1000[model.name]
    if isinstance(model, models.VisionTransformer):   # one position per patch, and the class
        _, tokens, width = model.encoder.pos_embedding.shape
        count += (tokens - (224 // model.patch_size) ** 2 - 1) * width
    state = model.state_dict()
    for key in model.head_keys:
        if key.endswith(".weight") and key in state:
            out, fan_in = state[key].shape
            count -= (1000 - out) * (fan_in + 1)
    return count


# VGG (138M parameters at 1000 classes) and the larger variants of the newer families are
# counted in the parity test, through the formula (their smallest variant is counted here)
COUNTED_IN_PARITY = {"resnext101_32x8d", "resnext101_64x4d", "wide_resnet101_2",
                     "convnext_small", "convnext_base", "vit_b_32"} | \
    {f"efficientnet_b{i}" for i in range(2, 8)}


@pytest.mark.parametrize("name", [n for n in BACKBONES if not n.startswith("vgg")
                                  and n not in WITHOUT_FIXTURE | COUNTED_IN_PARITY])
def test_parameter_count_is_torchvisions(name):
    model = models.get_model(name, num_classes=1000)
    assert model.num_parameters() == PARAMETERS_1000[name]
    for key in model.head_keys:
        if not key.startswith("AuxLogits."):
            assert model.state_dict()[key].shape[0] == 1000, key


def test_inception_auxiliary_head_count_and_outputs():
    model = models.get_model("inception_v3", num_classes=1000, aux_logits=True)
    assert model.num_parameters() == INCEPTION_V3_WITH_AUX
    small = models.get_model("inception_v3", num_classes=5, aux_logits=True)
    x = tl.Tensor(np.random.default_rng(0).standard_normal((2, 3, 299, 299)).astype(np.float32))
    with tl.no_grad():
        logits, aux = small(x)                  # training: the main and auxiliary logits
        assert logits.shape == aux.shape == (2, 5)
        assert small.eval()(x[:, :, :75, :80]).shape == (2, 5)  # evaluation: the main ones
    with pytest.raises(ValueError, match="at least 299x299 in training mode"):
        small.train()(x[:, :, :298])


def test_backbone_attributes_for_the_training_loop():
    m = models.get_model("resnet50", num_classes=7)
    assert (m.name, m.num_classes, m.image_size, m.binary) == ("resnet50", 7, (224, 224), False)
    assert m.fc.out_features == 7 and m.weight_decay == 0.0
    again = models.get_model("resnet50", **m.config)
    assert again.state_dict().keys() == m.state_dict().keys()
    binary = models.get_model("densenet121", num_classes=2, image_size="96x80")
    assert binary.binary and binary.classifier.out_features == 1
    assert binary.image_size == (96, 80)
    assert models.get_model("inception_v3").image_size == (299, 299)


@pytest.mark.parametrize("call, message", [
    (lambda: models.get_model("resnet18", image_size=(31, 64)), "needs at least 32x32"),
    (lambda: models.get_model("inception_v3", image_size=(74, 299)), "needs at least 75x75"),
    (lambda: models.get_model("vgg16", num_classes=1), "num_classes must be"),
    (lambda: models.get_model("resnet18", blocks=3), "no option blocks"),
])
def test_bad_arguments_raise_clear_errors(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_a_too_small_input_is_refused_by_name():
    model = models.get_model("resnet18", num_classes=3, image_size=(32, 32))
    with pytest.raises(ValueError, match=r"resnet18 takes input \(N, 3, H, W\) with H, W >= 32"):
        model(tl.zeros((1, 3, 16, 40)))


@pytest.mark.parametrize("name", ["resnet18", "densenet121", "mobilenet_v3_small",
                                  "efficientnet_b0"])
def test_other_input_sizes_give_the_same_output_shape(name):
    model = models.get_model(name, num_classes=4, image_size=(32, 32)).eval()
    with tl.no_grad():
        for H, W in [(32, 32), (45, 37)]:
            assert model(tl.zeros((1, 3, H, W))).shape == (1, 4)


def test_densenet_reads_the_published_files_older_key_names():
    model = models.get_model("densenet121")
    state = {"features.denseblock1.denselayer1.norm.1.weight": 1,
             "features.denseblock4.denselayer16.conv.2.weight": 2, "classifier.bias": 3}
    assert model.adapt_state_dict(state) == {
        "features.denseblock1.denselayer1.norm1.weight": 1,
        "features.denseblock4.denselayer16.conv2.weight": 2, "classifier.bias": 3}


# ---- parity with torchvision (computed in float64 in PyTorch) ------------------------------
# NOTE: the outputs are compared twice: in float32 (the path training uses) to float32
# rounding through a deep network, and in float64 (FLOAT64). The input gradient is compared in
# float64 only: in float32 a pre-activation within rounding of 0, or two nearly equal values
# in a max-pool window, can send a gradient down another path than float64 does. The float64
# tolerance is 1e-6, not less, because PyTorch's Hardsigmoid gradient is the float32 1/6 in
# every dtype (the MobileNetV3 gradients differ by ~1e-7 of their scale; the others by 1e-15).
FLOAT32, FLOAT64 = 2e-4, 1e-6
# NOTE: efficientnet_b7's 55 blocks amplify rounding about 10⁴-fold on these random weights:
# its float64 outputs agree with PyTorch's to 5e-12 of their scale (the others to 1e-14), its
# float32 ones to 3e-3, so its float32 comparison is looser (the float64 one is not).
FLOAT32_FOR = {"efficientnet_b7": 5e-3}


def _assert_close(actual, expected, what, rtol):
    """Entry by entry within rtol of the largest reference value."""
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=rtol * np.abs(expected).max(),
                               err_msg=what)


def _run(model, x, r, dtype):
    """(outputs, input gradient of sum(r · outputs)) in `dtype`."""
    xt = tl.Tensor(x.astype(dtype), requires_grad=True)
    out = model(xt)
    (out * tl.Tensor(r.astype(dtype))).sum().backward()
    return out.numpy(), xt.grad.numpy()


@pytest.mark.parametrize("name, options, size", reference.CASES,
                         ids=[reference.case_key(*case) for case in reference.CASES])
def test_outputs_and_input_gradients_equal_torchvisions(name, options, size):
    key = reference.case_key(name, options, size)
    model = models.get_model(name, num_classes=reference.NUM_CLASSES, image_size=size,
                             **options)
    assert model.num_parameters() == _count_with_head(model)
    weights = reference.weights([(k, v.shape) for k, v in model.state_dict().items()])
    np.testing.assert_allclose(reference.fingerprint(list(weights.values())),
                               reference.load(f"{key}/weights_fingerprint"), rtol=1e-12)
    model.load_state_dict(weights)
    del weights
    model.eval().requires_grad_(False)
    x, r = reference.inputs(name, options, size)
    np.testing.assert_allclose(reference.fingerprint([x, r]),
                               reference.load(f"{key}/inputs_fingerprint"), rtol=1e-12)
    with tl.no_grad():
        out32 = model(tl.Tensor(x)).numpy()
    _assert_close(out32, reference.load(f"{key}/out"), f"{key}: float32 outputs",
                  FLOAT32_FOR.get(name, FLOAT32))
    _check_against(key, *_run(model.double(), x, r, np.float64))


def _check_against(key, out, gx):
    """float64 outputs and input gradient against the stored ones (the gradient as a sample
    of its entries and its projections on fixed directions)."""
    _assert_close(out, reference.load(f"{key}/out"), f"{key}: outputs", FLOAT64)
    gx = gx.astype(np.float64).ravel()
    assert gx.size == int(np.prod(reference.load(f"{key}/gx/shape")))
    _assert_close(gx[sample_index(gx.size)], reference.load(f"{key}/gx/sample"),
                  f"{key}: input gradient (sampled entries)", FLOAT64)
    _assert_close(directions(gx.size) @ gx, reference.load(f"{key}/gx/projection"),
                  f"{key}: input gradient (projections)", FLOAT64)


def test_inception_auxiliary_classifier_equals_torchvisions():
    name, options, size = reference.AUX_CASE
    key = reference.case_key(name, options, size) + "/aux"
    model = models.get_model(name, num_classes=reference.NUM_CLASSES, **options)
    weights = reference.weights([(k, v.shape) for k, v in model.state_dict().items()])
    np.testing.assert_allclose(reference.fingerprint(list(weights.values())),
                               reference.load(f"{key}/weights_fingerprint"), rtol=1e-12)
    model.load_state_dict(weights)
    aux = model.eval().requires_grad_(False).AuxLogits
    x, r = reference.aux_inputs()
    with tl.no_grad():
        out32 = aux(tl.Tensor(x)).numpy()
    _assert_close(out32, reference.load(f"{key}/out"), f"{key}: float32 outputs", FLOAT32)
    _check_against(key, *_run(aux.double(), x, r, np.float64))


# ---- torchvision's published files for the newer families ---------------------------------
NEW_WEIGHTS = {   # model: (enum, DEFAULT member, its file)
    "resnext50_32x4d": ("ResNeXt50_32X4D_Weights", "IMAGENET1K_V2",
                        "resnext50_32x4d-1a0047aa.pth"),
    "resnext101_64x4d": ("ResNeXt101_64X4D_Weights", "IMAGENET1K_V1",
                         "resnext101_64x4d-173b62eb.pth"),
    "wide_resnet101_2": ("Wide_ResNet101_2_Weights", "IMAGENET1K_V2",
                         "wide_resnet101_2-d733dc28.pth"),
    "efficientnet_b1": ("EfficientNet_B1_Weights", "IMAGENET1K_V2",
                        "efficientnet_b1-c27df63c.pth"),
    "efficientnet_b7": ("EfficientNet_B7_Weights", "IMAGENET1K_V1",
                        "efficientnet_b7_lukemelas-c5b4e57e.pth"),
    "convnext_tiny": ("ConvNeXt_Tiny_Weights", "IMAGENET1K_V1", "convnext_tiny-983f1562.pth"),
    "vit_b_16": ("ViT_B_16_Weights", "IMAGENET1K_V1", "vit_b_16-c867db91.pth"),
}


def test_new_weight_enums_record_torchvisions_files():
    from tinylesion.vision import weights
    for name in BACKBONES:
        members = list(weights.get_model_weights(name))
        counts = {PARAMETERS_1000[name], INCEPTION_V3_WITH_AUX if name == "inception_v3" else 0}
        assert any(m.meta["num_params"] in counts for m in members), name
    for name, (enum, default, file) in NEW_WEIGHTS.items():
        member = weights.get_model_weights(name).DEFAULT
        assert (type(member).__name__, member.name, member.meta["file_name"]) == \
            (enum, default, file)
        assert member.url == "https://download.pytorch.org/models/" + file


def test_a_vit_file_sets_the_input_size_it_was_trained_at(monkeypatch, tmp_path):
    from tinylesion.vision import models as vision_models, weights
    built = {}
    monkeypatch.setattr(models, "get_model", lambda name, **config: built.update(config))
    monkeypatch.setattr(weights.WeightsEnum, "local_file", lambda self: str(tmp_path / "w.pth"))
    vision_models.vit_b_16(weights="IMAGENET1K_SWAG_E2E_V1")
    assert built["image_size"] == (384, 384) and built["num_classes"] == 1000
    vision_models.vit_l_16(weights=vision_models.ViT_L_16_Weights.IMAGENET1K_V1)
    assert built["image_size"] == (224, 224)
