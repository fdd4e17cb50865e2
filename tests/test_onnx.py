"""tinylesion.onnx and python -m tinylesion.export: ONNX Runtime gives tinylesion's numbers."""
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import tinylesion as tl
from tinylesion import nn
from tinylesion.models import get_model, list_models
from tinylesion.nn import functional as F
from tinylesion.train import probabilities

onnx = pytest.importorskip("onnx", reason="pip install -e '.[test]' (or '.[onnx]')")
ort = pytest.importorskip("onnxruntime", reason="pip install -e '.[test]' (or '.[onnx]')")
from tinylesion.onnx import ExportError, build, export  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
TOLERANCE = 1e-5


def small_size(name):
    """A small input the model accepts (some need a few pixels for their pooling)."""
    for size in [(26, 19), (40, 33), (96, 80), (160, 160), (299, 299)]:
        try:
            get_model(name, image_size=size)
            return size
        except ValueError:
            continue
    return None


def randomise_batch_norms(model, seed=1):
    """Running statistics and affine parameters far from the defaults, so folding shows."""
    rng = np.random.default_rng(seed)
    for m in model.modules():
        if isinstance(m, (nn.BatchNorm2d, nn.BatchNorm1d)):
            C = m.num_features
            m.running_mean.array[...] = rng.uniform(-0.5, 0.5, C)
            m.running_var.array[...] = rng.uniform(0.5, 2.0, C)
            if m.weight is not None:
                m.weight.array[...] = rng.uniform(0.5, 1.5, C)
            if m.bias is not None:
                m.bias.array[...] = rng.uniform(-0.5, 0.5, C)


def engine_probabilities(model, x):
    with tl.no_grad():
        logits = model(tl.Tensor(x))
        p = probabilities(logits, getattr(model, "binary", False)).numpy()
    if getattr(model, "binary", False):
        p = np.stack([1 - p, p], axis=1)
    return logits.numpy(), p


def run_onnx(path, x):
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(["logits", "probabilities"], {"input": x})


def check_export(model, size, tmp_path, batches=(1, 4)):
    """Export, check, and compare ONNX Runtime with tinylesion on batches of several sizes;
    returns the loaded ONNX model."""
    path = export(model.eval(), tmp_path / "model.onnx", size)
    proto = onnx.load(str(path))
    onnx.checker.check_model(proto, full_check=True)
    dims = proto.graph.input[0].type.tensor_type.shape.dim
    assert dims[0].dim_param == "N" and [d.dim_value for d in dims[1:]] == [3, size[1], size[0]]
    for n in batches:   # one file, any batch size
        x = np.random.default_rng(n).standard_normal((n, 3, size[1], size[0]))
        x = x.astype(np.float32)
        logits, probs = engine_probabilities(model, x)
        got_logits, got = run_onnx(path, x)
        assert got.shape == probs.shape
        np.testing.assert_allclose(got, probs, rtol=0, atol=TOLERANCE)
        # (relative to their scale: a randomly initialised Inception's logits reach 1e8)
        np.testing.assert_allclose(got_logits, logits, rtol=1e-4,
                                   atol=1e-5 * max(1.0, float(np.abs(logits).max())))
    return proto


# the seed papers' models and one ImageNet backbone of each family (VGG's only own operator,
# adaptive pooling to 7x7, is tested below: a VGG file is 550 MB; ConvNeXt and ViT are tested
# below in small configurations of the same classes); TINYLESION_ALL_MODELS=1 takes every
# registered model (a few minutes and 4 GB of memory more)
FAMILIES = ("resnet18", "resnet50", "densenet121", "inception_v3", "mobilenet_v2",
            "mobilenet_v3_small", "efficientnet_b0")
EXPORTED = [n for n in list_models() if os.environ.get("TINYLESION_ALL_MODELS") == "1"
            or n in FAMILIES or not any(n.startswith(f) for f in
                                        ("resnet", "vgg", "densenet", "inception",
                                         "mobilenet", "efficientnet", "convnext", "vit_"))]


@pytest.mark.parametrize("name", EXPORTED)
def test_every_registered_model_exports_and_onnx_runtime_agrees(name, tmp_path):
    size = small_size(name)
    if size is None:
        pytest.skip(f"{name}: no small input size found")
    tl.manual_seed(0)
    model = get_model(name, image_size=size)
    randomise_batch_norms(model)
    proto = check_export(model, size, tmp_path)
    kinds = [n.op_type for n in proto.graph.node]
    convs = sum(isinstance(m, nn.Conv2d) for m in model.modules())
    # one Conv node per convolution that runs (an auxiliary head may not run in eval)
    assert (0 < kinds.count("Conv") <= convs) if convs else "Conv" not in kinds
    # batch norm after a convolution is folded into it: no BatchNormalization node is left
    # for those (the models' batch norms all follow a convolution)
    follows_conv = sum(isinstance(m, nn.BatchNorm2d) for m in model.modules())
    if follows_conv and all(_bn_after_conv(model)):
        assert "BatchNormalization" not in kinds


def randomise_layer_norms(model, seed=2):
    """LayerNorm weights and biases away from ones and zeros, so a swap or a drop shows."""
    rng = np.random.default_rng(seed)
    for m in model.modules():
        if isinstance(m, nn.LayerNorm) and m.weight is not None:
            m.weight.array[...] = rng.uniform(0.5, 1.5, m.weight.shape)
            if m.bias is not None:
                m.bias.array[...] = rng.uniform(-0.5, 0.5, m.bias.shape)


def test_a_small_vision_transformer_exports(tmp_path):
    """ViT's class (patch embedding, class token expanded to the batch, position embedding,
    pre-norm blocks of multi-head attention and GELU MLPs, the class token's output) at
    8x8 patches, width 16, 2 heads, 2 blocks; dropout is the identity in eval mode."""
    from tinylesion.models.vit import VisionTransformer
    tl.manual_seed(5)
    model = VisionTransformer("vit_test", 8, 2, 2, 16, 32, 3, (16, 24), dropout=0.2,
                              attention_dropout=0.2)
    nn.init.normal_(model.heads.head.weight, std=0.5)   # (zeros at initialisation)
    nn.init.normal_(model.class_token, std=1.0)
    randomise_layer_norms(model)
    proto = check_export(model, (16, 24), tmp_path, batches=(1, 3))
    kinds = [n.op_type for n in proto.graph.node]
    # two per block and the encoder's last; each traced layer norm is one node
    assert kinds.count("LayerNormalization") == 5 and "Pow" not in kinds
    assert kinds.count("Erf") == 2 and kinds.count("Softmax") == 2 + 1   # and probabilities
    assert {"Expand", "Shape", "Concat", "Slice", "Squeeze"} <= set(kinds)
    assert "Dropout" not in kinds
    # the attention's query, key and value weights are slices of one weight, folded into
    # initializers once each: the file holds no copy of the whole in_proj_weight per slice
    assert sum(onnx.numpy_helper.to_array(i).shape == (48, 16)
               for i in proto.graph.initializer) == 0


def test_a_small_convnext_exports(tmp_path):
    """ConvNeXt's class (4x4 stem with LayerNorm2d, blocks of depthwise 7x7 convolution,
    channels-last LayerNorm, GELU MLP and layer scale, downsampling with LayerNorm2d, the
    classifier's LayerNorm2d) at widths 8-16-24-32; stochastic depth is the identity in eval
    mode."""
    from tinylesion.models.convnext import ConvNeXt
    tl.manual_seed(6)
    model = ConvNeXt("convnext_test", (8, 16, 24, 32), (1, 1, 2, 1), 3, (40, 40), 0.5,
                     layer_scale=0.5)
    randomise_layer_norms(model)
    nn.init.normal_(model.classifier[2].weight, std=0.5)
    proto = check_export(model, (40, 40), tmp_path, batches=(1, 3))
    kinds = [n.op_type for n in proto.graph.node]
    norms = sum(isinstance(m, nn.LayerNorm) for m in model.modules())
    assert kinds.count("LayerNormalization") == norms == 5 + 5 and "Pow" not in kinds
    assert kinds.count("Erf") == 5 and kinds.count("Conv") == 1 + 5 + 3


def test_layer_norm_without_weight_and_the_decomposed_form(tmp_path):
    """A layer norm without weight and bias, and over two axes, is one LayerNormalization;
    written by hand with a power and its variance used again it stays the ops it is (Pow);
    GELU's tanh form; the constants of both."""
    class Norms(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(3, 6)
            self.plain = nn.LayerNorm(6, eps=1e-3, elementwise_affine=False)
            self.two = nn.LayerNorm((6, 6))
            self.head = nn.Linear(6, 4)

        def forward(self, x):
            y = self.fc(x.permute(0, 2, 3, 1))                     # (N, H, W=6, 6)
            y = self.two(self.plain(y)).mean(1)                    # (N, W, 6)
            var = ((y - y.mean(-1, keepdim=True)) ** 2).mean(-1, keepdim=True)
            y = (y - y.mean(-1, keepdim=True)) * (var + 1e-5) ** -0.5 + var
            return self.head(F.gelu(y, approximate="tanh").mean(1))

    tl.manual_seed(7)
    model = Norms()
    randomise_layer_norms(model)
    proto = check_export(model, (6, 5), tmp_path, batches=(1, 3))
    nodes = {n.op_type: n for n in proto.graph.node}
    kinds = [n.op_type for n in proto.graph.node]
    assert kinds.count("LayerNormalization") == 2 and "Pow" in kinds and "Tanh" in kinds
    axes = sorted(a.i for n in proto.graph.node if n.op_type == "LayerNormalization"
                  for a in n.attribute if a.name == "axis")
    assert axes == [2, 3] and "Erf" not in nodes


def test_expand_tile_and_slicing_take_the_batch_from_the_input(tmp_path):
    """A learned token expanded and tiled to the batch (its size read from the input),
    slices with steps, negative steps, an ellipsis and integers."""
    class Tokens(nn.Module):
        def __init__(self):
            super().__init__()
            self.token = nn.Parameter(np.random.default_rng(8).standard_normal(
                (1, 3, 1, 1)).astype(np.float32))
            self.fc = nn.Linear(14, 2)

        def forward(self, x):
            n = x.shape[0]
            a = x[:, :, ::2, 1:-1][..., ::-1] + self.token.expand(n, -1, -1, 1)
            b = self.token.repeat(n, 1, 2, 3)[:, :, -1, :]           # (N, 3, 3)
            c = tl.cat([a[:, :, 0, :2].flatten(1), x[:, 1, -1, :2],
                        a[:, -1, 1, 1:3]], 1)
            return self.fc(tl.cat([c, b[..., 0], b[:, 0, 1:2]], 1))

    tl.manual_seed(9)
    proto = check_export(Tokens(), (5, 6), tmp_path, batches=(1, 3, 5))
    kinds = [n.op_type for n in proto.graph.node]
    assert {"Expand", "Tile", "Shape", "Slice", "Squeeze"} <= set(kinds)


def test_sizes_equal_to_the_trace_batch_stay_fixed_and_the_batch_follows_the_input(tmp_path):
    """The trace's batch is 2: a model with 2 classes, a class offset expanded to the 2
    classes, a reshape with literal 2s and one to twice the batch (each image cut in two
    halves, run through one convolution and put back) agree with ONNX Runtime at 1, 3, 5."""
    class Halves(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 4, 3, padding=1)
            self.half = nn.Conv2d(2, 2, 3, padding=1)
            self.fc = nn.Linear(4, 2)
            self.offset = nn.Parameter(np.array([0.25], np.float32))

        def forward(self, x):
            n, _, h, w = x.shape
            y = self.conv(x).relu().reshape(n * 2, 2, h, w)     # (2N, 2, H, W)
            y = self.half(y).reshape(n, 4, h, w).mean(axis=(2, 3))
            y = y.reshape(-1, 2, 2).sum(axis=1).repeat(1, 2)   # literal 2s: fixed sizes
            return self.fc(y) + self.offset.expand(2)           # 2 classes

    tl.manual_seed(4)
    model = Halves()
    proto = check_export(model, (5, 4), tmp_path, batches=(1, 3, 5))
    dims = proto.graph.output[0].type.tensor_type.shape.dim
    assert dims[0].dim_param == "N" and dims[1].dim_value == 2


def test_a_forward_that_makes_tensors_from_the_batch_size_is_named(tmp_path):
    class Counted(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(3, 2)

        def forward(self, x):
            mask = tl.Tensor(np.ones((x.shape[0], 3), np.float32))   # not an op: a constant
            return self.fc(x.mean(axis=(2, 3)) * mask)

    with pytest.raises(ExportError, match=r"^the op Mul takes a constant of shape \(2, 3\) at "
                                          r"batch 2 and \(3, 3\) at batch 3"):
        build(Counted(), (4, 4))

    class AllButLast(Counted):
        def forward(self, x):
            return self.fc(x[:x.shape[0] - 1].mean(axis=(2, 3)))

    with pytest.raises(ExportError, match=r"^the index slice\(None, 1, None\) at batch 2 is "
                                          r"slice\(None, 2, None\) at batch 3"):
        build(AllButLast(), (4, 4))


def test_advanced_indexing_is_named(tmp_path):
    class Picked(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(2, 2)

        def forward(self, x):
            return self.fc(x[:, 0, 0, [0, 2]])

    with pytest.raises(ExportError, match=r"GetItem with index .* \(only slices and integers"):
        build(Picked(), (4, 4))


def _bn_after_conv(model):
    """For a Sequential-like model: whether each BatchNorm2d directly follows a Conv2d."""
    mods = [m for m in model.modules() if not list(m.children())]
    return [isinstance(prev, nn.Conv2d) for prev, m in zip(mods, mods[1:])
            if isinstance(m, nn.BatchNorm2d)]


def test_batch_norm_is_folded_into_the_convolution(tmp_path):
    model = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(),
                          nn.Flatten(), nn.Linear(4 * 6 * 5, 3))
    randomise_batch_norms(model)
    proto = check_export(model, (5, 6), tmp_path)
    assert [n.op_type for n in proto.graph.node][:2] == ["Conv", "Relu"]
    conv = proto.graph.node[0]
    W = {i.name: onnx.numpy_helper.to_array(i) for i in proto.graph.initializer}[conv.input[1]]
    bn = model[1]
    s = bn.weight.numpy() / np.sqrt(bn.running_var.numpy() + bn.eps)
    np.testing.assert_allclose(W, model[0].weight.numpy() * s[:, None, None, None], rtol=1e-6)


class Branchy(nn.Module):
    """Residual adds, concatenation, pooling with padding, a batch norm after a concatenation
    (not foldable), activations written with elementwise ops, adaptive pooling."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 3, stride=2, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(8)
        self.a = nn.Conv2d(8, 8, 3, padding=1)
        self.b = nn.Conv2d(8, 4, 1)
        self.after_cat = nn.BatchNorm2d(12)
        self.pool = nn.AvgPool2d(3, stride=1, padding=1, count_include_pad=False)
        self.head = nn.Sequential(nn.Dropout(0.3), nn.Linear(12, 5))

    def forward(self, x):
        x = F.relu(self.bn(self.stem(x)))
        y = x + self.a(x)                                        # residual add
        y = y * tl.clamp(y + 3, 0, 6) / 6                         # hardswish from ops
        z = tl.cat([y, self.b(x).sigmoid() * self.b(x)], 1)      # SiLU, concatenation
        z = self.pool(self.after_cat(z))
        z = F.max_pool2d(z, 2) if z.shape[-1] % 2 == 0 else z
        z = F.adaptive_avg_pool2d(z, 1).flatten(1)
        return self.head(z)


def test_residual_concatenation_and_padded_pooling_export(tmp_path):
    tl.manual_seed(3)
    model = Branchy()
    randomise_batch_norms(model)
    proto = check_export(model, (12, 10), tmp_path, batches=(1, 3))
    kinds = {n.op_type for n in proto.graph.node}
    assert {"Add", "Concat", "AveragePool", "Clip", "Sigmoid", "BatchNormalization"} <= kinds
    assert sum(n.op_type == "BatchNormalization" for n in proto.graph.node) == 1  # stem's folded


def test_grouped_convolution_activations_and_pooling_options(tmp_path):
    """The layers of the ImageNet backbones: depthwise and grouped convolution, Hardswish,
    SiLU, Hardsigmoid, ReLU6, max and average pooling with padding and ceil_mode, Identity,
    adaptive average pooling, batch norm folded into a grouped convolution."""
    need = [getattr(nn, name, None) for name in ("Hardswish", "SiLU", "Hardsigmoid", "ReLU6")]
    if None in need:
        pytest.skip("this engine has no Hardswish/SiLU/Hardsigmoid/ReLU6 layers yet")
    Hardswish, SiLU, Hardsigmoid, ReLU6 = need
    tl.manual_seed(4)
    model = nn.Sequential(
        nn.Conv2d(3, 8, 3, stride=2, padding=1), nn.BatchNorm2d(8), Hardswish(),
        nn.Conv2d(8, 8, 3, padding=1, groups=8), nn.BatchNorm2d(8), ReLU6(),   # depthwise
        nn.Conv2d(8, 12, 1, groups=4), SiLU(),                                  # grouped
        nn.MaxPool2d(3, stride=2, padding=1, ceil_mode=True),
        nn.AvgPool2d(3, stride=2, padding=1, ceil_mode=True, count_include_pad=False),
        nn.Identity(), Hardsigmoid(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(12, 4))
    randomise_batch_norms(model)
    proto = check_export(model, (23, 17), tmp_path, batches=(1, 3))
    kinds = [n.op_type for n in proto.graph.node]
    assert {"HardSwish", "HardSigmoid", "Clip", "MaxPool", "AveragePool"} <= set(kinds)
    assert "BatchNormalization" not in kinds
    groups = [a.i for n in proto.graph.node if n.op_type == "Conv" for a in n.attribute
              if a.name == "group"]
    assert groups == [1, 8, 4]


def test_adaptive_pooling_to_uneven_bins_is_one_averaging_matrix(tmp_path):
    """As VGG's pooling to 7x7 on inputs smaller than 224: bins overlap or repeat."""
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.AdaptiveAvgPool2d((7, 5)), nn.Flatten(),
                          nn.Linear(4 * 35, 3))
    proto = check_export(model, (11, 6), tmp_path)    # 4x9 feature maps -> 7x5 bins
    assert "MatMul" in [n.op_type for n in proto.graph.node]


def test_an_op_without_translation_is_named(tmp_path):
    class Running(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(3, 2)

        def forward(self, x):
            return self.fc(x.mean((2, 3)).cumsum(1))

    path = tmp_path / "model.onnx"
    with pytest.raises(ExportError, match="^the op CumSum has no ONNX translation"):
        export(Running(), path, (4, 4))
    assert not path.exists()


@pytest.mark.parametrize("size", [(12, 16, 3), (-1, 5), (0, 8), (4.5, 8), "64x64", 7])
def test_a_bad_input_size_is_named(tmp_path, size):
    path = tmp_path / "model.onnx"
    with pytest.raises(ExportError, match=r"^input_size must be \(width, height\)"):
        export(nn.Sequential(nn.Flatten(), nn.Linear(3 * 8 * 8, 2)), path, size)
    assert not path.exists()


def test_a_folder_or_missing_folder_as_the_path_is_named(tmp_path):
    model = nn.Sequential(nn.Flatten(), nn.Linear(3 * 4 * 4, 2))
    with pytest.raises(ExportError, match="is a folder"):
        export(model, tmp_path, (4, 4))
    with pytest.raises(ExportError, match="does not exist"):
        export(model, tmp_path / "no" / "model.onnx", (4, 4))
    export(model, tmp_path / "model.onnx", (4, 4))   # and a good path still writes
    assert [p.name for p in tmp_path.iterdir()] == ["model.onnx"]


# ---- python -m tinylesion.export -----------------------------------------------------------------
@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    from tinylesion import cli
    from tinylesion.data import make_synthetic
    base = tmp_path_factory.mktemp("export")
    data = make_synthetic(base / "mel", n=20, seed=0, layout="dermmel", image_size=(64, 48))
    args = cli.parse_args("melanoma", ["--data", str(data), "--epochs", "1", "--image-size",
                                       "96x80", "--batch-size", "4", "--workers", "0",
                                       "--out", str(base / "run")])
    cli.run(args, "melanoma", log=lambda *a: None)
    return base / "run", sorted(data.glob("test/*/*.jpg"))


def export_cli(*args):
    return subprocess.run([sys.executable, "-m", "tinylesion.export", *map(str, args)],
                          capture_output=True, text=True, cwd=ROOT, timeout=300)


def test_the_export_command_writes_a_file_that_predicts_as_predict(run_dir, tmp_path):
    from tinylesion import predict
    from tinylesion.data import read_rgb
    run, images = run_dir
    out = tmp_path / "melanoma.onnx"
    proc = export_cli("--weights", run, "--onnx", out)
    assert proc.returncode == 0, proc.stderr
    assert "wrote" in proc.stdout and out.is_file()
    proto = onnx.load(str(out))
    meta = {p.key: p.value for p in proto.metadata_props}
    info = json.loads((run / "run.json").read_text())
    assert json.loads(meta["class_names"]) == info["class_names"]
    assert json.loads(meta["mean"]) == info["mean"] and meta["model"] == "melanoma_cnn"
    # an app's view: read, normalise with the file's mean and std, run
    size = tuple(json.loads(meta["input_size"]))
    pixels = np.stack([read_rgb(p, size, meta["preprocess"]).transpose(2, 0, 1)
                       for p in images[:3]])
    mean = np.array(json.loads(meta["mean"]), np.float32).reshape(1, 3, 1, 1)
    std = np.array(json.loads(meta["std"]), np.float32).reshape(1, 3, 1, 1)
    x = ((pixels / np.float32(255) - mean) / std).astype(np.float32)
    _, got = run_onnx(out, x)
    model, run_info = predict.load_run(run)
    expected = predict.predict_files(model, run_info, images[:3])
    np.testing.assert_allclose(got, expected, atol=TOLERANCE)


def test_export_errors_are_one_line(run_dir, tmp_path):
    run, _ = run_dir
    for args, message in [
        (("--weights", tmp_path / "none", "--onnx", tmp_path / "m.onnx"), "no such run folder"),
        (("--weights", run, "--onnx", tmp_path), "is a folder"),
        (("--weights", run, "--onnx", tmp_path / "no" / "m.onnx"), "does not exist"),
        (("--weights", run), "the following arguments are required: --onnx"),
        (("--weights", run, "--onnx", ""), "argument --onnx: expected a file path, got an "
                                           "empty string"),
    ]:
        proc = export_cli(*args)
        err = proc.stderr.strip()
        assert proc.returncode == 2 and message in err and "\n" not in err, err
    assert not (tmp_path / "m.onnx").exists()
