"""A PyTorch mixed-precision loop runs as written: autocast (float32 blocks, one warning),
GradScaler (scaling, unscale_ before clipping, skipped steps on overflow, the scale's
schedule, its state_dict), torch.compile and the memory-format names."""
import warnings

import numpy as np
import pytest

import tinylesion as tl
import tinylesion.nn as nn
from tinylesion import amp


def model_and_data():
    tl.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.Flatten(),
                          nn.Linear(4 * 6 * 6, 3))
    rng = np.random.default_rng(0)
    x = tl.tensor(rng.standard_normal((8, 3, 6, 6)).astype(np.float32))
    y = tl.tensor(rng.integers(0, 3, 8))
    return model, x, y


def train(steps, use_amp):
    model, x, y = model_and_data()
    optimizer = tl.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    scaler = tl.amp.GradScaler("cpu", enabled=use_amp)
    for _ in range(steps):
        optimizer.zero_grad()
        with tl.autocast(device_type="cpu", dtype=tl.bfloat16, enabled=use_amp):
            loss = nn.functional.cross_entropy(model(x), y)
        scaler.scale(loss).backward()
        scaler.unscale_(optimizer)
        nn.utils.clip_grad_norm_(model.parameters(), 100.0)   # (unscaled: no clipping)
        scaler.step(optimizer)
        scaler.update()
    return model, scaler


def test_a_scaled_loop_gives_the_weights_of_a_plain_one():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        scaled, scaler = train(3, use_amp=True)
    plain, _ = train(3, use_amp=False)
    assert scaler.get_scale() == 2.0 ** 16
    for (name, a), b in zip(scaled.state_dict().items(), plain.state_dict().values()):
        # the scale is a power of two: unscaling gives the same float32 gradients
        np.testing.assert_array_equal(a, b, err_msg=name)


def test_an_overflow_skips_the_step_and_backs_off():
    model, x, y = model_and_data()
    optimizer = tl.optim.SGD(model.parameters(), lr=0.1)
    scaler = tl.amp.GradScaler("cpu", init_scale=8.0, growth_interval=2)
    before = [p.numpy().copy() for p in model.parameters()]
    scaler.scale(nn.functional.cross_entropy(model(x), y)).backward()
    model[0].weight.grad.array[0, 0, 0, 0] = np.inf
    assert scaler.step(optimizer) is None
    scaler.update()
    assert scaler.get_scale() == 4.0
    for p, b in zip(model.parameters(), before):
        np.testing.assert_array_equal(p.numpy(), b)
    for _ in range(2):   # two good steps grow it back
        optimizer.zero_grad()
        scaler.scale(nn.functional.cross_entropy(model(x), y)).backward()
        scaler.step(optimizer)
        scaler.update()
    assert scaler.get_scale() == 8.0
    assert not np.array_equal(model[0].weight.numpy(), before[0])


def test_unscale_twice_is_an_error_and_the_state_round_trips():
    model, x, y = model_and_data()
    optimizer = tl.optim.SGD(model.parameters(), lr=0.1)
    scaler = tl.amp.GradScaler("cpu", init_scale=1024.0, growth_interval=7)
    scaler.scale(nn.functional.cross_entropy(model(x), y)).backward()
    scaler.unscale_(optimizer)
    with pytest.raises(RuntimeError, match="already been called"):
        scaler.unscale_(optimizer)
    scaler.step(optimizer)
    scaler.update()
    state = scaler.state_dict()
    assert state == {"scale": 1024.0, "growth_factor": 2.0, "backoff_factor": 0.5,
                     "growth_interval": 7, "_growth_tracker": 1}
    other = tl.amp.GradScaler("cpu")
    other.load_state_dict(state)
    assert other.state_dict() == state
    with pytest.raises(ValueError, match="backoff_factor must be in"):
        tl.amp.GradScaler("cpu", backoff_factor=2.0)


def test_a_cuda_scaler_without_a_gpu_disables_itself_as_pytorch_does():
    if tl.cuda.is_available():
        pytest.skip("this machine has a GPU")
    with pytest.warns(UserWarning, match="CUDA is not available"):
        scaler = tl.cuda.amp.GradScaler()
    loss = tl.tensor(2.0, requires_grad=True)
    assert scaler.scale(loss) is loss and not scaler.is_enabled() and scaler.get_scale() == 1.0


def test_autocast_warns_once_that_it_runs_float32(monkeypatch):
    monkeypatch.setattr(amp, "_warned", False)
    model, x, _ = model_and_data()
    with pytest.warns(UserWarning, match="runs in float32"):
        with tl.autocast("cuda", dtype=tl.float16):
            out = model(x)
    assert out.dtype == np.float32
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with tl.cuda.amp.autocast():
            pass

        @tl.amp.autocast("cpu")
        def forward(inputs):
            return model(inputs)
        np.testing.assert_array_equal(forward(x).numpy(), out.numpy())
    with pytest.raises(ValueError, match="device_type must be"):
        tl.autocast("tpu")


def test_compile_and_memory_formats_are_accepted():
    model, x, _ = model_and_data()
    assert tl.compile(model) is model and tl.compile(mode="max-autotune")(len) is len
    model = model.to(memory_format=tl.channels_last)
    x = x.to(memory_format=tl.channels_last).contiguous(memory_format=tl.channels_last)
    assert x.is_contiguous() and not x.is_contiguous(memory_format=tl.channels_last)
    with pytest.raises(TypeError, match="memory_format must be one of"):
        x.to(memory_format="channels_last")
    with pytest.raises(ValueError, match="unknown mode"):
        tl.compile(model, mode="fastest")
