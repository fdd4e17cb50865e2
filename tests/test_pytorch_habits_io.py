"""torch.save / torch.load habits: exact paths, map_location and weights_only, state dicts."""
import os

import numpy as np
import pytest

import tinylesion as tl
from tinylesion import nn, optim


def test_model_and_optimizer_state_dicts_round_trip_through_a_pt_file(tmp_path):
    tl.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2))
    opt = optim.Adam(model.parameters(), lr=0.01, betas=(0.8, 0.9))
    for _ in range(2):
        opt.zero_grad()
        model(tl.randn(5, 4)).sum().backward()
        opt.step()
    path = tmp_path / "mnist_cnn.pt"
    assert tl.save(model.state_dict(), path) == str(path)
    assert os.listdir(tmp_path) == ["mnist_cnn.pt"]
    tl.save({"model": model.state_dict(), "optimizer": opt.state_dict(), "epoch": 2},
            tmp_path / "checkpoint.pth")
    weights = tl.load(path, map_location="cpu", weights_only=True)
    other = nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2))
    other.load_state_dict(weights)
    for a, b in zip(model.parameters(), other.parameters()):
        np.testing.assert_array_equal(a.array, b.array)
    checkpoint = tl.load(tmp_path / "checkpoint.pth", map_location=tl.device("cpu"))
    saved = opt.state_dict()
    loaded = checkpoint["optimizer"]
    assert loaded["param_groups"][0]["params"] == saved["param_groups"][0]["params"]
    assert list(loaded["param_groups"][0]["betas"]) == [0.8, 0.9]
    assert sorted(loaded["state"]) == sorted(saved["state"])
    for index, entry in saved["state"].items():
        for name, value in entry.items():
            np.testing.assert_array_equal(loaded["state"][index][name], value)
    opt2 = optim.Adam(other.parameters(), lr=0.5)
    opt2.load_state_dict(loaded)
    assert opt2.param_groups[0]["lr"] == 0.01
    x = tl.randn(5, 4)
    for m, o in ((model, opt), (other, opt2)):
        o.zero_grad()
        m(x).sum().backward()
        o.step()
    for a, b in zip(model.parameters(), other.parameters()):
        np.testing.assert_array_equal(a.array, b.array)


def test_load_keywords(tmp_path):
    path = tl.save({"w": np.ones(2)}, tmp_path / "w.pt")
    for where in (None, "cpu", lambda storage, loc: storage, {"cuda:0": "cpu"}):
        assert isinstance(tl.load(path, map_location=where, weights_only=False)["w"], np.ndarray)
    with pytest.raises(ValueError, match="map_location 'mps'"):
        tl.load(path, map_location="mps")
    if not tl.cuda.is_available():
        with pytest.raises(tl.DeviceError):
            tl.load(path, map_location="cuda")
