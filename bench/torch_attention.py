"""PyTorch's attention results for the parity tests: tests/fixtures/torch_attention.npz.

    /work/venv-torch/bin/python bench/torch_attention.py [--out PATH]

For each case of tests/attention_reference.py it runs torch.nn.MultiheadAttention (with the
recipe's weights; the names of its state dict are stored too) or
F.scaled_dot_product_attention in float64 and stores the output, the attention weights and the
gradients of sum(r · output) with respect to query, key and value.
"""
import argparse
import os
import sys

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests"))
import attention_reference as ref  # noqa: E402


def _tensors(torch, *arrays):
    return [torch.tensor(a, requires_grad=True) for a in arrays]


def _masks(torch, kwargs):
    return {k: torch.tensor(v) if isinstance(v, np.ndarray) else v for k, v in kwargs.items()}


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default=ref.PATH)
    args = p.parse_args()
    import torch
    out = {}
    for name, options in ref.MHA_CASES:
        m = torch.nn.MultiheadAttention(ref.EMBED, ref.HEADS,
                                        batch_first=options["layout"] == "batch_first",
                                        **ref.module_kwargs(options)).double()
        m.load_state_dict({k: torch.tensor(v)
                           for k, v in ref.mha_weights(name, options).items()})
        out[f"mha/{name}/state_keys"] = np.array(sorted(m.state_dict()))
        q, k, v, kwargs, r = ref.mha_inputs(name, options)
        tensors = _tensors(torch, q, k, v)
        y, w = m(*tensors, **_masks(torch, kwargs))
        (y * torch.tensor(r)).sum().backward()
        out[f"mha/{name}/out"], out[f"mha/{name}/weights"] = y.detach().numpy(), \
            w.detach().numpy()
        for label, t in zip("qkv", tensors):
            out[f"mha/{name}/g{label}"] = t.grad.numpy()
    for name, options in ref.SDPA_CASES:
        q, k, v, kwargs, r = ref.sdpa_inputs(name, options)
        tensors = _tensors(torch, q, k, v)
        y = torch.nn.functional.scaled_dot_product_attention(*tensors, **_masks(torch, kwargs))
        (y * torch.tensor(r)).sum().backward()
        out[f"sdpa/{name}/out"] = y.detach().numpy()
        for label, t in zip("qkv", tensors):
            out[f"sdpa/{name}/g{label}"] = t.grad.numpy()
    out["meta/torch_version"] = np.array(torch.__version__)
    np.savez_compressed(args.out, **out)
    print(f"wrote {args.out} ({os.path.getsize(args.out):,} bytes)")


if __name__ == "__main__":
    main()
