"""PyTorch's results for the PyTorch-habits tests: Adadelta, Adagrad, LayerNorm, GELU and
interpolate, written to tests/fixtures/pytorch_habits_reference.npz.

    /work/venv-torch/bin/python bench/habits_fixtures.py [--out PATH]   # needs PyTorch

A file of its own beside pytorch_reference.npz (which this does not change), so that branches
adding cases to either do not conflict on one binary file. Inputs are stored with the outputs.
"""
import argparse
import os
import sys

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_OUT = os.path.join(ROOT, "tests", "fixtures", "pytorch_habits_reference.npz")

OPTIM_CASES = [
    ("Adadelta", dict()),
    ("Adadelta", dict(lr=0.5, rho=0.8, eps=1e-5, weight_decay=0.1)),
    ("Adadelta", dict(lr=1.0, maximize=True)),
    ("Adagrad", dict()),
    ("Adagrad", dict(lr=0.1, lr_decay=0.05, weight_decay=0.1, initial_accumulator_value=0.2,
                     eps=1e-6)),
    ("Adagrad", dict(lr=0.05, maximize=True)),
]
OPTIM_SHAPES = [(3, 5), (7,), (2, 1, 3)]
OPTIM_STEPS = 6
INTERPOLATE_CASES = [  # (input shape, keyword arguments)
    ((2, 3, 5, 7), dict(size=(9, 4), mode="nearest")),
    ((2, 3, 5, 7), dict(scale_factor=2, mode="nearest")),
    ((1, 2, 6, 9), dict(scale_factor=0.5, mode="nearest")),
    ((2, 3, 5, 7), dict(size=(8, 11), mode="nearest-exact")),
    ((2, 3, 5, 7), dict(size=(9, 4), mode="bilinear", align_corners=False)),
    ((2, 3, 5, 7), dict(size=(9, 4), mode="bilinear", align_corners=True)),
    ((2, 3, 5, 7), dict(scale_factor=2, mode="bilinear", align_corners=False)),
    ((1, 2, 6, 9), dict(scale_factor=1.7, mode="bilinear")),
    ((1, 2, 6, 9), dict(scale_factor=1.7, mode="bilinear", recompute_scale_factor=True)),
    ((2, 4, 7), dict(size=12, mode="linear", align_corners=True)),
    ((2, 4, 7), dict(scale_factor=0.6, mode="linear")),
    ((1, 1, 1, 1), dict(size=(3, 2), mode="bilinear", align_corners=True)),
]
LAYER_NORM_CASES = [((4, 6), (6,)), ((2, 3, 4, 5), (4, 5)), ((3, 8), (8,))]


def key_of(kwargs):
    """A stable key for keyword arguments (tests build the same)."""
    return ",".join(f"{k}={kwargs[k]}" for k in sorted(kwargs)) or "defaults"


def optim_inputs(dtype):
    rng = np.random.default_rng(0)
    params = [rng.standard_normal(s).astype(dtype) for s in OPTIM_SHAPES]
    rng = np.random.default_rng(1)
    grads = [[rng.standard_normal(s).astype(dtype) for s in OPTIM_SHAPES]
             for _ in range(OPTIM_STEPS)]
    return params, grads


def optimizers(torch, put):
    for dtype in (np.float64, np.float32):
        for name, kwargs in OPTIM_CASES:
            params, grads = optim_inputs(dtype)
            t_params = [torch.tensor(p.copy(), requires_grad=True) for p in params]
            lr2 = kwargs.get("lr", 1.0 if name == "Adadelta" else 1e-2) * 0.5
            opt = getattr(torch.optim, name)(
                [{"params": t_params[:2]}, {"params": t_params[2:], "lr": lr2}], **kwargs)
            for step_grads in grads:
                for tp, g in zip(t_params, step_grads):
                    tp.grad = torch.tensor(g.copy())
                opt.step()
            k = f"optim/{name}/{key_of(kwargs)}/{np.dtype(dtype).name}"
            put(f"{k}/lr2", lr2)
            for i, tp in enumerate(t_params):
                put(f"{k}/out{i}", tp.detach().numpy())


def layer_norm(torch, put):
    rng = np.random.default_rng(2)
    for case, (shape, normalized) in enumerate(LAYER_NORM_CASES):
        for dtype in (np.float32, np.float64):
            x = (rng.standard_normal(shape) * 3 + 1).astype(dtype)
            w = rng.standard_normal(normalized).astype(dtype)
            b = rng.standard_normal(normalized).astype(dtype)
            gy = rng.standard_normal(shape).astype(dtype)
            tx, tw, tb = (torch.tensor(a, requires_grad=True) for a in (x, w, b))
            y = torch.nn.functional.layer_norm(tx, normalized, tw, tb, eps=1e-5)
            y.backward(torch.tensor(gy))
            k = f"layer_norm/case{case}/{np.dtype(dtype).name}"
            for name, value in dict(x=x, w=w, b=b, gy=gy, y=y.detach().numpy(),
                                    gx=tx.grad.numpy(), gw=tw.grad.numpy(),
                                    gb=tb.grad.numpy()).items():
                put(f"{k}/{name}", value)


def gelu(torch, put):
    x = np.concatenate([np.linspace(-6, 6, 49), np.random.default_rng(3).standard_normal(30)])
    for dtype in (np.float32, np.float64):
        xd = x.astype(dtype)
        gy = np.random.default_rng(4).standard_normal(xd.shape).astype(dtype)
        for approximate in ("none", "tanh"):
            tx = torch.tensor(xd, requires_grad=True)
            y = torch.nn.functional.gelu(tx, approximate=approximate)
            y.backward(torch.tensor(gy))
            k = f"gelu/{approximate}/{np.dtype(dtype).name}"
            for name, value in dict(x=xd, gy=gy, y=y.detach().numpy(),
                                    gx=tx.grad.numpy()).items():
                put(f"{k}/{name}", value)


def interpolate(torch, put):
    rng = np.random.default_rng(5)
    for case, (shape, kwargs) in enumerate(INTERPOLATE_CASES):
        x = rng.standard_normal(shape).astype(np.float32)
        tx = torch.tensor(x, requires_grad=True)
        y = torch.nn.functional.interpolate(tx, **kwargs)
        gy = rng.standard_normal(tuple(y.shape)).astype(np.float32)
        y.backward(torch.tensor(gy))
        k = f"interpolate/case{case}"
        for name, value in dict(x=x, gy=gy, y=y.detach().numpy(), gx=tx.grad.numpy()).items():
            put(f"{k}/{name}", value)


def write_fixture(sections, description, default_out, script, argv=None):
    """Run each section(torch, put) and store what they put in one .npz (--out, default
    default_out); 2 when PyTorch is missing. Shared by the bench/*_fixtures.py scripts."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--out", default=default_out)
    args = parser.parse_args(argv)
    try:
        import torch
    except ImportError:
        print(f"{script} needs PyTorch", file=sys.stderr)
        return 2
    torch.set_num_threads(1)
    out = {}

    def put(key, value):
        if key in out:
            raise KeyError(f"{key!r} written twice")
        out[key] = np.asarray(value)

    for section in sections:
        section(torch, put)
    put("meta/torch_version", torch.__version__)
    tmp = args.out + ".tmp.npz"
    np.savez_compressed(tmp, **out)
    os.replace(tmp, args.out)
    print(f"wrote {len(out)} arrays to {args.out} ({os.path.getsize(args.out) / 1024:.0f} kB)")
    return 0


def main(argv=None):
    return write_fixture((optimizers, layer_norm, gelu, interpolate),
                         __doc__.splitlines()[0], DEFAULT_OUT, "bench/habits_fixtures.py", argv)


if __name__ == "__main__":
    sys.exit(main())
