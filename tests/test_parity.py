"""Places where tinylesion once differed from PyTorch, with PyTorch's answers written by hand."""
import numpy as np
import pytest

import tinylesion as tl
from tinylesion.testing import gradcheck


# ---- reductions of 0-d tensors take dim 0 or -1 ------------------------------------------------
@pytest.mark.parametrize("name", ["sum", "mean", "amax", "amin"])
@pytest.mark.parametrize("dim", [0, -1, (0,)])
def test_reductions_of_a_zero_dim_tensor_take_dim_0_and_minus_1(name, dim):
    x = tl.tensor(2.5, requires_grad=True)
    y = getattr(x, name)(dim, keepdim=True)
    assert y.shape == () and y.item() == 2.5
    y.backward()
    assert x.grad.item() == 1.0


def test_std_var_and_max_of_a_zero_dim_tensor():
    x = tl.tensor(np.float64(3.0))
    with pytest.warns(RuntimeWarning, match="freedom"):   # torch warns too
        assert np.isnan(x.std(0).item()) and x.var(-1, correction=0).item() == 0.0
    values, indices = x.max(0)
    assert values.item() == 3.0 and indices.item() == 0 and indices.shape == ()
    with pytest.raises(IndexError, match="out of range"):     # torch's type
        x.sum(1)


# ---- floating-point functions of integer and boolean tensors give float32 -------------------
@pytest.mark.parametrize("name", ["exp", "log", "sqrt", "sigmoid", "tanh"])
@pytest.mark.parametrize("dtype", [np.int64, np.bool_])
def test_float_functions_of_integers_give_the_default_dtype(name, dtype):
    x = tl.tensor(np.array([1, 0, 1]).astype(dtype))
    y = getattr(x, name)()
    assert y.dtype == np.float32
    with np.errstate(divide="ignore"):
        expected = getattr(np, name)(np.array([1.0, 0.0, 1.0])) if name != "sigmoid" else \
            1 / (1 + np.exp(-np.array([1.0, 0.0, 1.0])))
        np.testing.assert_allclose(y.numpy(), expected.astype(np.float32), rtol=1e-6)


def test_abs_and_relu_keep_integers_and_refuse_booleans_as_torch():
    x = tl.tensor(np.array([-2, 0, 3]))
    assert x.abs().dtype == np.int64 and x.abs().tolist() == [2, 0, 3]
    assert x.relu().tolist() == [0, 0, 3]
    b = tl.tensor(np.array([True, False]))
    for name in ("abs", "relu"):
        with pytest.raises(TypeError, match=f"{name} is not implemented for bool"):
            getattr(b, name)()


@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
def test_softmax_of_an_integer_tensor_is_an_error(name):
    with pytest.raises(TypeError, match=f"{name} is not implemented for int64"):
        getattr(tl, name)(tl.tensor([1, 2, 3]), 0)
    y = getattr(tl, name)(tl.tensor([1, 2, 3]), 0, dtype=tl.float64)  # torch's dtype= converts
    assert y.dtype == np.float64


# ---- floor division, remainder and the bitwise operators ----------------------------------------
def test_floor_division_and_remainder_round_towards_minus_infinity():
    a, b = tl.tensor([5, -5, 7, -7]), tl.tensor([2, 2, -3, -3])
    assert (a // b).tolist() == [2, -3, -3, 2] and (a // b).dtype == np.int64
    assert (a % b).tolist() == [1, 1, -2, -1]
    assert (7 // tl.tensor([2, -2])).tolist() == [3, -4]
    y = 7.5 % tl.tensor([2, -2])
    assert y.dtype == np.float32 and y.tolist() == [1.5, -0.5]
    y = tl.tensor([1, 2]) // 1.5   # an integer tensor with a float gives float32
    assert y.dtype == np.float32 and y.tolist() == [0.0, 1.0]


def test_integer_division_by_zero_raises_and_float_division_gives_inf_and_nan():
    with pytest.raises(ZeroDivisionError):
        tl.tensor([5]) // 0
    with pytest.raises(ZeroDivisionError):
        tl.tensor([5, 1]) % tl.tensor([1, 0])
    assert (tl.tensor([5.0]) // 0).tolist() == [np.inf]
    assert np.isnan((tl.tensor([5.0, -1.0]) % 0).numpy()).all()
    with pytest.raises(TypeError, match="bool"):
        tl.tensor([True]) // tl.tensor([True])


def test_remainder_gradient_and_floor_division_has_none():
    x = tl.tensor([1.5, -2.5], requires_grad=True)
    y = tl.tensor([2.0, 2.0], requires_grad=True)
    (x % y).sum().backward()
    assert x.grad.tolist() == [1.0, 1.0]
    assert y.grad.tolist() == [-0.0, 2.0]     # −⌊x / y⌋
    gradcheck(lambda a, b: a % b, np.array([0.3, 1.7, -2.2]), np.array([0.9, -0.7, 0.8]))
    q = x // 2
    assert q.requires_grad and q.tolist() == [0.0, -2.0]
    with pytest.raises(RuntimeError, match="floor division"):
        q.sum().backward()


def test_bitwise_operators_on_integers_and_booleans():
    t, f = tl.tensor([True, False]), tl.tensor([True, True])
    assert (t & f).tolist() == [True, False] and (t | f).tolist() == [True, True]
    assert (t ^ f).tolist() == [False, True] and (~t).tolist() == [False, True]
    n = tl.tensor([6, 3])
    assert (n & 5).tolist() == [4, 1] and (5 | n).tolist() == [7, 7]
    assert (n ^ 5).tolist() == [3, 6] and (~n).tolist() == [-7, -4]
    assert (tl.tensor([True]) & 1).dtype == np.int64
    assert (tl.tensor([True]) ^ True).dtype == np.bool_
    with pytest.raises(TypeError, match="integer and boolean"):
        tl.tensor([1.0]) & 1
    with pytest.raises(TypeError, match="integer and boolean"):
        tl.tensor([1]) | 1.5
    with pytest.raises(TypeError, match="integer and boolean"):
        ~tl.tensor([1.0])


def test_argmax_of_a_boolean_tensor_is_an_error_as_in_torch():
    with pytest.raises(TypeError, match="bool"):
        tl.tensor([True, False]).argmax()
    with pytest.raises(TypeError, match="bool"):
        tl.argmin(tl.tensor([True, False]), 0)
    values, indices = tl.tensor([False, True]).max(0)   # max(dim) takes booleans
    assert values.item() is True and indices.item() == 1


# ---- matmul does not promote ---------------------------------------------------------------
def test_matmul_of_two_dtypes_is_an_error_as_in_torch():
    a = tl.tensor(np.ones((2, 3)))
    b = tl.tensor(np.ones((3, 2), np.float32))
    with pytest.raises(RuntimeError, match="one dtype"):
        a @ b
    with pytest.raises(RuntimeError, match="one dtype"):
        tl.matmul(b, tl.tensor(np.ones(2)))
    assert (b @ np.ones((2, 2))).dtype == np.float32   # a constant takes the tensor's dtype


# ---- indexing: ints are applied before arrays ----------------------------------------------
def test_an_int_does_not_move_the_axis_of_an_array_index():
    x = tl.tensor(np.arange(8.0).reshape(4, 2, 1), requires_grad=True)
    y = x[0, ..., [0, -1]]              # torch: y[i, j] = x[0, i, index[j]]
    assert y.shape == (2, 2)
    assert y.tolist() == [[0.0, 0.0], [1.0, 1.0]]
    (y * tl.tensor([[1.0, 2.0], [3.0, 4.0]])).sum().backward()
    expected = np.zeros((4, 2, 1))
    expected[0, :, 0] = [3.0, 7.0]      # both copies of index 0 (and -1) add up
    np.testing.assert_array_equal(x.grad.numpy(), expected)


def test_ints_arrays_and_none_mixed_give_torch_shapes():
    x = tl.tensor(np.arange(12.0).reshape(1, 3, 4))
    y = x[None, tl.tensor([-1, -1]), np.array([-3, 2]), None, -4]
    assert y.shape == (1, 2, 1)         # NumPy alone would give (2, 1, 1)
    assert y.numpy().ravel().tolist() == [0.0, 8.0]
    z = x[0, [2, 0], 1:3]
    assert z.shape == (2, 2) and z.tolist() == [[9.0, 10.0], [1.0, 2.0]]
    w = x[:, 1, [True, False, True, False]]
    assert w.tolist() == [[4.0, 6.0]]


# ---- in-place operators and item assignment -----------------------------------------------
def test_in_place_operators_write_into_the_tensor_that_aliases_see():
    a = tl.tensor([1.0, 2.0])
    b = a
    a += 1
    assert b is a and b.tolist() == [2.0, 3.0]
    a *= tl.tensor([1, 2])              # an integer operand is cast to the tensor's dtype
    assert a.dtype == np.float32 and a.tolist() == [2.0, 6.0]
    n = tl.tensor([7, 8])
    n //= 2
    n %= 3
    assert n.tolist() == [0, 1]
    m = tl.tensor([True, False])
    m |= tl.tensor([False, True])
    assert m.tolist() == [True, True]


def test_in_place_results_that_do_not_fit_are_errors():
    with pytest.raises(RuntimeError, match="can't be cast"):
        n = tl.tensor([1, 2])
        n /= 2
    with pytest.raises(RuntimeError, match="does not fit"):
        x = tl.tensor([1.0, 2.0])
        x *= tl.tensor([[1.0], [2.0]])


def test_manual_sgd_step_under_no_grad_updates_the_parameter():
    model = tl.nn.Linear(2, 1)
    model.weight.array[...] = [[1.0, -1.0]]
    model.bias.array[...] = 0.0
    model(tl.tensor([[3.0, 1.0]])).sum().backward()
    with tl.no_grad():
        for p in model.parameters():
            p -= 0.5 * p.grad
    assert model.weight.tolist() == [[-0.5, -1.5]] and model.bias.tolist() == [-0.5]
    assert model.weight.is_leaf and model.weight.requires_grad
    with pytest.raises(RuntimeError, match="leaf tensor that requires grad"):
        model.weight += 1


def test_in_place_in_the_graph_records_the_op():
    p = tl.tensor([1.0, 2.0], requires_grad=True)
    y = p * 2
    y += p                              # y = 3p
    y.sum().backward()
    assert p.grad.tolist() == [3.0, 3.0]
    x = tl.tensor([1.0, 2.0])
    x += p                              # a constant becomes part of the graph
    assert x.requires_grad and not x.is_leaf
    z = p * 2
    w = z * z
    with pytest.raises(RuntimeError, match="earlier operation"):
        z += 1                          # w's gradient would go to the wrong node
    assert w.tolist() == [4.0, 16.0]


def test_setitem_outside_and_inside_the_graph():
    x = tl.zeros(3)
    x[1:] = 5
    x[tl.tensor([True, False, False])] = -1
    assert x.tolist() == [-1.0, 5.0, 5.0]
    n = tl.tensor([1, 2, 3])
    n[0] = 7.9                          # cast to the tensor's dtype, as torch does
    assert n.tolist() == [7, 2, 3]
    p = tl.tensor([1.0, 2.0], requires_grad=True)
    y = p * 1
    y[0] = p[1] * 3
    assert y.tolist() == [6.0, 2.0]
    y.sum().backward()
    assert p.grad.tolist() == [0.0, 4.0]  # y[0] no longer depends on p[0]
    with pytest.raises(RuntimeError, match="leaf tensor that requires grad"):
        p[0] = 1.0
    gradcheck(_set_row, np.arange(6.0).reshape(2, 3) / 7, np.array([0.5, -1.0, 2.0]))


def _set_row(x, v):
    y = x * 1
    y[1] = v * v
    return y * x


# ---- small things ------------------------------------------------------------------------
def test_relu_of_a_zero_dim_tensor_keeps_its_shape():
    x = tl.tensor(2.0, requires_grad=True)
    y = x.relu()
    y.backward()
    assert y.shape == () and x.grad.shape == () and x.grad.item() == 1.0
    assert tl.tensor(-3).relu().shape == ()


def test_subtraction_with_booleans_is_an_error_as_in_torch():
    for thunk in (lambda: tl.tensor([1.0]) - True, lambda: True - tl.tensor([1.0]),
                  lambda: tl.tensor([1.0]) - tl.tensor([True]), lambda: tl.tensor([True]) - 1):
        with pytest.raises(TypeError, match="bool"):
            thunk()


def test_integer_tensors_to_negative_integer_powers():
    y = tl.tensor([-1, -1, 1, 0, 2, -2, 3]) ** tl.tensor([-3, -2, -2, -1, -1, -2, 2])
    assert y.dtype == np.int64 and y.tolist() == [-1, 1, 1, 0, 0, 0, 9]


def test_changing_a_tensor_an_op_kept_for_its_backward_is_refused():
    # x needs no gradient, but x * w keeps x for w's gradient: changing x would change w.grad
    w = tl.Tensor(np.ones(3), requires_grad=True)
    x = tl.Tensor(np.array([1.0, 2.0, 3.0]))
    loss = (w * x).sum()
    with pytest.raises(RuntimeError, match="backward needs it"):
        x += 10
    with pytest.raises(RuntimeError, match="backward needs it"):
        x[0] = 100.0
    loss.backward()
    np.testing.assert_array_equal(w.grad.numpy(), [1.0, 2.0, 3.0])
    x += 10                       # after backward the graph is freed: allowed again
    np.testing.assert_array_equal(x.numpy(), [11.0, 12.0, 13.0])


def test_a_0d_integer_tensor_indexes_as_an_int():
    x = tl.Tensor(np.arange(24.0).reshape(2, 3, 4))
    # torch: x[tensor(1), 0, [0, 2]] is tensor([12., 14.])
    np.testing.assert_array_equal(x[tl.tensor(1), 0, [0, 2]].numpy(), [12.0, 14.0])
    np.testing.assert_array_equal(x[tl.tensor(1)].numpy(), x.numpy()[1])


def test_writing_into_an_expanded_view_is_refused_by_its_strides():
    base = tl.Tensor(np.array([[1.0], [2.0]]))
    view = base.expand(2, 3)
    for write in (lambda: view.fill_(0.0), lambda: view.__setitem__(0, 5.0)):
        with pytest.raises(RuntimeError, match="read-only view"):
            write()
    with tl.no_grad(), pytest.raises(RuntimeError, match="read-only view"):
        view += 1
    np.testing.assert_array_equal(base.numpy(), [[1.0], [2.0]])
    # the stride rule (not the NumPy-only flag) is what the GPU relies on
    writable = np.broadcast_to(np.ones((2, 1)), (2, 3)).copy()
    t = tl.Tensor._wrap(np.lib.stride_tricks.as_strided(writable, (2, 3), (8, 0)))
    with pytest.raises(RuntimeError, match="read-only view"):
        t.fill_(0.0)
