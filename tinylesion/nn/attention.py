"""Attention: scaled_dot_product_attention and MultiheadAttention (PyTorch's signatures and
parameter names), built from the recorded matmul, softmax and dropout ops."""
import math

import numpy as np

from .. import backend
from ..backend import get_array_module
from ..tensor import Tensor
from . import init
from .layers import Linear
from .module import Module, Parameter


def _additive_mask(mask, dtype, allowed_when_true, what):
    """A float mask to add to the attention scores: a float mask as it is; a boolean one as
    0 where attending is allowed and −∞ where it is not."""
    a = mask.array if isinstance(mask, Tensor) else mask
    xp = get_array_module(a)
    a = xp.asarray(a)
    if a.dtype == np.bool_:
        blocked = a if not allowed_when_true else ~a
        return Tensor(xp.where(blocked, -np.inf, 0.0).astype(dtype))
    if a.dtype.kind != "f":
        raise ValueError(f"{what} must be a bool or float mask, not {a.dtype}")
    return mask if isinstance(mask, Tensor) else Tensor(a.astype(dtype))


def _attend(query, key, value, mask, dropout_p, scale):
    """(softmax(Q Kᵀ · scale + mask) V, the attention weights), the weights dropped with
    probability dropout_p."""
    scores = (query @ key.transpose(-2, -1)) * scale
    if mask is not None:
        scores = scores + mask
    weights = scores.softmax(-1)
    if dropout_p > 0.0:
        from .functional import dropout
        weights = dropout(weights, dropout_p, training=True)
    return weights @ value, weights


def scaled_dot_product_attention(query, key, value, attn_mask=None, dropout_p=0.0,
                                 is_causal=False, scale=None):
    """softmax(Q Kᵀ · scale + mask) V over the last two dimensions of (..., L, E) queries,
    (..., S, E) keys and (..., S, Ev) values; scale defaults to 1/√E. A boolean attn_mask
    is True where a query may attend (torch.nn.functional's convention); a float one is added
    to the scores; is_causal lets query i attend to keys 0..i only. dropout_p drops attention
    weights whatever the mode, as PyTorch's (pass 0 in evaluation)."""
    if query.ndim < 2 or key.ndim < 2 or value.ndim < 2:
        raise ValueError("scaled_dot_product_attention: query, key and value need at least 2 "
                         f"dimensions, got {tuple(query.shape)}, {tuple(key.shape)}, "
                         f"{tuple(value.shape)}")
    if query.shape[-1] != key.shape[-1] or key.shape[-2] != value.shape[-2]:
        raise ValueError(f"scaled_dot_product_attention: query {tuple(query.shape)}, key "
                         f"{tuple(key.shape)} and value {tuple(value.shape)} do not fit "
                         "(query and key share the last size, key and value the one before)")
    if is_causal and attn_mask is not None:
        raise ValueError("scaled_dot_product_attention: give attn_mask or is_causal, not both")
    if not 0.0 <= dropout_p < 1.0:
        raise ValueError(f"scaled_dot_product_attention: dropout_p must be in [0, 1), not "
                         f"{dropout_p!r}")
    scale = 1.0 / math.sqrt(query.shape[-1]) if scale is None else float(scale)
    if is_causal:
        xp = get_array_module(query.array)
        attn_mask = xp.tril(xp.ones((query.shape[-2], key.shape[-2]), dtype=bool))
    mask = None if attn_mask is None else \
        _additive_mask(attn_mask, query.dtype, True, "attn_mask")
    return _attend(query, key, value, mask, dropout_p, scale)[0]


class MultiheadAttention(Module):
    """Attention with `num_heads` heads over embed_dim features, as torch.nn.MultiheadAttention
    (its parameters in_proj_weight (3E, E), in_proj_bias, out_proj; with kdim/vdim other than
    embed_dim, q_proj_weight (E, E), k_proj_weight (E, kdim) and v_proj_weight (E, vdim)
    instead of in_proj_weight; add_bias_kv appends learnt bias_k/bias_v (1, 1, E) to the keys
    and values, add_zero_attn a zero key and value, after them). Inputs (L, N, E), or
    (N, L, E) with batch_first=True, or unbatched (L, E); forward returns (output, weights),
    the weights averaged over the heads unless average_attn_weights=False, or None with
    need_weights=False."""

    def __init__(self, embed_dim, num_heads, dropout=0.0, bias=True, add_bias_kv=False,
                 add_zero_attn=False, kdim=None, vdim=None, batch_first=False, device=None,
                 dtype=None):
        super().__init__()
        for name, n in (("embed_dim", embed_dim), ("num_heads", num_heads)):
            if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
                raise ValueError(f"MultiheadAttention: {name} must be a positive int, not {n!r}")
        if embed_dim % num_heads:
            raise ValueError(f"MultiheadAttention: embed_dim ({embed_dim}) must be divisible "
                             f"by num_heads ({num_heads})")
        kdim = embed_dim if kdim is None else kdim
        vdim = embed_dim if vdim is None else vdim
        for name, n in (("kdim", kdim), ("vdim", vdim)):
            if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
                raise ValueError(f"MultiheadAttention: {name} must be a positive int, not {n!r}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"MultiheadAttention: dropout must be in [0, 1), not {dropout!r}")
        self.embed_dim, self.num_heads = int(embed_dim), int(num_heads)
        self.head_dim, self.dropout, self.batch_first = embed_dim // num_heads, dropout, \
            batch_first
        xp = backend.as_device("cpu" if device is None else device).xp
        dtype = np.dtype(backend.DEFAULT_DTYPE if dtype is None else dtype)
        self.kdim, self.vdim = int(kdim), int(vdim)
        self._qkv_same_embed_dim = self.kdim == embed_dim and self.vdim == embed_dim
        E = embed_dim
        if self._qkv_same_embed_dim:
            self.in_proj_weight = Parameter(xp.zeros((3 * E, E), dtype))
            for name in ("q_proj_weight", "k_proj_weight", "v_proj_weight"):
                self.register_parameter(name, None)
        else:   # separate projections, as PyTorch names them (its state dicts load)
            self.register_parameter("in_proj_weight", None)
            self.q_proj_weight = Parameter(xp.zeros((E, E), dtype))
            self.k_proj_weight = Parameter(xp.zeros((E, self.kdim), dtype))
            self.v_proj_weight = Parameter(xp.zeros((E, self.vdim), dtype))
        self.register_parameter(
            "in_proj_bias", Parameter(xp.zeros(3 * E, dtype)) if bias else None)
        self.out_proj = Linear(E, E, bias=bias)
        self.out_proj.to(device=device, dtype=dtype)
        if add_bias_kv:   # a learnt key and value appended to every sequence
            self.bias_k = Parameter(xp.zeros((1, 1, E), dtype))
            self.bias_v = Parameter(xp.zeros((1, 1, E), dtype))
        else:
            self.register_parameter("bias_k", None)
            self.register_parameter("bias_v", None)
        self.add_zero_attn = bool(add_zero_attn)
        for weight in self._projections():
            init.xavier_uniform_(weight)
        if bias:
            init.zeros_(self.out_proj.bias)
        if add_bias_kv:
            init.xavier_normal_(self.bias_k)
            init.xavier_normal_(self.bias_v)

    def _projections(self):
        """The query, key and value projection weights, (E, E), (E, kdim), (E, vdim)."""
        if self.in_proj_weight is not None:
            E = self.embed_dim
            return [self.in_proj_weight[i * E:(i + 1) * E] for i in range(3)]
        return [self.q_proj_weight, self.k_proj_weight, self.v_proj_weight]

    def _heads(self, x, N):
        """(N, L, E) → (N, heads, L, head_dim)."""
        return x.reshape(N, x.shape[1], self.num_heads, self.head_dim).transpose(1, 2)

    def forward(self, query, key, value, key_padding_mask=None, need_weights=True,
                attn_mask=None, average_attn_weights=True, is_causal=False):
        unbatched = query.ndim == 2
        if query.ndim not in (2, 3) or key.ndim != query.ndim or value.ndim != query.ndim:
            raise ValueError("MultiheadAttention: query, key and value must all be 3-D "
                             "(batched) or 2-D (unbatched), got "
                             f"{tuple(query.shape)}, {tuple(key.shape)}, {tuple(value.shape)}")
        if unbatched:
            query, key, value = (t.unsqueeze(0) for t in (query, key, value))
        elif not self.batch_first:
            query, key, value = (t.transpose(0, 1) for t in (query, key, value))
        E = self.embed_dim
        if query.shape[-1] != E or key.shape[-1] != self.kdim or value.shape[-1] != self.vdim \
                or key.shape[:2] != value.shape[:2] or key.shape[0] != query.shape[0]:
            raise ValueError(f"MultiheadAttention({E}, {self.num_heads}, kdim={self.kdim}, "
                             f"vdim={self.vdim}): query, key and value of shapes "
                             f"{tuple(query.shape)}, {tuple(key.shape)}, {tuple(value.shape)} "
                             "(batch first) do not fit")
        N, L, S = query.shape[0], query.shape[1], key.shape[1]
        b = self.in_proj_bias
        biases = [None if b is None else b[i * E:(i + 1) * E] for i in range(3)]
        from ..functions import cat
        from .functional import linear
        q, k, v = (linear(t, w, bb) for t, w, bb in
                   zip((query, key, value), self._projections(), biases))
        mask = self._mask(attn_mask, key_padding_mask, is_causal, N, L, S, q.dtype)
        extra = 0   # key positions appended: bias_k/bias_v, then a zero key and value
        if self.bias_k is not None:
            k = cat([k, self.bias_k.expand(N, 1, E)], 1)
            v = cat([v, self.bias_v.expand(N, 1, E)], 1)
            extra += 1
        q, k, v = (self._heads(t, N) for t in (q, k, v))
        if self.add_zero_attn:
            xp = get_array_module(k.array)
            zeros = Tensor(xp.zeros((N, self.num_heads, 1, self.head_dim), k.dtype))
            k, v = cat([k, zeros], 2), cat([v, zeros], 2)
            extra += 1
        if mask is not None and extra:   # NOTE: the appended keys are never masked
            xp = get_array_module(mask.array)
            mask = cat([mask, Tensor(xp.zeros(mask.shape[:-1] + (extra,), mask.dtype))], -1)
        out, weights = _attend(q, k, v, mask, self.dropout if self.training else 0.0,
                               1.0 / math.sqrt(self.head_dim))
        out = self.out_proj(out.transpose(1, 2).reshape(N, L, E))
        if unbatched:
            out = out.squeeze(0)
        elif not self.batch_first:
            out = out.transpose(0, 1)
        if not need_weights:
            return out, None
        if average_attn_weights:
            weights = weights.mean(1)
        return out, weights.squeeze(0) if unbatched else weights

    def _mask(self, attn_mask, key_padding_mask, is_causal, N, L, S, dtype):
        """The additive mask (broadcasting to (N, heads, L, S)), or None. A boolean mask is
        True where attending is NOT allowed (nn.MultiheadAttention's convention)."""
        if is_causal and attn_mask is None:
            raise ValueError("MultiheadAttention: is_causal needs attn_mask (as PyTorch)")
        mask = None
        if attn_mask is not None:
            shape = tuple(attn_mask.shape)
            if shape == (L, S):
                mask = _additive_mask(attn_mask, dtype, False, "attn_mask")
            elif shape == (N * self.num_heads, L, S):
                mask = _additive_mask(attn_mask, dtype, False, "attn_mask").reshape(
                    N, self.num_heads, L, S)
            else:
                raise ValueError(f"MultiheadAttention: attn_mask of shape {shape} must be "
                                 f"({L}, {S}) or ({N * self.num_heads}, {L}, {S})")
        if key_padding_mask is not None:
            shape = tuple(key_padding_mask.shape)
            if shape not in ((N, S), (S,)):
                raise ValueError(f"MultiheadAttention: key_padding_mask of shape {shape} must "
                                 f"be ({N}, {S})")
            pad = _additive_mask(key_padding_mask, dtype, False, "key_padding_mask")
            pad = pad.reshape(N if len(shape) == 2 else 1, 1, 1, S)
            mask = pad if mask is None else mask + pad
        return mask

    def extra_repr(self):
        more = "".join(f", {name}={getattr(self, name)}" for name in ("kdim", "vdim")
                       if getattr(self, name) != self.embed_dim)
        more += ", add_bias_kv=True" if self.bias_k is not None else ""
        more += ", add_zero_attn=True" if self.add_zero_attn else ""
        return (f"embed_dim={self.embed_dim}, num_heads={self.num_heads}, "
                f"dropout={self.dropout}, batch_first={self.batch_first}{more}")
