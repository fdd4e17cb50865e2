"""nn and Tensor functions given arguments PyTorch refuses: one clear error, not a result."""
import numpy as np
import pytest

import tinylesion as tl
import tinylesion.nn as nn
import tinylesion.nn.functional as F
from tinylesion.errors import InputError


@pytest.mark.parametrize("smoothing", [-0.5, 1.5, float("nan")])
def test_cross_entropy_refuses_label_smoothing_outside_0_1(smoothing):
    logits, target = tl.randn(4, 3), np.array([0, 1, 2, 1])
    with pytest.raises(ValueError, match="label_smoothing must be in"):
        F.cross_entropy(logits, target, label_smoothing=smoothing)
    F.cross_entropy(logits, target, label_smoothing=1.0)   # the ends are allowed


@pytest.mark.parametrize("dims", [(9,), (1, 9), (-5, -1), (0, 4)])
def test_flatten_refuses_a_dimension_out_of_range(dims):
    x = tl.randn(2, 3, 4, 5)
    with pytest.raises(IndexError, match="flatten: dimension .* out of range"):
        x.flatten(*dims)
    with pytest.raises(IndexError, match="out of range"):
        nn.Flatten(*(dims + (-1,))[:2] if len(dims) == 1 else dims)(x)


def test_flatten_of_a_scalar_takes_dimension_0_and_minus_1_only():
    assert tl.Tensor(3.0).flatten(0, -1).shape == (1,)
    with pytest.raises(IndexError):
        tl.Tensor(3.0).flatten(1)


def test_linear_of_a_0_d_input_names_the_shapes():
    with pytest.raises(ValueError, match=r"linear: needs an input of at least 1 dimension"):
        nn.Linear(5, 2)(tl.Tensor(1.0))
    with pytest.raises(ValueError, match=r"2-D weight"):
        F.linear(tl.randn(3, 4), tl.randn(4))


def test_pretrained_weights_with_nan_or_inf_are_refused_naming_the_key(tmp_path):
    from tinylesion.models import get_model, load_weights
    model = get_model("logistic_regression", num_classes=2, image_size=(8, 8))
    state = {k: v.copy() for k, v in model.state_dict().items()}
    key = next(k for k in state if k.endswith("weight"))
    state[key][0, 0] = np.inf
    tl.save(state, tmp_path / "diverged.npz")
    before = {k: v.copy() for k, v in model.state_dict().items()}
    with pytest.raises(ValueError, match=f"diverged.npz: {key} hold NaN or infinite"):
        load_weights(model, tmp_path / "diverged.npz")
    assert all(np.array_equal(before[k], v) for k, v in model.state_dict().items())
    state[key][0, 0] = 0.5    # the same file, finite: it loads
    tl.save(state, tmp_path / "finite.npz")
    load_weights(model, tmp_path / "finite.npz")
    assert all(np.array_equal(state[k], v) for k, v in model.state_dict().items())


@pytest.mark.parametrize("target", [1.5, [1, 2, 3], "mel", [[1], [2]]])
def test_grad_cam_refuses_a_target_that_is_no_class_index_per_image(target):
    from tinylesion.explain import grad_cam, saliency
    from tinylesion.models import get_model
    model = get_model("padua1", num_classes=7, image_size=(16, 12))
    x = tl.randn(2, 3, 12, 16)
    for explain in (grad_cam, saliency):
        with pytest.raises(ValueError, match=r"target must be a class index or one per image "
                                             r"\(2\)"):
            explain(model, x, target=target)
    assert grad_cam(model, x, target=[1, 6]).shape == (2, 12, 16)
    assert saliency(model, x, target=np.int64(3)).shape == (2, 12, 16)


def test_gather_refuses_a_dimension_or_index_out_of_range():
    x = tl.randn(2, 3)
    with pytest.raises(IndexError, match=r"gather\(\): dimension 5 is out of range"):
        tl.gather(x, 5, tl.Tensor(np.zeros((2, 3), np.int64)))
    with pytest.raises(IndexError, match=r"gather\(\): index -1 is out of bounds"):
        tl.gather(x, 1, tl.Tensor(np.full((2, 3), -1, np.int64)))
    with pytest.raises(IndexError, match=r"index 3 is out of bounds for dimension 1 with size 3"):
        x.gather(1, tl.Tensor(np.full((2, 1), 3, np.int64)))
    got = x.gather(-1, tl.Tensor(np.array([[2], [0]])))
    np.testing.assert_array_equal(got.numpy(), x.numpy()[[0, 1], [2, 0]][:, None])


def test_topk_flip_size_and_len_name_a_bad_dimension():
    x = tl.randn(2, 3)
    with pytest.raises(IndexError, match=r"topk\(\): dimension 5 is out of range"):
        tl.topk(x, 1, dim=5)
    with pytest.raises(IndexError, match=r"flip\(\): dimension 5 is out of range"):
        tl.flip(x, (5,))
    for error in (ValueError, RuntimeError):   # PyTorch's type too
        with pytest.raises(error, match="more than once"):
            tl.flip(x, (0, -2))
    with pytest.raises(IndexError, match=r"size\(\): dimension 5 is out of range"):
        x.size(5)
    with pytest.raises(TypeError, match="len\\(\\) of a 0-d tensor"):
        len(tl.Tensor(1.0))
    assert x.size(-1) == 3 and tl.topk(x, 2, dim=-1).values.shape == (2, 2)
    np.testing.assert_array_equal(tl.flip(x, (-1,)).numpy(), x.numpy()[:, ::-1])


def test_flip_of_a_0d_tensor_takes_dim_0_and_minus_1_as_pytorch_does():
    x = tl.Tensor(np.array(3.0), requires_grad=True)
    for dims in ([], [0], [-1], (0,)):
        y = tl.flip(x, dims)
        assert y.shape == () and y.item() == 3.0 and y is not x
    x.flip(0).backward()
    assert x.grad.item() == 1.0
    with pytest.raises(IndexError, match=r"^flip\(\): dimension 1 is out of range for a tensor "
                                         r"of 0 dimensions \(expected -1..0\)$"):
        x.flip([1])
    with pytest.raises(ValueError, match=r"dims \(0, 0\) name a dimension more than once"):
        x.flip([0, -1])
    with pytest.raises(TypeError, match=r"^flip\(\) needs the dims to reverse"):
        tl.randn(2, 3).flip()


def test_requires_grad_on_an_integer_tensor_is_refused_as_by_the_constructor():
    with pytest.raises(TypeError, match="only floating-point tensors can require gradients"):
        tl.Tensor(np.array([1, 2])).requires_grad_()
    assert tl.Tensor(np.array([1, 2])).requires_grad_(False).requires_grad is False


def test_mm_and_bmm_take_matrices_and_batches_of_them_only():
    with pytest.raises(ValueError, match=r"mm\(\): expects 2-D tensors"):
        tl.mm(tl.randn(2, 3, 4), tl.randn(4, 2))
    with pytest.raises(ValueError, match=r"bmm\(\): expects 3-D tensors"):
        tl.bmm(tl.randn(3, 4), tl.randn(4, 2))
    with pytest.raises(ValueError, match=r"bmm\(\): batch sizes differ"):
        tl.bmm(tl.randn(2, 3, 4), tl.randn(3, 4, 2))
    assert tl.bmm(tl.randn(2, 3, 4), tl.randn(2, 4, 5)).shape == (2, 3, 5)


def test_conv1d_names_itself_and_the_channels():
    with pytest.raises(InputError, match=r"^conv1d: input \(2, 5, 7\) has 5 channels"):
        nn.Conv1d(3, 4, 3)(tl.randn(2, 5, 7))


@pytest.mark.parametrize("rate", [2.0, -0.1, float("nan"), True, "0.2"])
def test_a_backbone_refuses_a_drop_rate_that_is_not_a_probability(rate):
    from tinylesion.models import get_model
    with pytest.raises(ValueError, match=r"^convnext_tiny: stochastic_depth_prob must be a "
                                         r"probability in \[0, 1\], not "):
        get_model("convnext_tiny", stochastic_depth_prob=rate)


@pytest.mark.parametrize("factor", [float("nan"), float("inf"), 0, -2.0, (2.0, float("nan"))])
def test_interpolate_refuses_a_scale_factor_that_is_not_positive_and_finite(factor):
    with pytest.raises(ValueError, match="^scale_factor must hold positive finite numbers"):
        F.interpolate(tl.randn(1, 3, 4, 4), scale_factor=factor)
