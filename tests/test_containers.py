"""Containers: ModuleList, ModuleDict and Sequential behave as PyTorch's and register their
children (names, state_dict, modes, dtypes, training), and refuse what PyTorch refuses."""
from collections import OrderedDict

import numpy as np
import pytest

import tinylesion as tl
import tinylesion.nn as nn
import tinylesion.nn.functional as F


class Net(nn.Module):
    """A model that keeps its layers in a ModuleList and its heads in a ModuleDict."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Linear(3, 4)
        self.blocks = nn.ModuleList([nn.Sequential(nn.Linear(4, 4), nn.BatchNorm1d(4)),
                                     nn.ReLU(), nn.Linear(4, 4), nn.Dropout(0.5)])
        self.heads = nn.ModuleDict({"cls": nn.Linear(4, 7), "aux": nn.Linear(4, 1)})

    def forward(self, x):
        x = self.stem(x)
        for block in self.blocks:
            x = block(x)
        return self.heads["cls"](x), self.heads["aux"](x)


# The names PyTorch gives the same model: attribute, then position or key, then parameter.
NET_PARAMETERS = ["stem.weight", "stem.bias", "blocks.0.0.weight", "blocks.0.0.bias",
                  "blocks.0.1.weight", "blocks.0.1.bias", "blocks.2.weight", "blocks.2.bias",
                  "heads.cls.weight", "heads.cls.bias", "heads.aux.weight", "heads.aux.bias"]
NET_STATE = (NET_PARAMETERS[:6] + ["blocks.0.1.running_mean", "blocks.0.1.running_var",
                                   "blocks.0.1.num_batches_tracked"] + NET_PARAMETERS[6:])


def linears(n):
    return [nn.Linear(2, 2) for _ in range(n)]


def names(container):
    return list(container._modules)


def test_names_in_parameters_and_state_dict_are_pytorchs():
    net = Net()
    assert [n for n, _ in net.named_parameters()] == NET_PARAMETERS
    assert list(net.state_dict()) == NET_STATE
    assert net.parameters()[2] is net.blocks[0][0].weight
    assert net.num_parameters() == 3 * 4 + 4 + 20 + 8 + 20 + 35 + 5


def test_state_dict_round_trip_modes_and_dtype_reach_the_children():
    a, b = Net(), Net()
    assert b.load_state_dict(a.state_dict()) == ([], [])
    for k, v in a.state_dict().items():
        np.testing.assert_array_equal(b.state_dict()[k], v, err_msg=k)
    b.eval()
    assert not b.blocks[3].training and not b.blocks[0][1].training
    assert not b.heads["aux"].training
    b.train()
    assert b.blocks[3].training
    b.to(tl.float64)
    assert all(p.dtype == np.float64 for p in b.parameters())
    assert b.blocks[0][1].running_var.dtype == np.float64


def test_a_model_with_a_module_list_trains_and_every_layer_gets_a_gradient():
    tl.manual_seed(0)

    class MLP(nn.Module):
        def __init__(self):
            super().__init__()
            self.layers = nn.ModuleList([nn.Linear(4, 16), nn.Linear(16, 16), nn.Linear(16, 3)])

        def forward(self, x):
            for layer in self.layers[:-1]:
                x = F.relu(layer(x))
            return self.layers[-1](x)

    rng = np.random.default_rng(0)
    x = tl.Tensor(rng.standard_normal((32, 4)).astype(np.float32))
    y = rng.integers(0, 3, 32)
    model = MLP()
    optimizer = tl.optim.Adam(model.parameters(), lr=1e-2)
    assert len(optimizer.param_groups[0]["params"]) == 6
    losses = []
    for _ in range(60):
        optimizer.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        if not losses:
            for name, p in model.named_parameters():
                assert p.grad is not None and np.abs(p.grad.numpy()).sum() > 0, name
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]


def test_module_list_indexing_like_a_list():
    a, b, c = layers = linears(3)
    ml = nn.ModuleList(layers)
    assert len(ml) == 3 and list(ml) == layers and names(ml) == ["0", "1", "2"]
    assert ml[0] is a and ml[-1] is c and ml[-3] is a and getattr(ml, "2") is c
    part = ml[1:]
    assert type(part) is nn.ModuleList and list(part) == [b, c] and names(part) == ["0", "1"]
    assert list(ml[::-1]) == [c, b, a] and len(ml[5:]) == 0
    # `in` compares by iteration (PyTorch defines no __contains__ here): identity for Modules
    assert b in ml and nn.Linear(2, 2) not in ml and 3 not in ml


def test_module_list_assignment_and_deletion_renumber_as_pytorch():
    a, b, c, d = linears(4)
    ml = nn.ModuleList([a, b, c, d])
    e = nn.ReLU()
    ml[-3] = e                       # replaced in place: the order of the names stays
    assert list(ml) == [a, e, c, d] and names(ml) == ["0", "1", "2", "3"]
    assert [n for n, _ in ml.named_parameters()] == ["0.weight", "0.bias", "2.weight",
                                                     "2.bias", "3.weight", "3.bias"]
    del ml[0]
    assert list(ml) == [e, c, d] and names(ml) == ["0", "1", "2"] and getattr(ml, "0") is e
    assert not hasattr(ml, "3")
    del ml[::2]
    assert list(ml) == [c] and names(ml) == ["0"] and not hasattr(ml, "1")
    assert [n for n, _ in ml.named_parameters()] == ["0.weight", "0.bias"]
    assert ml.pop(-1) is c and len(ml) == 0 and ml.parameters() == []


def test_module_list_append_extend_insert_add():
    a, b, c, d = linears(4)
    ml = nn.ModuleList()
    assert ml.append(a) is ml and ml.extend([b]) is ml
    ml.insert(0, c)
    assert list(ml) == [c, a, b] and names(ml) == ["0", "1", "2"]
    ml.insert(-1, d)                 # before the last, as list.insert
    ml.insert(len(ml), nn.ReLU())    # at the end
    assert list(ml)[:4] == [c, a, d, b] and names(ml) == ["0", "1", "2", "3", "4"]
    both = nn.ModuleList([a]) + (m for m in [b, c])
    assert type(both) is nn.ModuleList and list(both) == [a, b, c]
    ml2 = nn.ModuleList([a])
    ml2 += nn.ModuleList([b])
    ml2 += [c]
    assert list(ml2) == [a, b, c] and names(ml2) == ["0", "1", "2"]


def test_module_list_repr_groups_repeated_modules_as_pytorch():
    ml = nn.ModuleList([nn.Linear(2, 2), nn.Linear(2, 2), nn.ReLU(),
                        nn.Sequential(nn.ReLU())])
    assert repr(ml) == ("ModuleList(\n"
                        "  (0-1): 2 x Linear(in_features=2, out_features=2, bias=True)\n"
                        "  (2): ReLU()\n"
                        "  (3): Sequential(\n"
                        "    (0): ReLU()\n"
                        "  )\n"
                        ")")
    assert repr(nn.ModuleList()) == "ModuleList()"


def test_module_dict_like_a_dict():
    a, b, c, d = linears(4)
    md = nn.ModuleDict({"a": a, "b": b})
    assert len(md) == 2 and list(md) == ["a", "b"] and "a" in md and "z" not in md
    assert md["a"] is a and md.a is a and md.b is b
    assert list(md.keys()) == ["a", "b"] and list(md.values()) == [a, b]
    assert list(md.items()) == [("a", a), ("b", b)]
    md["a"] = c                      # an existing key keeps its place
    md.update([("x", d), ("b", a)])
    md.update(OrderedDict(y=nn.ReLU()))
    assert list(md) == ["a", "b", "x", "y"] and md["a"] is c and md["b"] is a
    assert [n for n, _ in md.named_parameters()][:2] == ["a.weight", "a.bias"]
    md.update(nn.ModuleDict({"z": nn.Tanh()}))
    assert list(md)[-1] == "z"
    del md["x"]
    assert "x" not in md and not hasattr(md, "x")
    assert "x.weight" not in md.state_dict()
    assert md.pop("a") is c and list(md) == ["b", "y", "z"] and not hasattr(md, "a")
    md.clear()
    assert len(md) == 0 and md.state_dict() == OrderedDict() and not hasattr(md, "b")


def test_sequential_list_behaviour_as_pytorch():
    a, b, c, d = linears(4)
    seq = nn.Sequential(a, nn.ReLU(), b)
    assert seq[-1] is b and len(seq) == 3 and list(seq)[0] is a and b in seq
    part = seq[1:]
    assert type(part) is nn.Sequential and names(part) == ["1", "2"]  # names kept
    assert [n for n, _ in part.named_parameters()] == ["2.weight", "2.bias"]
    seq[0] = c
    assert seq[0] is c and names(seq) == ["0", "1", "2"]
    assert seq.insert(-1, d) is seq and names(seq) == ["0", "1", "2", "3"] and seq[2] is d
    del seq[1]
    assert names(seq) == ["0", "1", "2"] and list(seq) == [c, d, b]
    assert seq.append(nn.ReLU()) is seq and seq.extend([a]) is seq and seq[-1] is a
    assert seq.pop(0) is c and names(seq) == ["0", "1", "2", "3"]
    x = tl.Tensor(np.ones((1, 2), np.float32))
    np.testing.assert_allclose(seq(x).numpy(), a(F.relu(b(d(x)))).numpy())


def test_sequential_with_named_layers_slices_joins_and_repeats():
    conv, act, fc = nn.Linear(2, 2), nn.ReLU(), nn.Linear(2, 2)
    seq = nn.Sequential(OrderedDict(conv=conv, act=act, fc=fc))
    assert names(seq[::2]) == ["conv", "fc"] and seq[-1] is fc
    joined = seq + nn.Sequential(nn.Tanh())
    assert type(joined) is nn.Sequential and names(joined) == ["0", "1", "2", "3"]
    twice = 2 * nn.Sequential(conv, act)
    assert list(twice) == [conv, act, conv, act] and len(twice.parameters()) == 2
    seq2 = nn.Sequential(conv)
    seq2 += nn.Sequential(act)
    seq2 *= 2
    assert list(seq2) == [conv, act, conv, act] and names(seq2) == ["0", "1", "2", "3"]
    del seq[0]                       # deletion renumbers every layer, as PyTorch
    assert names(seq) == ["0", "1"] and seq[0] is act and not hasattr(seq, "conv")


def test_slicing_a_subclass_of_sequential():
    class Plain(nn.Sequential):
        pass

    class WithArguments(nn.Sequential):
        def __init__(self, width):
            super().__init__(nn.Linear(width, width), nn.ReLU())

    assert type(Plain(nn.ReLU(), nn.Tanh())[1:]) is Plain
    part = WithArguments(3)[:1]
    assert type(part) is nn.Sequential and part[0].in_features == 3


def test_containers_have_no_forward():
    x = tl.Tensor(np.ones((1, 2), np.float32))
    with pytest.raises(NotImplementedError, match="ModuleList"):
        nn.ModuleList(linears(1))(x)
    with pytest.raises(NotImplementedError, match="ModuleDict"):
        nn.ModuleDict({"a": nn.Linear(2, 2)})(x)


@pytest.mark.parametrize("action", [
    lambda: nn.ModuleList([nn.ReLU(), 3]),
    lambda: nn.ModuleList().append(3),
    lambda: nn.ModuleList().extend([3]),
    lambda: nn.ModuleList([nn.ReLU()]).insert(0, 3),
    lambda: nn.ModuleList([nn.ReLU()]).__setitem__(0, 3),
    lambda: nn.ModuleList() + [3],
    lambda: nn.ModuleDict({"a": 3}),
    lambda: nn.ModuleDict().__setitem__("a", 3),
    lambda: nn.Sequential(nn.ReLU(), 3),
    lambda: nn.Sequential().append(3),
    lambda: nn.Sequential().insert(0, 3),
    lambda: nn.Sequential(nn.ReLU()).__setitem__(0, 3),
])
def test_non_modules_raise_type_error_naming_the_type(action):
    with pytest.raises(TypeError, match="int is not a Module"):
        action()


def test_none_is_refused_too():
    with pytest.raises(TypeError, match="NoneType is not a Module"):
        nn.ModuleList([None])


def test_index_errors():
    ml = nn.ModuleList(linears(2))
    for index in (2, -3):
        with pytest.raises(IndexError, match=f"index {index} is out of range"):
            ml[index]
    with pytest.raises(IndexError, match="out of range"):
        del ml[5]
    with pytest.raises(IndexError, match="out of range"):
        ml.insert(3, nn.ReLU())
    with pytest.raises(IndexError, match="out of range"):
        nn.Sequential(nn.ReLU()).insert(-2, nn.ReLU())
    with pytest.raises(TypeError, match="integers or slices, not str"):
        ml["0"]
    with pytest.raises(TypeError, match="integers, not slice"):
        ml[0:1] = [nn.ReLU()]
    with pytest.raises(TypeError, match="integers or slices, not float"):
        nn.Sequential(nn.ReLU())[0.0]
    with pytest.raises(TypeError, match="iterable of Modules, but got int"):
        nn.ModuleList(3)
    assert len(ml) == 2 and names(ml) == ["0", "1"]   # nothing changed by the failures


def test_module_dict_key_and_update_errors():
    md = nn.ModuleDict({"a": nn.ReLU()})
    with pytest.raises(KeyError, match="'z'"):
        md["z"]
    with pytest.raises(KeyError):
        del md["z"]
    with pytest.raises(KeyError):
        md.pop("z")
    with pytest.raises(TypeError, match="should be a string. Got int"):
        md[0] = nn.ReLU()
    with pytest.raises(KeyError, match="contain \".\""):
        md["a.b"] = nn.ReLU()
    with pytest.raises(KeyError, match="empty"):
        md[""] = nn.ReLU()
    for taken in ("update", "training", "forward"):
        with pytest.raises(KeyError, match=f"attribute '{taken}' already exists"):
            md[taken] = nn.ReLU()
    with pytest.raises(TypeError, match="but got int"):
        md.update(3)
    with pytest.raises(TypeError, match="element #1 should be a .key, module. pair, not int"):
        md.update([("b", nn.ReLU()), 3])
    with pytest.raises(ValueError, match="element #0 has length 3"):
        md.update([("c", nn.ReLU(), 1)])
    assert list(md) == ["a"]
    with pytest.raises(TypeError, match="should be a string"):
        nn.Sequential(OrderedDict([(1, nn.ReLU())]))


def test_sequential_joins_only_sequentials():
    seq = nn.Sequential(nn.ReLU())
    with pytest.raises(ValueError, match="takes another Sequential, not ModuleList"):
        seq + nn.ModuleList([nn.ReLU()])
    with pytest.raises(ValueError, match="not list"):
        seq += [nn.ReLU()]
    with pytest.raises(ValueError, match="positive"):
        seq * 0
    with pytest.raises(TypeError, match="float"):
        seq * 1.5


def test_reassigned_child_keeps_its_place_and_del_removes_it():
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.a = nn.Linear(2, 3)
            self.b = nn.Linear(3, 4)
            self.c = nn.Linear(4, 1)
            self.scale = nn.Parameter(np.ones(1, np.float32))

        def forward(self, x):
            return self.c(self.b(self.a(x))) * self.scale

    net = Net()
    order = list(net.state_dict())
    net.a = nn.Linear(2, 3)                               # replaced in place, as in PyTorch
    net.scale = nn.Parameter(np.full(1, 2.0, np.float32))
    assert list(net.state_dict()) == order
    del net.b
    assert list(net.state_dict()) == ["scale", "a.weight", "a.bias", "c.weight", "c.bias"]
    assert len(list(net.parameters())) == 5 and not hasattr(net, "b")
    with pytest.raises(TypeError, match="parameter 'scale' of Net.*nn.Parameter expected"):
        net.scale = tl.Tensor(np.ones(1, np.float32))
    net.bn = nn.BatchNorm1d(3)
    del net.bn.running_mean                               # a buffer leaves the state_dict too
    assert "bn.running_mean" not in net.state_dict() and "bn.running_var" in net.state_dict()
