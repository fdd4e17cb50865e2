"""End to end on the engine: a small CNN memorises a fixed batch with Adam."""
import numpy as np

import tinylesion as tl
import tinylesion.nn as nn
import tinylesion.nn.functional as F


def test_small_cnn_fits_fixed_batch_with_adam():
    tl.manual_seed(0)
    rng = np.random.default_rng(0)
    x = tl.Tensor(rng.standard_normal((16, 3, 12, 12)).astype(np.float32))
    y = rng.integers(0, 4, 16)
    model = nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(),
        nn.Conv2d(8, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(8 * 6 * 6, 4))
    optimizer = tl.optim.Adam(model.parameters(), lr=1e-2)
    losses = []
    for _ in range(100):
        optimizer.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.01 * losses[0], losses[::10]
