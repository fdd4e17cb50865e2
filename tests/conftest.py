"""Shared fixtures: op tests on every backend, reproducible hypothesis draws, a tiny dataset and
a finished run of the ham example to copy from."""
import os
import shutil
import signal
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import settings

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from tinylesion import backend  # noqa: E402

# NOTE: hypothesis draws the same examples on every run (derandomize), so that a test run, and
# CI, passes or fails the same way each time; HYPOTHESIS_PROFILE=explore searches afresh.
settings.register_profile("repeatable", derandomize=True)
settings.register_profile("explore", derandomize=False, max_examples=200)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "repeatable"))

# NOTE: a shell starts background jobs with SIGINT ignored, and Python then leaves it so; the
# Ctrl-C tests (an interrupt in this process, SIGINT sent to the examples they start) need
# Python's own handler, which the examples' processes then get from their interpreter again.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)

DEVICES = ["cpu"] + (["gpu"] if backend.gpu_available() else [])


@pytest.fixture(params=DEVICES)
def device(request):
    """Each device this machine has: 'cpu' always, 'gpu' where CuPy finds a CUDA device."""
    return request.param


@pytest.fixture
def rng():
    return np.random.default_rng(0)


@pytest.fixture(scope="session")
def tiny_ham(tmp_path_factory):
    """A synthetic HAM10000 folder of 24 images (32x24); tests copy it before changing it."""
    from tinylesion.data import make_synthetic
    return make_synthetic(tmp_path_factory.mktemp("ham") / "ham", n=24, seed=0,
                          image_size=(32, 24))


@pytest.fixture(scope="session")
def finished_run(tiny_ham, tmp_path_factory):
    """A finished one-epoch run (adam) of the ham example on tiny_ham; copy it to change it."""
    from example_runs import quick, run
    out = tmp_path_factory.mktemp("finished") / "run"
    assert run(*quick(tiny_ham, out))[0] == 0
    return out


@pytest.fixture
def run_copy(finished_run, tmp_path):
    """This test's own copy of finished_run, at tmp_path / 'run'."""
    out = tmp_path / "run"
    shutil.copytree(finished_run, out)
    return out


@pytest.fixture
def ham_copy(tiny_ham, tmp_path):
    """This test's own copy of tiny_ham, at tmp_path / 'ham', to break."""
    return Path(shutil.copytree(tiny_ham, tmp_path / "ham"))
