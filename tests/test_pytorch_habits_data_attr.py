"""`t.data` as in PyTorch: a Tensor sharing t's array, with no history and no gradient, through
which the idioms of PyTorch scripts (`outputs.data.max(1)`, `p.data.add_(...)`, DCGAN's
`m.weight.data.normal_(0.0, 0.02)`, WGAN's `p.data.clamp_`) change t unrecorded; `t.data = x`
replaces t's array. Expected values are worked out by hand from PyTorch's semantics."""
import numpy as np
import pytest

import tinylesion as torch
import tinylesion.nn as nn
from tinylesion import inference_cache
from test_distributed_buckets import shares_a_bucket, wrapped


def _linear(weight, bias):
    m = nn.Linear(len(weight[0]), len(weight))
    with torch.no_grad():
        m.weight.copy_(np.float32(weight))
        m.bias.copy_(np.float32(bias))
    return m


OUTPUTS = [[0.1, 0.9, 0.0], [0.8, 0.1, 0.1]]


def test_data_is_a_tensor_sharing_the_array_outside_the_graph():
    p = nn.Parameter(np.float32([1.0, -2.0, 3.0]))
    d = p.data
    assert type(d) is torch.Tensor and d is not p          # a plain Tensor, not a Parameter
    assert d.array is p.array                               # no copy
    assert not d.requires_grad and d.is_leaf and d.grad is None
    assert p.requires_grad and p.is_leaf                    # p itself is unchanged
    assert d.shape == p.data.shape == (3,) and d.dtype == np.float32
    y = (p * 2).sum()
    assert y.data.requires_grad is False and y.data.is_leaf and y.requires_grad


def test_max_over_data_gives_values_and_indices():
    outputs = torch.tensor(OUTPUTS, requires_grad=True) * 1.0
    _, pred = outputs.data.max(1)          # NumPy's max would give the values alone
    assert pred.tolist() == [1, 0] and pred.dtype == np.int64
    values, indices = torch.max(outputs.data, 1)
    np.testing.assert_allclose(values.numpy(), [0.9, 0.8], rtol=1e-6)
    assert indices.tolist() == [1, 0] and not values.requires_grad
    labels = torch.tensor([1, 1])
    assert torch.sum(pred == labels.data).item() == 1
    assert (pred == labels.data).sum().item() == 1


def test_conversions_through_data():
    x = torch.tensor([[1.5, 2.5]], requires_grad=True)
    loss = (x * x).sum()
    array = x.data.cpu().numpy()
    assert isinstance(array, np.ndarray) and array.tolist() == [[1.5, 2.5]]
    assert loss.data.item() == 1.5 ** 2 + 2.5 ** 2 and isinstance(loss.data.item(), float)
    assert x.data.shape == (1, 2) and x.data.size() == (1, 2) and x.data.numel() == 2
    assert x.data.tolist() == [[1.5, 2.5]] and float(loss.data) == 8.5


def test_initialising_weights_through_data():
    torch.manual_seed(0)
    m = nn.Conv2d(16, 32, 3)
    m.weight.data.normal_(0.0, 0.02)                  # DCGAN's weights_init, outside no_grad
    w = m.weight.numpy()
    assert abs(float(w.mean())) < 0.002 and abs(float(w.std()) - 0.02) < 0.001
    m.bias.data.zero_()
    assert not m.bias.numpy().any()
    bn = nn.BatchNorm2d(4)
    bn.weight.data.fill_(1)
    bn.bias.data.fill_(0.5)
    np.testing.assert_array_equal(bn.weight.numpy(), 1.0)
    np.testing.assert_array_equal(bn.bias.numpy(), 0.5)
    for p in (m.weight, m.bias, bn.weight, bn.bias):  # still leaves that require grad
        assert p.requires_grad and p.is_leaf and p.grad is None
    m.weight.data.uniform_(-0.1, 0.1)
    assert np.abs(m.weight.numpy()).max() <= 0.1


def test_hand_written_sgd_through_data():
    m = _linear([[1.0, 2.0]], [0.5])
    x = torch.tensor([[3.0, -1.0]])
    m(x).sum().backward()                               # dW = x, db = 1
    lr = 0.1
    for p in m.parameters():
        p.data.add_(p.grad.data, alpha=-lr)             # outside no_grad, as the old scripts
    np.testing.assert_allclose(m.weight.numpy(), [[1.0 - 0.3, 2.0 + 0.1]], rtol=1e-6)
    np.testing.assert_allclose(m.bias.numpy(), [0.5 - 0.1], rtol=1e-6)
    for p in m.parameters():
        p.data -= lr * p.grad.data
        p.data.sub_(lr * p.grad.data)
    np.testing.assert_allclose(m.weight.numpy(), [[1.0 - 0.9, 2.0 + 0.3]], rtol=1e-6)
    np.testing.assert_allclose(m.bias.numpy(), [0.5 - 0.3], rtol=1e-6)
    assert all(p.is_leaf and p.requires_grad for p in m.parameters())
    for p in m.parameters():
        p.grad.data.zero_()                             # zeroing the gradient by hand
    assert not m.weight.grad.numpy().any() and not m.bias.grad.numpy().any()
    weight = m.weight.array
    m(x).sum().backward()                               # accumulates into the zeroed .grad
    np.testing.assert_allclose(m.weight.grad.numpy(), [[3.0, -1.0]])
    assert m.weight.array is weight                     # the updates were in place


def test_wgan_clamp_copy_and_soft_update_through_data():
    critic = _linear([[0.5, -0.003]], [-0.2])
    for p in critic.parameters():
        p.data.clamp_(-0.01, 0.01)
    np.testing.assert_allclose(critic.weight.numpy(), [[0.01, -0.003]], rtol=1e-6)
    np.testing.assert_allclose(critic.bias.numpy(), [-0.01], rtol=1e-6)
    source, target = _linear([[1.0, 2.0]], [3.0]), _linear([[0.0, 0.0]], [1.0])
    tau = 0.25
    for param, target_param in zip(source.parameters(), target.parameters()):
        target_param.data.copy_(tau * param.data + (1 - tau) * target_param.data)
    np.testing.assert_allclose(target.weight.numpy(), [[0.25, 0.5]], rtol=1e-6)
    np.testing.assert_allclose(target.bias.numpy(), [0.25 * 3 + 0.75], rtol=1e-6)
    for param, target_param in zip(source.parameters(), target.parameters()):
        target_param.data.copy_(param.data)           # hard update
    np.testing.assert_array_equal(target.weight.numpy(), source.weight.numpy())
    assert target.weight.array is not source.weight.array  # copied, not shared
    assert all(p.requires_grad and p.grad is None for p in target.parameters())


def test_in_place_through_data_changes_the_tensor_but_is_not_recorded():
    p = nn.Parameter(np.float32([1.0, 2.0]))
    x = torch.tensor([3.0, 4.0])
    y = (p * x).sum()                  # p is used by the graph: p.mul_(2) would be refused
    with pytest.raises(RuntimeError, match="leaf tensor that requires grad"):
        p.mul_(2)
    p.data.mul_(2)                     # allowed and unrecorded, as in PyTorch
    np.testing.assert_array_equal(p.numpy(), [2.0, 4.0])
    assert p.is_leaf and p.requires_grad and p._ctx is None
    y.backward()
    np.testing.assert_array_equal(p.grad.numpy(), [3.0, 4.0])   # d(p.x)/dp = x
    # an op's output: the write through .data changes its values, not its gradient
    q = nn.Parameter(np.float32([1.0, -1.0]))
    z = q * 3
    fn = z._ctx
    z.data.mul_(10)
    assert z._ctx is fn and z.requires_grad
    np.testing.assert_array_equal(z.numpy(), [30.0, -30.0])
    z.sum().backward()
    np.testing.assert_array_equal(q.grad.numpy(), [3.0, 3.0])   # dz/dq = 3, as recorded


def test_data_after_in_place_writes_gives_the_new_values():
    m = _linear([[1.0, 2.0]], [0.0])
    before = m.weight.data                  # taken before the writes, sharing the array
    opt = torch.optim.SGD(m.parameters(), lr=0.5)
    m(torch.tensor([[1.0, 1.0]])).sum().backward()
    opt.step()                              # W -= 0.5 * 1
    np.testing.assert_allclose(m.weight.data.numpy(), [[0.5, 1.5]])
    np.testing.assert_allclose(before.numpy(), [[0.5, 1.5]])
    with torch.no_grad():
        m.weight *= 2
        m.weight[0, 0] = -1.0
    np.testing.assert_allclose(m.weight.data.numpy(), [[-1.0, 3.0]])
    np.testing.assert_allclose(before.numpy(), [[-1.0, 3.0]])
    m.weight.data[0, 1] = 7.0               # item assignment through .data
    np.testing.assert_allclose(m.weight.numpy(), [[-1.0, 7.0]])
    y = m(torch.tensor([[1.0, 1.0]]))      # and the next forward pass uses them
    np.testing.assert_allclose(y.numpy(), [[-1.0 + 7.0 - 0.5]])   # (b stepped to -0.5)


def test_assigning_data_replaces_the_array():
    p = nn.Parameter(np.zeros((2, 2), np.float32))
    new = torch.tensor([[1.0, 2.0, 3.0]])
    p.data = new                            # a Tensor: its array, shape included
    assert p.array is new.array and p.shape == (1, 3) and p.requires_grad and p.is_leaf
    p.data = np.float32([5.0, 6.0])         # an array as it is
    assert p.tolist() == [5.0, 6.0]
    p.data = p.data.double()                # another dtype
    assert p.dtype == np.float64
    (p * p).sum().backward()
    np.testing.assert_allclose(p.grad.numpy(), [10.0, 12.0])
    with pytest.raises(TypeError, match="takes a Tensor or a NumPy/CuPy array, not list"):
        p.data = [1.0, 2.0]
    with pytest.raises(TypeError, match="requires grad must stay floating-point"):
        p.data = torch.tensor([1, 2])
    t = torch.tensor([1, 2])
    t.data = torch.tensor([3, 4, 5])        # a tensor without grad takes any dtype
    assert t.tolist() == [3, 4, 5]


def test_writes_through_data_drop_the_inference_cache():
    m = _linear([[1.0, 2.0]], [0.0])
    for write in (lambda: m.weight.data.mul_(2), lambda: m.weight.data.__setitem__(0, 1.0),
                  lambda: m.bias.data.fill_(1.0), lambda: m.bias.data.zero_(),
                  lambda: m.weight.data.copy_(np.ones((1, 2), np.float32))):
        count = inference_cache.writes()
        write()
        assert inference_cache.writes() > count
    count = inference_cache.writes()
    m.weight.data = torch.tensor([[4.0, 4.0]])
    assert inference_cache.writes() > count
    count = inference_cache.writes()
    m.weight.data -= 1.0
    assert inference_cache.writes() > count and m.weight.tolist() == [[3.0, 3.0]]


def test_grad_data_aliases_the_distributed_bucket():
    model, x, world, opt = wrapped()
    model(x).sum().backward()
    opt.step()
    for p in model.parameters():
        g = p.grad.data
        assert g.array is p.grad.array and shares_a_bucket(g.array, opt)
        expected = p.grad.numpy() * 0.5
        g.mul_(0.5)                              # written into the bucket itself
        np.testing.assert_array_equal(p.grad.numpy(), expected)
        assert shares_a_bucket(p.grad.array, opt)
    model.zero_grad()
    model(x).sum().backward()
    for p in model.parameters():                 # the next backward writes there again
        assert shares_a_bucket(p.grad.data.array, opt)
