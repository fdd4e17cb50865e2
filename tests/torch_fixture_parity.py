"""The parity check shared by the torch-function fixture tests: a case list from a bench/
fixture script (loaded without importing torch) and one case's outputs and input gradients
against PyTorch's stored ones."""
import importlib.util
import os

import numpy as np

import tinylesion as tl
import tinylesion.nn.functional as F

HERE = os.path.dirname(__file__)


def load_cases(script):
    """bench/<script>.py as a module: its CASES and helpers (it imports torch inside main())."""
    spec = importlib.util.spec_from_file_location(
        script, os.path.join(HERE, "..", "bench", f"{script}.py"))
    cases = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(cases)
    return cases


def check_case(cases, ref, number, dtype, float32_atol):
    """Case `number` of `cases` in `dtype`: its outputs equal PyTorch's in `ref`, and the input
    gradients of sum(out_i * gy_i) too (an input PyTorch gave no gradient gets none or zeros)."""
    name, call, arrays = cases.CASES[number]
    key = f"{name}/{np.dtype(dtype).name}"
    tensors = cases.as_inputs(tl, arrays, dtype)
    results = cases.outputs(call(tl, F, *tensors))
    assert len(results) == len([k for k in ref if k.startswith(key + "/out")])
    tol = (dict(rtol=1e-10, atol=1e-12) if dtype == np.float64
           else dict(rtol=2e-5, atol=float32_atol))
    total = None
    gys = cases.output_grads([r.shape for r in results], number)
    for i, (r, gy) in enumerate(zip(results, gys)):
        expected = ref[f"{key}/out{i}"]
        assert r.dtype == expected.dtype and r.shape == expected.shape, (i, r.dtype, r.shape)
        np.testing.assert_allclose(r.numpy(), expected, err_msg=f"out{i}", **tol)
        if r.requires_grad:
            term = (r * tl.tensor(gy.astype(dtype))).sum()
            total = term if total is None else total + term
    if total is not None:
        total.backward()
    for i, t in enumerate(tensors):
        expected = ref.get(f"{key}/grad{i}")
        if expected is None:
            assert t.grad is None or not t.requires_grad or not np.any(t.grad.numpy()), i
            continue
        assert t.grad is not None, f"input {i} got no gradient"
        np.testing.assert_allclose(t.grad.numpy(), expected, err_msg=f"grad{i}", **tol)


_GPU_SCRIPT = r"""
import importlib.util, json, sys, numpy as np, cupy
import tinylesion as tl
import tinylesion.nn.functional as F
spec = importlib.util.spec_from_file_location("cases", "bench/FIXTURE_SCRIPT.py")
cases = importlib.util.module_from_spec(spec)
spec.loader.exec_module(cases)

def run(number, device):
    name, call, arrays = cases.CASES[number]
    tensors = [tl.tensor(a, device=device, requires_grad=a.dtype.kind == "f") for a in arrays]
    results = cases.outputs(call(tl, F, *tensors))
    total = None
    for r, gy in zip(results, cases.output_grads([r.shape for r in results], number)):
        if r.requires_grad:
            term = (r * tl.tensor(gy, device=device)).sum()
            total = term if total is None else total + term
    if total is not None:
        total.backward()
    return list(results) + [t.grad for t in tensors if t.grad is not None], total is not None

out = {"differs": [], "d2h": {}, "modules": [], "failed": {}}
for number, (name, _, _) in enumerate(cases.CASES):
    cpu, _ = run(number, "cpu")
    cupy.reset_transfers()
    try:
        gpu, differentiable = run(number, "cuda")
    except Exception as exc:
        out["failed"][name] = f"{type(exc).__name__}: {exc}"
        continue
    if differentiable:
        out["d2h"][name] = cupy.transfers["d2h"]
    out["modules"] += sorted({type(t.array).__module__ for t in gpu})
    if len(cpu) != len(gpu) or not all(
            c.dtype == g.dtype and np.allclose(c.numpy(), g.numpy(), rtol=1e-12, atol=1e-12,
                                                    equal_nan=True)
            for c, g in zip(cpu, gpu)):
        out["differs"].append(name)
"""


def gpu_parity_script(fixture_script, extra=""):
    """Python source for tests/test_fake_gpu.run_fake: every case of bench/<fixture_script>.py
    run on the CPU and on the stand-in CuPy, printed as JSON: "differs" (cases whose outputs or
    gradients differ in value or dtype), "failed" (case: the error it raised on the device),
    "d2h" (differentiable case: its device-to-host copies) and "modules" (the array modules of
    the device results). `extra`, top-level code, may add to `out` before it is printed."""
    return (_GPU_SCRIPT.replace("FIXTURE_SCRIPT", fixture_script) + extra
            + "\nprint(json.dumps(out))\n")
