"""Fused Adam update: the Numba kernel against the array expression, PyTorch, and by hand."""
import math

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from kernels.adam import SERIAL_MAX, adam_coefficients, adam_step, adam_update

import torch_reference as reference

TOL = {np.float32: 1e-5, np.float64: 1e-12}


def rel_err(a, b):
    return float(np.abs(a - b).max() / max(np.abs(b).max(), 1e-30))


def run(impl, shape, dtype, steps, lr, betas, eps, wd, nesterov, seed):
    """Run `steps` updates from the same start; return (param, m, v)."""
    rng = np.random.default_rng(seed)
    param = rng.standard_normal(shape).astype(dtype)
    m, v = np.zeros_like(param), np.zeros_like(param)
    for step in range(1, steps + 1):
        grad = rng.standard_normal(shape).astype(dtype)
        adam_step(param, grad, m, v, lr, betas[0], betas[1], eps, wd, step, nesterov=nesterov,
                  impl=impl)
    return param, m, v


@settings(max_examples=40, deadline=None)
@given(shape=st.sampled_from([(1,), (7,), (3, 5), (2, 3, 3, 3), (SERIAL_MAX + 3,)]),
       dtype=st.sampled_from([np.float32, np.float64]), steps=st.integers(1, 4),
       lr=st.sampled_from([1e-3, 0.1]), betas=st.sampled_from([(0.9, 0.999), (0.5, 0.9)]),
       wd=st.sampled_from([0.0, 0.01]), nesterov=st.booleans(), seed=st.integers(0, 1000))
def test_cpu_equals_reference(shape, dtype, steps, lr, betas, wd, nesterov, seed):
    args = (shape, dtype, steps, lr, betas, 1e-8, wd, nesterov, seed)
    for a, b in zip(run("cpu", *args), run("reference", *args)):
        assert a.dtype == dtype and a.shape == shape
        assert rel_err(a, b) < TOL[dtype]


@pytest.mark.parametrize("impl", ["reference", "cpu"])
def test_first_step_by_hand(impl):
    # step 1 from m = v = 0: m = (1-b1) g, v = (1-b2) g², both bias corrections cancel,
    # so the step is lr * g / (|g| + eps') with eps' = eps: about lr * sign(g)
    param = np.array([1.0, -2.0, 3.0])
    grad = np.array([0.5, -4.0, 0.0])
    m, v = np.zeros(3), np.zeros(3)
    adam_step(param, grad, m, v, 0.1, 0.9, 0.999, 1e-8, 0.0, 1, impl=impl)
    np.testing.assert_allclose(m, 0.1 * grad, rtol=1e-15)
    np.testing.assert_allclose(v, 0.001 * grad ** 2, rtol=1e-15)
    expected = [1.0 - 0.1 * 0.5 / (0.5 + 1e-8), -2.0 + 0.1 * 4 / (4 + 1e-8), 3.0]
    np.testing.assert_allclose(param, expected, rtol=1e-14)


@pytest.mark.parametrize("impl", ["reference", "cpu"])
def test_weight_decay_and_nesterov_by_hand(impl):
    p0, g0, wd, lr, b1, b2, eps = 2.0, 0.5, 0.1, 0.01, 0.9, 0.999, 1e-8
    for nesterov in (False, True):
        param, grad = np.array([p0]), np.array([g0])
        m, v = np.zeros(1), np.zeros(1)
        adam_step(param, grad, m, v, lr, b1, b2, eps, wd, 1, nesterov=nesterov, impl=impl)
        g = g0 + wd * p0  # L2: added to the gradient
        mt, vt = (1 - b1) * g, (1 - b2) * g * g
        denom = math.sqrt(vt / (1 - b2)) + eps
        if nesterov:
            num = lr * b1 / (1 - b1 ** 2) * mt + lr * (1 - b1) / (1 - b1) * g
        else:
            num = lr / (1 - b1) * mt
        np.testing.assert_allclose(param, [p0 - num / denom], rtol=1e-14)


def test_noncontiguous_and_views_update_in_place():
    rng = np.random.default_rng(1)
    base = rng.standard_normal((6, 8))
    param = base[:, ::2]  # a strided view: updated in place through the fallback
    grad = rng.standard_normal(param.shape)
    m, v = np.zeros(param.shape), np.zeros(param.shape)
    expected = param.copy()
    adam_step(expected, grad, np.zeros_like(m), np.zeros_like(v), 0.1, 0.9, 0.99, 1e-8, 0.0, 1,
              impl="reference")
    adam_step(param, grad, m, v, 0.1, 0.9, 0.99, 1e-8, 0.0, 1, impl="cpu")
    np.testing.assert_allclose(base[:, ::2], expected, rtol=1e-14)


def test_general_update_gives_torch_nadam_coefficients():
    # adam_update with c_g = 0, c_m = lr / bc1 is adam_step
    a = np.linspace(-1, 1, 9)
    p1, p2 = a.copy(), a.copy()
    g = np.cos(a)
    m1, v1, m2, v2 = (np.zeros(9) for _ in range(4))
    adam_step(p1, g, m1, v1, 0.01, 0.9, 0.99, 1e-8, 0.0, 3)
    c_m, c_g = adam_coefficients(0.01, 0.9, 3)
    adam_update(p2, g, m2, v2, 0.9, 0.99, 1e-8, 0.0, c_m, c_g, 1 - 0.99 ** 3)
    np.testing.assert_array_equal(p1, p2)


def test_bad_arguments():
    p = np.zeros(4, np.float32)
    with pytest.raises(ValueError, match="step counts from 1"):
        adam_step(p, p.copy(), p.copy(), p.copy(), 1e-3, 0.9, 0.999, 1e-8, 0.0, 0)
    with pytest.raises(ValueError, match="beta2"):
        adam_step(p, p.copy(), p.copy(), p.copy(), 1e-3, 0.9, 1.0, 1e-8, 0.0, 1)
    with pytest.raises(ValueError, match="grad has shape"):
        adam_step(p, np.zeros(5, np.float32), p.copy(), p.copy(), 1e-3, 0.9, 0.999, 1e-8, 0, 1)
    with pytest.raises(ValueError, match="m has shape .* dtype float64"):
        adam_step(p, p.copy(), np.zeros(4), p.copy(), 1e-3, 0.9, 0.999, 1e-8, 0.0, 1)
    with pytest.raises(ValueError, match="impl"):
        adam_step(p, p.copy(), p.copy(), p.copy(), 1e-3, 0.9, 0.999, 1e-8, 0.0, 1, impl="x")


@pytest.mark.parametrize("case", reference.cases("adam"))
def test_against_torch_adam(case):
    """torch.optim.Adam (L2 weight decay), 5 steps, stored by bench/torch_fixtures.py: both
    dtypes, sizes on both sides of SERIAL_MAX."""
    key = f"adam/{case}"
    param = reference.load(f"{key}/param").copy()
    lr, eps, wd = (float(reference.load(f"{key}/{name}")) for name in ("lr", "eps",
                                                                       "weight_decay"))
    b1, b2 = reference.load(f"{key}/betas")
    m, v = np.zeros_like(param), np.zeros_like(param)
    for step, grad in enumerate(reference.load(f"{key}/grads"), start=1):
        adam_step(param, grad, m, v, lr, b1, b2, eps, wd, step)
    tol = TOL[param.dtype.type]
    assert rel_err(param, reference.load(f"{key}/param_out")) < tol
    assert rel_err(m, reference.load(f"{key}/exp_avg")) < tol
    assert rel_err(v, reference.load(f"{key}/exp_avg_sq")) < tol


def test_torch_adam_cases_cover_both_paths():
    sizes = {reference.load(f"adam/{case}/param").size for case in reference.cases("adam")}
    assert min(sizes) <= SERIAL_MAX < max(sizes), (sizes, SERIAL_MAX)


def test_adam_update_against_torch_nadam():
    """torch.optim.NAdam through adam_update's coefficients, stored by bench/torch_fixtures.py."""
    param = reference.load("nadam/param").copy()
    lr, psi = float(reference.load("nadam/lr")), float(reference.load("nadam/momentum_decay"))
    b1, b2 = reference.load("nadam/betas")
    eps = float(reference.load("nadam/eps"))
    m, v = np.zeros_like(param), np.zeros_like(param)
    prod = 1.0
    for t, grad in enumerate(reference.load("nadam/grads"), start=1):
        mu = b1 * (1 - 0.5 * 0.96 ** (t * psi))
        mu_next = b1 * (1 - 0.5 * 0.96 ** ((t + 1) * psi))
        prod *= mu
        c_m, c_g = lr * mu_next / (1 - prod * mu_next), lr * (1 - mu) / (1 - prod)
        adam_update(param, grad, m, v, b1, b2, eps, 0.0, c_m, c_g, 1 - b2 ** t)
    # PyTorch keeps the product of the mu in a float32 scalar: agreement to ~1e-10 only
    assert rel_err(param, reference.load("nadam/param_out")) < 1e-8
