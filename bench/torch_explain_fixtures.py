"""PyTorch's Grad-CAM and saliency maps, stored in tests/fixtures/explain_reference.npz.

    /work/venv-torch/bin/python bench/torch_explain_fixtures.py [--out PATH]

Each case of EXPLAIN_CASES (tests/test_explain.py reads them from here) builds PyTorch's twin
of a seed model (bench/torch_models.py) with the weights of tests/torch_reference.model_weights,
in float64 and eval mode, and computes on a seeded batch: Grad-CAM at a layer (a forward hook
keeps the layer's output; the weights are the spatial mean of the class score's gradient; ReLU
of the weighted sum; F.interpolate bilinear with align_corners=False) and the saliency map (the
largest absolute input gradient over the channels). The score of a binary model's class 0 is minus its
logit. Only the maps and the PyTorch version are stored; the inputs are remade from the seeds.
"""
import argparse
import os
import sys

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests"))
sys.path.insert(0, os.path.join(ROOT, "bench"))
import torch_reference as ref  # noqa: E402
from torch_models import BINARY_HEADED, torch_model  # noqa: E402

# (model, num_classes, (width, height), layer index in the Sequential or None for the last
# convolution, target: None for the predicted class or a class index)
EXPLAIN_CASES = [
    ("melanoma_cnn", 2, (96, 96), 11, None),
    ("melanoma_cnn", 2, (96, 96), None, 0),
    ("padua2", 7, (26, 20), None, None),
    ("padua2", 7, (26, 20), 0, 3),
    ("baseline_cnn", 7, (24, 17), None, 5),
]
SEEDS = dict(weights=5, x=6, N=3)


def batch(size):
    W, H = size
    return np.random.default_rng(SEEDS["x"]).standard_normal((SEEDS["N"], 3, H, W))


def class_score(torch, logits, target, binary):
    n = logits.shape[0]
    if binary:
        if target is None:
            target = (logits.reshape(-1) > 0).long()
        sign = torch.where(torch.as_tensor(target).expand(n) == 1, 1.0, -1.0).double()
        return (logits.reshape(-1) * sign).sum()
    if target is None:
        target = logits.argmax(dim=1)
    target = torch.as_tensor(target).expand(n)
    return logits.gather(1, target.reshape(n, 1)).sum()


def case(torch, name, classes, size, layer, target):
    model = torch_model(name, classes, size).double().eval()
    weights = ref.model_weights([(k, v.shape) for k, v in model.state_dict().items()],
                                SEEDS["weights"])
    model.load_state_dict({k: torch.from_numpy(v) for k, v in weights.items()})
    binary = classes == 2 and name in BINARY_HEADED
    if layer is None:
        layer = max(i for i, m in enumerate(model) if isinstance(m, torch.nn.Conv2d))
    kept = {}
    hook = model[layer].register_forward_hook(lambda m, i, o: kept.setdefault("A", o))
    x = torch.from_numpy(batch(size))
    logits = model(x)
    hook.remove()
    A = kept["A"]
    (G,) = torch.autograd.grad(class_score(torch, logits, target, binary), A)
    w = G.mean(dim=(2, 3), keepdim=True)
    cam = torch.relu((w * A).sum(dim=1, keepdim=True))
    cam = torch.nn.functional.interpolate(cam, size=(size[1], size[0]), mode="bilinear",
                                          align_corners=False)[:, 0]
    x = torch.from_numpy(batch(size)).requires_grad_()
    (gx,) = torch.autograd.grad(class_score(torch, model(x), target, binary), x)
    return cam.detach().numpy(), gx.abs().amax(dim=1).numpy()


def main():
    import torch
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=os.path.join(ROOT, "tests", "fixtures",
                                                      "explain_reference.npz"))
    args = parser.parse_args()
    out = {"torch_version": np.array(torch.__version__)}
    for i, spec in enumerate(EXPLAIN_CASES):
        out[f"case{i}/cam"], out[f"case{i}/saliency"] = case(torch, *spec)
    np.savez_compressed(args.out, **out)
    print(f"wrote {len(EXPLAIN_CASES)} cases to {args.out} (torch {torch.__version__})")


if __name__ == "__main__":
    main()
