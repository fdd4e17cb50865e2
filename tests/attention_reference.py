"""The attention parity cases (tests/fixtures/torch_attention.npz): each case's inputs, masks
and module weights are drawn here from a seed; bench/torch_attention.py stores PyTorch's
outputs, attention weights and input gradients for them."""
import os
import zlib

import numpy as np

PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures",
                    "torch_attention.npz")
SCRIPT = "bench/torch_attention.py"
EMBED, HEADS, BATCH, L, S = 8, 2, 3, 4, 5

# (name, options): nn.MultiheadAttention cases ("layout" batch_first / seq_first / unbatched,
# the masks passed, average_attn_weights)
MHA_CASES = [
    ("plain", dict(layout="batch_first")),
    ("seq_first", dict(layout="seq_first")),
    ("unbatched", dict(layout="unbatched")),
    ("bool_masks", dict(layout="batch_first", attn_mask="bool", key_padding_mask="bool")),
    ("float_masks", dict(layout="seq_first", attn_mask="float3d", key_padding_mask="float",
                         average=False)),
    # module options: kdim/vdim (separate projections), add_bias_kv, add_zero_attn
    ("kdim_vdim", dict(layout="batch_first", kdim=5, vdim=3)),
    ("bias_kv", dict(layout="seq_first", add_bias_kv=True, attn_mask="bool",
                     key_padding_mask="bool")),
    ("zero_attn", dict(layout="batch_first", add_zero_attn=True, attn_mask="float3d",
                       key_padding_mask="float", average=False)),
    ("all_options", dict(layout="unbatched", kdim=5, vdim=3, add_bias_kv=True,
                         add_zero_attn=True, attn_mask="bool")),
]
MODULE_OPTIONS = ("kdim", "vdim", "add_bias_kv", "add_zero_attn")


def module_kwargs(options):
    """The MultiheadAttention keyword arguments of a case (same names in both libraries)."""
    return {k: options[k] for k in MODULE_OPTIONS if k in options}
# F.scaled_dot_product_attention cases: their keyword arguments ("bool"/"float" masks drawn)
SDPA_CASES = [("plain", {}), ("bool_mask", dict(attn_mask="bool")),
              ("float_mask", dict(attn_mask="float")), ("causal", dict(is_causal=True)),
              ("scale", dict(scale=0.3))]


def rng(*parts):
    return np.random.default_rng([17] + [zlib.crc32(str(p).encode()) for p in parts])


def mha_weights(name, options=None):
    """float64 in_proj_weight (or q/k/v_proj_weight with kdim/vdim), in_proj_bias,
    out_proj.weight, out_proj.bias (and bias_k, bias_v with add_bias_kv): PyTorch's names."""
    options = options or {}
    r = rng("mha", name, "weights")
    kdim, vdim = options.get("kdim", EMBED), options.get("vdim", EMBED)
    weights = {"in_proj_weight": r.standard_normal((3 * EMBED, EMBED)) / np.sqrt(EMBED),
               "in_proj_bias": r.standard_normal(3 * EMBED) * 0.1,
               "out_proj.weight": r.standard_normal((EMBED, EMBED)) / np.sqrt(EMBED),
               "out_proj.bias": r.standard_normal(EMBED) * 0.1}
    if (kdim, vdim) != (EMBED, EMBED):
        weights["q_proj_weight"] = weights.pop("in_proj_weight")[:EMBED]
        weights["k_proj_weight"] = r.standard_normal((EMBED, kdim)) / np.sqrt(kdim)
        weights["v_proj_weight"] = r.standard_normal((EMBED, vdim)) / np.sqrt(vdim)
    if options.get("add_bias_kv"):
        weights["bias_k"], weights["bias_v"] = r.standard_normal((2, 1, 1, EMBED))
    return weights


def mha_inputs(name, options):
    """(query, key, value, keyword arguments, direction r of the output)."""
    r = rng("mha", name, "inputs")
    q, k, v = (r.standard_normal(shape) for shape in
               ((BATCH, L, EMBED), (BATCH, S, options.get("kdim", EMBED)),
                (BATCH, S, options.get("vdim", EMBED))))
    kwargs = {}
    if options.get("attn_mask") == "bool":
        mask = r.random((L, S)) < 0.4
        mask[:, 0] = False
        kwargs["attn_mask"] = mask
    elif options.get("attn_mask") == "float3d":
        kwargs["attn_mask"] = r.standard_normal((BATCH * HEADS, L, S))
    if options.get("key_padding_mask") == "bool":
        pad = r.random((BATCH, S)) < 0.3
        pad[:, 1] = False
        kwargs["key_padding_mask"] = pad
    elif options.get("key_padding_mask") == "float":
        kwargs["key_padding_mask"] = r.standard_normal((BATCH, S))
    if options.get("average") is False:
        kwargs["average_attn_weights"] = False
    if options["layout"] == "seq_first":
        q, k, v = (a.transpose(1, 0, 2).copy() for a in (q, k, v))
    elif options["layout"] == "unbatched":
        q, k, v = q[0], k[0], v[0]
    return q, k, v, kwargs, r.standard_normal(q.shape)


def sdpa_inputs(name, options):
    """(query, key, value, keyword arguments, direction r of the output)."""
    r = rng("sdpa", name)
    q, k, v = (r.standard_normal(s) for s in ((2, 3, L, 6), (2, 3, S, 6), (2, 3, S, 7)))
    kwargs = dict(options)
    if options.get("attn_mask") == "bool":
        mask = r.random((L, S)) < 0.6
        mask[:, 0] = True
        kwargs["attn_mask"] = mask
    elif options.get("attn_mask") == "float":
        kwargs["attn_mask"] = r.standard_normal((L, S))
    return q, k, v, kwargs, r.standard_normal((2, 3, L, 7))


_data = None


def load(key):
    """The stored array under `key`, or an AssertionError that says how to write it."""
    global _data
    if _data is None:
        if not os.path.exists(PATH):
            raise AssertionError(f"{PATH} is missing: run `python {SCRIPT}` (needs torch)")
        with np.load(PATH, allow_pickle=False) as f:
            _data = {k: f[k] for k in f.files}
    if key not in _data:
        raise AssertionError(f"{key!r} is not in {PATH}: run `python {SCRIPT}` again")
    return _data[key]
