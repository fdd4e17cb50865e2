"""torchvision's outputs for the backbone parity tests: tests/fixtures/torch_backbones.npz.

    /work/venv-torch/bin/python bench/torch_backbones.py [--out PATH] [--only NAME ...]

Needs torch and torchvision (torchvision==0.28.0 matches torch==2.13.0). For each case of
tests/backbone_reference.py it builds torchvision's network with 10 classes, loads the
recipe's float32 weights (made from the state_dict names and shapes), runs it in float64 in
evaluation mode on the recipe's batch and stores the outputs, the input gradient of
sum(r · outputs) (as a sample and projections, tests/torch_reference.summary) and fingerprints
of the weights and inputs. The tests compare tinylesion's float32 networks with them.
"""
import argparse
import os
import sys
import types

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests"))
import backbone_reference as ref  # noqa: E402
from torch_reference import summary  # noqa: E402


def import_torchvision_models():
    """torchvision.models without registering its compiled operators: a torchvision wheel
    built against another torch fails there, and the models need none of them."""
    sys.modules.setdefault("torchvision._meta_registrations",
                           types.ModuleType("torchvision._meta_registrations"))
    import torchvision.models
    return torchvision.models


def run_case(torch, models, name, options, size):
    kwargs = dict(options)
    if name == "inception_v3":  # torchvision's default keeps the auxiliary head; ours does not
        kwargs = {"init_weights": False, "aux_logits": False, **options}
    sized = dict(kwargs)
    if name.startswith("vit_"):  # a transformer's position embedding is sized by its input
        sized["image_size"] = size[0]
    model = getattr(models, name)(num_classes=ref.NUM_CLASSES, **sized)
    state = model.state_dict()
    weights = ref.weights([(k, v.shape) for k, v in state.items()])
    model.load_state_dict({k: torch.from_numpy(v) for k, v in weights.items()}, strict=True)
    model = model.double().eval()
    x, r = ref.inputs(name, options, size)
    xt = torch.from_numpy(x.astype(np.float64)).requires_grad_(True)
    out = model(xt)
    (out * torch.from_numpy(r)).sum().backward()
    key = ref.case_key(name, options, size)
    result = {f"{key}/out": out.detach().numpy().copy(),
              f"{key}/weights_fingerprint": ref.fingerprint(list(weights.values())),
              f"{key}/inputs_fingerprint": ref.fingerprint([x, r]),
              f"{key}/parameters_1000": np.array(sum(
                  p.numel() for p in getattr(models, name)(**kwargs).parameters()))}
    for part, value in summary(xt.grad.numpy()).items():
        result[f"{key}/gx/{part}"] = value
    return result


def run_aux_case(torch, models):
    """The auxiliary classifier of inception_v3 alone, in evaluation mode."""
    name, options, size = ref.AUX_CASE
    model = models.inception_v3(num_classes=ref.NUM_CLASSES, init_weights=False, **options)
    weights = ref.weights([(k, v.shape) for k, v in model.state_dict().items()])
    model.load_state_dict({k: torch.from_numpy(v) for k, v in weights.items()}, strict=True)
    aux = model.double().eval().AuxLogits
    x, r = ref.aux_inputs()
    xt = torch.from_numpy(x.astype(np.float64)).requires_grad_(True)
    out = aux(xt)
    (out * torch.from_numpy(r)).sum().backward()
    key = ref.case_key(name, options, size) + "/aux"
    result = {f"{key}/out": out.detach().numpy().copy(),
              f"{key}/weights_fingerprint": ref.fingerprint(list(weights.values()))}
    for part, value in summary(xt.grad.numpy()).items():
        result[f"{key}/gx/{part}"] = value
    return result


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default=ref.PATH)
    p.add_argument("--only", nargs="*", help="case names to (re)compute; the others are kept")
    args = p.parse_args()
    import torch
    torch.set_grad_enabled(True)
    models = import_torchvision_models()
    out = {}
    if args.only and os.path.exists(args.out):
        with np.load(args.out) as f:
            out = {k: f[k] for k in f.files}
    for name, options, size in ref.CASES:
        if args.only and name not in args.only:
            continue
        key = ref.case_key(name, options, size)
        out = {k: v for k, v in out.items() if not k.startswith(key + "/")}
        out.update(run_case(torch, models, name, options, size))
        print(key, "done", flush=True)
    if not args.only or "inception_v3" in args.only:
        key = ref.case_key(*ref.AUX_CASE) + "/aux"
        out = {k: v for k, v in out.items() if not k.startswith(key + "/")}
        out.update(run_aux_case(torch, models))
        print(key, "done", flush=True)
    out["meta/torch_version"] = np.array(torch.__version__)
    out["meta/torchvision_version"] = np.array(__import__("torchvision").__version__)
    np.savez_compressed(args.out, **out)
    print(f"wrote {args.out} ({os.path.getsize(args.out):,} bytes)")


if __name__ == "__main__":
    main()
