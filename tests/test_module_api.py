"""Module's everyday API (apply, children, buffers, registration, lookup by name, devices and
dtypes, repr) and nn.utils, with the values PyTorch documents."""
import numpy as np
import pytest

import tinylesion as tl
from tinylesion import backend, nn
from tinylesion.nn import Parameter
from test_fake_gpu import json_of, run_fake
from tinylesion.nn.utils import (clip_grad_norm_, clip_grad_value_, parameters_to_vector,
                                 vector_to_parameters)


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(nn.Linear(2, 3), nn.BatchNorm1d(3), nn.ReLU())
        self.head = nn.Linear(3, 1)

    def forward(self, x):
        return self.head(self.features(x))


def param(*values):
    return Parameter(np.array(values, np.float32))


# ---- traversal -----------------------------------------------------------------------------
def test_apply_visits_children_first_depth_first_then_self_and_returns_self():
    seen = []
    net = Net()
    assert net.apply(lambda m: seen.append(type(m).__name__)) is net
    assert seen == ["Linear", "BatchNorm1d", "ReLU", "Sequential", "Linear", "Net"]


def test_apply_can_initialise_weights():
    def init(m):
        if isinstance(m, nn.Linear):
            m.weight.array[...] = 0.5
    net = Net().apply(init)
    assert np.all(net.head.weight.numpy() == 0.5)
    assert np.all(net.features[0].weight.numpy() == 0.5)


def test_named_children_lists_each_child_once_and_skips_empty_slots():
    shared = nn.Linear(1, 1)
    box = nn.Module()
    box.a, box.b = shared, nn.ReLU()
    box.c = shared
    box.add_module("d", None)
    assert [(n, type(m).__name__) for n, m in box.named_children()] == [("a", "Linear"),
                                                                        ("b", "ReLU")]
    assert box.children() == [shared, box.b]


def test_named_buffers_order_prefix_and_recurse():
    net = Net()
    assert [n for n, _ in net.named_buffers()] == [
        "features.1.running_mean", "features.1.running_var", "features.1.num_batches_tracked"]
    assert [n for n, _ in net.features[1].named_buffers(prefix="bn")] == [
        "bn.running_mean", "bn.running_var", "bn.num_batches_tracked"]
    assert list(net.named_buffers(recurse=False)) == []
    assert net.buffers()[1] is net.features[1].running_var
    assert len(net.buffers(recurse=False)) == 0


def test_shared_modules_are_listed_once_but_kept_twice_in_the_state_dict():
    bn = nn.BatchNorm1d(2)
    seq = nn.Sequential(bn, bn)
    assert [n for n, _ in seq.named_modules()] == ["", "0"]
    assert [n for n, _ in seq.named_modules(remove_duplicate=False)] == ["", "0", "1"]
    assert [n for n, _ in seq.named_buffers()] == ["0.running_mean", "0.running_var",
                                                   "0.num_batches_tracked"]
    assert len(list(seq.named_buffers(remove_duplicate=False))) == 6
    assert [n for n, _ in seq.named_parameters()] == ["0.weight", "0.bias"]
    assert len(list(seq.named_parameters(remove_duplicate=False))) == 4
    assert list(seq.state_dict())[:4] == ["0.weight", "0.bias", "0.running_mean",
                                          "0.running_var"]
    assert len(seq.state_dict()) == 10


def test_named_parameters_recurse_false_and_prefix():
    net = Net()
    assert list(net.named_parameters(recurse=False)) == []
    assert [n for n, _ in net.head.named_parameters(prefix="h")] == ["h.weight", "h.bias"]
    assert net.parameters(recurse=False) == []


def test_requires_grad_freezes_and_unfreezes_every_parameter():
    net = Net()
    assert net.requires_grad_(False) is net
    assert not any(p.requires_grad for p in net.parameters())
    net.features.requires_grad_()
    assert [p.requires_grad for p in net.parameters()] == [True] * 4 + [False] * 2


# ---- registration ----------------------------------------------------------------------------
def test_register_parameter_and_empty_slots():
    m = nn.Module()
    a = param(1.0)
    m.register_parameter("a", a)
    m.register_parameter("b", None)
    m.register_parameter("c", param(2.0))
    assert m.a is a and m.b is None
    assert [n for n, _ in m.named_parameters()] == ["a", "c"]
    assert list(m.state_dict()) == ["a", "c"]
    m.b = param(3.0)             # the empty slot keeps its place
    assert [n for n, _ in m.named_parameters()] == ["a", "b", "c"]
    m.a = None                   # None empties the slot, which keeps its place too
    assert [n for n, _ in m.named_parameters()] == ["b", "c"]
    m.a = param(4.0)
    assert [n for n, _ in m.named_parameters()] == ["a", "b", "c"]


def test_register_parameter_errors_name_the_problem():
    m = nn.Linear(1, 1)
    with pytest.raises(TypeError, match="parameter name should be a string. Got int"):
        m.register_parameter(1, param(1.0))
    with pytest.raises(KeyError, match=r'contain "\.", got: a.b'):
        m.register_parameter("a.b", param(1.0))
    with pytest.raises(KeyError, match="empty string"):
        m.register_parameter("", param(1.0))
    with pytest.raises(KeyError, match="attribute 'in_features' already exists"):
        m.register_parameter("in_features", param(1.0))
    with pytest.raises(TypeError, match="cannot assign 'Tensor' object to parameter 'x'"):
        m.register_parameter("x", tl.Tensor([1.0]))
    with pytest.raises(TypeError, match="cannot assign 'Tensor' object to parameter 'y'"):
        m.register_parameter("y", param(1.0) * 2)    # a result, not a Parameter

    class Early(nn.Module):
        def __init__(self):
            self.register_parameter("w", param(1.0))
    with pytest.raises(AttributeError, match="before Module.__init__"):
        Early()
    m.register_parameter("weight", param(5.0))      # an existing parameter may be replaced
    assert m.weight.item() == 5.0 and [n for n, _ in m.named_parameters()] == ["weight",
                                                                                "bias"]


def test_add_module_and_register_module():
    m = nn.Module()
    lin = nn.Linear(2, 2)
    m.add_module("first", lin)
    m.register_module("second", nn.ReLU())
    m.add_module("third", None)
    assert m.first is lin and m.third is None
    assert [n for n, _ in m.named_parameters()] == ["first.weight", "first.bias"]
    assert [n for n, _ in m.named_modules()] == ["", "first", "second"]
    m.add_module("first", nn.Linear(2, 3))           # replacing a child keeps its place
    assert m.first.out_features == 3 and list(m._modules) == ["first", "second", "third"]


def test_add_module_errors_name_the_problem():
    m = nn.Linear(1, 1)
    with pytest.raises(TypeError, match="int is not a Module subclass"):
        m.add_module("x", 3)
    with pytest.raises(TypeError, match="module name should be a string. Got int"):
        m.add_module(3, nn.ReLU())
    with pytest.raises(KeyError, match="attribute 'weight' already exists"):
        m.add_module("weight", nn.ReLU())
    with pytest.raises(KeyError, match=r'contain "\.", got: a.b'):
        m.add_module("a.b", nn.ReLU())
    with pytest.raises(KeyError, match="empty string"):
        m.register_module("", nn.ReLU())


# ---- lookup by dotted name -------------------------------------------------------------------
def test_get_submodule_parameter_and_buffer():
    net = Net()
    assert net.get_submodule("") is net
    assert net.get_submodule("features.1") is net.features[1]
    assert net.get_parameter("features.0.weight") is net.features[0].weight
    assert net.get_parameter("head.bias") is net.head.bias
    assert net.get_buffer("features.1.running_var") is net.features[1].running_var


@pytest.mark.parametrize("call, message", [
    (lambda n: n.get_submodule("features.7"), "Sequential has no attribute `7`"),
    (lambda n: n.get_submodule("body"), "Net has no attribute `body`"),
    (lambda n: n.get_submodule("head.weight"), "`weight` is not an nn.Module"),
    (lambda n: n.get_parameter("head.nope"), "Linear has no attribute `nope`"),
    (lambda n: n.get_parameter("head.in_features"), "`in_features` is not an nn.Parameter"),
    (lambda n: n.get_parameter("weight"), "Net has no attribute `weight`"),
    (lambda n: n.get_parameter("tail.weight"), "Net has no attribute `tail`"),
    (lambda n: n.get_buffer("head.weight"), "`weight` is not a buffer"),
])
def test_lookup_errors_name_the_missing_part(call, message):
    with pytest.raises(AttributeError) as info:
        call(Net())
    assert str(info.value) == message


def test_a_missing_attribute_is_named_as_in_pytorch():
    with pytest.raises(AttributeError) as info:
        Net().missing
    assert str(info.value) == "'Net' object has no attribute 'missing'"


# ---- devices and dtypes ----------------------------------------------------------------------
def test_cpu_returns_self_with_numpy_arrays():
    net = Net()
    assert net.cpu() is net
    assert all(type(a) is np.ndarray for a in net.state_dict().values())


@pytest.mark.skipif(backend.gpu_available(), reason="checks the no-GPU error")
def test_cuda_without_a_gpu_is_a_device_error():
    with pytest.raises(tl.DeviceError):
        Net().cuda()


def test_cuda_refuses_a_cpu_device():
    with pytest.raises(ValueError, match="'cpu' is not a GPU device"):
        Net().cuda("cpu")


def test_float_and_double_convert_floating_parameters_buffers_and_grads_only():
    net = Net()
    net.head.weight.grad = tl.Tensor(np.ones((1, 3), np.float32))
    assert net.double() is net
    assert {a.dtype.name for a in net.state_dict().values()} == {"float64", "int64"}
    assert net.features[1].num_batches_tracked.dtype == np.int64
    assert net.head.weight.grad.dtype == np.float64
    assert {a.dtype.name for a in net.float().state_dict().values()} == {"float32", "int64"}


def test_half_says_float16_is_not_supported():
    with pytest.raises(NotImplementedError, match="float16"):
        Net().half()


def test_type_converts_every_parameter_and_buffer():
    net = Net().type(np.float64)
    assert {a.dtype.name for a in net.state_dict().values()} == {"float64"}   # the count too
    net.type("torch.FloatTensor")
    assert {a.dtype.name for a in net.state_dict().values()} == {"float32"}
    with pytest.raises(RuntimeError, match="must be floating point"):
        net.type(np.int64)
    with pytest.raises(TypeError, match="'bogus' is not a dtype"):
        net.type("bogus")


# ---- repr ------------------------------------------------------------------------------------
def test_repr_shows_children_as_pytorch_does():
    net = Net()
    assert repr(net) == (
        "Net(\n"
        "  (features): Sequential(\n"
        "    (0): Linear(in_features=2, out_features=3, bias=True)\n"
        "    (1): BatchNorm1d(3, eps=1e-05, momentum=0.1, affine=True, bias=True, "
        "track_running_stats=True)\n"
        "    (2): ReLU()\n"
        "  )\n"
        "  (head): Linear(in_features=3, out_features=1, bias=True)\n"
        ")")


@pytest.mark.parametrize("layer, text", [
    (lambda: nn.ReLU(inplace=True), "ReLU(inplace=True)"),
    (lambda: nn.LeakyReLU(0.2, inplace=True), "LeakyReLU(negative_slope=0.2, inplace=True)"),
    (lambda: nn.Dropout(0.1), "Dropout(p=0.1, inplace=False)"),
    (lambda: nn.Dropout2d(), "Dropout2d(p=0.5, inplace=False)"),
    (lambda: nn.Flatten(), "Flatten(start_dim=1, end_dim=-1)"),
    (lambda: nn.Softmax(dim=1), "Softmax(dim=1)"),
    (lambda: nn.MaxPool2d(2), "MaxPool2d(kernel_size=2, stride=2, padding=0, dilation=1, "
                              "ceil_mode=False)"),
    (lambda: nn.Conv2d(3, 4, 3), "Conv2d(3, 4, kernel_size=(3, 3), stride=(1, 1))"),
    (lambda: nn.Conv2d(3, 4, 3, padding=1, bias=False),
     "Conv2d(3, 4, kernel_size=(3, 3), stride=(1, 1), padding=(1, 1), bias=False)"),
    (lambda: nn.Conv2d(3, 4, 3, padding="same"),
     "Conv2d(3, 4, kernel_size=(3, 3), stride=(1, 1), padding=same)"),
    (lambda: nn.ZeroPad2d(2), "ZeroPad2d((2, 2, 2, 2))"),
    (lambda: nn.ZeroPad2d((1, 2)), "ZeroPad2d((1, 2))"),
])
def test_layer_repr_as_pytorch(layer, text):
    # PyTorch 2.13's strings
    assert repr(layer()) == text


def test_repr_puts_extra_repr_on_its_own_line_beside_children_and_shows_empty_slots():
    class Wrapped(nn.Module):
        def __init__(self):
            super().__init__()
            self.inner = nn.ReLU()
            self.add_module("spare", None)

        def extra_repr(self):
            return "k=1"
    assert repr(Wrapped()) == "Wrapped(\n  k=1\n  (inner): ReLU()\n  (spare): None\n)"
    assert repr(nn.Module()) == "Module()"


# ---- nn.utils --------------------------------------------------------------------------------
def grads_model(*grads, dtype=np.float32):
    """Parameters whose gradients are the given lists."""
    params = []
    for g in grads:
        p = Parameter(np.zeros(len(g), dtype))
        p.grad = tl.Tensor(np.array(g, dtype))
        params.append(p)
    return params


def test_utils_are_reachable_as_in_pytorch():
    assert tl.nn.utils.clip_grad_norm_ is clip_grad_norm_
    assert tl.nn.utils.vector_to_parameters is vector_to_parameters


def test_clip_grad_norm_scales_by_max_norm_over_the_total():
    a, b = grads_model([3.0, 4.0], [12.0])           # total 2-norm sqrt(9 + 16 + 144) = 13
    total = clip_grad_norm_([a, b], max_norm=1.0)
    assert isinstance(total, tl.Tensor) and total.shape == () and total.dtype == np.float32
    assert total.item() == pytest.approx(13.0)
    scale = 1.0 / (13.0 + 1e-6)
    np.testing.assert_allclose(a.grad.numpy(), [3 * scale, 4 * scale], rtol=1e-6)
    np.testing.assert_allclose(b.grad.numpy(), [12 * scale], rtol=1e-6)
    assert np.linalg.norm(np.r_[a.grad.numpy(), b.grad.numpy()]) == pytest.approx(1.0)


def test_clip_grad_norm_adds_1e_6_to_the_total_as_pytorch():
    # total 5e-6: the coefficient is max_norm / (5e-6 + 1e-6), and is applied even when the
    # total is a little under max_norm (min(1, 5.5e-6 / 6e-6) = 11/12)
    (a,) = grads_model([3e-6, 4e-6], dtype=np.float64)
    assert clip_grad_norm_([a], 1e-6).item() == pytest.approx(5e-6)
    np.testing.assert_allclose(a.grad.numpy(), [0.5e-6, 2e-6 / 3], rtol=1e-9)
    (b,) = grads_model([3e-6, 4e-6], dtype=np.float64)
    clip_grad_norm_([b], 5.5e-6)
    np.testing.assert_allclose(b.grad.numpy(), [3e-6 * 11 / 12, 4e-6 * 11 / 12], rtol=1e-9)


def test_clip_grad_norm_leaves_small_gradients_alone():
    a, b = grads_model([3.0, 4.0], [12.0])
    assert clip_grad_norm_(iter([a, b]), 20.0).item() == pytest.approx(13.0)
    assert a.grad.numpy().tolist() == [3.0, 4.0] and b.grad.numpy().tolist() == [12.0]


@pytest.mark.parametrize("norm_type, total", [(1, 19.0), (3.0, (27 + 64 + 1728) ** (1 / 3)),
                                              (float("inf"), 12.0), ("inf", 12.0)])
def test_clip_grad_norm_other_norms(norm_type, total):
    a, b = grads_model([3.0, -4.0], [12.0], dtype=np.float64)
    out = clip_grad_norm_([a, b], 2.0, norm_type=norm_type)
    assert out.dtype == np.float64 and out.item() == pytest.approx(total)
    np.testing.assert_allclose(b.grad.numpy(), [12.0 * 2.0 / (total + 1e-6)])


def test_clip_grad_norm_zero_norm_counts_non_zero_gradients_as_pytorch():
    a, b, c = grads_model([3.0, 0.0], [0.0, 4.0], [0.0])
    # the 0-"norm" of the per-parameter counts (1, 1, 0): two parameters have non-zero grads
    assert clip_grad_norm_([a, b, c], 1.0, norm_type=0).item() == 2.0
    np.testing.assert_allclose(a.grad.numpy(), [1.5, 0.0], rtol=1e-6)


def test_clip_grad_norm_skips_parameters_without_grad_and_takes_one_tensor():
    (a,) = grads_model([6.0, 8.0])
    bare = Parameter(np.ones(2, np.float32))
    assert clip_grad_norm_([bare, a], 5.0).item() == pytest.approx(10.0)
    assert bare.grad is None
    np.testing.assert_allclose(a.grad.numpy(), [3.0, 4.0], rtol=1e-6)
    assert clip_grad_norm_(a, 5.0).item() == pytest.approx(5.0)
    empty = clip_grad_norm_([bare], 1.0)
    assert empty.item() == 0.0 and empty.dtype == np.float32


def test_clip_grad_norm_non_finite():
    a, b = grads_model([np.nan, 1.0], [2.0])
    with pytest.raises(RuntimeError, match="non-finite"):
        clip_grad_norm_([a, b], 1.0, error_if_nonfinite=True)
    assert b.grad.numpy().tolist() == [2.0]         # nothing was scaled
    assert np.isnan(clip_grad_norm_([a, b], 1.0).item())
    assert np.isnan(b.grad.numpy()).all()            # scaled by the non-finite norm, as torch


def test_clip_grad_norm_errors_name_the_problem():
    with pytest.raises(TypeError, match="parameter 0 is a float"):
        clip_grad_norm_([1.0], 1.0)
    with pytest.raises(TypeError, match="not int"):
        clip_grad_value_(3, 1.0)


def test_clip_grad_value_clamps_in_place():
    a, b = grads_model([-3.0, 0.5, 2.0], [-0.25])
    before = a.grad.array
    assert clip_grad_value_([a, b], 1) is None
    assert a.grad.numpy().tolist() == [-1.0, 0.5, 1.0] and b.grad.numpy().tolist() == [-0.25]
    assert a.grad.array is before


def test_clip_grad_norm_on_a_model_after_backward():
    model = nn.Linear(2, 1)
    model.weight.array[...] = [[1.0, 2.0]]
    model.bias.array[...] = 0.0
    model(tl.Tensor([[3.0, 4.0]])).sum().backward()  # dW = x = [3, 4], db = 1
    total = clip_grad_norm_(model.parameters(), 1.0)
    assert total.item() == pytest.approx(np.sqrt(26.0))
    np.testing.assert_allclose(model.bias.grad.numpy(), [1 / (np.sqrt(26.0) + 1e-6)],
                               rtol=1e-6)


def test_parameters_to_vector_is_ordered_and_differentiable():
    lin = nn.Linear(2, 3)
    vec = parameters_to_vector(lin.parameters())
    expected = np.r_[lin.weight.numpy().ravel(), lin.bias.numpy()]
    assert vec.shape == (9,) and np.array_equal(vec.numpy(), expected)
    (vec * tl.Tensor(np.arange(9.0, dtype=np.float32))).sum().backward()
    assert lin.weight.grad.numpy().tolist() == [[0, 1], [2, 3], [4, 5]]
    assert lin.bias.grad.numpy().tolist() == [6, 7, 8]
    vec.array[0] = 100.0                               # a copy
    assert lin.weight.array[0, 0] != 100.0


def test_vector_to_parameters_makes_the_parameters_views_of_the_vector():
    lin = nn.Linear(2, 3)
    vec = tl.Tensor(np.arange(10.0, dtype=np.float32))   # one more than needed: unused
    vector_to_parameters(vec, lin.parameters())
    assert lin.weight.numpy().tolist() == [[0, 1], [2, 3], [4, 5]]
    assert lin.bias.numpy().tolist() == [6, 7, 8]
    vec.array[8] = -1.0                                # shares memory, as in PyTorch
    assert lin.bias.numpy().tolist() == [6, 7, -1]


def test_vector_to_parameters_errors_name_the_problem():
    lin = nn.Linear(2, 3)
    with pytest.raises(TypeError, match="expected Tensor, but got: list"):
        vector_to_parameters([1.0] * 9, lin.parameters())
    with pytest.raises(ValueError, match="vec has 8 elements but the parameters need 9"):
        vector_to_parameters(tl.zeros(8), lin.parameters())
    with pytest.raises(ValueError, match="must be 1-D"):
        vector_to_parameters(tl.zeros(3, 3), lin.parameters())
    with pytest.raises(ValueError, match="no parameters"):
        parameters_to_vector([])


# ---- the GPU path, on the stand-in CuPy (see test_fake_gpu.py) -------------------------------

ON_GPU = r"""
import json, numpy as np, cupy
import tinylesion as tl
from tinylesion import nn

model = nn.Sequential(nn.Linear(2, 3), nn.BatchNorm1d(3), nn.Linear(3, 1))
assert model.cuda() is model
kinds = sorted({type(a).__module__ for a in model.state_dict().values()})
model(tl.Tensor(np.array([[1.0, 2.0], [3.0, -1.0]], np.float32), device="gpu")).sum().backward()
grads = np.concatenate([p.grad.numpy().ravel() for p in model.parameters()])
cupy.reset_transfers()
total = nn.utils.clip_grad_norm_(model.parameters(), 0.5)
nn.utils.clip_grad_value_(model.parameters(), 0.1)
vec = nn.utils.parameters_to_vector(model.parameters())
nn.utils.vector_to_parameters(vec * 2.0, model.parameters())
d2h = cupy.transfers["d2h"]
clipped = np.concatenate([p.grad.numpy().ravel() for p in model.parameters()])
print(json.dumps({"kinds": kinds, "d2h": d2h, "total_on": type(total.array).__module__,
                  "vec_on": type(vec.array).__module__, "total": total.item(),
                  "norm": float(np.linalg.norm(grads)),
                  "clipped": clipped.tolist(),
                  "expected": np.clip(grads * 0.5 / (np.linalg.norm(grads) + 1e-6),
                                      -0.1, 0.1).tolist(),
                  "cpu_after": model.cpu().state_dict()["0.weight"].__class__.__module__}))
"""


def test_module_devices_and_utils_on_the_gpu_without_host_copies():
    out = json_of(run_fake("-c", ON_GPU))
    assert out["kinds"] == ["cupy"] and out["d2h"] == 0
    assert out["total_on"] == out["vec_on"] == "cupy"
    assert out["total"] == pytest.approx(out["norm"], rel=1e-6)
    np.testing.assert_allclose(out["clipped"], out["expected"], rtol=1e-5)
    assert out["cpu_after"] == "numpy"


def test_a_registered_name_keeps_its_kind():
    lin = nn.Linear(2, 2)
    with pytest.raises(TypeError, match="as parameter 'weight' of Linear"):
        lin.weight = np.zeros((2, 2))                  # was: silently unregistered
    assert [n for n, _ in lin.named_parameters()] == ["weight", "bias"]
    seq = nn.Sequential(nn.Linear(2, 2))
    with pytest.raises(TypeError, match="as child module '0' of Sequential"):
        setattr(seq, "0", 3)
    assert len(list(seq.parameters())) == 2
    bn = nn.BatchNorm1d(2)
    bn.running_mean = np.array([1.0, 2.0], np.float32)  # an array is kept as a Tensor buffer
    assert isinstance(bn.running_mean, tl.Tensor)
    np.testing.assert_array_equal(bn.state_dict()["running_mean"], [1.0, 2.0])
    with pytest.raises(KeyError, match="attribute 'weight' already exists"):
        nn.Linear(2, 2).register_buffer("weight", None)
    lin.bias = None                                     # an empty slot, as in PyTorch
    assert [n for n, _ in lin.named_parameters()] == ["weight"]


def test_loss_modules_print_as_pytorchs():
    # torch prints a loss module without its arguments: MSELoss(reduction='sum') is "MSELoss()"
    assert repr(nn.MSELoss(reduction="sum")) == "MSELoss()"
    assert repr(nn.CrossEntropyLoss(label_smoothing=0.1)) == "CrossEntropyLoss()"


def test_softmax_module_without_dim_takes_pytorchs_implicit_dim():
    x = np.random.default_rng(2).standard_normal((2, 3, 4, 5))
    with pytest.warns(UserWarning, match="Implicit dimension choice for softmax"):
        y = nn.Softmax()(tl.Tensor(x)).numpy()
    np.testing.assert_allclose(y.sum(axis=1), 1.0, rtol=1e-12)     # dim 1 for 4-D input
    assert repr(nn.Softmax()) == "Softmax(dim=None)"
