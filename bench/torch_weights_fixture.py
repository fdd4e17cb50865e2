"""A small state_dict written by real torch.save, for tests/test_weights_files.py.

    /work/venv-torch/bin/python bench/torch_weights_fixture.py

Writes tests/fixtures/torch_state.pth (torch.save's zip format: several dtypes, a
transposed view, a slice that shares its storage at an offset, a parameter, a 0-d and an
empty tensor) and tests/fixtures/torch_state_expected.npz (the same values as NumPy arrays,
bfloat16 as float32), so that the test reads the .pth without torch and compares; and
tests/fixtures/torch_state.safetensors, the same tensors written by safetensors.torch (each
view as its own contiguous tensor), bfloat16 included, as timm's and Hugging Face's files hold.
"""
import collections
import os

import numpy as np
import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIXTURES = os.path.join(ROOT, "tests", "fixtures")


def state_dict():
    g = torch.Generator().manual_seed(0)
    big = torch.randn(4, 5, generator=g)
    sd = collections.OrderedDict()
    sd["conv.weight"] = torch.randn(2, 3, 3, 3, generator=g)
    sd["conv.bias"] = torch.nn.Parameter(torch.randn(2, generator=g))
    sd["bn.running_var"] = torch.rand(2, generator=g, dtype=torch.float64) + 0.5
    sd["bn.num_batches_tracked"] = torch.tensor(7)
    sd["big"] = big
    sd["big.rows"] = big[1:3]              # the same storage, at offset 5
    sd["big.column"] = big[:, 2]           # stride 5
    sd["big.transposed"] = big.t()         # strides (1, 5)
    sd["half"] = torch.randn(3, generator=g).half()
    sd["bfloat16"] = torch.randn(2, 2, generator=g).bfloat16()
    sd["int32"] = torch.arange(-3, 3, dtype=torch.int32).reshape(2, 3)
    sd["uint8"] = torch.arange(250, 256, dtype=torch.uint8)
    sd["bool"] = torch.tensor([True, False, True])
    sd["empty"] = torch.zeros(0, 3)
    return sd


def main():
    sd = state_dict()
    pth = os.path.join(FIXTURES, "torch_state.pth")
    torch.save(sd, pth)
    expected = {k: (v.detach().float() if v.dtype == torch.bfloat16 else v.detach()).numpy()
                for k, v in sd.items()}
    np.savez(os.path.join(FIXTURES, "torch_state_expected.npz"), **expected)
    print(f"wrote {pth} ({os.path.getsize(pth):,} bytes) with torch {torch.__version__}")
    from safetensors.torch import save_file
    path = os.path.join(FIXTURES, "torch_state.safetensors")
    save_file({k: v.detach().contiguous().clone() for k, v in sd.items()}, path)
    print(f"wrote {path} ({os.path.getsize(path):,} bytes)")


if __name__ == "__main__":
    main()
