"""Shared fixtures: run op tests on every available backend."""
import os
import sys

import numpy as np
import pytest

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from tinylesion import backend  # noqa: E402

DEVICES = ["cpu"] + (["gpu"] if backend.gpu_available() else [])


@pytest.fixture(params=DEVICES)
def device(request):
    """Each device this machine has: 'cpu' always, 'gpu' where CuPy finds a CUDA device."""
    return request.param


@pytest.fixture
def rng():
    return np.random.default_rng(0)
