"""The backbones' layers on the stand-in CuPy (tests/fakegpu) under numba's CUDA simulator:
grouped and depthwise convolution, max and average pooling with padding and ceil_mode, the
new activations and stochastic depth equal the CPU, stay on the device and copy nothing back.
"""
from test_fake_gpu import json_of, run_fake

LAYERS = r"""
import json, numpy as np, cupy
import tinylesion as tl
from tinylesion import nn, ops
from tinylesion.nn import functional as F

rng = np.random.default_rng(0)
X, W_DW, W_G = (rng.standard_normal(s) for s in ((2, 4, 7, 6), (8, 1, 3, 3), (6, 2, 3, 3)))
B = rng.standard_normal(8)

def run(device):
    x = tl.Tensor(X, device=device, requires_grad=True)
    w_dw = tl.Tensor(W_DW, device=device, requires_grad=True)
    w_g = tl.Tensor(W_G, device=device, requires_grad=True)
    b = tl.Tensor(B, device=device, requires_grad=True)
    maps = [F.conv2d(x, w_dw, b, 2, 1, groups=4), F.conv2d(x, w_g, None, 1, (1, 0), groups=2),
            F.max_pool2d(x, 3, 2, 1), F.max_pool2d(x, 2, 2, ceil_mode=True),
            F.avg_pool2d(x, 3, 1, 1), F.avg_pool2d(x, 3, 2, 1, ceil_mode=True,
                                                   count_include_pad=False),
            F.relu6(x * 4), F.hardtanh(x, -0.5, 0.5), F.silu(x), F.hardswish(x * 4),
            F.hardsigmoid(x * 4), ops.stochastic_depth(x, 0.5, "row", training=False),
            nn.Identity(3)(x)]
    total = sum((m * m).sum() for m in maps)
    total.backward()
    return maps + [x.grad, w_dw.grad, w_g.grad, b.grad]

cpu = run("cpu")
cupy.reset_transfers()
gpu = run("gpu")
d2h = cupy.transfers["d2h"]
dropped = ops.stochastic_depth(tl.Tensor(np.ones((64, 3)), device="gpu"), 0.5, "row")
rows = dropped.numpy()
out = {"d2h": d2h, "modules": sorted({type(t.data).__module__ for t in gpu + [dropped]}),
       "equal": [bool(np.allclose(c.numpy(), g.numpy(), rtol=1e-10, atol=1e-12))
                 for c, g in zip(cpu, gpu)],
       "rows": sorted({float(v) for v in np.unique(rows)}),
       "whole_rows": bool(np.all(rows == rows[:, :1]))}
print(json.dumps(out))
"""


def test_backbone_layers_run_on_the_gpu_without_host_copies():
    out = json_of(run_fake("-c", LAYERS, timeout=600))
    assert out["d2h"] == 0
    assert out["modules"] == ["cupy"] and all(out["equal"]), out["equal"]
    assert len(out["equal"]) == 17
    assert out["rows"] == [0.0, 2.0] and out["whole_rows"]
