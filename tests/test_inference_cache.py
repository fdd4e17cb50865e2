"""Folded weights kept between inference calls: reused while the weights stand, recomputed after
every way tinylesion changes them."""
import numpy as np
import pytest

import tinylesion as tl
import tinylesion.nn as nn
import tinylesion.nn.inference_fusion as fusion
from tinylesion import inference_cache


def _block(seed=3):
    """conv -> eval batch norm -> ReLU as ResNet's blocks call them (conv_bn)."""
    tl.manual_seed(seed)
    rng = np.random.default_rng(seed)
    conv, bn = nn.Conv2d(8, 12, 3, padding=1, bias=True), nn.BatchNorm2d(12)
    bn.weight.array[...] = rng.uniform(0.5, 2.0, 12)
    bn.bias.array[...] = rng.standard_normal(12)
    bn.running_mean.array[...] = rng.standard_normal(12)
    bn.running_var.array[...] = rng.uniform(0.1, 3.0, 12)
    inference_cache.weights_changed()   # (raw writes above)
    return conv, bn.eval(), nn.ReLU()


X = tl.Tensor(np.random.default_rng(5).standard_normal((2, 8, 10, 10)).astype(np.float32))


def _folded_and_plain(conv, bn, relu, monkeypatch):
    """(conv_bn under no_grad, folded; the layers one by one), as arrays."""
    with tl.no_grad():
        got = fusion.conv_bn(conv, bn, X, relu).numpy()
        monkeypatch.setattr(fusion, "ENABLED", False)
        plain = fusion.conv_bn(conv, bn, X, relu).numpy()
        monkeypatch.setattr(fusion, "ENABLED", True)
    return got, plain


def _close(a, b, tol=1e-5):
    """Equal to float32 rounding: max |a - b| within tol of max |b|."""
    return float(np.abs(a - b).max()) <= tol * float(np.abs(b).max())


@pytest.fixture
def folds(monkeypatch):
    """The list of folds of a weight made so far (one entry per fold)."""
    made = []
    monkeypatch.setattr(fusion, "_fold", lambda W, *a, _f=fusion._fold:
                        (W is not None and made.append(1)) or _f(W, *a))
    return made


def test_folded_weights_are_reused_while_nothing_changes(folds, monkeypatch):
    conv, bn, relu = _block()
    first, plain = _folded_and_plain(conv, bn, relu, monkeypatch)
    with tl.no_grad():
        again = fusion.conv_bn(conv, bn, X, relu).numpy()
    assert folds == [1]
    np.testing.assert_array_equal(again, first)
    assert _close(first, plain)


def _sgd_step(conv, bn, relu):
    opt = tl.optim.SGD(list(conv.parameters()) + list(bn.parameters()), lr=0.5)
    relu(bn(conv(X))).sum().backward()
    opt.step()


def _adam_step_without_backward(conv, bn, relu):
    opt = tl.optim.Adam(conv.parameters(), lr=0.5)
    conv.weight.grad = tl.Tensor(np.ones(conv.weight.shape, np.float32))
    opt.step()


def _load_state_dict(conv, bn, relu):
    state = {k: np.asarray(v) * 1.5 for k, v in conv.state_dict().items()}
    conv.load_state_dict(state)


def _in_place_operator(conv, bn, relu):
    with tl.no_grad():
        conv.weight *= 2


def _item_assignment(conv, bn, relu):
    with tl.no_grad():
        conv.weight[0] = 0


def _write_through_a_view(conv, bn, relu):
    view = conv.weight.view(-1)
    assert np.shares_memory(view.array, conv.weight.array)
    with tl.no_grad():
        view.fill_(0.25)


def _copy_into_batch_norm(conv, bn, relu):
    bn.running_var.copy_(bn.running_var.numpy() * 4)


def _running_statistics_in_training(conv, bn, relu):
    bn.training = True    # (set directly: not through train())
    with tl.no_grad():
        bn(conv(X))
    bn.training = False


def _init_function(conv, bn, relu):
    nn.init.normal_(conv.weight, 0.0, 0.3)


def _new_parameter(conv, bn, relu):
    conv.weight = nn.Parameter(np.full(conv.weight.shape, 0.1, np.float32))


def _eps(conv, bn, relu):
    bn.eps = 0.5


def _in_place_method_through_data(conv, bn, relu):
    conv.weight.data.mul_(-1)          # PyTorch's .data: a Tensor sharing the weight's array


def _item_assignment_through_data(conv, bn, relu):
    bn.bias.data[...] += 3


def _assignment_to_data(conv, bn, relu):
    conv.weight.data = conv.weight.data * 0.5


def _raw_write_then_weights_changed(conv, bn, relu):
    conv.weight.array[...] *= -1
    inference_cache.weights_changed()


def _raw_write_then_eval(conv, bn, relu):
    bn.bias.array[...] += 3
    bn.eval()


@pytest.mark.parametrize("change", [
    _sgd_step, _adam_step_without_backward, _load_state_dict, _in_place_operator,
    _item_assignment, _write_through_a_view, _copy_into_batch_norm,
    _running_statistics_in_training, _init_function, _new_parameter, _eps,
    _in_place_method_through_data, _item_assignment_through_data, _assignment_to_data,
    _raw_write_then_weights_changed, _raw_write_then_eval])
def test_a_change_of_the_weights_folds_them_again(change, folds, monkeypatch):
    conv, bn, relu = _block()
    before, _ = _folded_and_plain(conv, bn, relu, monkeypatch)
    change(conv, bn, relu)
    after, plain = _folded_and_plain(conv, bn, relu, monkeypatch)
    assert _close(after, plain)
    assert not _close(after, before, 1e-3)   # (the change mattered)
    assert len(folds) == 2


def test_a_forward_pass_writes_nothing_and_entries_die_with_their_model():
    import gc
    from tinylesion.models import resnet18
    model = resnet18(num_classes=3, image_size=(32, 32)).eval()
    x = tl.Tensor(np.random.default_rng(1).standard_normal((1, 3, 32, 32)).astype(np.float32))
    with tl.no_grad():
        model(x)
        count = inference_cache.writes()
        model(x)
    assert inference_cache.writes() == count   # so the next call finds its folds
    held = inference_cache.cached_count()
    assert held > 0
    del model
    gc.collect()
    assert inference_cache.cached_count() < held


@pytest.mark.parametrize("change", [_copy_into_batch_norm, _running_statistics_in_training,
                                    _eps, _raw_write_then_eval])
def test_the_batch_norms_own_pass_follows_its_changes(change, folds, monkeypatch):
    """Where the weights outweigh the output (no fold), the batch norm's scale and shift are
    kept instead, and recomputed after the same changes."""
    conv, bn, relu = _block()
    small = tl.Tensor(np.random.default_rng(6).standard_normal((1, 8, 3, 3)).astype(np.float32))
    monkeypatch.setattr(__import__(__name__), "X", small)
    before, _ = _folded_and_plain(conv, bn, relu, monkeypatch)
    change(conv, bn, relu)
    after, plain = _folded_and_plain(conv, bn, relu, monkeypatch)
    assert folds == []
    assert _close(after, plain)
    assert not _close(after, before, 1e-3)


def test_the_winograd_filter_transform_is_kept_and_follows_the_weights(monkeypatch):
    """A 3x3 layer on the CPU's Winograd path: its batch norm folded in (even where the
    weights outweigh the output) and the folded weights' transform made once, until a change."""
    import kernels.conv_cpu as conv_cpu
    import kernels.winograd as winograd
    tl.manual_seed(4)
    rng = np.random.default_rng(4)
    conv, bn, relu = nn.Conv2d(64, 32, 3, padding=1, bias=False), nn.BatchNorm2d(32), nn.ReLU()
    bn.running_mean.array[...] = rng.standard_normal(32)
    bn.running_var.array[...] = rng.uniform(0.1, 3.0, 32)
    bn.weight.array[...] = rng.uniform(0.5, 2.0, 32)
    bn.eval()
    inference_cache.weights_changed()
    x = tl.Tensor(rng.standard_normal((1, 64, 14, 14)).astype(np.float32))
    assert conv_cpu.forward_path(x.shape, conv.weight.shape, (1, 1), (1, 1)) == "winograd"
    assert 2 * 14 * 14 < 64 * 9   # (no fold without the transform to keep)
    made = []
    monkeypatch.setattr(winograd, "filter_transform",
                        lambda W, m, _f=winograd.filter_transform: made.append(m) or _f(W, m))

    def both():
        with tl.no_grad():
            got = [fusion.conv_bn(conv, bn, x, relu).numpy() for _ in range(2)]
            monkeypatch.setattr(fusion, "ENABLED", False)
            plain = fusion.conv_bn(conv, bn, x, relu).numpy()
            monkeypatch.setattr(fusion, "ENABLED", True)
        np.testing.assert_array_equal(got[0], got[1])
        assert _close(got[0], plain, 1e-5)
        return got[0]

    before = both()
    assert len(made) == 2     # once for the kept transform, once for the plain layers' call
    with tl.no_grad():
        conv.weight[:, :, 1, 1] += 0.5
    after = both()
    assert len(made) == 4 and not _close(after, before, 1e-3)


def test_weights_received_from_another_rank_drop_the_kept_folds():
    # A rank's broadcast (the run's initial weights) and the sharded step's allgather write
    # into the weights' arrays in place: both must count as writes.
    from tinylesion.distributed import World

    class TwoRanks:                       # stands in for an mpi4py communicator of 2 ranks
        def Get_rank(self):
            return 1

        def Get_size(self):
            return 2

        def Bcast(self, array, root=0):
            array[...] = 7.0

        def Allgather(self, send, recv):
            recv[...] = 7.0

    world = World(TwoRanks(), 0)
    for collective in (world.broadcast_, world.allgather_):
        before = inference_cache.writes()
        collective(np.zeros(4, np.float32))
        assert inference_cache.writes() > before, collective.__name__
