"""torch.device, torch.cuda, torch.accelerator, threads, inference_mode and cudnn flags."""
import numpy as np
import pytest

import tinylesion as tl
import tinylesion.backends.cudnn as cudnn
from tinylesion import backend


def test_device_names():
    assert tl.device("cpu") == tl.device("cpu") and tl.device("cpu").type == "cpu"
    assert tl.device("cpu").index is None
    for name in ("cuda", "cuda:0", "gpu"):
        d = tl.device(name)
        assert d.type == "cuda" and d.index == 0 and d.name == "gpu"
    assert tl.device("cuda", 0).type == "cuda"
    assert tl.device(tl.device("cpu")) is tl.device("cpu")
    with pytest.raises(tl.DeviceError, match="'mps'"):
        tl.device("mps")
    with pytest.raises(tl.DeviceError, match="index 0"):
        tl.device("cuda:1")
    x = tl.ones(2).to(tl.device("cpu"), non_blocking=True)
    assert x.device.type == "cpu"


def test_cuda_and_accelerator_agree_with_the_backend():
    gpu = backend.gpu_available()
    assert tl.cuda.is_available() == gpu == tl.accelerator.is_available()
    if gpu:
        assert tl.cuda.device_count() >= 1
        assert tl.accelerator.current_accelerator().type == "cuda"
    else:
        assert tl.cuda.device_count() == 0 == tl.accelerator.device_count()
        assert tl.accelerator.current_accelerator() is None
        with pytest.raises(tl.DeviceError):
            tl.cuda.current_device()
    tl.cuda.synchronize()
    tl.cuda.empty_cache()
    tl.accelerator.synchronize()


def test_cuda_manual_seed_leaves_the_cpu_draws_alone():
    tl.manual_seed(3)
    a = tl.rand(3).numpy()
    tl.manual_seed(3)
    tl.cuda.manual_seed(99)
    tl.cuda.manual_seed_all(99)
    np.testing.assert_array_equal(tl.rand(3).numpy(), a)
    with pytest.raises(TypeError):
        tl.cuda.manual_seed("1")


def test_num_threads_round_trip():
    before = tl.get_num_threads()
    try:
        tl.set_num_threads(1)
        assert tl.get_num_threads() == 1
    finally:
        tl.set_num_threads(before)


def test_grad_mode_switches():
    w = tl.ones(2, requires_grad=True)
    with tl.inference_mode():
        assert not tl.is_grad_enabled() and not (w * 2).requires_grad
        with tl.enable_grad():
            assert (w * 2).requires_grad
    assert tl.is_grad_enabled()
    with tl.inference_mode(False):
        assert (w * 2).requires_grad

    @tl.inference_mode()
    def predict(x):
        return x * 2

    assert not predict(w).requires_grad and predict.__name__ == "predict"
    tl.set_grad_enabled(False)
    assert not tl.is_grad_enabled()
    tl.set_grad_enabled(True)
    with tl.set_grad_enabled(False):
        assert not (w * 2).requires_grad
    assert tl.is_grad_enabled()


def test_backend_flags_are_accepted():
    cudnn.benchmark = True
    cudnn.deterministic = True
    assert tl.backends.cudnn.benchmark is True
    cudnn.benchmark = cudnn.deterministic = False
    assert tl.backends.mps.is_available() is False
    assert cudnn.is_available() == backend.gpu_available()


def test_generator_object():
    g = tl.Generator().manual_seed(7)
    a = tl.rand(4, generator=g).numpy()
    state = g.get_state()
    b = tl.rand(4, generator=g).numpy()
    g.set_state(state)
    np.testing.assert_array_equal(tl.rand(4, generator=g).numpy(), b)
    np.testing.assert_array_equal(tl.randn(2, generator=tl.Generator().manual_seed(7)).numpy(),
                                  tl.randn(2, generator=tl.Generator().manual_seed(7)).numpy())
    assert g.initial_seed() == 7 and not np.array_equal(a, b)
