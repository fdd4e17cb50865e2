"""PyTorch's results for the parity tests, written to tests/fixtures/pytorch_reference.npz.

    python bench/torch_fixtures.py [--out PATH]     # needs PyTorch (pip install torch==2.13.0)

Only bench/ imports PyTorch: this script computes, with fixed seeds and small shapes, what
PyTorch gives for every case the tests compare tinylesion with, and stores each case's inputs
with PyTorch's outputs (keys like "conv/case3/gx"). The tests read the file through
tests/torch_reference.py, so they run where PyTorch is not installed. Run it again when a case
changes or PyTorch's results do; the file records the PyTorch version that wrote it.
"""
import argparse
import os
import sys
import warnings

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests"))
sys.path.insert(0, os.path.join(ROOT, "bench"))
import torch_reference as ref  # noqa: E402  (the recipes and key names the tests use)
from torch_models import torch_model  # noqa: E402

LARGE = 8192  # arrays of more entries are stored as a summary (torch_reference.summary)
out = {}      # key -> array, written at the end


def put(key, value):
    if key in out:
        raise KeyError(f"{key!r} written twice")
    out[key] = np.asarray(value)


def put_maybe_large(key, value):
    value = np.asarray(value)
    if value.size <= LARGE:
        put(key, value)
    else:
        for name, part in ref.summary(value).items():
            put(f"{key}/{name}", part)


def numpy(t):
    return t.detach().numpy().copy()


def load_weights(torch, model, seed):
    """Give a PyTorch model the recipe's weights; return them (a dict of arrays)."""
    weights = ref.model_weights([(k, v.shape) for k, v in model.state_dict().items()], seed)
    model.load_state_dict({k: torch.from_numpy(v) for k, v in weights.items()}, strict=True)
    return weights


# ---- tests/test_nn.py: a small CNN, forward and backward --------------------------------------
def nn_small_cnn(torch):
    tnn = torch.nn
    model = tnn.Sequential(
        tnn.Conv2d(3, 4, 3, padding=1), tnn.BatchNorm2d(4), tnn.ReLU(),
        tnn.MaxPool2d(2), tnn.ZeroPad2d(1), tnn.Conv2d(4, 6, 3, stride=2),
        tnn.ReLU(), tnn.Flatten(), tnn.Dropout(0.0), tnn.Linear(24, 5)).double()
    for k, v in load_weights(torch, model, seed=0).items():
        put(f"nn/state/{k}", v)
    x = np.random.default_rng(2).standard_normal((3, 3, 8, 8))
    target = np.array([0, 4, 2])
    weight = np.array([1.0, 2.0, 0.5, 1.0, 3.0])
    loss = torch.nn.functional.cross_entropy(model(torch.from_numpy(x)),
                                             torch.from_numpy(target),
                                             weight=torch.from_numpy(weight))
    loss.backward()
    put("nn/x", x), put("nn/target", target), put("nn/weight", weight)
    put("nn/loss", loss.item())
    for k, p in model.named_parameters():
        put(f"nn/grad/{k}", numpy(p.grad))
    for k, b in model.named_buffers():
        put(f"nn/buffer/{k}", numpy(b))


# ---- tests/test_models.py: logits in eval, and a training step --------------------------------
MODEL_CASES, MODEL_SEEDS = ref.MODEL_CASES, ref.MODEL_SEEDS


def model_logits(torch):
    for name, num_classes, size, options in MODEL_CASES:
        key = ref.model_key(name, num_classes, size, **options)
        model = torch_model(name, num_classes, size, **options).double().eval()
        weights = load_weights(torch, model, MODEL_SEEDS["weights"])
        x = ref.model_input(size, MODEL_SEEDS["N"], MODEL_SEEDS["x"])
        with torch.no_grad():
            logits = model(torch.from_numpy(x)).numpy()
        put(f"{key}/layout", ref.state_layout(model.state_dict()))
        put(f"{key}/fingerprint", ref.fingerprint(list(weights.values()) + [x]))
        put(f"{key}/logits", logits)


MELANOMA_STEP = dict(size=(72, 76), N=4, weights=3, x=0, y=[[0.0], [1.0], [1.0], [0.0]])


def melanoma_step(torch):
    case = MELANOMA_STEP
    model = torch_model("melanoma_cnn", 2, case["size"]).double().train()
    weights = load_weights(torch, model, case["weights"])
    x = ref.model_input(case["size"], case["N"], case["x"])
    y = np.array(case["y"])
    loss = torch.nn.functional.binary_cross_entropy_with_logits(model(torch.from_numpy(x)),
                                                                torch.from_numpy(y))
    loss.backward()
    put("melanoma_step/layout", ref.state_layout(model.state_dict()))
    put("melanoma_step/fingerprint", ref.fingerprint(list(weights.values()) + [x]))
    put("melanoma_step/y", y)
    put("melanoma_step/loss", loss.item())
    for k, p in model.named_parameters():
        put_maybe_large(f"melanoma_step/grad/{k}", numpy(p.grad))
    for k, b in model.named_buffers():
        put(f"melanoma_step/buffer/{k}", numpy(b))


# ---- tests/kernels: convolution, max pooling, batch norm, ReLU, Adam ---------------------------
CONV_CASES = [  # x shape, W shape, stride, padding
    ((2, 3, 11, 9), (5, 3, 7, 7), (1, 1), (3, 3)),
    ((1, 4, 10, 13), (3, 4, 3, 3), (3, 3), (0, 0)),
    ((3, 2, 8, 7), (2, 2, 5, 3), (2, 1), (2, 1)),
    ((1, 2, 9, 7), (3, 2, 2, 3), (3, 4), (1, 2)),   # stride larger than the kernel
]


def conv(torch):
    F = torch.nn.functional
    rng = np.random.default_rng(2)
    case = 0
    for x_shape, w_shape, stride, padding in CONV_CASES:
        for dtype in (np.float32, np.float64):
            x = rng.standard_normal(x_shape).astype(dtype)
            W = rng.standard_normal(w_shape).astype(dtype)
            b = rng.standard_normal(w_shape[0]).astype(dtype)
            xt, Wt, bt = (torch.tensor(a, requires_grad=True) for a in (x, W, b))
            yt = F.conv2d(xt, Wt, bt, stride=stride, padding=padding)
            gy = rng.standard_normal(yt.shape).astype(dtype)
            yt.backward(torch.tensor(gy))
            k = f"conv/case{case}"
            for name, value in dict(x=x, W=W, b=b, gy=gy, stride=stride, padding=padding,
                                    y=numpy(yt), gx=numpy(xt.grad), gW=numpy(Wt.grad),
                                    gb=numpy(bt.grad)).items():
                put(f"{k}/{name}", value)
            case += 1


POOL_CASES = [  # shape, kernel, stride, dtype, values (as tests/kernels/test_pool.py's make_input)
    ((2, 3, 9, 8), (2, 2), (2, 2), np.float32, "none"),
    ((1, 2, 7, 9), (3, 2), (1, 3), np.float64, "none"),
    ((1, 1, 5, 3), (1, 1), (2, 1), np.float32, "none"),
    ((2, 1, 6, 7), (3, 3), (1, 1), np.float32, "ties"),
    ((1, 3, 8, 5), (2, 3), (4, 1), np.float64, "ties"),
    ((3, 2, 5, 5), (2, 2), (1, 1), np.float64, "ties"),
    ((2, 2, 7, 6), (2, 2), (1, 2), np.float64, "nans"),
    ((1, 2, 9, 9), (3, 3), (2, 2), np.float32, "nans"),
]


def pool(torch):
    F = torch.nn.functional
    for case, (shape, kernel, stride, dtype, values) in enumerate(POOL_CASES):
        rng = np.random.default_rng(100 + case)
        if values == "ties":  # few distinct values: every window has ties
            x = rng.integers(0, 3, shape).astype(dtype)
        else:
            x = rng.standard_normal(shape).astype(dtype)
            if values == "nans":
                x[rng.random(shape) < 0.2] = np.nan
        xt = torch.from_numpy(x.copy()).requires_grad_(True)
        yt, it = F.max_pool2d(xt, kernel, stride, return_indices=True)
        gy = rng.standard_normal(yt.shape).astype(dtype)
        yt.backward(torch.from_numpy(gy))
        k = f"pool/case{case}"
        for name, value in dict(x=x, gy=gy, kernel=kernel, stride=stride, values=values,
                                y=numpy(yt), indices=it.numpy(), gx=numpy(xt.grad)).items():
            put(f"{k}/{name}", value)


BATCHNORM_CASES = [  # shape, dtype
    ((5, 3), np.float64), ((9, 1), np.float32), ((4, 2), np.float32),
    ((2, 4, 3, 5), np.float64), ((1, 2, 4, 3), np.float32), ((3, 3, 1, 1), np.float64),
    ((2, 1, 7, 6), np.float32), ((1, 3, 5, 7), np.float64),
]


def batchnorm(torch):
    eps = 1e-5
    for case, (shape, dtype) in enumerate(BATCHNORM_CASES):
        # as tests/kernels/test_batchnorm.py's make() with no offset
        rng = np.random.default_rng(200 + case)
        C = shape[1]
        x = (rng.standard_normal(shape) * rng.uniform(0.5, 2.0)).astype(dtype)
        gamma = rng.uniform(0.5, 1.5, C).astype(dtype)
        beta = rng.standard_normal(C).astype(dtype)
        gy = rng.standard_normal(shape).astype(dtype)
        xt, gt, bt = (torch.from_numpy(a.copy()).requires_grad_(True) for a in (x, gamma, beta))
        yt = torch.nn.functional.batch_norm(xt, None, None, gt, bt, training=True, eps=eps)
        yt.backward(torch.from_numpy(gy))
        k = f"batchnorm/case{case}"
        for name, value in dict(x=x, gamma=gamma, beta=beta, gy=gy, eps=eps, y=numpy(yt),
                                gx=numpy(xt.grad), ggamma=numpy(gt.grad),
                                gbeta=numpy(bt.grad)).items():
            put(f"{k}/{name}", value)


def relu(torch):
    x = np.random.default_rng(1).standard_normal((2, 3, 40, 50)).astype(np.float32)
    x[0, 0, 0, :5] = [np.nan, 0.0, -0.0, np.inf, -np.inf]
    gy = np.random.default_rng(2).standard_normal(x.shape).astype(np.float32)
    tx = torch.tensor(x, requires_grad=True)
    ty = torch.relu(tx)
    ty.backward(torch.tensor(gy))
    for name, value in dict(x=x, gy=gy, y=numpy(ty), gx=numpy(tx.grad)).items():
        put(f"relu/{name}", value)


ADAM = dict(lr=0.01, betas=(0.9, 0.99), eps=1e-8, weight_decay=0.05, steps=5)


def adam(torch):
    case = 0
    for dtype in (np.float32, np.float64):
        for size in (10, 4096 + 100):  # both sides of kernels.adam.SERIAL_MAX (4096)
            rng = np.random.default_rng(5)
            param = rng.standard_normal(size).astype(dtype)
            grads = rng.standard_normal((ADAM["steps"], size)).astype(dtype)
            pt = torch.from_numpy(param.copy()).requires_grad_(True)
            opt = torch.optim.Adam([pt], lr=ADAM["lr"], betas=ADAM["betas"], eps=ADAM["eps"],
                                   weight_decay=ADAM["weight_decay"])
            for grad in grads:
                pt.grad = torch.from_numpy(grad.copy())
                opt.step()
            state = opt.state[pt]
            k = f"adam/case{case}"
            for name, value in dict(param=param, grads=grads, lr=ADAM["lr"],
                                    betas=ADAM["betas"], eps=ADAM["eps"],
                                    weight_decay=ADAM["weight_decay"], param_out=numpy(pt),
                                    exp_avg=state["exp_avg"].numpy(),
                                    exp_avg_sq=state["exp_avg_sq"].numpy()).items():
                put(f"{k}/{name}", value)
            case += 1


def nadam(torch):
    rng = np.random.default_rng(6)
    b1, b2, lr, psi = 0.9, 0.999, 0.01, 4e-3
    param = rng.standard_normal(50)
    grads = rng.standard_normal((5, 50))
    pt = torch.from_numpy(param.copy()).requires_grad_(True)
    opt = torch.optim.NAdam([pt], lr=lr, betas=(b1, b2), eps=1e-8, momentum_decay=psi)
    for grad in grads:
        pt.grad = torch.from_numpy(grad.copy())
        opt.step()
    for name, value in dict(param=param, grads=grads, lr=lr, betas=(b1, b2), eps=1e-8,
                            momentum_decay=psi, param_out=numpy(pt)).items():
        put(f"nadam/{name}", value)


# ---- tests/test_optim.py: optimizers and learning-rate schedules ------------------------------
OPTIM_CASES = [  # PyTorch's keyword arguments (tinylesion's fused= runs against the same)
    ("SGD", dict(lr=0.1)),
    ("SGD", dict(lr=0.1, momentum=0.9, dampening=0.2, weight_decay=1e-2)),
    ("SGD", dict(lr=0.1, momentum=0.9, nesterov=True, weight_decay=1e-2)),
    ("Adam", dict()),
    ("Adam", dict(lr=0.01, betas=(0.5, 0.9), eps=1e-6, weight_decay=0.1)),
    ("Adam", dict(lr=0.01, amsgrad=True)),
    ("NAdam", dict()),
    ("NAdam", dict(lr=0.01, betas=(0.8, 0.99), weight_decay=0.1, momentum_decay=0.01)),
    ("RMSprop", dict()),
    ("RMSprop", dict(lr=0.01, alpha=0.9, eps=1e-6, weight_decay=0.1, momentum=0.5)),
    ("RMSprop", dict(lr=0.01, centered=True)),
    ("RMSprop", dict(lr=0.01, centered=True, momentum=0.9)),
]
OPTIM_SHAPES = [(3, 5), (7,), (2, 1, 3)]
OPTIM_STEPS = 6


def _optim_inputs(dtype):
    """The parameters and the OPTIM_STEPS gradients (tests/test_optim.py's make_params(dtype) and
    make_grads(OPTIM_STEPS, dtype))."""
    rng = np.random.default_rng(0)
    params = [rng.standard_normal(s).astype(dtype) for s in OPTIM_SHAPES]
    rng = np.random.default_rng(1)
    grads = [[rng.standard_normal(s).astype(dtype) for s in OPTIM_SHAPES]
             for _ in range(OPTIM_STEPS)]
    return params, grads


def optimizers(torch):
    for dtype in (np.float64, np.float32):
        params, grads = _optim_inputs(dtype)
        for name, kwargs in OPTIM_CASES:
            k = f"optim/{name}/{ref.config_key(**kwargs)}/{np.dtype(dtype).name}"
            result = _run_optimizer(torch, name, kwargs, dtype)
            put(f"{k}/lr2", result["lr2"])
            for i, p in enumerate(params):
                put(f"{k}/param{i}", p)
                put(f"{k}/grads{i}", np.stack([step_grads[i] for step_grads in grads]))
                put(f"{k}/out{i}", result[f"out{i}"])


PLATEAU_CASES = [
    dict(),
    dict(mode="max", factor=0.5, patience=1, threshold=0.05),
    dict(mode="min", threshold_mode="abs", threshold=0.1, patience=0, cooldown=2),
    dict(mode="max", threshold_mode="abs", patience=2, min_lr=[1e-3, 1e-2], factor=0.3),
]


def two_group_sgd(torch):
    return torch.optim.SGD([{"params": [torch.zeros(1)]},
                            {"params": [torch.zeros(1)], "lr": 0.5}], lr=0.1)


def plateau(torch):
    metrics = np.random.default_rng(3).standard_normal(40).cumsum() * 0.1 + 5
    metrics[10:25] = metrics[10]
    for kwargs in PLATEAU_CASES:
        opt = two_group_sgd(torch)
        sched = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, **kwargs)
        lrs, bad, best = [], [], []
        for metric in metrics:
            sched.step(float(metric))
            lrs.append([g["lr"] for g in opt.param_groups])
            bad.append(sched.num_bad_epochs)
            best.append(sched.best)
        k = f"plateau/{ref.config_key(**kwargs)}"
        for name, value in dict(metrics=metrics, lrs=lrs, num_bad_epochs=bad,
                                best=best).items():
            put(f"{k}/{name}", value)


SCHEDULE_CASES = [("StepLR", dict(step_size=3, gamma=0.3)),
                  ("CosineAnnealingLR", dict(T_max=7, eta_min=1e-3))]


def schedules(torch):
    for name, kwargs in SCHEDULE_CASES:
        opt = two_group_sgd(torch)
        sched = getattr(torch.optim.lr_scheduler, name)(opt, **kwargs)
        last_lr = []
        for _ in range(25):
            last_lr.append(sched.get_last_lr())
            opt.step()
            sched.step()
        last_lr.append(sched.get_last_lr())
        put(f"schedules/{name}/{ref.config_key(**kwargs)}/last_lr", last_lr)


# ---- public API parity (tests/test_tensor.py, test_ops.py, test_nn.py, test_optim.py) --------
OPTIM_MORE_CASES, PLATEAU_MORE_CASES = ref.OPTIM_MORE_CASES, ref.PLATEAU_MORE_CASES
LR_CHANGE_CASES, LR_CHANGE = ref.LR_CHANGE_CASES, ref.LR_CHANGE


def _run_optimizer(torch, name, kwargs, dtype, change=None):
    """OPTIM_STEPS steps on the recipe's two parameter groups; `change` alters the groups after
    change["at"] steps. Returns the learning rate of the second group and the parameters after
    the steps."""
    params, grads = _optim_inputs(dtype)
    t_params = [torch.tensor(p.copy(), requires_grad=True) for p in params]
    # two groups, the second with its own learning rate, as param groups are used
    lr2 = kwargs.get("lr", 1e-3) * 0.5
    previous = torch.get_default_dtype()
    # NOTE: NAdam keeps its momentum product in the default dtype; set it to the case's
    torch.set_default_dtype(torch.float64 if dtype == np.float64 else torch.float32)
    try:
        opt = getattr(torch.optim, name)(
            [{"params": t_params[:2]}, {"params": t_params[2:], "lr": lr2}], **kwargs)
        for step, step_grads in enumerate(grads):
            if change is not None and step == change["at"]:
                opt.param_groups[0]["lr"] *= change["factor"]
                for group in opt.param_groups:
                    group["weight_decay"] = change["weight_decay"]
            for tp, g in zip(t_params, step_grads):
                tp.grad = torch.tensor(g.copy())
            opt.step()
    finally:
        torch.set_default_dtype(previous)
    return {"lr2": lr2, **{f"out{i}": numpy(tp) for i, tp in enumerate(t_params)}}


def optimizers_more(torch):
    # NOTE: the inputs are not stored again: tests/test_optim.py's make_params(dtype) and
    # make_grads(OPTIM_STEPS, dtype) give them.
    for dtype in (np.float64, np.float32):
        for name, kwargs in OPTIM_MORE_CASES:
            k = f"optim/{name}/{ref.config_key(**kwargs)}/{np.dtype(dtype).name}"
            for part, value in _run_optimizer(torch, name, kwargs, dtype).items():
                put(f"{k}/{part}", value)
        for name, kwargs in LR_CHANGE_CASES:
            k = f"optim_lr_change/{name}/{ref.config_key(**kwargs)}/{np.dtype(dtype).name}"
            for part, value in _run_optimizer(torch, name, kwargs, dtype, LR_CHANGE).items():
                put(f"{k}/{part}", value)


def plateau_more(torch):
    metrics = np.random.default_rng(4).standard_normal(60).cumsum() * 0.1 + 3
    metrics[20:35] = metrics[20]
    for kwargs in PLATEAU_MORE_CASES:
        opt = two_group_sgd(torch)
        sched = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, **kwargs)
        lrs = []
        for metric in metrics:
            sched.step(float(metric))
            lrs.append([g["lr"] for g in opt.param_groups])
        k = f"plateau_more/{ref.config_key(**kwargs)}"
        put(f"{k}/metrics", metrics), put(f"{k}/lrs", lrs)


CE_CASES = [  # logits shape, target ("classes" with -100 entries, or "probabilities"), kwargs
    ((6, 4), "classes", dict(weight=True)),
    ((6, 4), "classes", dict(weight=True, label_smoothing=0.1, reduction="sum")),
    ((6, 4), "classes", dict(ignore_index=2, reduction="none")),
    ((5,), "classes", dict()),
    ((2, 3, 4, 3), "classes", dict(weight=True)),
    ((2, 3, 4, 3), "classes", dict(reduction="none", label_smoothing=0.2)),
    ((5, 4), "probabilities", dict(weight=True, label_smoothing=0.1)),
    ((2, 3, 4), "probabilities", dict(reduction="none")),
]


def cross_entropy_more(torch):
    F = torch.nn.functional
    for case, (shape, kind, kwargs) in enumerate(CE_CASES):
        rng = np.random.default_rng(300 + case)
        x = rng.standard_normal(shape) * 3
        x.flat[0] = 80.0  # one extreme logit
        C = shape[1] if len(shape) > 1 else shape[0]
        batch = shape[:1] + shape[2:] if len(shape) > 1 else ()
        if kind == "classes":
            target = rng.integers(0, C, batch)
            if target.ndim:
                target.flat[1] = kwargs.get("ignore_index", -100)
            t_target = torch.from_numpy(target)
        else:
            target = F.softmax(torch.from_numpy(rng.standard_normal(shape)), 1).numpy()
            t_target = torch.from_numpy(target)
        options = dict(kwargs)
        weight = rng.uniform(0.5, 2.0, C) if options.pop("weight", False) else None
        xt = torch.from_numpy(x.copy()).requires_grad_(True)
        loss = F.cross_entropy(xt, t_target, None if weight is None else torch.from_numpy(weight),
                               **options)
        gy = rng.standard_normal(loss.shape)
        loss.backward(torch.from_numpy(gy))
        k = f"cross_entropy/case{case}"
        stored = dict(x=x, target=target, gy=gy, loss=numpy(loss), gx=numpy(xt.grad),
                      reduction=options.get("reduction", "mean"),
                      label_smoothing=options.get("label_smoothing", 0.0),
                      ignore_index=options.get("ignore_index", -100))
        if weight is not None:
            stored["weight"] = weight
        for name, value in stored.items():
            put(f"{k}/{name}", value)


def tensor_ops(torch):
    """max(dim) with ties and NaN (values, indices, gradients), max() and amax with ties,
    and x ** y at x = 0, y = 0 and x < 0."""
    x = np.array([[1.0, 3.0, 3.0, 0.5], [3.0, np.nan, 3.0, 1.0], [2.0, 2.0, -1.0, 2.0]])
    gy_rng = np.random.default_rng(400)
    for dim in (0, 1, -1):
        xt = torch.from_numpy(x.copy()).requires_grad_(True)
        values, indices = xt.max(dim)
        gy = gy_rng.standard_normal(values.shape)
        values.backward(torch.from_numpy(gy))
        for name, value in dict(gy=gy, values=numpy(values), indices=indices.numpy(),
                                gx=numpy(xt.grad)).items():
            put(f"tensor_ops/max_dim{dim}/{name}", value)
    put("tensor_ops/max_x", x)
    ties = np.nan_to_num(x, nan=3.0)
    put("tensor_ops/ties_x", ties)
    for name, fn in (("max", lambda t: t.max()), ("amax1", lambda t: t.amax(1)),
                     ("amax01", lambda t: t.amax((0, 1)))):
        xt = torch.from_numpy(ties.copy()).requires_grad_(True)
        y = fn(xt)
        gy = gy_rng.standard_normal(y.shape)
        y.backward(torch.from_numpy(gy))
        put(f"tensor_ops/{name}/gy", gy), put(f"tensor_ops/{name}/gx", numpy(xt.grad))
    base = np.array([[0.0], [2.0], [-1.5], [0.5]]) * np.ones((1, 5))
    exponent = np.array([0.0, 2.0, -1.0, 0.5, 3.0]) * np.ones((4, 1))
    bt = torch.from_numpy(base.copy()).requires_grad_(True)
    et = torch.from_numpy(exponent.copy()).requires_grad_(True)
    y = bt ** et
    y.backward(torch.ones_like(y))
    for name, value in dict(base=base, exponent=exponent, y=numpy(y), gbase=numpy(bt.grad),
                            gexponent=numpy(et.grad)).items():
        put(f"tensor_ops/pow/{name}", value)


# ---- tests/test_losses.py: the losses, layers and loss modules beyond the first ones ---------
LOSS_CASES, LAYER_CASES = ref.LOSS_CASES, ref.LAYER_CASES
LOSS_MODULE_CASES = ref.LOSS_MODULE_CASES
OWN_OPTIONS = ("weight", "target_shape", "dtype")  # the cases' options that are not PyTorch's


def _loss_inputs(rng, name, shape, options):
    """The input, the target and the weight (or None) of a loss case."""
    dtype = np.dtype(options.get("dtype", "float64"))
    if name == "binary_cross_entropy":
        x = rng.uniform(0.02, 0.98, shape)
        x.flat[0], x.flat[1] = 0.0, 1.0    # where the logs are clamped at -100
        target = rng.uniform(0.0, 1.0, shape)
    else:
        x = rng.standard_normal(shape) * 2
        if name == "nll_loss":
            C = shape[1] if len(shape) > 1 else shape[0]
            target = rng.integers(0, C, shape[:1] + shape[2:] if len(shape) > 1 else ())
            if target.ndim:
                target.flat[1] = options.get("ignore_index", -100)
        else:
            target = rng.standard_normal(options.get("target_shape", shape))
            if target.shape == x.shape:
                target.flat[0] = x.flat[0]  # a zero difference (l1's gradient is 0 there)
    weight = rng.uniform(0.5, 2.0, options["weight"]) if "weight" in options else None
    cast = lambda a: None if a is None else a.astype(dtype) if a.dtype.kind == "f" else a
    return cast(x), cast(target), cast(weight)


def losses(torch):
    F = torch.nn.functional
    for case, (name, shape, options) in enumerate(LOSS_CASES):
        rng = np.random.default_rng(500 + case)
        x, target, weight = _loss_inputs(rng, name, shape, options)
        kwargs = {k: v for k, v in options.items() if k not in OWN_OPTIONS}
        if weight is not None:
            kwargs["weight"] = torch.from_numpy(weight)
        xt = torch.from_numpy(x.copy()).requires_grad_(True)
        tt = torch.from_numpy(target.copy())
        grad_target = name in ("mse_loss", "l1_loss")
        tt.requires_grad_(grad_target)
        with warnings.catch_warnings():  # a target of another shape is warned about
            warnings.simplefilter("ignore")
            loss = getattr(F, name)(xt, tt, **kwargs)
        gy = rng.standard_normal(loss.shape).astype(x.dtype)
        loss.backward(torch.from_numpy(gy))
        stored = dict(x=x, target=target, gy=gy, y=numpy(loss), gx=numpy(xt.grad))
        if weight is not None:
            stored["weight"] = weight
        if grad_target:
            stored["gtarget"] = numpy(tt.grad)
        for part, value in stored.items():
            put(f"losses/case{case}/{part}", value)


def layers(torch):
    for case, (name, shape, options) in enumerate(LAYER_CASES):
        rng = np.random.default_rng(600 + case)
        x = rng.standard_normal(shape).astype(options.get("dtype", "float64"))
        x.flat[0] = 0.0  # leaky_relu's gradient at 0
        kwargs = {k: v for k, v in options.items() if k not in OWN_OPTIONS}
        xt = torch.from_numpy(x.copy()).requires_grad_(True)
        with warnings.catch_warnings():  # LogSoftmax() warns of its implicit dim
            warnings.simplefilter("ignore")
            if name[0].isupper():
                y = getattr(torch.nn, name)(**kwargs)(xt)
            else:
                y = getattr(torch.nn.functional, name)(xt, **kwargs)
        gy = rng.standard_normal(y.shape).astype(x.dtype)
        y.backward(torch.from_numpy(gy))
        for part, value in dict(x=x, gy=gy, y=numpy(y), gx=numpy(xt.grad)).items():
            put(f"layers/case{case}/{part}", value)
    indices = np.array([[0, 3], [1, 1], [2, 0]])
    put("one_hot/indices", indices)
    for num_classes in (-1, 6):
        put(f"one_hot/{num_classes}", torch.nn.functional.one_hot(torch.from_numpy(indices),
                                                                  num_classes).numpy())
    for case, (name, options) in enumerate(LOSS_MODULE_CASES):
        kwargs = {k: torch.ones(v) if isinstance(v, tuple) else v for k, v in options.items()}
        module = getattr(torch.nn, name)(**kwargs)
        put(f"loss_modules/case{case}/layout", ref.state_layout(module.state_dict()) or [""])


# ---- tests/test_grouped_conv.py, test_pool_options.py, test_activations.py (issue 13) --------
GROUPED_CONV_CASES = [  # x shape, W shape, stride, padding, groups
    ((2, 4, 7, 7), (4, 1, 3, 3), (1, 1), (1, 1), 4),     # depthwise (MobileNetV2, stride 1)
    ((2, 6, 9, 8), (6, 1, 3, 3), (2, 2), (1, 1), 6),     # depthwise, stride 2
    ((1, 3, 11, 9), (3, 1, 5, 5), (2, 2), (2, 2), 3),    # EfficientNet's 5x5, stride 2
    ((2, 3, 6, 7), (6, 1, 3, 3), (1, 1), (0, 0), 3),     # channel multiplier 2
    ((2, 6, 7, 6), (9, 2, 3, 2), (2, 1), (1, 0), 3),     # general groups
]


def grouped_conv(torch):
    F = torch.nn.functional
    rng = np.random.default_rng(13)
    case = 0
    for x_shape, w_shape, stride, padding, groups in GROUPED_CONV_CASES:
        for dtype in (np.float32, np.float64):
            x, W = (rng.standard_normal(s).astype(dtype) for s in (x_shape, w_shape))
            b = rng.standard_normal(w_shape[0]).astype(dtype)
            xt, Wt, bt = (torch.tensor(a, requires_grad=True) for a in (x, W, b))
            yt = F.conv2d(xt, Wt, bt, stride=stride, padding=padding, groups=groups)
            gy = rng.standard_normal(yt.shape).astype(dtype)
            yt.backward(torch.tensor(gy))
            for name, value in dict(x=x, W=W, b=b, gy=gy, stride=stride, padding=padding,
                                    groups=groups, y=numpy(yt), gx=numpy(xt.grad),
                                    gW=numpy(Wt.grad), gb=numpy(bt.grad)).items():
                put(f"grouped_conv/case{case}/{name}", value)
            case += 1


POOL_OPTION_CASES = [  # function, x shape, keyword arguments
    ("max_pool2d", (2, 3, 9, 9), dict(kernel_size=3, stride=2, padding=1)),   # ResNet's stem
    ("max_pool2d", (1, 2, 8, 7), dict(kernel_size=3, stride=2, padding=1)),
    ("max_pool2d", (2, 2, 8, 8), dict(kernel_size=3, stride=2, ceil_mode=True)),
    ("max_pool2d", (1, 3, 7, 10), dict(kernel_size=(2, 3), stride=(2, 2), padding=(1, 1),
                                       ceil_mode=True)),
    ("max_pool2d", (1, 2, 6, 6), dict(kernel_size=2, stride=2, ceil_mode=True)),
    ("max_pool2d", (2, 2, 5, 6), dict(kernel_size=3, stride=1, padding=1)),
    ("avg_pool2d", (2, 3, 7, 7), dict(kernel_size=3, stride=1, padding=1)),   # Inception's
    ("avg_pool2d", (2, 3, 7, 7), dict(kernel_size=3, stride=1, padding=1,
                                      count_include_pad=False)),
    ("avg_pool2d", (2, 4, 9, 8), dict(kernel_size=2, stride=2)),              # DenseNet's
    ("avg_pool2d", (1, 2, 8, 8), dict(kernel_size=3, stride=2, ceil_mode=True)),
    ("avg_pool2d", (1, 2, 7, 9), dict(kernel_size=3, stride=2, padding=1, ceil_mode=True)),
    ("avg_pool2d", (1, 2, 7, 9), dict(kernel_size=3, stride=2, padding=1, ceil_mode=True,
                                      count_include_pad=False)),
    ("avg_pool2d", (2, 2, 5, 5), dict(kernel_size=2, stride=2, ceil_mode=True)),
    ("avg_pool2d", (1, 2, 6, 7), dict(kernel_size=(3, 2), stride=(2, 3), padding=(1, 1),
                                      ceil_mode=True, divisor_override=4)),
]


def pool_options(torch):
    F = torch.nn.functional
    for case, (name, shape, kwargs) in enumerate(POOL_OPTION_CASES):
        rng = np.random.default_rng(1300 + case)
        for dtype in (np.float32, np.float64):
            x = rng.standard_normal(shape).astype(dtype)
            xt = torch.from_numpy(x.copy()).requires_grad_(True)
            stored = dict(x=x)
            if name == "max_pool2d":
                yt, it = F.max_pool2d(xt, return_indices=True, **kwargs)
                stored["indices"] = it.numpy()
            else:
                yt = F.avg_pool2d(xt, **kwargs)
            gy = rng.standard_normal(yt.shape).astype(dtype)
            yt.backward(torch.from_numpy(gy))
            stored.update(gy=gy, y=numpy(yt), gx=numpy(xt.grad))
            for part, value in stored.items():
                put(f"pool_options/case{case}/{np.dtype(dtype).name}/{part}", value)


ACTIVATION_CASES = [  # torch.nn module name, keyword arguments
    ("ReLU6", {}), ("Hardtanh", {}), ("Hardtanh", dict(min_val=-0.5, max_val=2.0)),
    ("SiLU", {}), ("Hardswish", {}), ("Hardsigmoid", {}),
]
# the kinks, where PyTorch's gradient takes one side
ACTIVATION_POINTS = [-6.0, -3.0, -1.0, -0.5, 0.0, 0.5, 1.0, 2.0, 3.0, 6.0, 7.5, -20.0, 20.0]


def activations(torch):
    for case, (name, kwargs) in enumerate(ACTIVATION_CASES):
        rng = np.random.default_rng(1400 + case)
        for dtype in (np.float32, np.float64):
            x = (rng.standard_normal((2, 3, 5, 4)) * 4).astype(dtype)
            x.flat[:len(ACTIVATION_POINTS)] = ACTIVATION_POINTS
            xt = torch.from_numpy(x.copy()).requires_grad_(True)
            yt = getattr(torch.nn, name)(**kwargs)(xt)
            gy = rng.standard_normal(yt.shape).astype(dtype)
            yt.backward(torch.from_numpy(gy))
            for part, value in dict(x=x, gy=gy, y=numpy(yt), gx=numpy(xt.grad)).items():
                put(f"activations/case{case}/{np.dtype(dtype).name}/{part}", value)


BATCHNORM_MODULE_CASES = [dict(eps=1e-3, momentum=0.01), dict(eps=1e-5, momentum=0.1),
                          dict(eps=1e-3, momentum=None)]


def batchnorm_modules(torch):
    """BatchNorm2d with EfficientNet's and MobileNetV3's eps and momentum: three training
    steps (outputs, gradients, running statistics), then evaluation."""
    for case, kwargs in enumerate(BATCHNORM_MODULE_CASES):
        rng = np.random.default_rng(1500 + case)
        bn = torch.nn.BatchNorm2d(3, **kwargs).double()
        weight, bias = rng.uniform(0.5, 1.5, 3), rng.standard_normal(3)
        with torch.no_grad():
            bn.weight.copy_(torch.from_numpy(weight))
            bn.bias.copy_(torch.from_numpy(bias))
        k = f"batchnorm_modules/case{case}"
        put(f"{k}/weight", weight), put(f"{k}/bias", bias)
        for step in range(3):
            x = rng.standard_normal((4, 3, 5, 3)) * 2 + 1
            gy = rng.standard_normal(x.shape)
            xt = torch.from_numpy(x.copy()).requires_grad_(True)
            yt = bn(xt)
            yt.backward(torch.from_numpy(gy))
            for part, value in dict(x=x, gy=gy, y=numpy(yt), gx=numpy(xt.grad),
                                    running_mean=numpy(bn.running_mean),
                                    running_var=numpy(bn.running_var)).items():
                put(f"{k}/step{step}/{part}", value)
        put(f"{k}/gweight", numpy(bn.weight.grad)), put(f"{k}/gbias", numpy(bn.bias.grad))
        bn.eval()
        x = rng.standard_normal((2, 3, 4, 4))
        put(f"{k}/eval_x", x), put(f"{k}/eval_y", numpy(bn(torch.from_numpy(x))))


SECTIONS = [nn_small_cnn, model_logits, melanoma_step, conv, pool, batchnorm, relu, adam, nadam,
            optimizers, plateau, schedules, optimizers_more, plateau_more, cross_entropy_more,
            tensor_ops, losses, layers, grouped_conv, pool_options, activations,
            batchnorm_modules]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=ref.PATH, help="where to write (default: %(default)s)")
    args = parser.parse_args(argv)
    try:
        import torch
    except ImportError:
        print("bench/torch_fixtures.py needs PyTorch: pip install torch==2.13.0", file=sys.stderr)
        return 2
    torch.manual_seed(0)
    torch.set_num_threads(1)  # the same summation order on every machine
    for section in SECTIONS:
        section(torch)
    put("meta/torch_version", torch.__version__)
    put("meta/numpy_version", np.__version__)
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    tmp = args.out + ".tmp.npz"
    np.savez_compressed(tmp, **out)
    os.replace(tmp, args.out)
    print(f"wrote {len(out)} arrays to {args.out} ({os.path.getsize(args.out) / 1024:.0f} kB) "
          f"with PyTorch {torch.__version__}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
