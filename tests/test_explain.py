"""tinylesion.explain: Grad-CAM equal to PyTorch's, pointing at the lesion; saliency; overlays."""
import csv
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import tinylesion as tl
from tinylesion import explain, optim, predict
from tinylesion.data import read_rgb
from tinylesion.data.synthetic import CLASSES, lesion_masks, make_synthetic
from tinylesion.models import get_model, list_models

ROOT = Path(__file__).resolve().parents[1]
FIXTURE = ROOT / "tests" / "fixtures" / "explain_reference.npz"
sys.path.insert(0, str(ROOT / "bench"))
import torch_explain_fixtures as recipe  # noqa: E402  (the cases and seeds; imports no torch)
import torch_reference as ref  # noqa: E402

SIZES = [(24, 16), (32, 32), (96, 96), (160, 160), (299, 299)]
SMALL = {"melanoma_cnn": (96, 96), "padua5": (32, 32), "padua4": (32, 16),
         "resnet18": (32, 32), "densenet121": (32, 40), "mobilenet_v3_small": (32, 32),
         "inception_v3": (75, 75)}


def small_model(name, **kw):
    """The model at its SMALL size, else at the smallest of SIZES its layers accept."""
    for size in ([SMALL[name]] if name in SMALL else SIZES):
        try:
            return get_model(name, image_size=size, **kw).eval()
        except ValueError:
            continue
    raise ValueError(f"{name}: none of {SIZES} fits")


def batch_for(model, n=2, seed=0):
    W, H = model.image_size
    return tl.Tensor(np.random.default_rng(seed).standard_normal((n, 3, H, W))
                     .astype(np.float32))


# ---- equal to the same computation in PyTorch ----------------------------------------------------
@pytest.mark.parametrize("index", range(len(recipe.EXPLAIN_CASES)))
def test_grad_cam_and_saliency_equal_pytorch(index):
    name, classes, size, layer, target = recipe.EXPLAIN_CASES[index]
    model = get_model(name, num_classes=classes, image_size=size).double().eval()
    weights = ref.model_weights([(k, v.shape) for k, v in model.state_dict().items()],
                                recipe.SEEDS["weights"])
    model.load_state_dict(weights)
    x = tl.Tensor(recipe.batch(size))
    stored = np.load(FIXTURE)
    layer = None if layer is None else str(layer)
    cam = explain.grad_cam(model, x, target=target, layer=layer)
    assert cam.shape == (recipe.SEEDS["N"], size[1], size[0])
    assert cam.max() > 0   # a map of zeros would match nothing below
    np.testing.assert_allclose(cam, stored[f"case{index}/cam"], rtol=1e-7, atol=1e-10)
    np.testing.assert_allclose(explain.saliency(model, x, target=target),
                               stored[f"case{index}/saliency"], rtol=1e-7, atol=1e-12)


def test_bilinear_upsampling_is_pytorchs_half_pixel_rule():
    m = explain.bilinear_matrix(4, 2)
    # out i reads the input at (i + 0.5) / 2 - 0.5 = -0.25 (clamped to 0), 0.25, 0.75, 1.25
    np.testing.assert_allclose(m, [[1, 0], [0.75, 0.25], [0.25, 0.75], [0, 1]])
    np.testing.assert_allclose(explain.bilinear_matrix(3, 3), np.eye(3))


# ---- every model of the registry ---------------------------------------------------------------
# the larger variants of a family whose smallest member runs here: the same layers, wider or
# deeper (they would add minutes)
LARGER_VARIANTS = {"resnext101_32x8d", "resnext101_64x4d", "wide_resnet101_2", "vit_b_32",
                   "vit_l_16", "convnext_small", "convnext_base", "convnext_large"} | \
    {f"efficientnet_b{i}" for i in range(2, 8)}


@pytest.mark.parametrize("name", [n for n in list_models() if n not in LARGER_VARIANTS])
def test_every_model_gives_maps_and_leaves_its_gradients_alone(name):
    model = small_model(name)
    if name.startswith("vit_"):   # its head starts at zero (torchvision's): no gradient flows
        tl.nn.init.normal_(model.heads.head.weight, std=0.1)
    x = batch_for(model)
    cam = explain.grad_cam(model, x)
    sal = explain.saliency(model, x, target=1)
    W, H = model.image_size
    assert cam.shape == sal.shape == (2, H, W)
    assert (cam >= 0).all() and (sal >= 0).all() and sal.max() > 0
    assert all(p.grad is None and p.requires_grad for p in model.parameters())
    assert not any("forward" in vars(m) for m in model.modules())


def test_the_default_layer_is_the_last_convolution_run_and_others_can_be_named():
    model = small_model("padua2")
    x = batch_for(model)
    assert explain.last_convolution(model, x) is model[7]
    np.testing.assert_array_equal(explain.grad_cam(model, x, layer="7"),
                                  explain.grad_cam(model, x))
    assert not np.allclose(explain.grad_cam(model, x, layer=model[2]),
                           explain.grad_cam(model, x))
    dense = small_model("dense_nn")
    assert explain.last_convolution(dense, batch_for(dense)) is None


class WithUnusedHead(tl.nn.Module):
    """A convolution registered last but not run in eval (as an auxiliary classifier)."""

    def __init__(self):
        super().__init__()
        self.conv = tl.nn.Conv2d(3, 4, 3, padding=1)
        self.fc = tl.nn.Linear(4, 3)
        self.aux = tl.nn.Conv2d(4, 4, 1)

    def forward(self, x):
        y = self.conv(x).relu()
        if self.training:
            y = self.aux(y)
        return self.fc(y.mean((2, 3)))


def test_the_default_layer_is_the_last_convolution_that_runs():
    model = WithUnusedHead().eval()
    x = tl.Tensor(np.random.default_rng(1).standard_normal((2, 3, 6, 5)).astype(np.float32))
    assert explain.last_convolution(model, x) is model.conv
    np.testing.assert_array_equal(explain.grad_cam(model, x, target=2),
                                  explain.grad_cam(model, x, target=2, layer="conv"))
    with pytest.raises(ValueError, match="was not used by the forward pass"):
        explain.grad_cam(model, x, layer="aux")


def test_a_model_without_convolutions_is_explained_at_its_input():
    model = small_model("logistic_regression")   # one logit: d score / d x is the weight
    x = batch_for(model)
    cam = explain.grad_cam(model, x, target=1)
    w = model[1].weight.numpy().reshape(3, *x.shape[2:])
    expected = np.maximum((w.mean(axis=(1, 2))[:, None, None] * x.numpy()).sum(axis=1), 0)
    np.testing.assert_allclose(cam, expected, rtol=1e-5, atol=1e-7)


def test_bad_arguments_are_named():
    model = small_model("padua1")
    x = batch_for(model)
    with pytest.raises(ValueError, match="out of range for 7 classes"):
        explain.grad_cam(model, x, target=7)
    with pytest.raises(ValueError, match="has no layer 'nope'"):
        explain.grad_cam(model, x, layer="nope")
    with pytest.raises(ValueError, match="feature maps"):
        explain.grad_cam(model, x, layer="5")  # Flatten: not (N, C, h, w)
    with pytest.raises(TypeError, match="Tensor"):
        explain.saliency(model, x.numpy())


def test_overlay_and_png():
    image = np.full((30, 40, 3), 100, np.uint8)
    heat = np.zeros((6, 8))
    heat[0, 0] = 1.0
    out = explain.overlay(image, heat)
    assert out.shape == (30, 40, 3) and out.dtype == np.uint8
    assert abs(int(out[0, 0, 0]) - 100) > 50 and abs(int(out[-1, -1, 2]) - 100) < 40
    png = explain.png_bytes(out)
    assert png.startswith(b"\x89PNG")


# ---- Grad-CAM points at the lesion ---------------------------------------------------------------
def test_grad_cam_of_a_trained_model_peaks_inside_the_lesion(tmp_path):
    """A small CNN trained for a few seconds on shifted synthetic images: the peak of its
    Grad-CAM lies inside the lesion (known to the generator) far more often than a random
    point, on held-out images shifted anywhere (so the image centre is no shortcut)."""
    W, H = 48, 36
    root = make_synthetic(tmp_path / "ham", n=300, seed=0, image_size=(W, H))
    masks = lesion_masks(root)
    paths = sorted(masks)
    meta = {r["image_id"]: CLASSES.index(r["dx"])
            for r in csv.DictReader(open(root / "HAM10000_metadata.csv"))}
    X = np.stack([read_rgb(p, (W, H)).transpose(2, 0, 1) for p in paths]).astype(np.float32)
    X /= 255
    M = np.stack([masks[p] for p in paths])
    Y = np.array([meta[Path(p).stem] for p in paths])
    rng = np.random.default_rng(0)

    def shifted(X, M):
        dy, dx = rng.integers(0, H, len(X)), rng.integers(0, W, len(X))
        return (np.stack([np.roll(x, (a, b), (1, 2)) for x, a, b in zip(X, dy, dx)]),
                np.stack([np.roll(m, (a, b), (0, 1)) for m, a, b in zip(M, dy, dx)]))

    mean, std = X.mean(axis=(0, 2, 3), keepdims=True), X.std(axis=(0, 2, 3), keepdims=True)
    test = np.arange(len(paths)) % 5 == 0
    tl.manual_seed(0)
    model = get_model("baseline_cnn", num_classes=7, image_size=(W, H))
    opt = optim.Adam(model.parameters(), lr=1e-3)
    for _ in range(10):
        Xs, _ = shifted(X[~test], M[~test])
        Ys, order = Y[~test], rng.permutation(int((~test).sum()))
        model.train()
        for i in range(0, len(order), 16):
            b = order[i:i + 16]
            loss = tl.nn.functional.cross_entropy(model(tl.Tensor((Xs[b] - mean) / std)),
                                                  tl.Tensor(Ys[b]))
            opt.zero_grad()
            loss.backward()
            opt.step()
    model.eval()
    Xt, Mt = shifted(X[test], M[test])
    cam = explain.grad_cam(model, tl.Tensor((Xt - mean) / std))
    peaks = cam.reshape(len(cam), -1).argmax(axis=1)
    hit = Mt.reshape(len(Mt), -1)[np.arange(len(Mt)), peaks].mean()
    chance = Mt.mean()    # the rate of a point drawn uniformly at random
    assert chance < 0.25
    assert hit > 0.5 and hit > 3 * chance, (hit, chance)


def test_lesion_masks_match_the_drawn_lesions(tmp_path):
    root = make_synthetic(tmp_path / "mel", n=20, seed=2, layout="dermmel", image_size=(64, 48))
    masks = lesion_masks(root)
    assert len(masks) == 20
    for path, mask in masks.items():
        assert mask.shape == (48, 64) and 0.01 < mask.mean() < 0.8
        grey = np.asarray(Image.open(path), dtype=float).mean(axis=2)
        # the lesion differs from the skin around it (darker or redder, never the same)
        assert abs(grey[mask].mean() - grey[~mask].mean()) > 2
    one = sorted(masks)[3]
    np.testing.assert_array_equal(lesion_masks(root, [one])[one], masks[one])
    with pytest.raises(ValueError, match="not an image of the synthetic folder"):
        lesion_masks(root, [tmp_path / "other.jpg"])
    with pytest.raises(ValueError, match="not a folder written by make_synthetic"):
        lesion_masks(tmp_path)


# ---- python -m tinylesion.predict --explain ------------------------------------------------------
def test_predict_writes_overlays(tmp_path, capsys):
    from tinylesion import cli
    data = make_synthetic(tmp_path / "ham", n=20, seed=1, image_size=(48, 36))
    args = cli.parse_args("ham", ["--data", str(data), "--model", "padua1", "--epochs", "1",
                                  "--image-size", "24x16", "--batch-size", "8", "--workers",
                                  "0", "--out", str(tmp_path / "run")])
    cli.run(args, "ham", log=lambda *a: None)
    images = sorted(data.glob("*/*.jpg"))[:3]
    out = tmp_path / "cams"
    assert predict.main(["--weights", str(tmp_path / "run"), "--explain", str(out),
                         *map(str, images)]) == 0
    assert len(capsys.readouterr().out.strip().splitlines()) == 3
    written = sorted(out.glob("*.gradcam.png"))
    assert [p.name for p in written] == sorted(f"{p.stem}.gradcam.png" for p in images)
    with Image.open(written[0]) as im:
        assert im.size == (24 * 14, 16 * 14) and im.mode == "RGB"   # enlarged to >= 320 wide
    model, run = predict.load_run(tmp_path / "run")
    expected, _ = explain.explain_image(model, run, images[0].read_bytes())
    np.testing.assert_array_equal(np.asarray(Image.open(out / f"{images[0].stem}.gradcam.png")),
                                  expected)
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert predict.main(["--weights", str(tmp_path / "run"), "--explain", str(blocker),
                         str(images[0])]) == 2
    assert "--explain" in capsys.readouterr().err and blocker.read_text() == "x"


# ---- the GPU path (stand-in CuPy on the CUDA simulator) ------------------------------------------
GPU_SCRIPT = r"""
import json, numpy as np, tinylesion as tl
from tinylesion import explain
from tinylesion.models import get_model
tl.manual_seed(0)
model = get_model("padua1", image_size=(12, 8)).eval()
x = np.random.default_rng(0).standard_normal((2, 3, 8, 12)).astype(np.float32)
cpu = explain.grad_cam(model, tl.Tensor(x)), explain.saliency(model, tl.Tensor(x))
model.to("gpu")
xg = tl.Tensor(x).to("gpu")
gpu = explain.grad_cam(model, xg), explain.saliency(model, xg)
print(json.dumps({"types": [type(a).__module__ for a in gpu],
                  "diff": [float(np.abs(a - b).max()) for a, b in zip(cpu, gpu)],
                  "peak": float(cpu[0].max())}))
"""


def test_grad_cam_and_saliency_run_on_the_gpu_path():
    from test_fake_gpu import json_of, run_fake
    out = json_of(run_fake("-c", GPU_SCRIPT))
    assert out["types"] == ["numpy", "numpy"] and out["peak"] > 0
    assert max(out["diff"]) < 1e-5
