"""Adadelta, Adagrad, LayerNorm, GELU and interpolate/Upsample: float64 gradient checks and
PyTorch parity (bench/habits_fixtures.py stores PyTorch's results)."""
import importlib.util
import os

import numpy as np
import pytest

import tinylesion as tl
import tinylesion.nn.functional as F
from tinylesion import nn, optim
from tinylesion.nn import Parameter
from tinylesion.testing import gradcheck

HERE = os.path.dirname(__file__)
_spec = importlib.util.spec_from_file_location(
    "habits_fixtures", os.path.join(HERE, "..", "bench", "habits_fixtures.py"))
cases = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(cases)   # the case lists only (it imports torch inside main())


@pytest.fixture(scope="module")
def ref():
    with np.load(os.path.join(HERE, "fixtures", "pytorch_habits_reference.npz")) as f:
        return dict(f)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("name, kwargs", cases.OPTIM_CASES,
                         ids=[f"{n}-{i}" for i, (n, _) in enumerate(cases.OPTIM_CASES)])
def test_optimizers_match_torch(ref, name, kwargs, dtype):
    key = f"optim/{name}/{cases.key_of(kwargs)}/{np.dtype(dtype).name}"
    values, grads = cases.optim_inputs(dtype)
    params = [Parameter(v.copy()) for v in values]
    opt = getattr(optim, name)([{"params": params[:2]},
                                {"params": params[2:], "lr": float(ref[f"{key}/lr2"])}], **kwargs)
    for step_grads in grads:
        for p, g in zip(params, step_grads):
            p.grad = tl.Tensor(g.copy())
        opt.step()
    tol = dict(rtol=1e-12, atol=1e-14) if dtype == np.float64 else dict(rtol=3e-6, atol=1e-6)
    for i, p in enumerate(params):
        assert p.array.dtype == dtype
        np.testing.assert_allclose(p.array, ref[f"{key}/out{i}"], **tol)


def test_optimizer_arguments_and_state():
    p = Parameter(np.ones(3))
    with pytest.raises(ValueError, match="rho"):
        optim.Adadelta([p], rho=1.5)
    with pytest.raises(ValueError, match="lr_decay"):
        optim.Adagrad([p], lr_decay=-1)
    opt = optim.Adagrad([p], initial_accumulator_value=0.5)
    p.grad = tl.Tensor(np.ones(3))
    opt.step()
    state = opt.state_dict()["state"][0]
    assert state["step"] == 1 and np.allclose(state["sum"], 1.5)
    opt2 = optim.Adagrad([Parameter(np.ones(3))], initial_accumulator_value=0.5)
    opt2.load_state_dict(opt.state_dict())
    assert opt2.param_groups[0]["initial_accumulator_value"] == 0.5


@pytest.mark.parametrize("case", range(len(cases.LAYER_NORM_CASES)))
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_layer_norm_matches_torch(ref, case, dtype):
    k = f"layer_norm/case{case}/{np.dtype(dtype).name}"
    normalized = cases.LAYER_NORM_CASES[case][1]
    x, w, b = (tl.Tensor(ref[f"{k}/{n}"], requires_grad=True) for n in ("x", "w", "b"))
    y = F.layer_norm(x, normalized, w, b, eps=1e-5)
    y.backward(tl.Tensor(ref[f"{k}/gy"]))
    tol = dict(rtol=1e-10, atol=1e-12) if dtype == np.float64 else dict(rtol=1e-5, atol=2e-5)
    for name, got in (("y", y), ("gx", x.grad), ("gw", w.grad), ("gb", b.grad)):
        np.testing.assert_allclose(got.numpy(), ref[f"{k}/{name}"], err_msg=name, **tol)


def test_layer_norm_gradients_and_module():
    rng = np.random.default_rng(0)
    gradcheck(lambda x, w, b: F.layer_norm(x, (3, 4), w, b), rng.standard_normal((2, 3, 4)),
              rng.standard_normal((3, 4)), rng.standard_normal((3, 4)))
    gradcheck(lambda x: F.layer_norm(x, 5), rng.standard_normal((4, 5)) * 10)
    ln = nn.LayerNorm([4, 5])
    assert ln.weight.shape == (4, 5) and np.all(ln.weight.array == 1) and np.all(ln.bias.array == 0)
    assert sorted(dict(ln.named_parameters())) == ["bias", "weight"]
    bare = nn.LayerNorm(5, elementwise_affine=False)
    assert list(bare.parameters()) == [] and bare.weight is None
    assert list(dict(nn.LayerNorm(5, bias=False).named_parameters())) == ["weight"]
    out = bare(tl.Tensor(rng.standard_normal((3, 5))))
    np.testing.assert_allclose(out.numpy().mean(-1), 0, atol=1e-6)
    with pytest.raises(ValueError, match=r"expected input with shape \[\*, 4, 5\]"):
        ln(tl.ones(2, 5, 4))


@pytest.mark.parametrize("approximate", ["none", "tanh"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_gelu_matches_torch(ref, approximate, dtype):
    k = f"gelu/{approximate}/{np.dtype(dtype).name}"
    x = tl.Tensor(ref[f"{k}/x"], requires_grad=True)
    y = nn.GELU(approximate)(x)
    y.backward(tl.Tensor(ref[f"{k}/gy"]))
    tol = dict(rtol=1e-12, atol=1e-14) if dtype == np.float64 else dict(rtol=2e-6, atol=1e-6)
    np.testing.assert_allclose(y.numpy(), ref[f"{k}/y"], **tol)
    np.testing.assert_allclose(x.grad.numpy(), ref[f"{k}/gx"], **tol)


def test_gelu_gradient_and_arguments():
    x = np.linspace(-5, 5, 23)
    gradcheck(lambda t: F.gelu(t), x)
    gradcheck(lambda t: F.gelu(t, approximate="tanh"), x)
    with pytest.raises(ValueError, match="none or tanh"):
        nn.GELU("erf")
    with pytest.raises(TypeError, match="gelu"):
        F.gelu(tl.tensor([1, 2]))


@pytest.mark.parametrize("case", range(len(cases.INTERPOLATE_CASES)))
def test_interpolate_matches_torch(ref, case):
    kwargs = cases.INTERPOLATE_CASES[case][1]
    k = f"interpolate/case{case}"
    x = tl.Tensor(ref[f"{k}/x"], requires_grad=True)
    y = F.interpolate(x, **kwargs)
    assert y.shape == ref[f"{k}/y"].shape
    np.testing.assert_allclose(y.numpy(), ref[f"{k}/y"], rtol=1e-5, atol=1e-6)
    y.backward(tl.Tensor(ref[f"{k}/gy"]))
    np.testing.assert_allclose(x.grad.numpy(), ref[f"{k}/gx"], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("kwargs", [dict(size=(5, 3), mode="nearest"),
                                    dict(size=(6, 7), mode="bilinear", align_corners=False),
                                    dict(scale_factor=1.5, mode="bilinear", align_corners=True),
                                    dict(size=(3, 3), mode="nearest-exact")])
def test_interpolate_gradients(kwargs):
    gradcheck(lambda x: F.interpolate(x, **kwargs),
              np.random.default_rng(1).standard_normal((2, 2, 4, 5)))


def test_upsample_modules_and_errors():
    x = tl.rand(1, 2, 3, 4)
    assert nn.Upsample(scale_factor=2)(x).shape == (1, 2, 6, 8)
    np.testing.assert_allclose(nn.UpsamplingBilinear2d(size=(5, 7))(x).numpy(),
                               F.interpolate(x, (5, 7), mode="bilinear",
                                             align_corners=True).numpy())
    assert nn.UpsamplingNearest2d(scale_factor=3)(x).shape == (1, 2, 9, 12)
    with pytest.raises(ValueError, match="align_corners option"):
        F.interpolate(x, scale_factor=2, align_corners=True)
    with pytest.raises(ValueError, match="only one of size or scale_factor"):
        F.interpolate(x, size=3, scale_factor=2)
    with pytest.raises(NotImplementedError, match="bicubic"):
        F.interpolate(x, size=3, mode="bicubic")
    with pytest.raises(ValueError, match="4-D"):
        F.interpolate(tl.rand(1, 2, 3), size=5, mode="bilinear")


def test_next_of_the_member_lists_as_of_pytorchs_generators():
    model = tl.nn.Sequential(tl.nn.Linear(2, 3), tl.nn.ReLU(), tl.nn.Linear(3, 1))
    params = model.parameters()
    assert next(params) is model[0].weight and next(params) is model[0].bias
    assert next(model.parameters()).device == "cpu"
    assert next(model.children()) is model[0] and next(model.modules()) is model
    assert len(params) == 4 and params[3] is model[2].bias   # still a list
    assert [p.shape for p in params] == [(3, 2), (3,), (1, 3), (1,)]
    empty = tl.nn.ReLU().parameters()
    with pytest.raises(StopIteration):
        next(empty)
