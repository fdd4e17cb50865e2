"""The newer backbones' own layers: float64 central-difference gradient checks and their
errors (ConvNeXt's LayerNorm2d and CNBlock, a small vision transformer)."""
import numpy as np
import pytest

import tinylesion as tl
from tinylesion.models.convnext import CNBlock, LayerNorm2d
from tinylesion.testing import gradcheck, numerical_grad


def _rng():
    return np.random.default_rng(5)


def check_parameter_gradients(module, x, rtol=1e-4, atol=1e-6):
    """Each parameter's backward() gradient of sum(probe · module(x)) against central
    differences in float64 (the parameter's array perturbed in place)."""
    module.double()
    probe = _rng().standard_normal(module(tl.Tensor(x)).shape)
    module.zero_grad()
    (module(tl.Tensor(x)) * tl.Tensor(probe)).sum().backward()
    for name, p in module.named_parameters():
        def scalar(values, p=p):
            p.data[...] = values
            return float((module(tl.Tensor(x)).numpy() * probe).sum())
        values = p.array.copy()
        numeric = numerical_grad(scalar, [values], 0)
        p.data[...] = values
        np.testing.assert_allclose(p.grad.numpy(), numeric, rtol=rtol, atol=atol, err_msg=name)


def test_layer_norm_2d_normalises_each_pixel_over_channels():
    norm = LayerNorm2d(4, eps=1e-6).double()
    x = _rng().standard_normal((2, 4, 3, 5)) * 3 + 1
    y = norm(tl.Tensor(x)).numpy()
    mean, var = x.mean(1, keepdims=True), x.var(1, keepdims=True)
    np.testing.assert_allclose(y, (x - mean) / np.sqrt(var + 1e-6), rtol=1e-10, atol=1e-12)


def test_layer_norm_2d_gradients():
    norm = LayerNorm2d(3).double()
    rng = _rng()
    norm.weight.data[...] = rng.standard_normal(3)
    norm.bias.data[...] = rng.standard_normal(3)
    x = rng.standard_normal((2, 3, 2, 3))
    gradcheck(lambda x: norm(x), x)
    check_parameter_gradients(norm, x)


def test_layer_norm_2d_refuses_other_shapes():
    with pytest.raises(ValueError, match=r"LayerNorm2d\(3\) takes \(N, 3, H, W\)"):
        LayerNorm2d(3)(tl.zeros((2, 4, 5, 5)))


def test_convnext_block_gradients():
    block = CNBlock(4, layer_scale=0.5, drop_prob=0.0).double().eval()
    x = _rng().standard_normal((2, 4, 3, 3))
    gradcheck(lambda x: block(x), x, rtol=1e-4, atol=1e-6)
    check_parameter_gradients(block, x)


def test_vision_transformer_gradients():
    """A one-block transformer of width 8 on 16×16 inputs in 4×4 patches: every parameter
    (class token, position embedding, attention, MLP, norms, head) and the input."""
    from tinylesion.models.vit import VisionTransformer
    tl.manual_seed(0)
    model = VisionTransformer("vit_test", 4, 1, 2, 8, 8, 3, (16, 16)).double().eval()
    rng = _rng()
    for p in model.parameters():          # away from the zero head and zero class token
        p.data[...] = rng.standard_normal(p.shape) * 0.3
    x = rng.standard_normal((1, 3, 16, 16))
    gradcheck(lambda x: model(x), x, rtol=1e-4, atol=1e-6)
    check_parameter_gradients(model, x)
