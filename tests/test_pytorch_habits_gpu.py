"""The PyTorch-habits ops on the GPU path (the stand-in CuPy, see tests/test_fake_gpu.py): GELU,
LayerNorm, interpolate, the tensor methods and tensor transforms give the CPU's numbers with
no device-to-host copy, and a DataLoader's batches move with .to("cuda")."""
from test_fake_gpu import json_of, run_fake

SCRIPT = r"""
import json, numpy as np, cupy
import tinylesion as tl
import tinylesion.nn.functional as F
from tinylesion import nn
from tinylesion.vision.transforms import functional as TF

rng = np.random.default_rng(0)
X, W = rng.standard_normal((2, 3, 5, 6)), rng.standard_normal(6)

def run(device):
    x = tl.Tensor(X, device=device, requires_grad=True)
    w = tl.Tensor(W, device=device, requires_grad=True)
    outs = [F.gelu(x), F.gelu(x, approximate="tanh"), F.layer_norm(x, (6,), w),
            F.interpolate(x, size=(7, 4), mode="bilinear", align_corners=False),
            F.interpolate(x, scale_factor=2, mode="nearest"),
            x.add(x * 2, alpha=0.5).div(3.0).masked_fill(x.array > 1, 0.0).flip(3),
            x.topk(2, dim=3).values, x.sort(2, descending=True).values]
    total = sum((o * o).sum() for o in outs)
    total.backward()
    image = tl.Tensor(np.abs(X[0]) / 4, device=device)
    views = [TF.hflip(image), TF.center_crop(image, [3, 4]),
             TF.pad(image, 1, padding_mode="reflect"),
             TF.normalize(image, [0.5] * 3, [0.2] * 3), TF.adjust_hue(image.clamp(0, 1), 0.1),
             TF.adjust_contrast(image.clamp(0, 1), 0.5)]
    return outs + [x.grad, w.grad] + views

cpu = run("cpu")
tl.manual_seed(0)
cupy.reset_transfers()
gpu = run("cuda")
d2h = cupy.transfers["d2h"]
loader = tl.utils.data.DataLoader(tl.utils.data.TensorDataset(tl.Tensor(X), tl.arange(2)),
                                  batch_size=2, num_workers=1)
device = tl.device("cuda" if tl.cuda.is_available() else "cpu")
batch = [t.to(device, non_blocking=True) for t in next(iter(loader))]
out = {"d2h": d2h, "modules": sorted({type(t.array).__module__ for t in gpu}),
       "equal": [bool(np.allclose(c.numpy(), g.numpy(), rtol=1e-10, atol=1e-12))
                 for c, g in zip(cpu, gpu)],
       "batch": [type(t.array).__module__ for t in batch], "device": device.type,
       "accelerator": tl.accelerator.current_accelerator().type}
print(json.dumps(out))
"""


def test_habits_ops_run_on_the_gpu_as_on_the_cpu():
    out = json_of(run_fake("-c", SCRIPT))
    assert out["d2h"] == 0
    assert out["modules"] == ["cupy"] and all(out["equal"]), out["equal"]
    assert out["batch"] == ["cupy", "cupy"]
    assert out["device"] == "cuda" and out["accelerator"] == "cuda"
