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
    "vgg16": 138_357_544, "vgg16_bn": 138_365_992, "vgg19": 143_667_240,
    "densenet121": 7_978_856, "densenet169": 14_149_480, "densenet201": 20_013_928,
    "inception_v3": 23_834_568,
    "mobilenet_v2": 3_504_872, "mobilenet_v3_large": 5_483_032,
    "mobilenet_v3_small": 2_542_856, "efficientnet_b0": 5_288_548,
}
INCEPTION_V3_WITH_AUX = 27_161_264
BACKBONES = list(PARAMETERS_1000)


def test_every_backbone_is_registered():
    assert set(BACKBONES) <= set(models.list_models())
    assert {name for name, _, _ in reference.CASES} == set(BACKBONES)


def _count_with_head(model):
    """torchvision's count with 1000 classes, less what a head of fewer outputs drops."""
    count = INCEPTION_V3_WITH_AUX if model.config.get("aux_logits") else \
        PARAMETERS_1000[model.name]
    state = model.state_dict()
    for key in model.head_keys:
        if key.endswith(".weight") and key in state:
            out, fan_in = state[key].shape
            count -= (1000 - out) * (fan_in + 1)
    return count


# VGG (138M parameters at 1000 classes) is counted in the parity test, through the formula
@pytest.mark.parametrize("name", [n for n in BACKBONES if not n.startswith("vgg")])
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


# ---- parity with torchvision (float32 here, float64 in PyTorch) ----------------------------
def _assert_close(actual, expected, scale, what, rtol=2e-4):
    """Entry by entry within rtol of the largest reference value: float32 rounding through
    a deep network, but far below what a wrong layer gives."""
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=rtol * scale, err_msg=what)


@pytest.mark.parametrize("name, options, size", reference.CASES,
                         ids=[reference.case_key(*case) for case in reference.CASES])
def test_outputs_and_input_gradients_equal_torchvisions(name, options, size):
    key = reference.case_key(name, options, size)
    model = models.get_model(name, num_classes=reference.NUM_CLASSES, image_size=size,
                             **options)
    assert model.num_parameters() == _count_with_head(model)
    state = model.state_dict()
    weights = reference.weights([(k, v.shape) for k, v in state.items()])
    np.testing.assert_allclose(reference.fingerprint(list(weights.values())),
                               reference.load(f"{key}/weights_fingerprint"), rtol=1e-12)
    model.load_state_dict(weights)
    model.eval().requires_grad_(False)
    x, r = reference.inputs(name, options, size)
    np.testing.assert_allclose(reference.fingerprint([x, r]),
                               reference.load(f"{key}/inputs_fingerprint"), rtol=1e-12)
    xt = tl.Tensor(x, requires_grad=True)
    out = model(xt)
    (out * tl.Tensor(r.astype(np.float32))).sum().backward()
    _check_against(key, out.numpy(), xt.grad.numpy())


def _check_against(key, out, gx):
    """Outputs and input gradient against the stored ones (the gradient as a sample of its
    entries and its projections on fixed directions)."""
    expected = reference.load(f"{key}/out")
    _assert_close(out, expected, np.abs(expected).max(), f"{key}: outputs")
    gx = gx.astype(np.float64).ravel()
    assert gx.size == int(np.prod(reference.load(f"{key}/gx/shape")))
    sample = reference.load(f"{key}/gx/sample")
    _assert_close(gx[sample_index(gx.size)], sample, np.abs(sample).max(),
                  f"{key}: input gradient (sampled entries)")
    projection = directions(gx.size) @ gx
    expected = reference.load(f"{key}/gx/projection")
    _assert_close(projection, expected, np.abs(expected).max(),
                  f"{key}: input gradient (projections)")


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
    xt = tl.Tensor(x, requires_grad=True)
    out = aux(xt)
    (out * tl.Tensor(r.astype(np.float32))).sum().backward()
    _check_against(key, out.numpy(), xt.grad.numpy())
