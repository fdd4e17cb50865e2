"""Optimizers and schedules: hand-computed updates, PyTorch parity, state_dict, errors."""
import math

import numpy as np
import pytest

import tinylesion as tl
from tinylesion import optim
from tinylesion.optim import algorithms
from tinylesion.nn import Parameter

import torch_reference as reference

SHAPES = [(3, 5), (7,), (2, 1, 3)]


def make_params(dtype=np.float64, seed=0, shapes=SHAPES):
    rng = np.random.default_rng(seed)
    return [Parameter(rng.standard_normal(s).astype(dtype)) for s in shapes]


def make_grads(n_steps, dtype=np.float64, seed=1, shapes=SHAPES):
    rng = np.random.default_rng(seed)
    return [[rng.standard_normal(s).astype(dtype) for s in shapes] for _ in range(n_steps)]


def run(opt, params, grads):
    """Give each step its gradients, then step."""
    for step_grads in grads:
        for p, g in zip(params, step_grads):
            p.grad = tl.Tensor(g.copy())
        opt.step()
    return [p.array.copy() for p in params]


# ---- hand-computed references, one scalar at a time, from the published formulas -----------
def ref_sgd(x, gs, lr, momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False):
    b = None
    for g in gs:
        g = g + weight_decay * x
        if momentum:
            b = g if b is None else momentum * b + (1 - dampening) * g
            g = g + momentum * b if nesterov else b
        x = x - lr * g
    return x


def ref_adam(x, gs, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, amsgrad=False):
    b1, b2 = betas
    m = v = v_max = 0.0
    for t, g in enumerate(gs, 1):
        g = g + weight_decay * x
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        v_max = max(v_max, v)
        v_hat = (v_max if amsgrad else v) / (1 - b2 ** t)
        x = x - lr * (m / (1 - b1 ** t)) / (math.sqrt(v_hat) + eps)
    return x


def ref_nadam(x, gs, lr=2e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0,
              momentum_decay=4e-3):
    b1, b2 = betas
    m = v = 0.0
    prod = 1.0
    for t, g in enumerate(gs, 1):
        g = g + weight_decay * x
        mu_t = b1 * (1 - 0.5 * 0.96 ** (t * momentum_decay))
        mu_n = b1 * (1 - 0.5 * 0.96 ** ((t + 1) * momentum_decay))
        prod *= mu_t
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        m_hat = mu_n * m / (1 - prod * mu_n) + (1 - mu_t) * g / (1 - prod)
        x = x - lr * m_hat / (math.sqrt(v / (1 - b2 ** t)) + eps)
    return x


def ref_rmsprop(x, gs, lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0.0, momentum=0.0,
                centered=False):
    v = g_avg = b = 0.0
    for g in gs:
        g = g + weight_decay * x
        v = alpha * v + (1 - alpha) * g * g
        v_tilde = v
        if centered:
            g_avg = alpha * g_avg + (1 - alpha) * g
            v_tilde = v - g_avg * g_avg
        if momentum > 0:
            b = momentum * b + g / (math.sqrt(v_tilde) + eps)
            x = x - lr * b
        else:
            x = x - lr * g / (math.sqrt(v_tilde) + eps)
    return x


HAND_CASES = [
    (optim.SGD, ref_sgd, dict(lr=0.1)),
    (optim.SGD, ref_sgd, dict(lr=0.1, momentum=0.9, dampening=0.3, weight_decay=0.01)),
    (optim.SGD, ref_sgd, dict(lr=0.05, momentum=0.8, nesterov=True, weight_decay=0.1)),
    (optim.Adam, ref_adam, dict()),
    (optim.Adam, ref_adam, dict(lr=0.01, betas=(0.8, 0.9), eps=1e-6, weight_decay=0.05)),
    (optim.Adam, ref_adam, dict(lr=0.01, amsgrad=True, weight_decay=0.01)),
    (optim.NAdam, ref_nadam, dict()),
    (optim.NAdam, ref_nadam, dict(lr=0.01, betas=(0.8, 0.95), weight_decay=0.1,
                                  momentum_decay=0.01)),
    (optim.RMSprop, ref_rmsprop, dict()),
    (optim.RMSprop, ref_rmsprop, dict(lr=0.01, alpha=0.9, weight_decay=0.1, momentum=0.5)),
    (optim.RMSprop, ref_rmsprop, dict(lr=0.01, centered=True, momentum=0.9)),
]


@pytest.mark.parametrize("cls, ref, kwargs", HAND_CASES,
                         ids=[f"{c.__name__}-{i}" for i, (c, _, _) in enumerate(HAND_CASES)])
def test_matches_hand_computed_updates(cls, ref, kwargs):
    x0 = np.array([0.5, -1.5, 2.0, 0.0])
    gs = np.array([[0.3, -0.2, 1.0, 0.5], [0.1, 0.4, -2.0, 0.5], [-0.7, 0.2, 0.3, 0.0],
                   [0.5, -0.1, 0.05, -0.5]])
    p = Parameter(x0.copy())
    opt = cls([p], **kwargs)
    (x,) = run(opt, [p], [[g] for g in gs])
    expected = [ref(x0[i], gs[:, i], **kwargs) for i in range(len(x0))]
    np.testing.assert_allclose(x, expected, rtol=1e-12, atol=1e-14)


def test_adam_first_step_moves_by_lr():
    # NOTE: at step 1 the bias corrections make m̂ = g and v̂ = g², so x moves by lr·sign(g).
    p = Parameter(np.array([1.0, 1.0, 1.0]))
    p.grad = tl.Tensor(np.array([3.0, -1e-3, 250.0]))
    optim.Adam([p], lr=0.1, eps=0.0).step()
    np.testing.assert_allclose(p.array, [0.9, 1.1, 0.9], rtol=1e-14)


def test_sgd_plain_step_by_hand_and_in_place():
    p = Parameter(np.array([[1.0, 2.0]], dtype=np.float32))
    data = p.array
    p.grad = tl.Tensor(np.array([[0.5, -1.0]], dtype=np.float32))
    grad_before = p.grad.array.copy()
    optim.SGD([p], lr=0.1, weight_decay=0.5).step()
    assert p.array is data and p.array.dtype == np.float32
    np.testing.assert_allclose(p.array, [[1 - 0.1 * (0.5 + 0.5), 2 - 0.1 * (-1 + 1.0)]],
                               rtol=1e-6)
    np.testing.assert_array_equal(p.grad.array, grad_before)  # weight decay leaves .grad alone


# ---- PyTorch parity -----------------------------------------------------------------------
TORCH_CASES = [
    ("SGD", dict(lr=0.1)),
    ("SGD", dict(lr=0.1, momentum=0.9, dampening=0.2, weight_decay=1e-2)),
    ("SGD", dict(lr=0.1, momentum=0.9, nesterov=True, weight_decay=1e-2)),
    ("Adam", dict()),
    ("Adam", dict(fused=False)),
    ("Adam", dict(lr=0.01, betas=(0.5, 0.9), eps=1e-6, weight_decay=0.1)),
    ("Adam", dict(lr=0.01, betas=(0.5, 0.9), eps=1e-6, weight_decay=0.1, fused=False)),
    ("Adam", dict(lr=0.01, amsgrad=True)),
    ("NAdam", dict()),
    ("NAdam", dict(lr=0.01, betas=(0.8, 0.99), weight_decay=0.1, momentum_decay=0.01)),
    ("NAdam", dict(lr=0.01, betas=(0.8, 0.99), weight_decay=0.1, momentum_decay=0.01,
                   fused=False)),
    ("RMSprop", dict()),
    ("RMSprop", dict(lr=0.01, alpha=0.9, eps=1e-6, weight_decay=0.1, momentum=0.5)),
    ("RMSprop", dict(lr=0.01, centered=True)),
    ("RMSprop", dict(lr=0.01, centered=True, momentum=0.9)),
]


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("name, kwargs", TORCH_CASES,
                         ids=[f"{n}-{i}" for i, (n, _) in enumerate(TORCH_CASES)])
def test_matches_torch(name, kwargs, dtype):
    """6 steps of torch.optim's optimizer on two parameter groups, the second with its own
    learning rate, stored by bench/torch_fixtures.py."""
    t_kwargs = {k: v for k, v in kwargs.items() if k != "fused"}  # ours: kernel or not
    key = f"optim/{name}/{reference.config_key(**t_kwargs)}/{np.dtype(dtype).name}"
    params = [Parameter(reference.load(f"{key}/param{i}").copy()) for i in range(len(SHAPES))]
    grads = list(zip(*(reference.load(f"{key}/grads{i}") for i in range(len(SHAPES)))))
    lr2 = float(reference.load(f"{key}/lr2"))
    opt = getattr(optim, name)([{"params": params[:2]}, {"params": params[2:], "lr": lr2}],
                               **kwargs)
    ours = run(opt, params, grads)
    tol = dict(rtol=1e-12, atol=1e-14) if dtype == np.float64 else dict(rtol=2e-6, atol=1e-6)
    for i, x in enumerate(ours):
        assert x.dtype == dtype
        np.testing.assert_allclose(x, reference.load(f"{key}/out{i}"), **tol)


# ---- the fused kernels and the array expressions agree --------------------------------------
FUSED_CASES = [
    (optim.Adam, "adam_step", dict(lr=0.01, betas=(0.8, 0.99), eps=1e-7, weight_decay=0.05)),
    (optim.NAdam, "adam_update", dict(lr=0.01, betas=(0.8, 0.99), eps=1e-7, weight_decay=0.05)),
]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("cls, kernel, kwargs", FUSED_CASES, ids=["Adam", "NAdam"])
def test_fused_kernel_equals_array_path(cls, kernel, kwargs, dtype):
    if algorithms._fused_kernel(kernel) is None:
        pytest.skip(f"kernels.adam.{kernel} is not available")
    grads = make_grads(5, dtype)
    fused_params, plain_params = make_params(dtype), make_params(dtype)
    fused = run(cls(fused_params, fused=True, **kwargs), fused_params, grads)
    plain = run(cls(plain_params, fused=False, **kwargs), plain_params, grads)
    tol = dict(rtol=1e-12, atol=1e-14) if dtype == np.float64 else dict(rtol=1e-6, atol=1e-7)
    for a, b, x0 in zip(fused, plain, make_params(dtype)):
        assert not np.array_equal(a, x0.array)
        np.testing.assert_allclose(a, b, **tol)


@pytest.mark.parametrize("cls, kernel", [(optim.Adam, "adam_step"), (optim.NAdam, "adam_update")])
def test_kernel_is_used_only_where_it_applies(monkeypatch, cls, kernel):
    if algorithms._fused_kernel(kernel) is None:
        pytest.skip(f"kernels.adam.{kernel} is not available")
    calls = []
    real = algorithms._fused_kernel(kernel)
    monkeypatch.setitem(algorithms._FUSED, kernel,
                        lambda x, *args: calls.append(x.dtype) or real(x, *args))
    p, q = make_params(np.float32, shapes=[(3, 4), (4, 3)])
    q.array = np.asfortranarray(q.array)  # not C-contiguous: the array path
    opt = cls([p, q])
    run(opt, [p, q], make_grads(2, np.float32, shapes=[(3, 4), (4, 3)]))
    assert calls == [np.float32, np.float32]
    cls([p], fused=False).step()
    assert len(calls) == 2


@pytest.mark.parametrize("cls", [optim.Adam, optim.NAdam])
def test_fused_true_without_kernel_is_a_clear_error(monkeypatch, cls):
    monkeypatch.setattr(algorithms, "_FUSED", {"adam_step": None, "adam_update": None})
    with pytest.raises(ValueError, match="fused=True"):
        cls(make_params(), fused=True)


def test_fused_none_without_kernel_uses_the_array_path(monkeypatch):
    monkeypatch.setattr(algorithms, "_FUSED", {"adam_step": None, "adam_update": None})
    p = Parameter(np.array([1.0, 1.0]))
    p.grad = tl.Tensor(np.array([3.0, -2.0]))
    optim.Adam([p], lr=0.1, eps=0.0).step()
    np.testing.assert_allclose(p.array, [0.9, 1.1], rtol=1e-14)


# ---- gradients: None is skipped, zero_grad ---------------------------------------------------
def test_params_without_gradient_are_skipped():
    p, q = make_params(shapes=[(2,), (3,)])
    q_before = q.array.copy()
    opt = optim.Adam([p, q], lr=0.1)
    p.grad = tl.Tensor(np.ones(2))
    opt.step()
    np.testing.assert_array_equal(q.array, q_before)
    assert q not in opt.state and opt.state[p]["step"] == 1


def test_zero_grad():
    p, q = make_params(shapes=[(2,), (3,)])
    opt = optim.SGD([p, q], lr=0.1)
    p.grad = tl.Tensor(np.ones(2))
    opt.zero_grad(set_to_none=False)
    np.testing.assert_array_equal(p.grad.array, [0.0, 0.0])
    assert q.grad is None
    opt.zero_grad()
    assert p.grad is None


def test_step_with_closure_returns_loss():
    (p,) = make_params(shapes=[(2,)])

    def closure():
        p.grad = tl.Tensor(np.ones(2))
        return 1.5

    assert optim.SGD([p], lr=0.1).step(closure) == 1.5


def test_real_backward_trains_a_linear_layer():
    tl.manual_seed(0)
    model = tl.nn.Linear(3, 1)
    x = tl.Tensor(np.random.default_rng(0).standard_normal((16, 3)).astype(np.float32))
    y = tl.Tensor(x.array @ np.array([[1.0], [-2.0], [0.5]], dtype=np.float32))
    opt = optim.SGD(model.parameters(), lr=0.1, momentum=0.5)
    losses = []
    for _ in range(30):
        opt.zero_grad()
        loss = ((model(x) - y) ** 2).mean()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 1e-3 * losses[0]


# ---- bad arguments -------------------------------------------------------------------------
@pytest.mark.parametrize("make, name", [
    (lambda ps: optim.SGD(ps, lr=-0.1), "lr"),
    (lambda ps: optim.SGD(ps, lr=0.1, momentum=-1), "momentum"),
    (lambda ps: optim.SGD(ps, lr=0.1, weight_decay=-1), "weight_decay"),
    (lambda ps: optim.SGD(ps, lr=0.1, nesterov=True), "Nesterov"),
    (lambda ps: optim.SGD(ps, lr=0.1, momentum=0.9, dampening=0.1, nesterov=True), "Nesterov"),
    (lambda ps: optim.Adam(ps, lr=-1e-3), "lr"),
    (lambda ps: optim.Adam(ps, betas=(1.0, 0.999)), r"betas\[0\]"),
    (lambda ps: optim.Adam(ps, betas=(0.9, -0.1)), r"betas\[1\]"),
    (lambda ps: optim.Adam(ps, betas=0.9), "betas"),
    (lambda ps: optim.Adam(ps, eps=-1.0), "eps"),
    (lambda ps: optim.Adam(ps, weight_decay=-1.0), "weight_decay"),
    (lambda ps: optim.NAdam(ps, betas=(0.9, 1.5)), r"betas\[1\]"),
    (lambda ps: optim.NAdam(ps, momentum_decay=-1), "momentum_decay"),
    (lambda ps: optim.RMSprop(ps, alpha=-0.5), "alpha"),
    (lambda ps: optim.RMSprop(ps, lr=-0.5), "lr"),
    (lambda ps: optim.SGD([{"params": ps[:1]}, {"params": ps[1:], "lr": -1}], lr=0.1), "lr"),
    (lambda ps: optim.SGD([{"params": ps, "betas": (0.9, 0.9)}], lr=0.1), "betas"),
    (lambda ps: optim.SGD([], lr=0.1), "empty parameter list"),
    (lambda ps: optim.SGD([ps[0], ps[0]], lr=0.1), "twice"),
    (lambda ps: optim.SGD([{"params": ps[:2]}, {"params": ps[1:]}], lr=0.1),
     "more than one parameter group"),
])
def test_bad_hyper_parameters_raise_value_error_naming_them(make, name):
    with pytest.raises(ValueError, match=name):
        make(make_params())


def test_bad_params_raise_type_error():
    p = make_params()[0]
    with pytest.raises(TypeError, match="iterable of Tensors"):
        optim.SGD(p, lr=0.1)
    with pytest.raises(TypeError, match="only optimize Tensors"):
        optim.SGD([np.zeros(3)], lr=0.1)
    with pytest.raises(TypeError, match="ordered"):
        optim.SGD({p}, lr=0.1)


def test_gradient_of_the_wrong_shape_is_named():
    p, q = make_params(shapes=[(2,), (3,)])
    with pytest.raises(RuntimeError, match=r"gradient's shape is \(4,\), the tensor's \(3,\)"):
        q.grad = tl.Tensor(np.ones(4, q.dtype))
    q.grad = tl.Tensor(np.ones(3, q.dtype))
    q.grad.data = tl.Tensor(np.ones(4, q.dtype))   # what t.grad = refuses, reached another way
    with pytest.raises(ValueError, match=r"parameter 1 has shape \(4,\)"):
        optim.SGD([p, q], lr=0.1).step()


# ---- state_dict ---------------------------------------------------------------------------
RESUME_CASES = [
    (optim.SGD, dict(lr=0.1, momentum=0.9, nesterov=True)),
    (optim.Adam, dict(lr=0.01, weight_decay=0.1)),
    (optim.Adam, dict(lr=0.01, amsgrad=True)),
    (optim.NAdam, dict(lr=0.01)),
    (optim.RMSprop, dict(lr=0.01, centered=True, momentum=0.5)),
]


@pytest.mark.parametrize("cls, kwargs", RESUME_CASES,
                         ids=[f"{c.__name__}-{i}" for i, (c, _) in enumerate(RESUME_CASES)])
def test_state_dict_resumes_exactly(cls, kwargs):
    grads = make_grads(6)
    params = make_params()
    opt = cls([{"params": params[:1], "lr": 0.2}, {"params": params[1:]}], **kwargs)
    run(opt, params, grads[:3])
    sd = opt.state_dict()
    assert sorted(sd["state"]) == [0, 1, 2]
    assert [g["params"] for g in sd["param_groups"]] == [[0], [1, 2]]
    assert sd["param_groups"][0]["lr"] == 0.2

    resumed = make_params(seed=5)
    for p, q in zip(resumed, params):
        p.array[...] = q.array
    opt2 = cls([{"params": resumed[:1]}, {"params": resumed[1:]}], **kwargs)
    opt2.load_state_dict(sd)
    assert opt2.param_groups[0]["lr"] == 0.2
    for p, p2 in zip(params, resumed):  # copies, not shared with the other optimizer
        for name, value in opt2.state[p2].items():
            if isinstance(value, np.ndarray):
                assert value is not opt.state[p][name]
    for a, b in zip(run(opt, params, grads[3:]), run(opt2, resumed, grads[3:])):
        np.testing.assert_array_equal(a, b)


def test_load_state_dict_casts_to_the_parameter_dtype():
    params32 = make_params(np.float32)
    opt = optim.Adam(make_params(np.float64), lr=0.01)
    run(opt, opt.param_groups[0]["params"], make_grads(1))
    opt32 = optim.Adam(params32, lr=0.01)
    opt32.load_state_dict(opt.state_dict())
    assert all(s["exp_avg"].dtype == np.float32 for s in opt32.state.values())


def test_load_state_dict_accepts_string_indices_and_list_betas():
    params = make_params()
    opt = optim.Adam(params, betas=(0.8, 0.9))
    run(opt, params, make_grads(2))
    sd = opt.state_dict()
    sd = {"state": {str(k): v for k, v in sd["state"].items()},
          "param_groups": [dict(g, betas=list(g["betas"])) for g in sd["param_groups"]]}
    opt2 = optim.Adam(params)
    opt2.load_state_dict(sd)
    assert opt2.param_groups[0]["betas"] == (0.8, 0.9)
    assert opt2.state[params[2]]["step"] == 2


def _trained_adam_state():
    params = make_params()
    opt = optim.Adam([{"params": params[:2]}, {"params": params[2:]}], lr=0.01)
    run(opt, params, make_grads(2))
    return opt.state_dict()


@pytest.mark.parametrize("corrupt, message", [
    (lambda sd: sd["param_groups"].pop(), "1 parameter groups, the optimizer has 2"),
    (lambda sd: sd["param_groups"][0]["params"].pop(), "group 0 has 1 parameters"),
    (lambda sd: sd["state"][1].update(exp_avg=np.zeros((7, 1))),
     r"parameter 1: state 'exp_avg' has shape \(7, 1\), the parameter has shape \(7,\)"),
    (lambda sd: sd["state"][0].pop("exp_avg_sq"), r"missing \['exp_avg_sq'\]"),
    (lambda sd: sd["state"][0].update(momentum_buffer=np.zeros((3, 5))),
     r"unexpected \['momentum_buffer'\]"),
    (lambda sd: sd["state"].update({9: {}}), "state for parameter 9"),
    (lambda sd: sd["param_groups"][1].pop("eps"), r"lacks hyper-parameters \['eps'\]"),
    (lambda sd: sd["param_groups"][1].update(lr=-1.0), "lr"),
    (lambda sd: sd.pop("state"), "'state' and 'param_groups'"),
])
def test_load_state_dict_errors_name_the_mismatch(corrupt, message):
    sd = _trained_adam_state()
    corrupt(sd)
    params = make_params()
    opt = optim.Adam([{"params": params[:2]}, {"params": params[2:]}], lr=0.5)
    with pytest.raises(ValueError, match=message):
        opt.load_state_dict(sd)
    assert opt.param_groups[0]["lr"] == 0.5 and not opt.state  # nothing changed


def test_loading_sgd_state_into_adam_is_refused():
    params = make_params()
    sgd = optim.SGD(params, lr=0.1, momentum=0.9)
    run(sgd, params, make_grads(1))
    with pytest.raises(ValueError, match="lacks hyper-parameters"):
        optim.Adam(params).load_state_dict(sgd.state_dict())


# ---- learning-rate schedules -------------------------------------------------------------
def test_reduce_lr_on_plateau_by_hand():
    opt = optim.SGD(make_params(), lr=1.0)
    sched = optim.ReduceLROnPlateau(opt, patience=2, factor=0.5, cooldown=1, min_lr=0.2)
    lrs = []
    for metric in [1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5]:
        sched.step(metric)
        lrs.append(opt.param_groups[0]["lr"])
    # epoch 1 sets best; 2, 3, 4 are bad → halve at 4; 5 is cooldown; 6, 7 bad but 8 improves;
    # 9, 10, 11 bad → 0.25 at 11; cooldown 12; 13, 14 bad; min_lr floors later cuts at 0.2
    assert lrs == [1.0, 1.0, 1.0, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.25, 0.25, 0.25, 0.25]
    assert sched.get_last_lr() == [0.25]


def test_reduce_lr_on_plateau_respects_min_lr_and_eps():
    opt = optim.SGD(make_params(), lr=1e-3)
    sched = optim.ReduceLROnPlateau(opt, patience=0, factor=0.5, min_lr=4e-4)
    for metric in [3.0, 3.0, 3.0, 3.0]:
        sched.step(tl.Tensor(np.float64(metric)))
    assert opt.param_groups[0]["lr"] == 4e-4
    opt.param_groups[0]["lr"] = 1e-9
    sched.step(3.0)
    assert opt.param_groups[0]["lr"] == 1e-9  # a change below eps is skipped


PLATEAU_CASES = [
    dict(),
    dict(mode="max", factor=0.5, patience=1, threshold=0.05),
    dict(mode="min", threshold_mode="abs", threshold=0.1, patience=0, cooldown=2),
    dict(mode="max", threshold_mode="abs", patience=2, min_lr=[1e-3, 1e-2], factor=0.3),
]


@pytest.mark.parametrize("kwargs", PLATEAU_CASES)
def test_reduce_lr_on_plateau_matches_torch(kwargs):
    """torch.optim.lr_scheduler.ReduceLROnPlateau's learning rates, bad-epoch counts and best
    metric after each of 40 epochs, stored by bench/torch_fixtures.py."""
    key = f"plateau/{reference.config_key(**kwargs)}"
    params = make_params()
    opt = optim.SGD([{"params": params[:1]}, {"params": params[1:], "lr": 0.5}], lr=0.1)
    sched = optim.ReduceLROnPlateau(opt, **kwargs)
    lrs, bad, best = (reference.load(f"{key}/{name}").tolist()
                      for name in ("lrs", "num_bad_epochs", "best"))
    for epoch, metric in enumerate(reference.load(f"{key}/metrics")):
        sched.step(float(metric))
        assert [g["lr"] for g in opt.param_groups] == lrs[epoch], epoch
        assert sched.num_bad_epochs == bad[epoch], epoch
        assert sched.best == best[epoch], epoch


def test_reduce_lr_on_plateau_state_dict_round_trip():
    metrics = [5, 4, 4, 4, 4, 3, 3, 3, 3, 3, 3, 2]
    opt = optim.SGD(make_params(), lr=1.0)
    sched = optim.ReduceLROnPlateau(opt, patience=1, cooldown=1)
    for metric in metrics[:6]:
        sched.step(metric)
    sd = sched.state_dict()
    opt2 = optim.SGD(make_params(), lr=1.0)
    opt2.load_state_dict(opt.state_dict())
    sched2 = optim.ReduceLROnPlateau(opt2)
    sched2.load_state_dict(sd)
    for metric in metrics[6:]:
        sched.step(metric)
        sched2.step(metric)
        assert opt.param_groups[0]["lr"] == opt2.param_groups[0]["lr"]
    assert sched.state_dict() == sched2.state_dict()
    with pytest.raises(ValueError, match=r"missing entries \['best'\]"):
        sched2.load_state_dict({k: v for k, v in sd.items() if k != "best"})


@pytest.mark.parametrize("make, message", [
    (lambda opt: optim.ReduceLROnPlateau(opt, factor=1.0), "factor"),
    (lambda opt: optim.ReduceLROnPlateau(opt, mode="up"), "mode"),
    (lambda opt: optim.ReduceLROnPlateau(opt, threshold_mode="pct"), "threshold_mode"),
    (lambda opt: optim.ReduceLROnPlateau(opt, min_lr=[0.1, 0.2]), "expected 1 min_lrs"),
    (lambda opt: optim.ReduceLROnPlateau(opt, patience=-1), "patience"),
    (lambda opt: optim.StepLR(opt, step_size=0), "step_size"),
    (lambda opt: optim.CosineAnnealingLR(opt, T_max=0), "T_max"),
])
def test_bad_schedule_arguments(make, message):
    with pytest.raises(ValueError, match=message):
        make(optim.SGD(make_params(), lr=0.1))
    with pytest.raises(TypeError, match="not an Optimizer"):
        optim.ReduceLROnPlateau(object())


def test_step_lr_by_hand():
    opt = optim.SGD(make_params(), lr=1.0)
    sched = optim.StepLR(opt, step_size=2, gamma=0.5)
    lrs = [opt.param_groups[0]["lr"]]
    for _ in range(5):
        sched.step()
        lrs.append(opt.param_groups[0]["lr"])
    assert lrs == [1.0, 1.0, 0.5, 0.5, 0.25, 0.25]


def test_cosine_annealing_by_hand():
    opt = optim.SGD(make_params(), lr=1.0)
    sched = optim.CosineAnnealingLR(opt, T_max=4, eta_min=0.2)
    lrs = []
    for _ in range(4):
        sched.step()
        lrs.append(opt.param_groups[0]["lr"])
    expected = [0.2 + 0.8 * (1 + math.cos(math.pi * t / 4)) / 2 for t in range(1, 5)]
    np.testing.assert_allclose(lrs, expected, rtol=1e-12)


@pytest.mark.parametrize("name, kwargs", [("StepLR", dict(step_size=3, gamma=0.3)),
                                          ("CosineAnnealingLR", dict(T_max=7, eta_min=1e-3))])
def test_epoch_schedules_match_torch(name, kwargs):
    """torch.optim.lr_scheduler's get_last_lr() over 25 epochs, stored by
    bench/torch_fixtures.py."""
    expected = reference.load(f"schedules/{name}/{reference.config_key(**kwargs)}/last_lr")
    params = make_params()
    opt = optim.SGD([{"params": params[:1]}, {"params": params[1:], "lr": 0.5}], lr=0.1)
    sched = getattr(optim, name)(opt, **kwargs)
    for epoch in range(25):
        np.testing.assert_allclose(sched.get_last_lr(), expected[epoch], rtol=1e-12)
        sched.step()
    np.testing.assert_allclose(sched.get_last_lr(), expected[25], rtol=1e-12)
    state = sched.state_dict()
    assert state["last_epoch"] == 25 and "optimizer" not in state


def test_epoch_schedule_resumes_through_save_and_load(tmp_path):
    params = make_params()
    opt = optim.SGD(params, lr=1.0, momentum=0.9)
    sched = optim.CosineAnnealingLR(opt, T_max=6, eta_min=0.1)
    for _ in range(3):
        sched.step()
    tl.save({"optimizer": opt.state_dict(), "scheduler": sched.state_dict()}, tmp_path / "c")
    expected = []
    for _ in range(5):
        sched.step()
        expected.append(opt.param_groups[0]["lr"])

    checkpoint = tl.load(tmp_path / "c")
    opt2 = optim.SGD(make_params(), lr=1.0, momentum=0.9)
    opt2.load_state_dict(checkpoint["optimizer"])
    assert opt2.param_groups[0]["initial_lr"] == 1.0
    sched2 = optim.CosineAnnealingLR(opt2, T_max=6, eta_min=0.1, last_epoch=2)
    sched2.load_state_dict(checkpoint["scheduler"])
    resumed = []
    for _ in range(5):
        sched2.step()
        resumed.append(opt2.param_groups[0]["lr"])
    assert resumed == expected


def test_add_param_group_after_construction():
    p, q = make_params(shapes=[(2,), (3,)])
    opt = optim.Adam([p], lr=0.1)
    opt.add_param_group({"params": q, "lr": 0.01})
    assert opt.param_groups[1]["lr"] == 0.01 and opt.param_groups[1]["betas"] == (0.9, 0.999)
    with pytest.raises(ValueError, match="more than one parameter group"):
        opt.add_param_group({"params": [p]})


# ---- PyTorch's other options, and hyper-parameters changed between steps ---------------------
# the stored cases, and tinylesion's unfused kernels of the decoupled-weight-decay ones
MORE_TORCH_CASES = reference.OPTIM_MORE_CASES + [
    (name, {**kwargs, "fused": False}) for name, kwargs in reference.OPTIM_MORE_CASES
    if kwargs.get("decoupled_weight_decay")]
LR_CHANGE_CASES, LR_CHANGE = reference.LR_CHANGE_CASES, reference.LR_CHANGE


def _against_torch(prefix, name, kwargs, dtype, change=None):
    t_kwargs = {k: v for k, v in kwargs.items() if k != "fused"}
    key = f"{prefix}/{name}/{reference.config_key(**t_kwargs)}/{np.dtype(dtype).name}"
    params, grads = make_params(dtype), make_grads(6, dtype)
    lr2 = float(reference.load(f"{key}/lr2"))
    opt = getattr(optim, name)([{"params": params[:2]}, {"params": params[2:], "lr": lr2}],
                               **kwargs)
    for step, step_grads in enumerate(grads):
        if change is not None and step == change["at"]:
            opt.param_groups[0]["lr"] *= change["factor"]
            for group in opt.param_groups:
                group["weight_decay"] = change["weight_decay"]
        run(opt, params, [step_grads])
    tol = dict(rtol=1e-12, atol=1e-14) if dtype == np.float64 else dict(rtol=2e-6, atol=1e-6)
    for i, p in enumerate(params):
        assert p.array.dtype == dtype
        np.testing.assert_allclose(p.array, reference.load(f"{key}/out{i}"), **tol)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("name, kwargs", MORE_TORCH_CASES,
                         ids=[f"{n}-{i}" for i, (n, _) in enumerate(MORE_TORCH_CASES)])
def test_more_options_match_torch(name, kwargs, dtype):
    """maximize, decoupled_weight_decay and AdamW against torch.optim (6 steps, two groups)."""
    _against_torch("optim", name, kwargs, dtype)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("name, kwargs", LR_CHANGE_CASES,
                         ids=[n for n, _ in LR_CHANGE_CASES])
def test_changing_param_groups_between_steps_matches_torch(name, kwargs, dtype):
    """param_groups[0]["lr"] halved and every weight_decay changed after 3 of 6 steps."""
    _against_torch("optim_lr_change", name, kwargs, dtype, LR_CHANGE)


def test_checkpoints_without_the_new_flags_still_load():
    params = make_params()
    opt = optim.Adam(params, lr=0.01)
    run(opt, params, make_grads(2))
    state = opt.state_dict()
    for group in state["param_groups"]:
        del group["maximize"], group["decoupled_weight_decay"]
    fresh = optim.Adam(params, lr=0.01)
    fresh.load_state_dict(state)
    assert fresh.param_groups[0]["maximize"] is False


PLATEAU_MORE_CASES = reference.PLATEAU_MORE_CASES


@pytest.mark.parametrize("kwargs", PLATEAU_MORE_CASES)
def test_reduce_lr_on_plateau_other_arguments_match_torch(kwargs):
    """threshold, threshold_mode, cooldown, min_lr (one or per group) and eps, 60 epochs."""
    key = f"plateau_more/{reference.config_key(**kwargs)}"
    params = make_params()
    opt = optim.SGD([{"params": params[:1]}, {"params": params[1:], "lr": 0.5}], lr=0.1)
    sched = optim.ReduceLROnPlateau(opt, **kwargs)
    lrs = reference.load(f"{key}/lrs").tolist()
    for epoch, metric in enumerate(reference.load(f"{key}/metrics")):
        sched.step(tl.Tensor(np.array(metric)) if epoch % 2 else float(metric))
        assert [g["lr"] for g in opt.param_groups] == lrs[epoch], epoch
        assert sched.get_last_lr() == lrs[epoch]


def test_optimizer_takes_named_parameters_as_pytorch():
    import tinylesion.nn as nn
    model = nn.Linear(3, 2)
    optimizer = optim.Adam(model.named_parameters(), lr=0.1)
    assert optimizer.param_groups[0]["param_names"] == ["weight", "bias"]
    assert all(p is q for p, q in zip(optimizer.param_groups[0]["params"],
                                      [model.weight, model.bias]))
    model(tl.Tensor(np.ones((1, 3), np.float32))).sum().backward()
    before = model.weight.numpy().copy()
    optimizer.step()
    assert not np.allclose(before, model.weight.numpy())
    again = optim.Adam(model.named_parameters())
    again.load_state_dict(optimizer.state_dict())
    assert again.param_groups[0]["lr"] == 0.1
