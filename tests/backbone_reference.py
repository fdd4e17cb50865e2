"""torchvision's results for the backbone parity tests (tests/fixtures/torch_backbones.npz).

bench/torch_backbones.py builds each torchvision network, gives it the weights made here from
a seed (each array drawn from a generator keyed by its state_dict name, so a name or shape
that differs from torchvision's gives other weights), and stores its outputs in evaluation
mode and the input gradient of a fixed projection of them; the tests rebuild the same
weights and inputs here, so the file holds only outputs, gradients and fingerprints.
"""
import os
import zlib

import numpy as np

PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures",
                    "torch_backbones.npz")
SCRIPT = "bench/torch_backbones.py"
NUM_CLASSES, BATCH, SEED = 10, 2, 13

# (name, options, (width, height)): every architecture, at 64×64 where it allows (the largest
# at 32×32, their weights outweighing the computation)
CASES = [
    ("resnet18", {}, (64, 64)),
    ("resnet34", {}, (64, 64)),
    ("resnet50", {}, (64, 64)),
    ("resnet101", {}, (64, 48)),
    ("resnet152", {}, (48, 64)),
    ("resnext50_32x4d", {}, (64, 48)),
    ("resnext101_32x8d", {}, (32, 32)),
    ("resnext101_64x4d", {}, (32, 40)),
    ("wide_resnet50_2", {}, (48, 48)),
    ("wide_resnet101_2", {}, (32, 32)),
    ("vgg16", {}, (64, 64)),
    ("vgg16_bn", {}, (64, 64)),
    ("vgg19", {}, (40, 36)),
    ("densenet121", {}, (64, 64)),
    ("densenet169", {}, (64, 56)),
    ("densenet201", {}, (48, 48)),
    ("inception_v3", {"aux_logits": True, "transform_input": True}, (75, 75)),
    ("inception_v3", {}, (83, 79)),
    ("mobilenet_v2", {}, (64, 64)),
    ("mobilenet_v3_large", {}, (64, 64)),
    ("mobilenet_v3_small", {}, (64, 48)),
    ("efficientnet_b0", {}, (64, 64)),
    ("efficientnet_b1", {}, (32, 40)),
    ("efficientnet_b2", {}, (40, 32)),
    ("efficientnet_b3", {}, (32, 32)),
    ("efficientnet_b4", {}, (32, 32)),
    ("efficientnet_b5", {}, (32, 32)),
    ("efficientnet_b6", {}, (32, 32)),
    ("efficientnet_b7", {}, (32, 32)),
    ("convnext_tiny", {}, (64, 48)),
    ("convnext_small", {}, (32, 32)),
    ("convnext_base", {}, (32, 40)),
    ("vit_b_16", {}, (32, 32)),     # torchvision's transformers take square inputs only
    ("vit_b_32", {}, (64, 64)),
]


def case_key(name, options, size):
    """"resnet18-64x64" or "inception_v3-75x75-aux_logits=True,transform_input=True"."""
    text = f"{name}-{size[0]}x{size[1]}"
    return text + ("-" + ",".join(f"{k}={v!r}" for k, v in sorted(options.items()))
                   if options else "")


def _rng(*parts):
    return np.random.default_rng([SEED] + [zlib.crc32(str(p).encode()) for p in parts])


def weights(named_shapes):
    """float32 arrays for a state_dict, from its (name, shape) pairs, each drawn from a
    generator keyed by its name: convolution and linear weights He-uniform (±√(6/fan_in)),
    their biases in ±0.1; batch norm scale in [0.5, 1.5], shift and running mean in ±0.5,
    running variance in [0.5, 2], num_batches_tracked 0."""
    named_shapes = [(k, tuple(s)) for k, s in named_shapes]
    norms = {k.rsplit(".", 1)[0] for k, _ in named_shapes if k.endswith("running_mean")}
    out = {}
    for key, shape in named_shapes:
        layer, _, kind = key.rpartition(".")   # ("", "class_token") for a top-level one
        rng = _rng(key, shape)
        if kind == "num_batches_tracked":
            out[key] = np.zeros(shape, np.int64)
            continue
        if kind == "running_var":
            low, high = 0.5, 2.0
        elif layer in norms:
            low, high = (0.5, 1.5) if kind == "weight" else (-0.5, 0.5)
        elif len(shape) >= 2:
            high = np.sqrt(6.0 / int(np.prod(shape[1:])))
            low = -high
        else:
            low, high = -0.1, 0.1
        values = rng.random(shape, dtype=np.float32)  # float32 draws: VGG has 138M weights
        values *= np.float32(high - low)
        values += np.float32(low)
        out[key] = values
    return out


def inputs(name, options, size):
    """(x, r): the float32 batch and the float64 direction the outputs are projected on
    (the stored gradient is that of sum(r · outputs) with respect to x)."""
    W, H = size
    key = case_key(name, options, size)
    x = _rng(key, "x").standard_normal((BATCH, 3, H, W)).astype(np.float32)
    r = _rng(key, "r").standard_normal((BATCH, NUM_CLASSES))
    return x, r


# the auxiliary classifier alone (it runs in training mode only, on inputs of at least
# 299×299), on an input of its 17×17 grid's size
AUX_CASE = ("inception_v3", {"aux_logits": True}, (299, 299))
AUX_INPUT_SHAPE = (BATCH, 768, 17, 18)


def aux_inputs():
    """(x, r) for the auxiliary classifier case: a float32 input on the 17×17 grid (here
    17×18) and the direction its logits are projected on."""
    key = case_key(*AUX_CASE) + "/aux"
    x = _rng(key, "x").standard_normal(AUX_INPUT_SHAPE).astype(np.float32)
    return x, _rng(key, "r").standard_normal((BATCH, NUM_CLASSES))


def fingerprint(arrays):
    """Sums that change when the recipe's arrays do (stored beside the outputs)."""
    return np.array([float(np.sum(a, dtype=np.float64)) for a in arrays])


_data = None


def load(key):
    """The stored array under `key`, or an AssertionError that says how to write it."""
    global _data
    if _data is None:
        if not os.path.exists(PATH):
            raise AssertionError(f"{PATH} is missing: run `python {SCRIPT}` (needs torch and "
                                 "torchvision) to write it")
        with np.load(PATH, allow_pickle=False) as f:
            _data = {k: f[k] for k in f.files}
    if key not in _data:
        raise AssertionError(f"{key!r} is not in {PATH}: run `python {SCRIPT}` again")
    return _data[key]
