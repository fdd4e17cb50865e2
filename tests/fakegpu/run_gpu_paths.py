"""The whole GPU code path on the stand-in CuPy (tests/fakegpu/cupy) under numba's CUDA simulator.

Run by tests/test_fake_gpu.py as `python tests/fakegpu/run_gpu_paths.py MODE [DIR]` with
NUMBA_ENABLE_CUDASIM=1 and tests/fakegpu first on PYTHONPATH; prints one JSON line.

  steps  training steps of a small conv model on "gpu" against the same steps on the CPU
  fit    tinylesion.train.fit through Loader + DeviceLoader on "gpu", a checkpoint, a resume
"""
import json
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(1, str(ROOT))

import numpy as np  # noqa: E402

import cupy  # noqa: E402  (the stand-in)

assert "fakegpu" in cupy.__file__, "tests/fakegpu must come first on PYTHONPATH"
assert os.environ.get("NUMBA_ENABLE_CUDASIM") == "1", "run with NUMBA_ENABLE_CUDASIM=1"

import tinylesion as tl  # noqa: E402
from tinylesion import backend, nn, optim, train  # noqa: E402
from tinylesion.nn import functional as F  # noqa: E402
from tinylesion.tensor import Tensor  # noqa: E402

IMAGE = 6   # tiny images: the simulator runs every CUDA thread as a Python thread
CLASSES = 3


def small_cnn():
    """Conv2d with padding, ReLU, BatchNorm2d, MaxPool2d, Dropout and Linear.

    NOTE: the ReLU comes before the batch norm: a conv bias just before a batch norm has a
    gradient of exactly 0 in theory, rounding noise in practice, which Adam turns into steps of
    size lr in any direction (so the CPU and the GPU would differ by lr there).
    """
    return nn.Sequential(nn.Conv2d(3, 3, 3, padding=1), nn.ReLU(), nn.BatchNorm2d(3),
                         nn.MaxPool2d(2), nn.Flatten(), nn.Dropout(0.25),
                         nn.Linear(3 * (IMAGE // 2) ** 2, CLASSES))


def arrays_of(model, opt):
    """name -> array: parameters, buffers, gradients and optimizer state."""
    out = {f"param {k}": v for k, v in model.state_dict().items()}
    for i, p in enumerate(model.parameters()):
        if p.grad is not None:
            out[f"grad {i}"] = p.grad.array
    for i, state in opt.state_dict()["state"].items():
        for k, v in state.items():
            if not isinstance(v, (int, float)):
                out[f"state {i} {k}"] = v
    return out


def cpu_draws_like_gpu():
    """Make CPU dropout draw what the GPU draws: a generator seeded from the CPU generator
    (backend.generator on 'gpu'); the stand-in's default_rng(seed) is NumPy's."""
    cpu_generator = backend.generator

    def generator(device=backend.CPU):
        return np.random.default_rng(int(cpu_generator(backend.CPU).integers(2**63)))
    backend.generator = generator
    return lambda: setattr(backend, "generator", cpu_generator)


def run_steps(device, opt_name, x, y, weights, steps):
    """(losses, arrays after each step, device-to-host transfers inside each step)."""
    tl.manual_seed(0)
    model = small_cnn().to(device)
    cls = {"adam": optim.Adam, "nadam": optim.NAdam}[opt_name]
    opt = cls(model.parameters(), lr=1e-3, weight_decay=1e-4)
    xd, yd, wd = (backend.to_device(a, device) for a in (x, y, weights))
    restore = cpu_draws_like_gpu() if device == "cpu" else (lambda: None)
    tl.manual_seed(1)
    losses, snapshots, extra = [], [], []
    try:
        for _ in range(steps):
            log = cupy.record_transfers()
            logits = model(Tensor(xd))
            loss = F.cross_entropy(logits, yd, weight=wd)
            losses.append(float(loss.item()))
            opt.zero_grad()
            loss.backward()
            opt.step()
            d2h = [entry for entry in log if entry[0] == "d2h"]
            extra.append([f"{what}\n{stack}" for _, what, stack in d2h[1:]])
            snapshots.append(arrays_of(model, opt))
            if device == "gpu":  # copies for the comparison, outside the step
                snapshots[-1] = {k: (type(v).__module__, backend.to_numpy(v))
                                 for k, v in snapshots[-1].items()}
            else:
                snapshots[-1] = {k: (type(v).__module__, np.array(v))
                                 for k, v in snapshots[-1].items()}
    finally:
        restore()
    return losses, snapshots, extra


def mode_steps():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((4, 3, IMAGE, IMAGE)).astype(np.float32)
    y = np.array([0, 1, 2, 1], np.int64)
    weights = np.array([0.5, 1.0, 2.0], np.float32)
    report = {}
    for opt_name in ("adam", "nadam"):
        launches = cupy._simulator.launches["count"]
        losses_g, snaps_g, extra = run_steps("gpu", opt_name, x, y, weights, steps=3)
        launches = cupy._simulator.launches["count"] - launches
        losses_c, snaps_c, _ = run_steps("cpu", opt_name, x, y, weights, steps=3)
        worst, not_device = 0.0, []
        for step, (g, c) in enumerate(zip(snaps_g, snaps_c)):
            assert g.keys() == c.keys(), (sorted(g), sorted(c))
            for k in g:
                module, a = g[k]
                if not module.startswith("cupy"):
                    not_device.append(f"step {step + 1}: {k} is a {module} array")
                b = c[k][1]
                err = float(np.max(np.abs(a - b) / (1e-5 + 1e-5 * np.abs(b)))) if a.size else 0
                worst = max(worst, err)
        report[opt_name] = dict(losses_gpu=losses_g, losses_cpu=losses_c, worst=worst,
                                not_device=not_device, extra_d2h=extra, kernels=launches,
                                arrays=len(snaps_g[0]))
    print(json.dumps(report))


# ---------------------------------------------------------------------------------------------
# fit through Loader + DeviceLoader
# ---------------------------------------------------------------------------------------------

class MemoryImages:
    """A dataset of uint8 images held in memory (what Loader needs of a dataset)."""

    def __init__(self, n, seed):
        rng = np.random.default_rng(seed)
        self.targets = rng.integers(0, CLASSES, n).astype(np.int64)
        self.images = rng.integers(0, 256, (n, IMAGE, IMAGE, 3)).astype(np.uint8)
        for k in range(CLASSES):
            self.images[self.targets == k, :, :, k] //= 3  # a learnable colour cue
        self.image_size = (IMAGE, IMAGE)
        self.classes = [f"c{k}" for k in range(CLASSES)]
        self.paths = [f"<image {i}>" for i in range(n)]

    def __len__(self):
        return len(self.targets)

    def load(self, index):
        return self.images[index]


def fit_run(out, epochs, resume=False):
    from tinylesion.data import Loader
    tl.manual_seed(0)
    model = small_cnn().to("gpu")
    opt = optim.NAdam(model.parameters(), lr=1e-2)
    sched = optim.ReduceLROnPlateau(opt, factor=0.5, patience=0)
    train_loader = Loader(MemoryImages(16, 1), batch_size=8, shuffle=True, num_workers=1, seed=3)
    val_loader = Loader(MemoryImages(8, 2), batch_size=8, num_workers=1)
    history = train.fit(model, opt, train_loader, val_loader, epochs=epochs, device="gpu",
                        class_weights=[0.5, 1.0, 2.0], mean=(0.5, 0.5, 0.5),
                        std=(0.25, 0.25, 0.25), scheduler=sched, checkpoint_path=out,
                        resume=resume, progress=False, log=lambda *a: None)
    y_true, y_score = train.evaluate_model(model, val_loader, "gpu", (0.5,) * 3, (0.25,) * 3)
    state = {k: backend.to_numpy(v) for k, v in model.state_dict().items()}
    on_device = all(backend.is_cupy_array(v) for v in model.state_dict().values())
    opt_on_device = all(backend.is_cupy_array(v) for s in opt.state.values()
                        for v in s.values() if not isinstance(v, (int, float)))
    return history, state, on_device and opt_on_device, y_score


def fit_copies(binary):
    """Device-to-host copies of one epoch of fit without validation, and its batch count."""
    from tinylesion.data import Loader
    tl.manual_seed(0)
    model = small_cnn()
    if binary:  # one logit: binary cross-entropy with pos_weight from the class weights
        model = nn.Sequential(*list(model)[:-1], nn.Linear(3 * (IMAGE // 2) ** 2, 1))
        model.binary = True
    model.to("gpu")
    opt = optim.Adam(model.parameters(), lr=1e-2)
    data = MemoryImages(24, 1)
    if binary:
        data.targets = (data.targets > 0).astype(np.int64)
    loader = Loader(data, batch_size=8, num_workers=1)
    log = cupy.record_transfers()
    train.fit(model, opt, loader, epochs=1, device="gpu", class_weights=[0.5, 1.5][:2]
              if binary else [0.5, 1.0, 2.0], progress=False, log=lambda *a: None)
    return [f"{what}\n{stack}" for kind, what, stack in log if kind == "d2h"], len(loader)


def mode_fit(folder):
    folder = Path(folder)
    h_full, w_full, on_device, y_score = fit_run(folder / "full.npz", epochs=2)
    fit_run(folder / "part.npz", epochs=1)
    h_part, w_part, on_device_resumed, _ = fit_run(folder / "part.npz", epochs=2, resume=True)
    saved = train.load_checkpoint(folder / "full.npz")
    diff = max(float(np.max(np.abs(w_full[k] - w_part[k]))) for k in w_full)
    print(json.dumps(dict(
        history=h_full, history_resumed=h_part, weights_diff=diff,
        on_device=on_device and on_device_resumed, score_shape=list(y_score.shape),
        score_type=type(y_score).__module__, checkpoint_epoch=saved["epoch"],
        checkpoint_types=sorted({type(v).__module__ for v in saved["model"].values()}),
        copies={kind: fit_copies(kind == "binary") for kind in ("classes", "binary")})))


if __name__ == "__main__":
    if sys.argv[1] == "steps":
        mode_steps()
    elif sys.argv[1] == "fit":
        mode_fit(sys.argv[2])
    else:
        raise SystemExit(f"unknown mode {sys.argv[1]!r}")
