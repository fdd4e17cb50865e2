"""F.conv_transpose1d and nn.ConvTranspose1d (ConvTranspose2d's op on a height of 1): PyTorch
parity through tests/fixtures/conv_transpose1d_reference.npz (bench/conv_transpose1d_fixtures.py),
float64 central-difference gradients, the module's parameters and output_size, errors, and the
GPU path."""
import os

import numpy as np
import pytest

import tinylesion as tl
import tinylesion.nn.functional as F
from tinylesion import nn
from tinylesion.testing import gradcheck
from torch_fixture_parity import check_case, gpu_parity_script, load_cases

HERE = os.path.dirname(__file__)
cases = load_cases("conv_transpose1d_fixtures")
NAMES = [name for name, _, _ in cases.CASES]
FIXTURE = os.path.join(HERE, "fixtures", "conv_transpose1d_reference.npz")


@pytest.fixture(scope="module")
def ref():
    with np.load(FIXTURE) as f:
        return dict(f)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("number", range(len(cases.CASES)), ids=NAMES)
def test_matches_torch(ref, number, dtype):
    check_case(cases, ref, number, dtype, float32_atol=3e-5)


@pytest.mark.parametrize("options", [dict(stride=2), dict(stride=3, padding=1, output_padding=2),
                                     dict(stride=2, padding=2, output_padding=1, groups=2,
                                          dilation=3)])
def test_gradients_by_central_differences(options):
    rng = np.random.default_rng(4)
    groups = options.get("groups", 1)
    x, w, b = (rng.standard_normal((2, 4, 5)), rng.standard_normal((4, 3, 3)),
               rng.standard_normal(3 * groups))
    gradcheck(lambda x, w, b: F.conv_transpose1d(x, w, b, **options), x, w, b)


def test_the_module_has_pytorchs_parameters_and_output_size():
    up = nn.ConvTranspose1d(4, 6, 3, stride=2, padding=1, groups=2, dtype=tl.float64)
    assert {k: tuple(v.shape) for k, v in up.state_dict().items()} == {
        "weight": (4, 3, 3), "bias": (6,)}
    bound = 1 / np.sqrt(3 * 3)   # fan_in from weight.shape[1:], as torch's
    assert 0 < np.abs(up.weight.numpy()).max() <= bound
    x = tl.tensor(np.random.default_rng(0).standard_normal((2, 4, 7)))
    assert up(x).shape == (2, 6, 13) and up(x, output_size=[2, 6, 14]).shape == (2, 6, 14)
    np.testing.assert_allclose(up(x[0]).numpy(), up(x).numpy()[0], rtol=1e-12)
    assert "ConvTranspose1d(4, 6, kernel_size=(3,), stride=(2,), padding=(1,), groups=2)" \
        == repr(up)


@pytest.mark.parametrize("call, error, words", [
    (lambda: F.conv_transpose1d(tl.ones(1, 2, 5), tl.ones(3, 1, 2)), tl.errors.InputError,
     "2 channels"),
    (lambda: F.conv_transpose1d(tl.ones(1, 2, 5), tl.ones(2, 1, 2), stride=2,
                                output_padding=2), ValueError,
     "output_padding 2 must be smaller than either stride 2 or dilation 1"),
    (lambda: F.conv_transpose1d(tl.ones(1, 2, 5), tl.ones(2, 1, 2), stride=0), ValueError,
     "stride must be positive"),
    (lambda: F.conv_transpose1d(tl.ones(1, 2, 5), tl.ones(2, 1, 2), groups=3), ValueError,
     "groups=3"),
    (lambda: F.conv_transpose1d(tl.ones(1, 2, 2), tl.ones(2, 1, 2), padding=2), ValueError,
     "not positive"),
    (lambda: F.conv_transpose1d(tl.ones(1, 2, 5), tl.ones(2, 1, 2), tl.ones(2)),
     tl.errors.InputError, "bias"),
    (lambda: F.conv_transpose1d(tl.ones(1, 2, 3, 5), tl.ones(2, 1, 2)), tl.errors.InputError,
     "(N, C, L)"),
    (lambda: F.conv_transpose1d(tl.ones(1, 2, 5), tl.ones(2, 1, 2), padding=(1, 1)),
     ValueError, "1-tuple"),
    (lambda: nn.ConvTranspose1d(3, 4, 2, groups=2), ValueError, "in_channels"),
    (lambda: nn.ConvTranspose1d(2, 4, 2, padding_mode="reflect"), ValueError, "padding_mode"),
    (lambda: nn.ConvTranspose1d(2, 4, 0), ValueError, "kernel_size must be positive"),
    (lambda: nn.ConvTranspose1d(2, 4, 3, stride=2)(tl.ones(1, 2, 5), output_size=[14]),
     ValueError, "from 11 to 12"),
])
def test_bad_arguments_raise_clear_errors(call, error, words):
    with pytest.raises(error) as caught:
        call()
    assert words in str(caught.value)


GPU_SCRIPT = gpu_parity_script("conv_transpose1d_fixtures")


def test_the_gpu_path_gives_the_cpu_numbers():
    """Every case on the stand-in CuPy: the CPU's numbers and dtypes, device arrays only, no
    device-to-host copy."""
    from test_fake_gpu import json_of, run_fake
    out = json_of(run_fake("-c", GPU_SCRIPT))
    assert out["failed"] == {} and out["differs"] == []
    assert set(out["modules"]) == {"cupy"}
    assert len(out["d2h"]) == len(NAMES) and not any(out["d2h"].values()), out["d2h"]
