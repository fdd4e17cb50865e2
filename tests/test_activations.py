"""ReLU6, Hardtanh, SiLU, Hardswish, Hardsigmoid, Identity and stochastic depth: values and
gradients at the kinks, float64 gradient checks, PyTorch's stored results, modules."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import tinylesion as tl
from tinylesion import nn, ops
from tinylesion.nn import functional as F
from tinylesion.testing import gradcheck

import torch_reference as reference

FUNCTIONS = {
    "relu6": lambda t: F.relu6(t),
    "hardtanh": lambda t: F.hardtanh(t),
    "hardtanh(-0.5, 2)": lambda t: F.hardtanh(t, -0.5, 2.0),
    "silu": lambda t: F.silu(t),
    "hardswish": lambda t: F.hardswish(t),
    "hardsigmoid": lambda t: F.hardsigmoid(t),
}
KINKS = {"relu6": (0, 6), "hardtanh": (-1, 1), "hardtanh(-0.5, 2)": (-0.5, 2), "silu": (),
         "hardswish": (-3, 3), "hardsigmoid": (-3, 3)}


@pytest.mark.parametrize("name", FUNCTIONS)
def test_gradcheck(name, device):
    # odd shape, values spread over every piece, none within 1e-3 of a kink
    x = np.random.default_rng(0).uniform(-8, 8, (3, 5, 7))
    for kink in KINKS[name]:
        x[np.abs(x - kink) < 1e-3] += 2e-3
    gradcheck(FUNCTIONS[name], x, device=device)


@settings(max_examples=30, deadline=None)
@given(st.sampled_from(sorted(FUNCTIONS)), st.lists(st.integers(1, 4), min_size=1, max_size=3),
       st.floats(0.1, 10.0), st.integers(0, 999))
def test_gradcheck_drawn(name, shape, scale, seed):
    x = np.random.default_rng(seed).standard_normal(shape) * scale
    for kink in KINKS[name]:
        x[np.abs(x - kink) < 1e-3] += 2e-3
    gradcheck(FUNCTIONS[name], x)


def test_values_and_gradients_at_the_kinks():
    x = tl.Tensor(np.array([-4.0, -3.0, -1.0, 0.0, 1.0, 3.0, 6.0, 7.0]), requires_grad=True)
    cases = {  # function: (values, gradients), PyTorch's choices at the kinks
        "relu6": ([0, 0, 0, 0, 1, 3, 6, 6], [0, 0, 0, 0, 1, 1, 0, 0]),
        "hardtanh": ([-1, -1, -1, 0, 1, 1, 1, 1], [0, 0, 0, 1, 0, 0, 0, 0]),
        "hardswish": ([0, 0, -1 / 3, 0, 2 / 3, 3, 6, 7],
                      [0, 0, 1 / 6, 0.5, 5 / 6, 1, 1, 1]),
        "hardsigmoid": ([0, 0, 1 / 3, 0.5, 2 / 3, 1, 1, 1], [0, 0, 1 / 6, 1 / 6, 1 / 6, 0, 0, 0]),
    }
    for name, (values, grads) in cases.items():
        x.grad = None
        y = FUNCTIONS[name](x)
        y.sum().backward()
        np.testing.assert_allclose(y.numpy(), values, atol=1e-15, err_msg=name)
        np.testing.assert_allclose(x.grad.numpy(), grads, atol=1e-15, err_msg=name)


def test_silu_is_x_sigmoid_x_and_stable():
    x = np.array([-800.0, -5.0, 0.0, 2.0, 800.0])
    y = F.silu(tl.Tensor(x)).numpy()
    with np.errstate(over="ignore"):
        np.testing.assert_allclose(y, x / (1 + np.exp(-x)), rtol=1e-12, atol=1e-12)
    assert np.isfinite(y).all()


def test_dtypes_and_nan():
    for name, fn in FUNCTIONS.items():
        x = tl.Tensor(np.array([np.nan, 1.0], np.float32))
        y = fn(x)
        assert y.dtype == np.float32 and np.isnan(y.numpy()[0]), name
    with pytest.raises(TypeError, match="silu is not implemented for int64"):
        F.silu(tl.tensor([1, 2]))


ACTIVATION_CASES = [  # as bench/torch_fixtures.py's ACTIVATION_CASES
    ("ReLU6", {}), ("Hardtanh", {}), ("Hardtanh", dict(min_val=-0.5, max_val=2.0)),
    ("SiLU", {}), ("Hardswish", {}), ("Hardsigmoid", {}),
]


@pytest.mark.parametrize("case", range(len(ACTIVATION_CASES)))
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_matches_torch(case, dtype):
    name, kwargs = ACTIVATION_CASES[case]
    load = lambda part: reference.load(f"activations/case{case}/{dtype}/{part}")
    x = tl.Tensor(load("x"), requires_grad=True)
    y = getattr(nn, name)(**kwargs)(x)
    y.backward(load("gy"))
    tol = dict(rtol=1e-6, atol=1e-7) if dtype == "float32" else dict(rtol=1e-14, atol=1e-15)
    assert y.dtype == x.dtype
    np.testing.assert_allclose(y.numpy(), load("y"), **tol)
    if name == "Hardsigmoid" and dtype == "float64":
        # NOTE: PyTorch's hardsigmoid gradient multiplies by 1/6 rounded to float32 at every
        # precision; tinylesion by 1/6 in the input's precision.
        tol = dict(rtol=1e-7, atol=1e-15)
    np.testing.assert_allclose(x.grad.numpy(), load("gx"), **tol)


def test_modules_reprs_and_arguments():
    assert repr(nn.ReLU6()) == "ReLU6()" and repr(nn.ReLU6(inplace=True)) == "ReLU6(inplace=True)"
    assert repr(nn.Hardtanh(-2.0, 3.0)) == "Hardtanh(min_val=-2.0, max_val=3.0)"
    assert repr(nn.SiLU(inplace=True)) == "SiLU(inplace=True)"
    assert repr(nn.Hardswish()) == "Hardswish()" and repr(nn.Hardsigmoid()) == "Hardsigmoid()"
    assert nn.ReLU6().min_val == 0.0 and nn.ReLU6().max_val == 6.0
    with pytest.raises(ValueError, match="max_val .1. must be greater than min_val .2."):
        nn.Hardtanh(2, 1)
    with pytest.raises(ValueError, match="must not be smaller"):
        F.hardtanh(tl.tensor([1.0]), 2, 1)
    identity = nn.Identity(54, unused_argument=0.1)
    x = tl.Tensor(np.ones(3))
    assert identity(x) is x and repr(identity) == "Identity()"
    assert list(identity.parameters()) == []


# ---- stochastic depth ------------------------------------------------------------------------
def test_stochastic_depth_row_and_batch():
    tl.manual_seed(0)
    x = tl.Tensor(np.ones((4000, 2, 3)), requires_grad=True)
    y = ops.stochastic_depth(x, 0.25, "row")
    rows = y.numpy().reshape(4000, -1)
    kept = rows[:, 0] != 0
    # each sample is all kept (scaled by 1/(1 - p)) or all dropped
    np.testing.assert_allclose(rows[kept], 1 / 0.75)
    assert np.all(rows[~kept] == 0)
    assert abs(kept.mean() - 0.75) < 0.03
    y.sum().backward()
    np.testing.assert_allclose(x.grad.numpy().reshape(4000, -1)[:, 0], kept / 0.75)
    # "batch": one draw for the whole batch
    outcomes = set()
    for _ in range(40):
        values = np.unique(ops.stochastic_depth(tl.Tensor(np.ones((8, 3))), 0.5, "batch").numpy())
        assert len(values) == 1
        outcomes.add(float(values[0]))
    assert outcomes == {0.0, 2.0}


def test_stochastic_depth_identity_cases_and_errors():
    x = tl.Tensor(np.arange(6.0).reshape(3, 2))
    assert ops.stochastic_depth(x, 0.5, "row", training=False) is x
    assert ops.stochastic_depth(x, 0.0, "batch") is x
    np.testing.assert_array_equal(ops.stochastic_depth(x, 1.0, "row").numpy(), 0.0)
    with pytest.raises(ValueError, match="drop probability has to be between 0 and 1"):
        ops.stochastic_depth(x, 1.5, "row")
    with pytest.raises(ValueError, match="mode has to be either 'batch' or 'row'"):
        ops.stochastic_depth(x, 0.5, "rows")
    module = nn.StochasticDepth(0.2, "row")
    assert repr(module) == "StochasticDepth(p=0.2, mode=row)"
    assert ops.StochasticDepth is nn.StochasticDepth
    assert module.eval()(x) is x
    with pytest.raises(ValueError, match="mode has to be"):
        nn.StochasticDepth(0.2, "sample")


def test_stochastic_depth_gradcheck_with_a_fixed_draw():
    x = np.random.default_rng(3).standard_normal((5, 2, 3))

    def fn(t):
        tl.manual_seed(7)  # the same draw at every evaluation
        return ops.stochastic_depth(t, 0.4, "row")
    gradcheck(fn, x)


# ---- batch norm with the models' eps and momentum ----------------------------------------------
BATCHNORM_MODULE_CASES = [dict(eps=1e-3, momentum=0.01), dict(eps=1e-5, momentum=0.1),
                          dict(eps=1e-3, momentum=None)]


@pytest.mark.parametrize("case", range(len(BATCHNORM_MODULE_CASES)))
def test_batchnorm_eps_and_momentum_match_torch(case):
    load = lambda part: reference.load(f"batchnorm_modules/case{case}/{part}")
    bn = nn.BatchNorm2d(3, **BATCHNORM_MODULE_CASES[case]).double()
    bn.weight.array[...] = load("weight")
    bn.bias.array[...] = load("bias")
    tol = dict(rtol=1e-10, atol=1e-12)
    for step in range(3):
        x = tl.Tensor(load(f"step{step}/x"), requires_grad=True)
        y = bn(x)
        y.backward(load(f"step{step}/gy"))
        np.testing.assert_allclose(y.numpy(), load(f"step{step}/y"), **tol)
        np.testing.assert_allclose(x.grad.numpy(), load(f"step{step}/gx"), **tol)
        np.testing.assert_allclose(bn.running_mean.numpy(), load(f"step{step}/running_mean"),
                                   **tol)
        np.testing.assert_allclose(bn.running_var.numpy(), load(f"step{step}/running_var"),
                                   **tol)
    np.testing.assert_allclose(bn.weight.grad.numpy(), load("gweight"), **tol)
    np.testing.assert_allclose(bn.bias.grad.numpy(), load("gbias"), **tol)
    bn.eval()
    np.testing.assert_allclose(bn(tl.Tensor(load("eval_x"))).numpy(), load("eval_y"), **tol)
