"""The layers and losses of bench/torchops2_fixtures.py (transposed and 1-D convolutions, 1-D
pooling, instance norm, reflect/replicate/circular padding, pixel shuffle, unfold/fold,
adaptive max pooling, Softmax2d, Softmin, GLU, Threshold, Unflatten, Bilinear, the Poisson and
Gaussian NLL and margin losses) and torch's statistics and tensor functions: PyTorch parity
through the stored fixture, float64 gradient checks, errors and the GPU path."""
import os

import numpy as np
import pytest

import tinylesion as tl
import tinylesion.nn.functional as F
from tinylesion.testing import gradcheck
from torch_fixture_parity import check_case, gpu_parity_script, load_cases

HERE = os.path.dirname(__file__)
cases = load_cases("torchops2_fixtures")
NAMES = [name for name, _, _ in cases.CASES]
FIXTURE = os.path.join(HERE, "fixtures", "torchops2_reference.npz")


@pytest.fixture(scope="module")
def ref():
    with np.load(FIXTURE) as f:
        return dict(f)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("number", range(len(cases.CASES)), ids=NAMES)
def test_matches_torch(ref, number, dtype):
    check_case(cases, ref, number, dtype, float32_atol=3e-5)


# gradients that are PyTorch's by design rather than the derivative: the variance clamped to
# eps passes its gradient through unchanged
NOT_DERIVATIVES = {"gaussian_nll_loss/clamped"}


def _differentiable():
    """The cases where PyTorch gives some input a gradient (and it is the derivative)."""
    with np.load(FIXTURE) as f:
        keys = set(f.files)
    return [number for number, (name, _, arrays) in enumerate(cases.CASES)
            if name not in NOT_DERIVATIVES
            and any(f"{name}/float64/grad{i}" in keys for i in range(len(arrays)))]


@pytest.mark.parametrize("number", _differentiable(), ids=lambda n: NAMES[n])
def test_gradients_by_central_differences(ref, number):
    """Each differentiable case at fresh inputs (the stored ones scaled by 1 ± 10%, which keeps
    their signs: variances and rates stay positive), for the inputs PyTorch gives a
    gradient."""
    name, call, arrays = cases.CASES[number]
    rng = np.random.default_rng(number)
    floats = [i for i, a in enumerate(arrays) if a.dtype.kind == "f"]
    fresh = [arrays[i] * (1 + 0.1 * rng.standard_normal(arrays[i].shape)) for i in floats]
    check = [k for k, i in enumerate(floats) if f"{name}/float64/grad{i}" in ref]

    def fn(*values):
        inputs = list(arrays)
        for i, v in zip(floats, values):
            inputs[i] = v
        out = call(tl, F, *[t if isinstance(t, tl.Tensor) else tl.tensor(t) for t in inputs])
        return cases.outputs(out)[0]

    gradcheck(fn, *fresh, rtol=1e-5, atol=1e-6, check=check)


GPU_SCRIPT = gpu_parity_script("torchops2_fixtures")


def test_the_gpu_path_gives_the_cpu_numbers():
    """Every case on the stand-in CuPy: the CPU's numbers and dtypes, device arrays only, and
    the differentiable ones without a device-to-host copy (but where an argument's values
    must be checked)."""
    from test_fake_gpu import json_of, run_fake
    out = json_of(run_fake("-c", GPU_SCRIPT))
    assert out["failed"] == {}
    assert out["differs"] == []
    assert set(out["modules"]) == {"cupy"}
    # (the variances' signs, the class indices' and take_along_dim's indices' ranges, and a
    # tensor q's values are read on the host)
    checked = {"gaussian_nll_loss", "multi_margin_loss", "MultiMarginLoss", "take_along_dim",
               "quantile"}
    copies = {name: n for name, n in out["d2h"].items() if n}
    assert {name.split("/")[0] for name in copies} <= checked, copies
    assert len(out["d2h"]) > 100
