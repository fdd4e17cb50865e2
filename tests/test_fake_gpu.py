"""The whole GPU code path without a GPU: a stand-in CuPy (tests/fakegpu) on numba's simulator.

Each test runs a fresh interpreter with NUMBA_ENABLE_CUDASIM=1 and tests/fakegpu first on
PYTHONPATH, so that tinylesion.backend finds "CuPy" and one "CUDA device": the ops get
xp = cupy, the numba.cuda kernels are launched on CuPy's current stream, the optimizers use the
fused kernel on device arrays, the DeviceLoader copies on its own stream with events, and fit,
metrics and checkpoints run as on a GPU. The stand-in refuses what CuPy refuses (mixing host
and device arrays, implicit conversion to NumPy), counts device-to-host copies, and checks that
no stream reads what another wrote without waiting for it.
"""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FAKE = ROOT / "tests" / "fakegpu"
TINY_GPU = ["--epochs", "1", "--image-size", "8x6", "--batch-size", "8", "--workers", "1"]


def run_fake(*args, timeout=240):
    """Run python with the stand-in CuPy and the CUDA simulator; the CompletedProcess."""
    path = [str(FAKE), str(ROOT)] + [p for p in [os.environ.get("PYTHONPATH")] if p]
    env = dict(os.environ, NUMBA_ENABLE_CUDASIM="1", PYTHONPATH=os.pathsep.join(path),
               TINYLESION_CACHE=os.environ.get("TINYLESION_CACHE", ""))
    return subprocess.run([sys.executable, *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, cwd=ROOT, env=env)


def json_of(proc):
    assert proc.returncode == 0, proc.stderr[-4000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


STRICTNESS = r"""
import json, numpy as np, cupy, cupyx
from tinylesion import backend
out = {}
a = cupy.arange(6, dtype=np.float32).reshape(2, 3)
def refused(fn):
    try:
        fn()
    except TypeError:
        return True
    return False
out["mix_ufunc"] = refused(lambda: a + np.ones(3, np.float32))
out["mix_function"] = refused(lambda: np.concatenate([a, np.ones((1, 3), np.float32)]))
out["implicit"] = refused(lambda: np.asarray(a))
out["setitem_host"] = refused(lambda: a.__setitem__(0, np.ones(3, np.float32)))
out["scalar_ok"] = type(a * np.float32(2)).__module__
out["reduction"] = type(a.sum()).__module__
h = np.ones(3)
out["asarray_copies"] = not np.shares_memory(cupy.asarray(h).view(np.ndarray), h)
cupy.reset_transfers()
float(a.sum()); a.get(); cupy.asnumpy(a); a[0, 0].item()
out["d2h"] = cupy.transfers["d2h"]
out["device"] = str(backend.as_device("auto"))
s = cupy.cuda.Stream(non_blocking=True)
with s:
    b = cupy.asarray(h)
try:
    b + 1
    out["race"] = False
except cupy.cuda.StreamOrderError:
    out["race"] = True
e = cupy.cuda.Event(); e.record(s)
cupy.cuda.get_current_stream().wait_event(e)
out["after_wait"] = float((b + 1).sum())
t = cupy.zeros(3, np.float32)
cupyx.scatter_add(t, cupy.asarray([0, 0, 2]), cupy.ones(3, np.float32))
out["scatter"] = t.get().tolist()
out["oom_is_cupy"] = backend.is_out_of_memory(cupy.cuda.memory.OutOfMemoryError(1, 2, 3))
print(json.dumps(out))
"""


def test_the_stand_in_refuses_what_cupy_refuses():
    out = json_of(run_fake("-c", STRICTNESS))
    assert out["mix_ufunc"] and out["mix_function"] and out["implicit"] and out["setitem_host"]
    assert out["scalar_ok"] == out["reduction"] == "cupy" and out["asarray_copies"]
    assert out["d2h"] == 4 and out["device"] == "gpu"
    assert out["race"] and out["after_wait"] == 6.0
    assert out["scatter"] == [2.0, 0.0, 1.0] and out["oom_is_cupy"]


def test_training_steps_on_gpu_equal_the_cpu_and_copy_only_the_loss():
    report = json_of(run_fake(FAKE / "run_gpu_paths.py", "steps"))
    for name in ("adam", "nadam"):
        r = report[name]
        assert r["not_device"] == [], r["not_device"]
        assert r["arrays"] >= 20  # parameters, buffers, gradients and optimizer state
        assert r["kernels"] > 0   # numba.cuda kernels were launched on CuPy arrays
        # |gpu - cpu| <= 1e-5 + 1e-5 |cpu| for every array after every step
        assert r["worst"] <= 1.0, (name, r["worst"])
        assert r["losses_gpu"] == pytest.approx(r["losses_cpu"], rel=1e-5)
        assert all(extra == [] for extra in r["extra_d2h"]), "\n".join(
            sum(r["extra_d2h"], []))


def test_fit_through_the_device_loader_checkpoints_and_resumes(tmp_path):
    r = json_of(run_fake(FAKE / "run_gpu_paths.py", "fit", tmp_path))
    assert r["on_device"]
    assert r["history"] == r["history_resumed"] and r["weights_diff"] == 0.0
    assert len(r["history"]["val_macro_f1"]) == 2 and r["checkpoint_epoch"] == 2
    assert r["checkpoint_types"] == ["numpy"]
    assert r["score_type"] == "numpy" and r["score_shape"] == [8, 3]
    for kind, (copies, batches) in r["copies"].items():
        # one loss per batch, and the epoch's count of correct predictions
        assert len(copies) == batches + 1, (kind, "\n".join(copies))


@pytest.fixture(scope="module")
def ham(tmp_path_factory):
    from tinylesion.data import make_synthetic
    return make_synthetic(tmp_path_factory.mktemp("ham") / "ham", n=40, seed=0,
                          image_size=(32, 24))


def test_ham_cnn_on_the_gpu(ham, tmp_path):
    out = tmp_path / "run"
    proc = run_fake(ROOT / "examples" / "ham_cnn.py", "--data", ham, "--device", "gpu",
                    *TINY_GPU, "--model", "padua1", "--augment", "--optimizer", "nadam",
                    "--out", out)
    assert proc.returncode == 0, proc.stderr[-4000:]
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["settings"]["device"] == "gpu" and "device gpu" in proc.stdout
    assert (out / "checkpoint.npz").is_file() and (out / "weights.npz").is_file()


def test_ham_cnn_device_auto_picks_the_gpu(ham, tmp_path):
    out = tmp_path / "run"
    proc = run_fake(ROOT / "examples" / "ham_cnn.py", "--data", ham, "--device", "auto",
                    *TINY_GPU, "--model", "logistic_regression", "--out", out)
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert "device auto: using gpu" in proc.stdout
    assert (out / "metrics.json").is_file()


TENSOR_FUNCTIONS = r"""
import json, numpy as np, cupy
import tinylesion as tl

def run(device):
    a = tl.Tensor(np.arange(6.0).reshape(2, 3), device=device, requires_grad=True)
    b = tl.Tensor(np.full((1, 3), 0.25), device=device, requires_grad=True)
    y = tl.cat([a, b]).sum(0) + tl.stack([a, a], 1).sum((0, 1))
    z = (tl.where(a > 2, a.clamp(1, 4), tl.clamp(b, max=0.5)) + tl.maximum(a, b)
         + a.std(1, keepdim=True) + a.min(1).values.unsqueeze(1))
    (y.sum() + z.sum()).backward()
    return y, z, a.grad, b.grad, tl.zeros(2, device=device), tl.rand(2, device=device)

cpu = run("cpu")
cupy.reset_transfers()
gpu = run("gpu")
out = {"d2h": cupy.transfers["d2h"],
       "modules": [type(t.array).__module__ for t in gpu],
       "equal": [bool(np.allclose(c.numpy(), g.numpy())) for c, g in zip(cpu[:4], gpu[:4])]}
print(json.dumps(out))
"""


def test_tensor_functions_run_on_the_gpu_without_host_copies():
    out = json_of(run_fake("-c", TENSOR_FUNCTIONS))
    assert out["d2h"] == 0
    assert out["modules"] == ["cupy"] * 6 and all(out["equal"])


LOSSES_AND_POOLING = r"""
import json, numpy as np, cupy
import tinylesion as tl
from tinylesion import nn
from tinylesion.nn import functional as F

rng = np.random.default_rng(0)
X4, X2, Y2 = rng.standard_normal((2, 3, 7, 6)), rng.standard_normal((5, 4)), rng.random((5, 4))
T, W = np.array([0, 3, -100, 1, 2]), rng.uniform(0.5, 2.0, 4)

def run(device):
    x4 = tl.Tensor(X4, device=device, requires_grad=True)
    x2 = tl.Tensor(X2, device=device, requires_grad=True)
    y2 = tl.Tensor(Y2, device=device, requires_grad=True)
    criterion = nn.CrossEntropyLoss(weight=W).to(device)
    losses = [criterion(x2, T), F.nll_loss(F.log_softmax(x2, dim=1), T, W, reduction="sum"),
              F.binary_cross_entropy(x2.sigmoid(), Y2, W), F.mse_loss(x2, y2),
              F.l1_loss(x2, y2, reduction="sum"), nn.BCEWithLogitsLoss(pos_weight=W).to(device)(x2, Y2)]
    maps = [F.leaky_relu(x4, 0.2), F.pad(x4, (1, -1, 2, 0), value=0.5),
            F.avg_pool2d(x4, 3, 2, 1, count_include_pad=False), F.adaptive_avg_pool2d(x4, (3, 4)),
            F.adaptive_avg_pool2d(x4, 1), F.dropout2d(x4, 0.5) * 0.0]
    total = sum(losses, tl.Tensor(0.0, device=device)) + sum(m.sum() for m in maps)
    total.backward()
    return losses + maps + [x4.grad, x2.grad, y2.grad], criterion.weight

cpu, _ = run("cpu")
cupy.reset_transfers()
gpu, weight = run("gpu")
d2h = cupy.transfers["d2h"]
hot = F.one_hot(tl.Tensor(np.array([2, 0]), device="gpu"), 3)
dropped = F.dropout2d(tl.Tensor(X4, device="gpu"), 0.5).numpy()   # whole channels: 0 or 2x
channel_ok = [bool(np.all(d == 0) or np.allclose(d, 2 * x, rtol=1e-12))
              for d, x in zip(dropped.reshape(-1, *X4.shape[2:]), X4.reshape(-1, *X4.shape[2:]))]
out = {"d2h": d2h, "weight": type(weight.array).__module__, "channels": channel_ok,
       "modules": sorted({type(t.array).__module__ for t in gpu + [hot]}),
       "equal": [bool(np.allclose(c.numpy(), g.numpy(), rtol=1e-12)) for c, g in zip(cpu, gpu)],
       "one_hot": hot.numpy().tolist()}
print(json.dumps(out))
"""


def test_losses_and_pooling_run_on_the_gpu_without_host_copies():
    out = json_of(run_fake("-c", LOSSES_AND_POOLING))
    assert out["d2h"] == 0 and out["weight"] == "cupy"
    assert out["modules"] == ["cupy"] and all(out["equal"]), out["equal"]
    assert out["one_hot"] == [[0, 0, 1], [1, 0, 0]]
    assert all(out["channels"]) and len(out["channels"]) > 1


HOOKS_AND_SCALER = r"""
import json, warnings, numpy as np, cupy
import tinylesion as tl
from tinylesion import nn

def run(device):
    tl.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.Flatten(),
                          nn.Linear(4 * 5 * 5, 3)).to(device)
    seen = {}
    model[0].register_forward_hook(lambda m, a, out: seen.__setitem__("A", out))
    model[0].register_full_backward_hook(lambda m, gi, go: seen.__setitem__("G", go[0]))
    x = tl.Tensor(np.linspace(-1, 1, 2 * 75, dtype=np.float32).reshape(2, 3, 5, 5), device=device,
                  requires_grad=True)
    x.register_hook(lambda g: g * 2)
    optimizer = tl.optim.SGD(model.parameters(), lr=0.1)
    scaler = tl.amp.GradScaler(device if device == "cpu" else "cuda", init_scale=4.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with tl.autocast("cuda"):
            loss = nn.functional.cross_entropy(model(x), np.array([0, 2]))
    scaler.scale(loss).backward()
    scaler.step(optimizer)
    scaler.update()
    return [seen["A"], seen["G"], x.grad] + list(model.parameters()), scaler.get_scale()

cpu, cpu_scale = run("cpu")
cupy.reset_transfers()
gpu, gpu_scale = run("gpu")
d2h = cupy.transfers["d2h"]
out = {"modules": sorted({type(t.array).__module__ for t in gpu}),
       "equal": [bool(np.allclose(c.numpy(), g.numpy(), rtol=1e-5, atol=1e-7))
                 for c, g in zip(cpu, gpu)],
       "scales": [cpu_scale, gpu_scale], "d2h": d2h}
print(json.dumps(out))
"""


def test_hooks_and_the_grad_scaler_run_on_the_gpu():
    out = json_of(run_fake("-c", HOOKS_AND_SCALER))
    assert out["modules"] == ["cupy"] and all(out["equal"]) and len(out["equal"]) == 7
    assert out["scales"] == [4.0, 4.0]
    assert out["d2h"] == 1, out   # the scaler's one check for inf and NaN per step
