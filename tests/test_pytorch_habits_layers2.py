"""What the stored-fixture cases of tests/test_pytorch_habits_torchops2.py do not reach for the
new layers: ConvTranspose2d's output_size and parameters, the adjoint pairs (transposed
convolution and convolution, fold and unfold), InstanceNorm's running statistics in training
and evaluation, channel dropout masks, ParameterList / ParameterDict registration, and the
one-line errors for bad arguments."""
import numpy as np
import pytest

import tinylesion as tl
import tinylesion.nn as nn
import tinylesion.nn.functional as F


def test_conv_transpose_is_the_adjoint_of_conv():
    # <conv2d(y, W), x> = <y, conv_transpose2d(x, W)> for the same stride, padding, groups
    rng = np.random.default_rng(0)
    for stride, padding, groups in [(2, 1, 1), (1, 0, 2), (3, 2, 4)]:
        W = tl.tensor(rng.standard_normal((4, 8 // groups, 3, 3)))
        y = tl.tensor(rng.standard_normal((2, 8, 9, 10)))
        x = F.conv2d(y, W, stride=stride, padding=padding, groups=groups)
        x = tl.tensor(rng.standard_normal(x.shape))
        z = F.conv_transpose2d(x, W, stride=stride, padding=padding, groups=groups,
                               output_padding=((9 + 2 * padding - 3) % stride,
                                               (10 + 2 * padding - 3) % stride))
        assert z.shape == y.shape
        lhs = (F.conv2d(y, W, stride=stride, padding=padding, groups=groups) * x).sum().item()
        assert np.isclose(lhs, (y * z).sum().item(), rtol=1e-12)


def test_fold_is_the_adjoint_of_unfold():
    rng = np.random.default_rng(1)
    x = tl.tensor(rng.standard_normal((2, 3, 7, 6)))
    args = dict(kernel_size=(3, 2), dilation=(1, 2), padding=(1, 0), stride=(2, 1))
    cols = F.unfold(x, **args)
    c = tl.tensor(rng.standard_normal(cols.shape))
    assert np.isclose((cols * c).sum().item(), (x * F.fold(c, (7, 6), **args)).sum().item())


def test_conv_transpose2d_module_output_size_and_parameters():
    tl.manual_seed(0)
    up = nn.ConvTranspose2d(8, 4, 3, stride=2, padding=1)
    assert up.weight.shape == (8, 4, 3, 3) and up.bias.shape == (4,)
    bound = 1 / np.sqrt(4 * 9)   # fan_in from weight.shape[1:], as torch's
    largest = np.abs(up.weight.numpy()).max()
    assert 0.5 * bound < largest <= bound
    x = tl.randn(1, 8, 5, 5)
    assert up(x).shape == (1, 4, 9, 9)
    assert up(x, output_size=(10, 9)).shape == (1, 4, 10, 9)
    assert up(x, output_size=[1, 4, 10, 10]).shape == (1, 4, 10, 10)
    with pytest.raises(ValueError, match="not reachable"):
        up(x, output_size=(11, 9))
    assert "output_padding" not in repr(up) and "padding=(1, 1)" in repr(up)
    grouped = nn.ConvTranspose2d(4, 6, 2, groups=2, bias=False, dtype=tl.float64)
    assert grouped.weight.shape == (4, 3, 2, 2) and grouped.bias is None
    assert grouped(tl.randn(2, 4, 3, 3, dtype=tl.float64)).dtype == np.float64


def test_unet_decoder_step_trains():
    # the up-convolution, a skip connection by concatenation, and a convolution
    tl.manual_seed(0)
    up, conv = nn.ConvTranspose2d(4, 2, 2, stride=2), nn.Conv2d(4, 1, 3, padding=1)
    params = list(up.parameters()) + list(conv.parameters())
    opt = tl.optim.SGD(params, lr=0.1)
    low, skip = tl.randn(2, 4, 4, 4), tl.randn(2, 2, 8, 8)
    target = tl.randn(2, 1, 8, 8)
    losses = []
    for _ in range(20):
        opt.zero_grad()
        loss = F.mse_loss(conv(tl.cat([up(low), skip], 1)), target)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.8 * losses[0]


def test_instance_norm_running_statistics_in_training_and_evaluation():
    rng = np.random.default_rng(2)
    x = tl.tensor(rng.standard_normal((4, 3, 5, 5)).astype(np.float32) * 2 + 1)
    norm = nn.InstanceNorm2d(3, momentum=0.5, track_running_stats=True)
    y = norm(x)
    means = x.numpy().mean(axis=(2, 3))
    variances = x.numpy().var(axis=(2, 3), ddof=1)
    np.testing.assert_allclose(norm.running_mean.numpy(), 0.5 * means.mean(0), rtol=1e-5)
    np.testing.assert_allclose(norm.running_var.numpy(), 0.5 + 0.5 * variances.mean(0),
                               rtol=1e-5)
    assert int(norm.num_batches_tracked.item()) == 1
    np.testing.assert_allclose(y.numpy().mean(axis=(2, 3)), 0, atol=1e-5)
    norm.eval()
    expected = (x.numpy() - norm.running_mean.numpy()[:, None, None]) / np.sqrt(
        norm.running_var.numpy()[:, None, None] + 1e-5)
    np.testing.assert_allclose(norm(x).numpy(), expected, rtol=1e-4, atol=1e-5)
    assert set(norm.state_dict()) == {"running_mean", "running_var", "num_batches_tracked"}
    plain = nn.InstanceNorm2d(3)
    assert plain.running_mean is None and not list(plain.parameters())
    plain.eval()   # without running statistics: the input's own, in evaluation too
    np.testing.assert_allclose(plain(x).numpy(), y.numpy(), rtol=1e-5, atol=1e-5)
    frozen = nn.InstanceNorm2d(3, momentum=None, track_running_stats=True)
    frozen(x)   # torch's InstanceNorm keeps no cumulative average: momentum None moves nothing
    assert frozen.running_mean.tolist() == [0, 0, 0] and frozen.running_var.tolist() == [1] * 3
    assert nn.InstanceNorm1d(3)(tl.randn(2, 3, 6)).shape == (2, 3, 6)
    assert nn.InstanceNorm3d(3, affine=True)(tl.randn(3, 2, 4, 4)).shape == (3, 2, 4, 4)


@pytest.mark.parametrize("layer, shape, mask_axes", [
    (nn.Dropout1d(0.5), (8, 16, 20), (2,)), (nn.Dropout1d(0.5), (16, 20), (1,)),
    (nn.Dropout3d(0.5), (4, 16, 3, 4, 5), (2, 3, 4)), (nn.Dropout3d(0.5), (16, 3, 4, 5),
                                                       (1, 2, 3))])
def test_channel_dropout_zeros_whole_channels(layer, shape, mask_axes):
    tl.manual_seed(3)
    x = tl.ones(*shape)
    y = layer(x).numpy()
    per_channel = y.max(axis=mask_axes)
    assert np.array_equal(y.min(axis=mask_axes), per_channel)   # a channel is all or nothing
    assert set(np.unique(per_channel)) == {0.0, 2.0}
    layer.eval()
    assert layer(x) is x


def test_parameter_list_and_dict_register_their_parameters():
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.scales = nn.ParameterList([nn.Parameter(np.ones(2, np.float32))
                                            for _ in range(2)])
            self.scales.append(tl.zeros(3))
            self.heads = nn.ParameterDict({"mel": nn.Parameter(np.zeros(4, np.float32))})
            self.heads["nev"] = tl.ones(4)

    net = Net()
    assert list(net.state_dict()) == ["scales.0", "scales.1", "scales.2", "heads.mel",
                                      "heads.nev"]
    assert all(isinstance(p, nn.Parameter) and p.requires_grad for p in net.parameters())
    assert len(net.scales) == 3 and net.scales[-1].shape == (3,)
    assert len(net.scales[1:]) == 2
    assert list(net.heads) == ["mel", "nev"] and "nev" in net.heads
    popped = net.heads.pop("mel")
    assert popped.shape == (4,) and list(net.heads.keys()) == ["nev"]
    net.scales[0] = tl.full((5,), 2.0)
    assert net.state_dict()["scales.0"].shape == (5,)
    with pytest.raises(TypeError, match="Parameter or a Tensor"):
        net.scales.append(np.ones(2))
    with pytest.raises(IndexError, match="out of range"):
        net.scales[3]
    with pytest.raises(NotImplementedError, match="no forward"):
        net.heads()


def test_padding_layers_and_modes():
    x = tl.tensor(np.arange(4.0).reshape(1, 1, 4))
    assert F.pad(x, (2, 1), mode="reflect").tolist() == [[[2, 1, 0, 1, 2, 3, 2]]]
    assert F.pad(x, (2, 1), mode="replicate").tolist() == [[[0, 0, 0, 1, 2, 3, 3]]]
    assert F.pad(x, (2, 1), mode="circular").tolist() == [[[2, 3, 0, 1, 2, 3, 0]]]
    assert nn.ConstantPad1d((1, 0), 7.0)(x).tolist() == [[[7, 0, 1, 2, 3]]]
    assert repr(nn.ReflectionPad2d(1)) == "ReflectionPad2d((1, 1, 1, 1))"


def test_adaptive_max_pool_indices_point_at_the_maxima():
    rng = np.random.default_rng(4)
    x = tl.tensor(rng.standard_normal((2, 3, 7, 5)))
    y, idx = F.adaptive_max_pool2d(x, (3, 2), return_indices=True)
    flat = x.numpy().reshape(2, 3, -1)
    np.testing.assert_array_equal(np.take_along_axis(flat, idx.numpy().reshape(2, 3, -1), 2),
                                  y.numpy().reshape(2, 3, -1))
    assert idx.dtype == np.int64


@pytest.mark.parametrize("call, error, words", [
    (lambda: F.conv_transpose2d(tl.ones(1, 2, 3, 3), tl.ones(3, 1, 2, 2)), tl.errors.InputError,
     "2 channels"),
    (lambda: F.conv_transpose2d(tl.ones(1, 2, 3, 3), tl.ones(2, 1, 2, 2), stride=2,
                                output_padding=2), ValueError, "output_padding"),
    (lambda: F.conv_transpose2d(tl.ones(1, 2, 3, 3), tl.ones(2, 1, 2, 2), stride=0),
     ValueError, "stride"),
    (lambda: F.conv_transpose2d(tl.ones(1, 2, 3, 3), tl.ones(2, 1, 2, 2), groups=3),
     ValueError, "groups=3"),
    (lambda: F.conv_transpose2d(tl.ones(1, 2, 3, 3), tl.ones(2, 1, 2, 2), padding=3),
     ValueError, "not positive"),
    (lambda: F.conv_transpose2d(tl.ones(1, 2, 3, 3), tl.ones(2, 1, 2, 2), tl.ones(2)),
     tl.errors.InputError, "bias"),
    (lambda: F.conv_transpose2d(tl.ones(2, 3), tl.ones(2, 1, 2, 2)), tl.errors.InputError,
     "shape"),
    (lambda: nn.ConvTranspose2d(3, 4, 2, groups=2), ValueError, "in_channels"),
    (lambda: nn.ConvTranspose2d(2, 4, 2, padding_mode="reflect"), ValueError, "padding_mode"),
    (lambda: F.conv1d(tl.ones(1, 2, 5), tl.ones(3, 2, 2), dilation=0), ValueError,
     "dilation"),
    (lambda: F.conv1d(tl.ones(1, 2, 3, 5), tl.ones(3, 2, 2)), tl.errors.InputError, "(N, C, L)"),
    (lambda: F.max_pool1d(tl.ones(1, 2, 5), (2, 2)), ValueError, "kernel_size"),
    (lambda: F.instance_norm(tl.ones(2, 3)), tl.errors.InputError, "positions"),
    (lambda: F.instance_norm(tl.ones(2, 3, 1)), ValueError, "more than 1"),
    (lambda: F.instance_norm(tl.ones(2, 3, 4), weight=tl.ones(2)), tl.errors.InputError,
     "weight"),
    (lambda: nn.InstanceNorm2d(3, affine=True)(tl.ones(1, 2, 3, 3)), tl.errors.InputError,
     "2 channels"),
    (lambda: F.pad(tl.ones(1, 2, 3), (3, 0), mode="reflect"), ValueError, "smaller than"),
    (lambda: F.pad(tl.ones(1, 2, 3), (4, 0), mode="circular"), ValueError, "exceed"),
    (lambda: F.pad(tl.ones(1, 2, 3), (-2, -1), mode="replicate"), ValueError, "nothing"),
    (lambda: F.pad(tl.ones(3), (1, 1, 1, 1), mode="replicate"), ValueError, "at most two"),
    (lambda: F.pad(tl.ones(1, 2, 3), (1, 1), mode="reflect", value=1.0), ValueError, "value"),
    (lambda: F.pad(tl.ones(2, 3, 4, 5, 6, 7), (1, 1), mode="reflect"), NotImplementedError,
     "not supported"),
    (lambda: nn.ReflectionPad2d((1, 2, 3)), ValueError, "4 ints"),
    (lambda: F.pixel_shuffle(tl.ones(1, 6, 2, 2), 2), tl.errors.InputError, "divisible"),
    (lambda: F.pixel_unshuffle(tl.ones(1, 1, 3, 4), 2), tl.errors.InputError, "divisible"),
    (lambda: nn.PixelShuffle(0), ValueError, "positive"),
    (lambda: F.unfold(tl.ones(1, 1, 2, 2), 3), ValueError, "smaller"),
    (lambda: F.fold(tl.ones(1, 8, 5), (3, 3), 2), tl.errors.InputError, "2x2 blocks"),
    (lambda: F.fold(tl.ones(1, 7, 4), (3, 3), 2), tl.errors.InputError, "divisible"),
    (lambda: F.adaptive_max_pool2d(tl.ones(1, 1, 4, 4), 0), ValueError, "positive"),
    (lambda: F.glu(tl.ones(2, 3)), RuntimeError, "even"),
    (lambda: F.bilinear(tl.ones(2, 3), tl.ones(2, 4), tl.ones(1, 3, 5)), tl.errors.InputError,
     "do not fit"),
    (lambda: nn.Unflatten(1, (2, 2))(tl.ones(2, 5)), RuntimeError, "does not fit"),
    (lambda: nn.Unflatten(3, (2, 2))(tl.ones(2, 4)), IndexError, "out of range"),
    (lambda: F.dropout1d(tl.ones(2, 3, 4, 5)), RuntimeError, "2D or 3D"),
    (lambda: F.gaussian_nll_loss(tl.ones(2, 3), tl.ones(2, 3), tl.ones(3)), ValueError,
     "incorrect size"),
    (lambda: F.gaussian_nll_loss(tl.ones(2, 3), tl.ones(2, 3), -tl.ones(2, 3)), ValueError,
     "negative"),
    (lambda: F.multi_margin_loss(tl.ones(2, 3), tl.tensor([0, 3])), IndexError, "target 3"),
    (lambda: F.multi_margin_loss(tl.ones(2, 3), tl.tensor([0.0, 1.0])), tl.errors.InputError,
     "integers"),
    (lambda: nn.MultiMarginLoss(p=3), ValueError, "p == 1"),
    (lambda: F.multilabel_soft_margin_loss(tl.ones(2, 3), tl.ones(2, 4)), ValueError,
     "target of shape"),
    (lambda: F.soft_margin_loss(tl.ones(2), tl.ones(2), reduction="avg"), ValueError,
     "reduction"),
])
def test_bad_arguments_raise_one_line_errors(call, error, words):
    with pytest.raises(error, match=words.replace("(", r"\(").replace(")", r"\)")) as info:
        call()
    assert "\n" not in str(info.value)
