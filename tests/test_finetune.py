"""Fine-tuning: frozen parameters and batch-norm statistics stay exactly, per-group learning
rates, the two-phase schedule in fit, resume across the phase switch, blocks and heads."""
import numpy as np
import pytest

import tinylesion as tl
import tinylesion.nn as nn
from tinylesion import finetune, models, train
from tinylesion.optim import SGD, Adam, ReduceLROnPlateau, StepLR

from test_train import ArrayLoader, blobs

QUIET = dict(progress=False, log=lambda *a: None, mean=(0.4,) * 3, std=(0.2,) * 3)


def tiny_classifier(classes=3):
    """Two conv stages (conv, BN, ReLU, pool) and a linear head, on 8×8 inputs."""
    layers = [nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.MaxPool2d(2),
              nn.Conv2d(4, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.MaxPool2d(2),
              nn.Flatten(), nn.Linear(4 * 2 * 2, classes)]
    return models.Classifier("tiny", layers, classes, (8, 8), False, {})


def snapshot(model):
    return {k: np.array(v, copy=True) for k, v in model.state_dict().items()}


def train_steps(model, opt, steps=3, seed=0, set_to_none=True):
    x, y = blobs(16, seed)
    for _ in range(steps):
        model.train()  # as a hand-written loop does: frozen batch norms must stay in eval
        loss = nn.functional.cross_entropy(model(tl.Tensor(x.astype(np.float32) / 255)),
                                           tl.Tensor(y))
        opt.zero_grad(set_to_none=set_to_none)
        loss.backward()
        opt.step()


# ---- freeze and unfreeze -------------------------------------------------------------------
@pytest.mark.parametrize("set_to_none", [True, False])
def test_frozen_parameters_and_batch_norm_statistics_do_not_change(set_to_none):
    tl.manual_seed(0)
    model = tiny_classifier()
    first = nn.Sequential(*list(model)[:4])
    finetune.freeze(first)
    before = snapshot(model)
    opt = Adam(model.parameters(), lr=1e-2, weight_decay=0.1)  # decay would move them too
    train_steps(model, opt, set_to_none=set_to_none)
    after = snapshot(model)
    for key in ("0.weight", "0.bias", "1.weight", "1.bias", "1.running_mean", "1.running_var",
                "1.num_batches_tracked"):
        np.testing.assert_array_equal(after[key], before[key], err_msg=key)
    for key in ("4.weight", "5.weight", "5.running_mean", "9.weight", "9.bias"):
        assert not np.array_equal(after[key], before[key]), key
    assert after["5.num_batches_tracked"] == before["5.num_batches_tracked"] + 3
    assert model[1].training is False and model[5].training is True
    assert all(not p.requires_grad for p in first.parameters())
    assert all(p not in opt.state for p in first.parameters())


def test_a_frozen_batch_norm_normalises_with_its_running_statistics():
    tl.manual_seed(1)
    bn = nn.BatchNorm2d(3)
    bn.running_mean.array[...] = [0.5, -1.0, 2.0]
    bn.running_var.array[...] = [4.0, 0.25, 1.0]
    x = tl.Tensor(np.random.default_rng(0).normal(size=(4, 3, 5, 5)).astype(np.float32))
    expected = (x.array - bn.running_mean.array[:, None, None]) / np.sqrt(
        bn.running_var.array[:, None, None] + bn.eps)
    finetune.freeze(bn)
    bn.train()
    np.testing.assert_allclose(bn(x).array, expected, rtol=1e-5, atol=1e-6)
    finetune.unfreeze(bn)
    bn.train()
    assert bn.training and all(p.requires_grad for p in bn.parameters())
    out = bn(x).array  # batch statistics again: each channel has mean 0 over the batch
    np.testing.assert_allclose(out.mean(axis=(0, 2, 3)), 0.0, atol=1e-5)


def test_set_frozen_restores_exactly_the_recorded_parameters():
    model = tiny_classifier()
    finetune.freeze(model)
    finetune.unfreeze(model[4])
    names = finetune.frozen_parameters(model)
    other = tiny_classifier()
    finetune.set_frozen(other, names)
    assert finetune.frozen_parameters(other) == names == ["0.weight", "0.bias", "1.weight",
                                                          "1.bias", "5.weight", "5.bias",
                                                          "9.weight", "9.bias"]
    other.train()
    assert [m.training for m in (other[1], other[4], other[5])] == [False, True, False]


# ---- per-group learning rates (PyTorch's semantics) ----------------------------------------
def two_params():
    return (nn.Parameter(np.array([1.0, 2.0], np.float32)),
            nn.Parameter(np.array([3.0, -1.0], np.float32)))


def test_sgd_applies_each_groups_learning_rate():
    a, b = two_params()
    opt = SGD([{"params": [a], "lr": 0.1}, {"params": [b]}], lr=0.01)
    a.grad = tl.Tensor(np.array([1.0, -2.0], np.float32))
    b.grad = tl.Tensor(np.array([4.0, 1.0], np.float32))
    opt.step()
    np.testing.assert_array_equal(a.array, np.float32([1.0, 2.0]) - np.float32(0.1) *
                                  np.float32([1.0, -2.0]))
    np.testing.assert_array_equal(b.array, np.float32([3.0, -1.0]) - np.float32(0.01) *
                                  np.float32([4.0, 1.0]))


def test_adam_first_step_moves_each_group_by_its_own_rate():
    a, b = two_params()
    opt = Adam([{"params": [a], "lr": 1e-3}, {"params": [b], "lr": 1e-4}])
    a.grad = tl.Tensor(np.array([0.5, -3.0], np.float32))
    b.grad = tl.Tensor(np.array([2.0, 0.1], np.float32))
    opt.step()  # NOTE: Adam's first step is lr · g / (|g| + eps) ≈ lr · sign(g)
    np.testing.assert_allclose(a.array, [1.0 - 1e-3, 2.0 + 1e-3], rtol=1e-6)
    np.testing.assert_allclose(b.array, [3.0 - 1e-4, -1.0 - 1e-4], rtol=1e-6)


def test_add_param_group_and_schedules_act_on_every_group():
    a, b = two_params()
    opt = Adam([a], lr=1e-2)
    plateau = ReduceLROnPlateau(opt, factor=0.5, patience=0)
    opt.add_param_group({"params": [b], "lr": 1e-3})
    assert opt.param_groups[1]["betas"] == opt.defaults["betas"]  # defaults fill the rest
    plateau.step(1.0)
    plateau.step(2.0)  # one bad epoch with patience 0: every group halves
    assert [g["lr"] for g in opt.param_groups] == [5e-3, 5e-4]
    with pytest.raises(ValueError, match="more than one parameter group"):
        opt.add_param_group({"params": [a]})
    opt2 = SGD([{"params": [a], "lr": 1.0}, {"params": [b], "lr": 0.1}], lr=0.5)
    step = StepLR(opt2, step_size=1, gamma=0.5)
    opt2.step()
    step.step()
    assert [g["lr"] for g in opt2.param_groups] == [0.5, 0.05]


def test_optimizer_state_dict_keeps_the_groups_learning_rates():
    a, b = two_params()
    opt = Adam([{"params": [a], "lr": 1e-3}, {"params": [b], "lr": 1e-4}])
    a2, b2 = two_params()
    opt2 = Adam([{"params": [a2], "lr": 9.0}, {"params": [b2], "lr": 9.0}])
    opt2.load_state_dict(opt.state_dict())
    assert [g["lr"] for g in opt2.param_groups] == [1e-3, 1e-4]


# ---- the two-phase schedule in fit ---------------------------------------------------------
def make_two_phase(seed=0, freeze_epochs=2, unfreeze_blocks=None, lr=1e-2, factor=0.1):
    tl.manual_seed(seed)
    model = tiny_classifier()
    groups = finetune.parameter_groups(model, lr, factor)
    opt = Adam(groups)
    sched = ReduceLROnPlateau(opt, factor=0.5, patience=0)
    phases = finetune.TwoPhase(model, freeze_epochs, unfreeze_blocks, log=lambda *a: None)
    xtr, ytr = blobs(64, 1, size=8)
    xva, yva = blobs(32, 2, size=8)
    return (model, opt, sched, phases, ArrayLoader(xtr, ytr, seed=seed),
            ArrayLoader(xva, yva, shuffle=False))


def test_the_phase_switch_happens_at_the_right_epoch_with_the_right_rates():
    model, opt, sched, phases, tr, va = make_two_phase(freeze_epochs=2, unfreeze_blocks=1)
    start = snapshot(model)
    seen = []

    def record(epoch, history):
        seen.append((epoch, snapshot(model), [g["lr"] for g in opt.param_groups],
                     finetune.frozen_parameters(model)))

    train.fit(model, opt, tr, va, epochs=4, scheduler=sched, on_epoch_end=record,
              early_stopping=0, phases=phases, **QUIET)
    body = ["0.weight", "0.bias", "1.weight", "1.running_mean", "4.weight", "5.running_var"]
    for epoch in (0, 1):
        for key in body:
            np.testing.assert_array_equal(seen[epoch][1][key], start[key], err_msg=key)
        assert not np.array_equal(seen[epoch][1]["9.weight"], start["9.weight"])
    # from epoch 3 (index 2) the last block trains; the first stays frozen
    for key in ("0.weight", "1.weight", "1.running_mean"):
        np.testing.assert_array_equal(seen[3][1][key], start[key], err_msg=key)
    for key in ("4.weight", "5.weight", "5.running_mean"):
        assert not np.array_equal(seen[2][1][key], seen[1][1][key]), key
    assert seen[1][3] == ["0.weight", "0.bias", "1.weight", "1.bias", "4.weight", "4.bias",
                          "5.weight", "5.bias"]
    assert seen[2][3] == ["0.weight", "0.bias", "1.weight", "1.bias"]
    for _, _, (head_lr, body_lr), _ in seen:  # the body at lr × factor, through the plateaus
        assert body_lr == pytest.approx(head_lr * 0.1)
    assert seen[0][2] == [1e-2, pytest.approx(1e-3)]


def test_resume_across_the_switch_equals_an_uninterrupted_run(tmp_path):
    model, opt, sched, phases, tr, va = make_two_phase()
    train.fit(model, opt, tr, va, epochs=4, scheduler=sched, early_stopping=3,
              checkpoint_path=tmp_path / "full.npz", phases=phases, **QUIET)
    expected = snapshot(model)
    expected_lrs = [g["lr"] for g in opt.param_groups]

    class Interrupt(Exception):
        pass

    def stop(epoch, history):
        if epoch == 1:  # after the last frozen epoch: the switch is the resumed run's first
            raise Interrupt

    ck = tmp_path / "part.npz"
    model, opt, sched, phases, tr, va = make_two_phase()
    with pytest.raises(Interrupt):
        train.fit(model, opt, tr, va, epochs=4, scheduler=sched, early_stopping=3,
                  checkpoint_path=ck, phases=phases, on_epoch_end=stop, **QUIET)
    saved = train.load_checkpoint(ck)
    assert saved["finetune"]["phase"] == "frozen" and "4.weight" in saved["finetune"]["frozen"]
    tl.backend.generator().random(5)
    model, opt, sched, phases, tr, va = make_two_phase()
    train.fit(model, opt, tr, va, epochs=4, scheduler=sched, early_stopping=3,
              checkpoint_path=ck, resume=True, phases=phases, **QUIET)
    for k, v in model.state_dict().items():
        np.testing.assert_array_equal(v, expected[k], err_msg=k)
    assert [g["lr"] for g in opt.param_groups] == expected_lrs
    assert train.load_checkpoint(ck)["finetune"] == {"phase": "unfrozen", "frozen": []}


def test_a_damaged_finetune_entry_is_named(tmp_path):
    model, opt, sched, phases, tr, va = make_two_phase()
    train.fit(model, opt, tr, va, epochs=1, checkpoint_path=tmp_path / "ck.npz",
              phases=phases, **QUIET)
    ck = train.load_checkpoint(tmp_path / "ck.npz")
    ck["finetune"] = {"phase": "half", "frozen": []}
    with pytest.raises(tl.io.CheckpointError, match="entry 'finetune'"):
        train.check_checkpoint(ck, "ck.npz")


# ---- blocks, heads and pretrained weights --------------------------------------------------
@pytest.mark.parametrize("name, count", [("resnet18", 4), ("vgg16", 5), ("densenet121", 4),
                                         ("mobilenet_v2", 7), ("mobilenet_v3_small", 5),
                                         ("efficientnet_b0", 7), ("resnext50_32x4d", 4),
                                         ("convnext_tiny", 4), ("vit_b_16", 12)])
def test_blocks_partition_the_backbone_in_forward_order(name, count):
    model = models.get_model(name, num_classes=3, image_size=(32, 32))
    stages = finetune.blocks(model)
    assert len(stages) == count
    ids = [id(p) for stage in stages for m in stage for p in m.parameters()]
    head_ids = [id(p) for m in finetune.head(model) for p in m.parameters()]
    assert len(set(ids)) == len(ids) and not set(ids) & set(head_ids)
    order = {id(p): i for i, p in enumerate(model.parameters())}
    positions = [order[i] for i in ids]
    assert positions == sorted(positions)  # stage by stage, input to output
    stem = len(order) - len(ids) - len(head_ids)
    assert all(order[i] >= stem for i in ids)  # what is left is the stem, before the blocks
    assert max(order[i] for i in ids) < min(order[i] for i in head_ids)


@pytest.mark.parametrize("name", ["convnext_tiny", "vit_b_16"])
def test_the_papers_heads_are_refused_where_the_head_is_not_pooling_and_linear(name):
    with pytest.raises(ValueError, match=f"--head maxpool512 is for .* not {name}"):
        models.get_model(name, num_classes=3, image_size=(32, 32), head="maxpool512")


@pytest.mark.parametrize("kind, widths", [("maxpool512", [512, 3]),
                                          ("fc4096", [4096, 1024, 256, 32, 3])])
def test_the_papers_heads_on_the_feature_width(kind, widths):
    tl.manual_seed(0)
    model = models.get_model("resnet18", num_classes=3, image_size=(32, 32), head=kind)
    linears = [m for m in model.fc.modules() if isinstance(m, nn.Linear)]
    assert [m.out_features for m in linears] == widths and linears[0].in_features == 512
    assert model.config["head"] == kind
    model.eval()
    x = tl.Tensor(np.random.default_rng(0).normal(size=(2, 3, 32, 32)).astype(np.float32))
    assert model(x).shape == (2, 3)
    if kind == "maxpool512":  # global max pooling of layer4's map feeds the head
        assert isinstance(model.avgpool, finetune.GlobalMaxPool2d)
        assert any(isinstance(m, nn.Dropout) and m.p == 0.5 for m in model.fc.modules())


def test_maxpool_head_on_a_network_that_pools_in_forward():
    tl.manual_seed(0)
    model = models.get_model("mobilenet_v2", num_classes=7, image_size=(32, 32),
                             head="maxpool512")
    model.eval()
    x = tl.Tensor(np.random.default_rng(1).normal(size=(2, 3, 32, 32)).astype(np.float32))
    features = list(model.features)
    h = x
    for layer in features[:-1]:
        h = layer(h)
    expected = model.classifier(tl.Tensor(h.array.max(axis=(2, 3))))
    np.testing.assert_allclose(model(x).array, expected.array, rtol=1e-5, atol=1e-6)
    assert len(finetune.blocks(model)) == 7  # the pooling is no block


def test_pretrained_weights_load_with_a_new_head(tmp_path):
    tl.manual_seed(0)
    source = models.get_model("resnet18", num_classes=7, image_size=(32, 32))
    tl.save({k: np.asarray(v) for k, v in source.state_dict().items()}, tmp_path / "w.npz")
    target = models.get_model("resnet18", num_classes=2, image_size=(32, 32))
    dropped = finetune.load_pretrained(target, tmp_path / "w.npz")
    assert dropped == ["fc.weight", "fc.bias"]
    for k, v in source.state_dict().items():
        if not k.startswith("fc."):
            np.testing.assert_array_equal(target.state_dict()[k], v, err_msg=k)
    same = models.get_model("resnet18", num_classes=7, image_size=(32, 32))
    assert finetune.load_pretrained(same, tmp_path / "w.npz") == []  # a fitting head is kept
    np.testing.assert_array_equal(same.fc.weight.array, source.fc.weight.array)


def test_weights_of_another_architecture_name_the_first_mismatched_key(tmp_path):
    padua = models.get_model("padua1", num_classes=7)
    tl.save({k: np.asarray(v) for k, v in padua.state_dict().items()}, tmp_path / "p.npz")
    target = models.get_model("resnet18", num_classes=7, image_size=(32, 32))
    before = snapshot(target)
    with pytest.raises(ValueError, match=r"p\.npz does not fit resnet18: missing keys: "
                                         r"conv1\.weight, bn1\.weight"):
        finetune.load_pretrained(target, tmp_path / "p.npz")
    for k, v in target.state_dict().items():
        np.testing.assert_array_equal(v, before[k])
    (tmp_path / "bad.npz").write_bytes(b"not a zip")
    with pytest.raises(ValueError, match=r"bad\.npz: cannot read weights"):
        finetune.load_pretrained(target, tmp_path / "bad.npz")
