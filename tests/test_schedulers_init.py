"""Learning-rate schedules against the formulas of PyTorch's docs; nn.init's distributions."""
import math

import numpy as np
import pytest

import tinylesion as tl
from tinylesion import nn, optim
from tinylesion.nn import Parameter, init


def two_groups(cls=optim.SGD, **kwargs):
    """An optimizer with two groups: lr 0.1 and lr 0.5."""
    p, q = Parameter(np.zeros(2)), Parameter(np.zeros(3))
    return cls([{"params": [p]}, {"params": [q], "lr": 0.5}], lr=0.1, **kwargs)


def lr_sequence(sched, n):
    """get_last_lr() before each of n steps and after the last: n + 1 rows."""
    rows = []
    for _ in range(n):
        rows.append(sched.get_last_lr())
        sched.step()
    rows.append(sched.get_last_lr())
    return np.array(rows)


def expected_rows(n, formula, bases=(0.1, 0.5)):
    return np.array([[formula(base, t) for base in bases] for t in range(n + 1)])


# ---- schedules: many steps against the closed forms ------------------------------------------
def test_multistep_lr_counts_each_milestone_passed():
    milestones = [3, 7, 7, 20]
    sched = optim.MultiStepLR(two_groups(), milestones, gamma=0.3)
    got = lr_sequence(sched, 40)
    want = expected_rows(40, lambda base, t: base * 0.3 ** sum(m <= t for m in milestones))
    np.testing.assert_allclose(got, want, rtol=1e-13)


def test_exponential_lr_over_200_epochs():
    got = lr_sequence(optim.ExponentialLR(two_groups(), gamma=0.93), 200)
    np.testing.assert_allclose(got, expected_rows(200, lambda base, t: base * 0.93 ** t),
                               rtol=1e-13)


def test_lambda_lr_one_function_or_one_per_group():
    got = lr_sequence(optim.LambdaLR(two_groups(), lambda e: 0.95 ** e), 50)
    np.testing.assert_allclose(got, expected_rows(50, lambda base, t: base * 0.95 ** t),
                               rtol=1e-15)
    sched = optim.LambdaLR(two_groups(), [lambda e: 1 / (e + 1), lambda e: e % 3])
    got = lr_sequence(sched, 20)
    np.testing.assert_allclose(got[:, 0], [0.1 / (t + 1) for t in range(21)], rtol=1e-15)
    np.testing.assert_allclose(got[:, 1], [0.5 * (t % 3) for t in range(21)], rtol=1e-15)
    with pytest.raises(ValueError, match="one value per parameter group: expected 2, got 1"):
        optim.LambdaLR(two_groups(), [lambda e: 1.0])
    with pytest.raises(TypeError, match="lr_lambda should be a function"):
        optim.LambdaLR(two_groups(), 0.5)


def test_multiplicative_lr():
    got = lr_sequence(optim.MultiplicativeLR(two_groups(), lambda e: 0.97), 100)
    np.testing.assert_allclose(got, expected_rows(100, lambda base, t: base * 0.97 ** t),
                               rtol=1e-13)


def test_constant_and_linear_lr():
    got = lr_sequence(optim.ConstantLR(two_groups(), factor=0.25, total_iters=7), 30)
    np.testing.assert_allclose(got, expected_rows(30, lambda b, t: b * (0.25 if t < 7 else 1)),
                               rtol=1e-15)
    got = lr_sequence(optim.LinearLR(two_groups(), 0.1, 0.9, total_iters=13), 30)
    want = expected_rows(30, lambda b, t: b * (0.1 + 0.8 * min(t, 13) / 13))
    np.testing.assert_allclose(got, want, rtol=1e-13)


def test_sequential_lr_warmup_then_cosine():
    opt = two_groups()
    warmup = optim.LinearLR(opt, start_factor=0.1, end_factor=1.0, total_iters=5)
    cosine = optim.CosineAnnealingLR(opt, T_max=20, eta_min=1e-3)
    got = lr_sequence(optim.SequentialLR(opt, [warmup, cosine], milestones=[5]), 40)

    def formula(base, t):
        if t < 5:
            return base * (0.1 + 0.9 * t / 5)
        return 1e-3 + (base - 1e-3) * (1 + math.cos(math.pi * (t - 5) / 20)) / 2
    np.testing.assert_allclose(got, expected_rows(40, formula), rtol=1e-12)


def test_cosine_annealing_warm_restarts_doubling_periods():
    got = lr_sequence(optim.CosineAnnealingWarmRestarts(two_groups(), T_0=5, T_mult=2,
                                                        eta_min=1e-4), 100)

    def formula(base, t):
        T_i = 5
        while t >= T_i:  # restarts after 5, 10, 20, 40 more epochs
            t, T_i = t - T_i, 2 * T_i
        return 1e-4 + (base - 1e-4) * (1 + math.cos(math.pi * t / T_i)) / 2
    np.testing.assert_allclose(got, expected_rows(100, formula), rtol=1e-12)


def test_cosine_annealing_warm_restarts_fractional_epochs():
    sched = optim.CosineAnnealingWarmRestarts(two_groups(), T_0=4, T_mult=1)
    for epoch in (0.5, 3.25, 6.0, 9.5):
        sched.step(epoch)
        t = epoch % 4
        np.testing.assert_allclose(sched.get_last_lr()[1], 0.5 * (1 + math.cos(math.pi * t / 4))
                                   / 2, rtol=1e-13)
        assert sched.last_epoch == math.floor(epoch)
    with pytest.raises(ValueError, match="non-negative epoch"):
        sched.step(-1)


def one_cycle_formula(total, pct, max_lr, div=25.0, final_div=1e4):
    """PyTorch's docs: cosine from max_lr/div up to max_lr over pct·total − 1 steps, then down
    to max_lr/div/final_div at step total − 1."""
    initial, up = max_lr / div, pct * total - 1

    def cos_anneal(start, end, frac):
        return end + (start - end) / 2 * (1 + math.cos(math.pi * frac))

    def lr(t):
        if t <= up:
            return cos_anneal(initial, max_lr, t / up)
        return cos_anneal(max_lr, initial / final_div, (t - up) / (total - 1 - up))
    return lr


def test_one_cycle_lr_cos_and_its_end():
    opt = two_groups()
    sched = optim.OneCycleLR(opt, max_lr=[1.0, 2.0], total_steps=100, cycle_momentum=False)
    got = lr_sequence(sched, 99)
    for column, max_lr in enumerate([1.0, 2.0]):
        formula = one_cycle_formula(100, 0.3, max_lr)
        np.testing.assert_allclose(got[:, column], [formula(t) for t in range(100)],
                                   rtol=1e-12)
    np.testing.assert_allclose([got[0, 0], got[-1, 1]], [1.0 / 25, 2.0 / 25 / 1e4], rtol=1e-14)
    sched.step()  # last_epoch == total_steps is still allowed, as in PyTorch
    with pytest.raises(ValueError, match="Tried to step 101 times. The specified number of "
                                         "total steps is 100"):
        sched.step()


def test_one_cycle_lr_linear_three_phase_from_epochs():
    sched = optim.OneCycleLR(two_groups(), max_lr=0.01, epochs=5, steps_per_epoch=20,
                             pct_start=0.25, anneal_strategy="linear", three_phase=True)
    got = lr_sequence(sched, 99)[:, 0]
    lo, hi = 0.01 / 25, 0.01
    want = [lo + (hi - lo) * t / 24 if t <= 24 else
            hi + (lo - hi) * (t - 24) / 24 if t <= 48 else
            lo + (lo / 1e4 - lo) * (t - 48) / 51 for t in range(100)]
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-18)


@pytest.mark.parametrize("cls, kwargs, read", [
    (optim.SGD, dict(momentum=0.9), lambda g: g["momentum"]),
    (optim.Adam, {}, lambda g: g["betas"][0]),
])
def test_one_cycle_lr_cycles_momentum_or_beta1_against_the_lr(cls, kwargs, read):
    opt = two_groups(cls, **kwargs)
    sched = optim.OneCycleLR(opt, max_lr=0.1, total_steps=50)
    momenta = []
    for _ in range(49):
        momenta.append(read(opt.param_groups[0]))
        sched.step()
    momenta.append(read(opt.param_groups[0]))
    # NOTE: momentum anneals max → base while the lr rises, then base → max.
    def cos_anneal(start, end, frac):
        return end + (start - end) / 2 * (1 + math.cos(math.pi * frac))
    want = [cos_anneal(0.95, 0.85, t / 14) if t <= 14 else cos_anneal(0.85, 0.95, (t - 14) / 35)
            for t in range(50)]
    np.testing.assert_allclose(momenta, want, rtol=1e-13)
    if cls is optim.Adam:
        assert opt.param_groups[0]["betas"][1] == 0.999


def test_one_cycle_lr_argument_errors():
    with pytest.raises(ValueError, match="total_steps, or epochs and steps_per_epoch"):
        optim.OneCycleLR(two_groups(), max_lr=1.0)
    with pytest.raises(ValueError, match="total_steps=0"):
        optim.OneCycleLR(two_groups(), max_lr=1.0, total_steps=0)
    with pytest.raises(ValueError, match="steps_per_epoch=2.5"):
        optim.OneCycleLR(two_groups(), max_lr=1.0, epochs=3, steps_per_epoch=2.5)
    with pytest.raises(ValueError, match="pct_start"):
        optim.OneCycleLR(two_groups(), max_lr=1.0, total_steps=10, pct_start=1.5)
    with pytest.raises(ValueError, match="anneal_strategy"):
        optim.OneCycleLR(two_groups(), max_lr=1.0, total_steps=10, anneal_strategy="exp")
    with pytest.raises(ValueError, match="max_lr must have one value per parameter group"):
        optim.OneCycleLR(two_groups(), max_lr=[1.0], total_steps=10)


@pytest.mark.parametrize("make, message", [
    (lambda opt: optim.MultiStepLR(opt, [2.5]), "milestones"),
    (lambda opt: optim.ConstantLR(opt, factor=2.0), "factor"),
    (lambda opt: optim.LinearLR(opt, start_factor=0.0), "start_factor"),
    (lambda opt: optim.LinearLR(opt, end_factor=1.5), "end_factor"),
    (lambda opt: optim.CosineAnnealingWarmRestarts(opt, T_0=0), "T_0"),
    (lambda opt: optim.CosineAnnealingWarmRestarts(opt, T_0=2, T_mult=1.5), "T_mult"),
    (lambda opt: optim.SequentialLR(opt, [], []), "at least one scheduler"),
    (lambda opt: optim.SequentialLR(opt, [optim.ExponentialLR(opt, 0.9)] * 2, []),
     "one milestone fewer"),
    (lambda opt: optim.SequentialLR(opt, [optim.ExponentialLR(two_groups(), 0.9)], []),
     "same optimizer"),
    (lambda opt: optim.SequentialLR(opt, [optim.ReduceLROnPlateau(opt)], []),
     "ReduceLROnPlateau"),
])
def test_bad_schedule_arguments_are_named(make, message):
    with pytest.raises(ValueError, match=message):
        make(two_groups())


# ---- state_dict: a schedule stopped mid-way resumes exactly ----------------------------------
class Decay:
    """A callable object: its attributes are saved in LambdaLR's state_dict."""

    def __init__(self, rate):
        self.rate = rate

    def __call__(self, epoch):
        return self.rate ** epoch


SCHEDULES = {
    "MultiStepLR": lambda opt: optim.MultiStepLR(opt, [2, 5, 5, 9], gamma=0.5),
    "ExponentialLR": lambda opt: optim.ExponentialLR(opt, gamma=0.9),
    "LambdaLR": lambda opt: optim.LambdaLR(opt, [Decay(0.9), lambda e: 1 / (e + 1)]),
    "MultiplicativeLR": lambda opt: optim.MultiplicativeLR(opt, Decay(0.8)),
    "LinearLR": lambda opt: optim.LinearLR(opt, 0.2, 1.0, total_iters=6),
    "SequentialLR": lambda opt: optim.SequentialLR(
        opt, [optim.ConstantLR(opt, 0.5, 3), optim.CosineAnnealingLR(opt, T_max=8)], [4]),
    "CosineAnnealingWarmRestarts": lambda opt: optim.CosineAnnealingWarmRestarts(opt, 3, 2),
    "OneCycleLR": lambda opt: optim.OneCycleLR(opt, max_lr=[0.2, 0.4], total_steps=16),
}


@pytest.mark.parametrize("name", sorted(SCHEDULES))
def test_state_dict_round_trip_mid_schedule(name, tmp_path):
    make = SCHEDULES[name]
    opt = two_groups(optim.Adam)
    sched = make(opt)
    if name == "LambdaLR":
        sched.lr_lambdas[0].rate = 0.7  # changed after construction: the state_dict keeps it
    for _ in range(5):
        sched.step()
    tl.save({"optimizer": opt.state_dict(), "scheduler": sched.state_dict()}, tmp_path / "c")
    expected = lr_sequence(sched, 10)
    betas = opt.param_groups[0]["betas"]

    checkpoint = tl.load(tmp_path / "c")
    opt2 = two_groups(optim.Adam)  # built as at the start of a run, then both states loaded
    sched2 = make(opt2)
    opt2.load_state_dict(checkpoint["optimizer"])
    sched2.load_state_dict(checkpoint["scheduler"])
    np.testing.assert_array_equal(lr_sequence(sched2, 10), expected)
    assert opt2.param_groups[0]["betas"] == betas


def test_load_state_dict_names_a_wrong_entry():
    sched = optim.ExponentialLR(two_groups(), 0.9)
    state = sched.state_dict()
    del state["gamma"]
    with pytest.raises(ValueError, match=r"missing entries \['gamma'\]"):
        sched.load_state_dict(state)


# ---- nn.init ---------------------------------------------------------------------------------
def param(shape, dtype=np.float32, device="cpu"):
    return Parameter(tl.Tensor(np.zeros(shape, dtype), device=device).array)


def test_uniform_normal_constant_on_large_tensors(device):
    tl.manual_seed(0)
    w = param((400, 500), device=device)
    assert init.uniform_(w, -3.0, 5.0) is w
    x = w.numpy()
    assert x.dtype == np.float32 and x.min() >= -3 and x.max() <= 5
    assert abs(x.mean() - 1.0) < 0.02 and abs(x.std() - 8 / math.sqrt(12)) < 0.01
    x = init.normal_(w, mean=2.0, std=0.5).numpy()
    assert abs(x.mean() - 2.0) < 0.005 and abs(x.std() - 0.5) < 0.005
    assert np.all(init.constant_(w, 0.25).numpy() == 0.25)
    assert np.all(init.ones_(w).numpy() == 1) and np.all(init.zeros_(w).numpy() == 0)
    assert w.requires_grad and w.grad is None


def test_trunc_normal_stays_in_bounds_with_the_truncated_std():
    tl.manual_seed(1)
    w = init.trunc_normal_(param((200_000,), np.float64))
    x = w.numpy()
    assert x.min() >= -2 and x.max() <= 2 and abs(x.mean()) < 0.01
    # NOTE: the variance of N(0, 1) cut to [−2, 2] is 1 − 2·2·φ(2) / (Φ(2) − Φ(−2)).
    phi2 = math.exp(-2) / math.sqrt(2 * math.pi)
    mass = math.erf(2 / math.sqrt(2))
    assert abs(x.std() - math.sqrt(1 - 4 * phi2 / mass)) < 0.005
    # an interval far in the tail takes the uniform-proposal path
    with pytest.warns(UserWarning, match="more than 2 std"):
        x = init.trunc_normal_(param((50_000,)), mean=0.0, std=1.0, a=3.0, b=4.0).numpy()
    assert x.min() >= 3 and x.max() <= 4 and 3.2 < x.mean() < 3.35


def test_eye_fills_rectangles_and_refuses_other_ranks(device):
    w = init.eye_(param((3, 5), device=device))
    np.testing.assert_array_equal(w.numpy(), np.eye(3, 5))
    with pytest.raises(ValueError, match="Only tensors with 2 dimensions"):
        init.eye_(param((2, 2, 2)))


def test_fans_of_linear_and_conv_weights_and_the_1d_error():
    assert init._fan_in_and_fan_out(param((8, 3))) == (3, 8)
    assert init._fan_in_and_fan_out(param((16, 4, 3, 5))) == (60, 240)
    for fn in (init.xavier_uniform_, init.xavier_normal_, init.kaiming_uniform_,
               init.kaiming_normal_):
        with pytest.raises(ValueError, match="fewer than 2 dimensions"):
            fn(param((10,)))


def test_calculate_gain_table():
    assert init.calculate_gain("linear") == 1 and init.calculate_gain("conv2d") == 1
    assert init.calculate_gain("sigmoid") == 1 and init.calculate_gain("tanh") == 5 / 3
    assert init.calculate_gain("relu") == math.sqrt(2) and init.calculate_gain("selu") == 0.75
    assert init.calculate_gain("leaky_relu") == math.sqrt(2 / (1 + 0.01 ** 2))
    assert init.calculate_gain("leaky_relu", 0.2) == math.sqrt(2 / 1.04)
    with pytest.raises(ValueError, match="negative_slope"):
        init.calculate_gain("leaky_relu", "0.2")
    with pytest.raises(ValueError, match="Unsupported nonlinearity 'gelu'"):
        init.calculate_gain("gelu")


def test_xavier_bounds_and_std(device):
    tl.manual_seed(2)
    w = init.xavier_uniform_(param((300, 100, 3, 3), device=device), gain=2.0)
    bound = 2.0 * math.sqrt(6 / (900 + 2700))
    x = w.numpy()
    assert abs(x).max() <= bound and abs(x.std() - bound / math.sqrt(3)) < 0.01 * bound
    x = init.xavier_normal_(param((500, 400)), gain=0.5).numpy()
    assert abs(x.std() - 0.5 * math.sqrt(2 / 900)) < 0.01 * x.std()


def test_kaiming_bounds_modes_and_slopes(device):
    tl.manual_seed(3)
    w = init.kaiming_uniform_(param((256, 64, 3, 3), device=device), a=0.2)
    bound = math.sqrt(3) * math.sqrt(2 / 1.04) / math.sqrt(64 * 9)
    x = w.numpy()
    assert abs(x).max() <= bound and abs(x.std() - bound / math.sqrt(3)) < 0.01 * bound
    x = init.kaiming_normal_(param((256, 64, 3, 3)), mode="fan_out", nonlinearity="relu").numpy()
    assert abs(x.std() - math.sqrt(2 / (256 * 9))) < 0.01 * x.std()
    with pytest.raises(ValueError, match="Mode 'fan_avg' not supported"):
        init.kaiming_normal_(param((4, 4)), mode="fan_avg")
    with pytest.warns(UserWarning, match="zero-element"):
        init.kaiming_uniform_(param((0, 4)))


def test_orthogonal_rows_or_columns_are_orthonormal(device):
    tl.manual_seed(4)
    wide = init.orthogonal_(param((6, 4, 5), np.float64, device=device), gain=3.0).numpy()
    flat = wide.reshape(6, 20)
    np.testing.assert_allclose(flat @ flat.T, 9 * np.eye(6), atol=1e-12)
    tall = init.orthogonal_(param((30, 7), np.float64)).numpy()
    np.testing.assert_allclose(tall.T @ tall, np.eye(7), atol=1e-12)
    with pytest.raises(ValueError, match="2 or more dimensions"):
        init.orthogonal_(param((5,)))


def test_draws_follow_manual_seed_and_keep_float64():
    tl.manual_seed(7)
    a = init.kaiming_normal_(param((5, 6), np.float64)).numpy()
    tl.manual_seed(7)
    b = init.kaiming_normal_(param((5, 6), np.float64)).numpy()
    assert a.dtype == np.float64 and np.array_equal(a, b)


def test_init_records_nothing_in_the_graph():
    layer = nn.Linear(4, 3)
    before = layer.weight
    with tl.no_grad():
        init.normal_(layer.weight)
    init.uniform_(layer.weight)  # outside no_grad too: .array is written, no graph
    assert layer.weight is before and layer.weight.requires_grad
    loss = layer(tl.Tensor(np.ones((2, 4), np.float32))).sum()
    loss.backward()
    assert layer.weight.grad.shape == (3, 4)


def test_bad_tensors_are_named():
    with pytest.raises(TypeError, match="Tensor or Parameter, not a ndarray"):
        init.normal_(np.zeros((2, 2)))
    with pytest.raises(TypeError, match="floating-point tensor, got dtype int64"):
        init.uniform_(tl.Tensor(np.zeros((2, 2), np.int64)))
    with pytest.raises(ValueError, match="a <= b"):
        init.uniform_(param((2, 2)), 1.0, 0.0)
