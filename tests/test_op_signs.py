"""Gradients in every sign region: each unary op at negative, positive and mixed inputs, each
binary op with operands of either sign, checked by float64 central differences and, where the
derivative is a simple formula, against that formula by hand."""
import numpy as np
import pytest

import tinylesion as tl
import tinylesion.nn.functional as F
from tinylesion.testing import gradcheck

# region -> inputs away from 0 (the kinks of abs, relu, clamp and friends)
REGIONS = {
    "negative": lambda rng, shape: -rng.uniform(0.3, 2.0, shape),
    "positive": lambda rng, shape: rng.uniform(0.3, 2.0, shape),
    "mixed": lambda rng, shape: rng.uniform(0.3, 2.0, shape) * np.where(
        np.arange(np.prod(shape)).reshape(shape) % 2 == 0, -1.0, 1.0),
}

# ops defined on the whole real line
UNARY = {
    "neg": lambda x: -x, "exp": lambda x: x.exp(), "abs": lambda x: x.abs(),
    "square": lambda x: x * x, "cube": lambda x: x ** 3, "pow2": lambda x: x ** 2,
    "rdiv": lambda x: 2.0 / x, "rsub": lambda x: 3.0 - x, "rpow": lambda x: 2 ** x,
    "relu": lambda x: x.relu(), "sigmoid": lambda x: x.sigmoid(), "tanh": lambda x: x.tanh(),
    "leaky_relu": lambda x: F.leaky_relu(x, 0.2), "softmax": lambda x: F.softmax(x, -1),
    "log_softmax": lambda x: F.log_softmax(x, -1), "clamp": lambda x: tl.clamp(x, -1.0, 1.0),
    "clamp_min": lambda x: tl.clamp(x, min=-0.9), "clamp_max": lambda x: tl.clamp(x, max=0.9),
    "maximum0": lambda x: tl.maximum(x, tl.Tensor(np.zeros(x.shape))),
    "minimum0": lambda x: tl.minimum(x, tl.Tensor(np.zeros(x.shape))),
    "mean": lambda x: x.mean(axis=1), "sum": lambda x: x.sum(axis=0),
    "max": lambda x: x.max(axis=1), "min": lambda x: x.min(axis=1),
    "var": lambda x: tl.var(x, 1), "std": lambda x: tl.std(x, 1),
    "where": lambda x: tl.where(x.numpy() > 0, x * 2, x * -3),
    "mse": lambda x: F.mse_loss(x, tl.Tensor(np.full(x.shape, 0.5))),
    "l1": lambda x: F.l1_loss(x, tl.Tensor(np.full(x.shape, 0.1))),
    "bce_logits": lambda x: F.binary_cross_entropy_with_logits(
        x, tl.Tensor((np.arange(15).reshape(3, 5) % 2).astype(np.float64))),
    "cross_entropy": lambda x: F.cross_entropy(x, np.array([0, 4, 2])),
    # the activations added beside PyTorch's: their kinks (0, ±3, 6, the hardtanh bounds) are
    # away from the draws, which stay 0.3..2.0 in size
    "gelu": lambda x: F.gelu(x), "gelu_tanh": lambda x: F.gelu(x, approximate="tanh"),
    "silu": lambda x: F.silu(x), "hardswish": lambda x: F.hardswish(x),
    "hardsigmoid": lambda x: F.hardsigmoid(x), "relu6": lambda x: F.relu6(x * 2),
    "hardtanh_out": lambda x: F.hardtanh(x, -0.25, 0.25),
    "hardtanh_in": lambda x: F.hardtanh(x * 0.1, -0.25, 0.25),
}
# ops defined for positive inputs only
POSITIVE = {"log": lambda x: x.log(), "sqrt": lambda x: x.sqrt(), "rsqrt": lambda x: x ** -0.5}


@pytest.mark.parametrize("region", sorted(REGIONS))
@pytest.mark.parametrize("name", sorted(UNARY))
def test_unary_gradient_in_each_sign_region(name, region):
    x = REGIONS[region](np.random.default_rng(1), (3, 5))
    gradcheck(UNARY[name], x)


@pytest.mark.parametrize("name", sorted(POSITIVE))
def test_positive_only_ops(name):
    gradcheck(POSITIVE[name], REGIONS["positive"](np.random.default_rng(2), (3, 5)))


def grad_of(fn, x):
    t = tl.Tensor(np.array(x, dtype=np.float64), requires_grad=True)
    fn(t).sum().backward()
    return t.grad.numpy()


X = np.array([-2.0, -0.5, 0.25, 3.0])


@pytest.mark.parametrize("name, fn, expected", [
    ("abs", lambda t: t.abs(), np.sign(X)),
    ("neg", lambda t: -t, -np.ones(4)),
    ("relu", lambda t: t.relu(), (X > 0).astype(float)),
    ("leaky_relu", lambda t: F.leaky_relu(t, 0.1), np.where(X > 0, 1.0, 0.1)),
    ("cube", lambda t: t ** 3, 3 * X ** 2),
    ("square", lambda t: t * t, 2 * X),
    ("rdiv", lambda t: 1.0 / t, -1 / X ** 2),
    ("rsub", lambda t: 1.0 - t, -np.ones(4)),
    ("tanh", lambda t: t.tanh(), 1 - np.tanh(X) ** 2),
    ("sigmoid", lambda t: t.sigmoid(), np.exp(-X) / (1 + np.exp(-X)) ** 2),
    ("exp", lambda t: t.exp(), np.exp(X)),
    ("clamp", lambda t: tl.clamp(t, -1.0, 1.0), ((X >= -1) & (X <= 1)).astype(float)),
    ("l1", lambda t: F.l1_loss(t, tl.Tensor(np.zeros(4)), reduction="sum"), np.sign(X)),
    ("mse", lambda t: F.mse_loss(t, tl.Tensor(np.ones(4)), reduction="sum"), 2 * (X - 1)),
])
def test_unary_derivatives_by_hand(name, fn, expected):
    np.testing.assert_allclose(grad_of(fn, X), expected, rtol=1e-12, atol=1e-15)


SIGNS = [(1, 1), (1, -1), (-1, 1), (-1, -1)]
BINARY = {
    "add": lambda a, b: a + b, "sub": lambda a, b: a - b, "mul": lambda a, b: a * b,
    "div": lambda a, b: a / b, "rsub": lambda a, b: b - a, "rdiv": lambda a, b: b / a,
    "maximum": tl.maximum, "minimum": tl.minimum, "matmul": lambda a, b: a @ b.transpose(),
    "remainder": lambda a, b: a % b,
}


@pytest.mark.parametrize("signs", SIGNS, ids=["++", "+-", "-+", "--"])
@pytest.mark.parametrize("name", sorted(BINARY))
def test_binary_gradient_for_operands_of_either_sign(name, signs):
    rng = np.random.default_rng(3)
    a = signs[0] * rng.uniform(0.3, 2.0, (3, 4))
    b = signs[1] * rng.uniform(0.3, 2.0, (3, 4))
    if name == "remainder":                  # away from the jumps of a % b
        a = signs[0] * (np.floor(rng.uniform(1, 5, (3, 4))) + 0.5) * 0.7
        b = signs[1] * np.full((3, 4), 0.7 * 0.9)
        a = a + 0.11
    gradcheck(BINARY[name], a, b)


def test_binary_gradients_broadcast_with_signs():
    rng = np.random.default_rng(4)
    a = rng.uniform(0.3, 2.0, (2, 3, 4)) * np.where(rng.random((2, 3, 4)) < 0.5, -1, 1)
    for fn in (lambda u, v: u * v, lambda u, v: u / v, lambda u, v: u - v,
               lambda u, v: v - u, lambda u, v: tl.maximum(u, v)):
        gradcheck(fn, a, np.array([-1.5, 0.7, -0.4, 2.0]))
        gradcheck(fn, a, np.array([[-0.8], [1.3], [-2.1]]))


@pytest.mark.parametrize("exponent", [2.0, 3.0, -1.0, -2.0])
def test_tensor_power_of_negative_bases_with_integer_exponents(exponent):
    base = np.array([-2.0, -0.5, 0.5, 1.5])
    gradcheck(lambda x: x ** exponent, base)
    b = tl.Tensor(base, requires_grad=True)
    e = tl.Tensor(np.full(4, exponent), requires_grad=False)
    (b ** e).sum().backward()
    np.testing.assert_allclose(b.grad.numpy(), exponent * base ** (exponent - 1), rtol=1e-12)


def test_binary_derivatives_by_hand():
    a, b = np.array([-2.0, 3.0, -0.5]), np.array([4.0, -1.0, -0.25])
    ta, tb = tl.Tensor(a, requires_grad=True), tl.Tensor(b, requires_grad=True)
    ((ta * tb) + (ta / tb) - (tb - ta)).sum().backward()
    np.testing.assert_allclose(ta.grad.numpy(), b + 1 / b + 1, rtol=1e-12)
    np.testing.assert_allclose(tb.grad.numpy(), a - a / b ** 2 - 1, rtol=1e-12)
    ta, tb = tl.Tensor(a, requires_grad=True), tl.Tensor(b, requires_grad=True)
    tl.maximum(ta, tb).sum().backward()
    np.testing.assert_array_equal(ta.grad.numpy(), [0, 1, 0])
    np.testing.assert_array_equal(tb.grad.numpy(), [1, 0, 1])
