"""Follow-ups to issue 17 (never lose a run): a weight turning non-finite stops the run with
the best finite epoch kept."""
import numpy as np
import pytest

import tinylesion as tl
from tinylesion import train
from tinylesion.optim import Adam

from test_train import ArrayLoader, blobs, small_cnn


class PoisonAt:
    """An optimizer that steps as `inner` does, then writes `value` into `target` (a name of
    the model's state_dict) after the last step of epoch `epoch` (1-based)."""

    def __init__(self, inner, model, target, epoch, steps_per_epoch, value=np.inf):
        self.inner, self.model, self.target, self.value = inner, model, target, value
        self.at, self.steps = epoch * steps_per_epoch, 0
        self.param_groups = inner.param_groups

    def zero_grad(self):
        self.inner.zero_grad()

    def step(self):
        self.inner.step()
        self.steps += 1
        if self.steps == self.at:
            self.model.state_dict()[self.target][...] = self.value

    def state_dict(self):
        return self.inner.state_dict()

    def load_state_dict(self, state):
        self.inner.load_state_dict(state)


@pytest.mark.parametrize("target, value", [("6.weight", np.inf), ("1.running_var", np.nan)])
def test_a_non_finite_weight_stops_the_run_and_keeps_the_best_finite_epoch(tmp_path, target,
                                                                           value):
    tl.manual_seed(0)
    model = small_cnn()
    x, y = blobs(48, 1)
    loader = ArrayLoader(x, y, batch_size=16)
    opt = PoisonAt(Adam(model.parameters(), lr=1e-2), model, target, epoch=2,
                   steps_per_epoch=len(loader), value=value)
    seen = []
    path = tmp_path / "checkpoint.npz"
    with pytest.raises(train.TrainingError) as caught:
        train.fit(model, opt, loader, epochs=4, checkpoint_path=path, progress=False,
                  log=lambda *a: None, on_epoch_end=lambda e, h: seen.append(
                      {k: v.copy() for k, v in model.state_dict().items()}))
    error = caught.value
    assert f"weight {target} became NaN or infinite at epoch 2" in str(error)
    assert error.best_epoch == 1 and error.checkpoint_epoch == 1
    assert all(len(v) == 1 for v in error.history.values())   # nothing of epoch 2
    for k, v in model.state_dict().items():                    # epoch 1's weights, finite
        np.testing.assert_array_equal(v, seen[0][k])
    ck = train.load_checkpoint(path)
    assert ck["epoch"] == 1 and all(np.isfinite(v).all() for v in ck["model"].values())
