"""Shared fixtures: run op tests on every available backend; hypothesis draws reproducibly."""
import os
import signal
import sys

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
