"""scaled_dot_product_attention and nn.MultiheadAttention: PyTorch's outputs, weights and
gradients (tests/fixtures/torch_attention.npz), a NumPy reference of the formula and of the
mask conventions, float64 central-difference gradient checks, errors. (On a whole network:
the vit cases of test_backbones.py.)"""
import numpy as np
import pytest

import tinylesion as tl
from tinylesion import nn
from tinylesion.nn import functional as F
from tinylesion.testing import gradcheck

import attention_reference as reference
from test_backbone_blocks import check_parameter_gradients

TOLERANCE = 1e-10    # float64 on both sides


def _close(actual, key):
    expected = reference.load(key)
    np.testing.assert_allclose(actual, expected, rtol=TOLERANCE, atol=TOLERANCE, err_msg=key)


@pytest.mark.parametrize("name, options", reference.MHA_CASES,
                         ids=[c[0] for c in reference.MHA_CASES])
def test_multihead_attention_equals_pytorchs(name, options):
    m = nn.MultiheadAttention(reference.EMBED, reference.HEADS,
                              batch_first=options["layout"] == "batch_first",
                              **reference.module_kwargs(options)).double()
    assert sorted(m.state_dict()) == list(reference.load(f"mha/{name}/state_keys"))
    m.load_state_dict(reference.mha_weights(name, options))   # a PyTorch state dict's names
    q, k, v, kwargs, r = reference.mha_inputs(name, options)
    tensors = [tl.Tensor(a, requires_grad=True) for a in (q, k, v)]
    out, weights = m(*tensors, **kwargs)
    (out * tl.Tensor(r)).sum().backward()
    _close(out.numpy(), f"mha/{name}/out")
    _close(weights.numpy(), f"mha/{name}/weights")
    for label, t in zip("qkv", tensors):
        _close(t.grad.numpy(), f"mha/{name}/g{label}")


@pytest.mark.parametrize("name, options", reference.SDPA_CASES,
                         ids=[c[0] for c in reference.SDPA_CASES])
def test_scaled_dot_product_attention_equals_pytorchs(name, options):
    q, k, v, kwargs, r = reference.sdpa_inputs(name, options)
    tensors = [tl.Tensor(a, requires_grad=True) for a in (q, k, v)]
    out = F.scaled_dot_product_attention(*tensors, **kwargs)
    (out * tl.Tensor(r)).sum().backward()
    _close(out.numpy(), f"sdpa/{name}/out")
    for label, t in zip("qkv", tensors):
        _close(t.grad.numpy(), f"sdpa/{name}/g{label}")


def _rng(seed=3):
    return np.random.default_rng(seed)


def _softmax(s):
    e = np.exp(s - s.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def reference_attention(q, k, v, additive=0.0, scale=None):
    """softmax(q kᵀ · scale + additive) v in NumPy."""
    scale = 1 / np.sqrt(q.shape[-1]) if scale is None else scale
    w = _softmax(q @ np.swapaxes(k, -1, -2) * scale + additive)
    return w @ v, w


def test_sdpa_equals_the_formula_and_the_mask_conventions():
    rng = _rng()
    q, k, v = (rng.standard_normal(s) for s in ((2, 3, 4, 6), (2, 3, 5, 6), (2, 3, 5, 7)))
    run = lambda **kw: F.scaled_dot_product_attention(*map(tl.Tensor, (q, k, v)), **kw).numpy()
    np.testing.assert_allclose(run(), reference_attention(q, k, v)[0], rtol=1e-12)
    np.testing.assert_allclose(run(scale=0.3), reference_attention(q, k, v, scale=0.3)[0],
                               rtol=1e-12)
    allowed = rng.random((4, 5)) < 0.6
    allowed[:, 0] = True                      # True: may attend (torch.nn.functional's way)
    np.testing.assert_allclose(run(attn_mask=allowed), reference_attention(
        q, k, v, np.where(allowed, 0.0, -np.inf))[0], rtol=1e-12)
    causal = np.where(np.tril(np.ones((4, 5), bool)), 0.0, -np.inf)
    np.testing.assert_allclose(run(is_causal=True), reference_attention(q, k, v, causal)[0],
                               rtol=1e-12)
    bias = rng.standard_normal((4, 5))
    np.testing.assert_allclose(run(attn_mask=bias), reference_attention(q, k, v, bias)[0],
                               rtol=1e-12)


def test_sdpa_gradients():
    rng = _rng()
    q, k, v = (rng.standard_normal(s) for s in ((2, 3, 4), (2, 5, 4), (2, 5, 3)))
    bias = rng.standard_normal((3, 5))
    gradcheck(lambda q, k, v: F.scaled_dot_product_attention(q, k, v, attn_mask=bias), q, k, v)
    gradcheck(lambda q, k, v: F.scaled_dot_product_attention(q, k, v, is_causal=True), q, k, v)


def _mha_reference(m, q, k, v, additive=0.0):
    """nn.MultiheadAttention's formula in NumPy, batch first: (output, per-head weights)."""
    E, H = m.embed_dim, m.num_heads
    W, b = m.in_proj_weight.numpy(), m.in_proj_bias.numpy()
    heads = lambda x, i: (x @ W[i * E:(i + 1) * E].T + b[i * E:(i + 1) * E]).reshape(
        x.shape[0], x.shape[1], H, E // H).transpose(0, 2, 1, 3)
    out, w = reference_attention(heads(q, 0), heads(k, 1), heads(v, 2), additive)
    out = out.transpose(0, 2, 1, 3).reshape(q.shape)
    return out @ m.out_proj.weight.numpy().T + m.out_proj.bias.numpy(), w


def test_multihead_attention_equals_the_formula_in_every_layout():
    rng = _rng()
    m = nn.MultiheadAttention(8, 2, batch_first=True).double()
    m.in_proj_bias.data[...] = rng.standard_normal(24)
    m.out_proj.bias.data[...] = rng.standard_normal(8)
    q, k, v = rng.standard_normal((3, 4, 8)), rng.standard_normal((3, 5, 8)), \
        rng.standard_normal((3, 5, 8))
    expected, w = _mha_reference(m, q, k, v)
    out, weights = m(tl.Tensor(q), tl.Tensor(k), tl.Tensor(v))
    np.testing.assert_allclose(out.numpy(), expected, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(weights.numpy(), w.mean(1), rtol=1e-10, atol=1e-12)
    out, per_head = m(tl.Tensor(q), tl.Tensor(k), tl.Tensor(v), average_attn_weights=False)
    np.testing.assert_allclose(per_head.numpy(), w, rtol=1e-10, atol=1e-12)
    assert m(tl.Tensor(q), tl.Tensor(k), tl.Tensor(v), need_weights=False)[1] is None
    m.batch_first = False                   # (L, N, E)
    out, _ = m(*(tl.Tensor(a.transpose(1, 0, 2)) for a in (q, k, v)))
    np.testing.assert_allclose(out.numpy(), expected.transpose(1, 0, 2), rtol=1e-10,
                               atol=1e-12)
    out, weights = m(*(tl.Tensor(a[0]) for a in (q, k, v)))     # unbatched (L, E)
    np.testing.assert_allclose(out.numpy(), expected[0], rtol=1e-10, atol=1e-12)
    assert weights.shape == (4, 5)


def test_multihead_attention_masks_follow_pytorchs_conventions():
    rng = _rng()
    m = nn.MultiheadAttention(6, 3, batch_first=True).double()
    q, k = rng.standard_normal((2, 4, 6)), rng.standard_normal((2, 5, 6))
    blocked = rng.random((4, 5)) < 0.4           # True: may NOT attend (nn.MultiheadAttention)
    blocked[:, 0] = False
    padding = np.array([[False] * 4 + [True], [False, True, False, False, False]])
    floats = rng.standard_normal((2 * 3, 4, 5))
    additive = (np.where(blocked, -np.inf, 0.0)[None, None]
                + np.where(padding, -np.inf, 0.0)[:, None, None, :])
    out, _ = m(*map(tl.Tensor, (q, k, k)), attn_mask=blocked, key_padding_mask=padding)
    np.testing.assert_allclose(out.numpy(), _mha_reference(m, q, k, k, additive)[0],
                               rtol=1e-10, atol=1e-12)
    out, _ = m(*map(tl.Tensor, (q, k, k)), attn_mask=floats)
    np.testing.assert_allclose(out.numpy(), _mha_reference(m, q, k, k, floats.reshape(
        2, 3, 4, 5))[0], rtol=1e-10, atol=1e-12)


def test_multihead_attention_gradients():
    rng = _rng()
    m = nn.MultiheadAttention(4, 2, batch_first=True).double()
    m.in_proj_bias.data[...] = rng.standard_normal(12) * 0.1
    q, k = rng.standard_normal((2, 3, 4)), rng.standard_normal((2, 2, 4))
    gradcheck(lambda q, k, v: m(q, k, v)[0], q, k, k + 0.5)
    check_parameter_gradients(_SelfAttention(m), q)


@pytest.mark.parametrize("options", [dict(kdim=3, vdim=5), dict(add_bias_kv=True),
                                     dict(add_zero_attn=True),
                                     dict(kdim=3, add_bias_kv=True, add_zero_attn=True)])
def test_multihead_attention_options_gradients(options):
    rng = _rng(5)
    m = nn.MultiheadAttention(4, 2, batch_first=True, **options).double()
    m.in_proj_bias.data[...] = rng.standard_normal(12) * 0.1
    kdim, vdim = options.get("kdim", 4), options.get("vdim", 4)
    q = rng.standard_normal((2, 3, 4))
    k, v = rng.standard_normal((2, 2, kdim)), rng.standard_normal((2, 2, vdim))
    pad = np.array([[False, True], [False, False]])
    gradcheck(lambda q, k, v: m(q, k, v, key_padding_mask=pad)[0], q, k, v)
    check_parameter_gradients(_CrossAttention(m, k, v, pad), q)


def test_multihead_attention_options_parameters_are_pytorchs():
    m = nn.MultiheadAttention(8, 2, kdim=3, vdim=5, add_bias_kv=True)
    assert {k: tuple(v.shape) for k, v in m.state_dict().items()} == {
        "q_proj_weight": (8, 8), "k_proj_weight": (8, 3), "v_proj_weight": (8, 5),
        "in_proj_bias": (24,), "bias_k": (1, 1, 8), "bias_v": (1, 1, 8),
        "out_proj.weight": (8, 8), "out_proj.bias": (8,)}
    assert m.in_proj_weight is None and np.abs(m.bias_k.numpy()).any()


def test_multihead_attention_parameters_are_pytorchs():
    m = nn.MultiheadAttention(8, 2)
    assert {k: tuple(v.shape) for k, v in m.state_dict().items()} == {
        "in_proj_weight": (24, 8), "in_proj_bias": (24,), "out_proj.weight": (8, 8),
        "out_proj.bias": (8,)}
    assert not np.abs(m.in_proj_bias.numpy()).any() and not np.abs(m.out_proj.bias.numpy()).any()


@pytest.mark.parametrize("call, message", [
    (lambda: nn.MultiheadAttention(6, 4), "divisible by num_heads"),
    (lambda: nn.MultiheadAttention(6, 2, kdim=0), "kdim must be a positive int"),
    (lambda: nn.MultiheadAttention(6, 2, vdim=2.5), "vdim must be a positive int"),
    (lambda: nn.MultiheadAttention(6, 2, kdim=4)(tl.zeros((2, 3, 6)), tl.zeros((2, 3, 6)),
                                                 tl.zeros((2, 3, 6))), "kdim=4.*do not fit"),
    (lambda: nn.MultiheadAttention(6, 2)(tl.zeros((2, 3, 5)), tl.zeros((2, 3, 5)),
                                         tl.zeros((2, 3, 5))), "do not fit"),
    (lambda: nn.MultiheadAttention(6, 2)(tl.zeros((2, 3, 6)), tl.zeros((2, 3, 6)),
                                         tl.zeros((2, 3, 6)), attn_mask=np.zeros((3, 3))),
     "attn_mask of shape"),
    (lambda: F.scaled_dot_product_attention(tl.zeros((2, 3)), tl.zeros((2, 4)),
                                            tl.zeros((2, 4))), "do not fit"),
])
def test_bad_attention_arguments_raise_clear_errors(call, message):
    with pytest.raises(ValueError, match=message):
        call()


class _SelfAttention(nn.Module):
    """m(x, x, x)'s output, as a module of one input (for the parameter gradient check)."""

    def __init__(self, attention):
        super().__init__()
        self.attention = attention

    def forward(self, x):
        return self.attention(x, x, x)[0]


class _CrossAttention(nn.Module):
    """m(x, key, value)'s output with fixed key, value and key_padding_mask."""

    def __init__(self, attention, key, value, pad):
        super().__init__()
        self.attention, self.key, self.value, self.pad = attention, key, value, pad

    def forward(self, x):
        return self.attention(x, tl.Tensor(self.key), tl.Tensor(self.value),
                              key_padding_mask=self.pad)[0]
