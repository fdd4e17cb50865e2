"""Every fast path the seed models take, every run: named cases beside the hypothesis draws.

The convolution picks its CPU path per layer (kernels/conv_cpu.py `_path`: "winograd" 3x3 or
5x5, "shift", "rows", "grid", "general") and max-pooling unrolls 2x2 and 3x3 windows of their
own stride; random draws rarely land there. Each case here is a layer of a seed model, at the
model's channels, kernel, stride and padding (on a smaller image, which takes the same path),
checked against the plain reference forward and backward; and every conv layer of every seed
model at its default size is shown to take one of these paths.
"""
import numpy as np
import pytest

import kernels.conv_cpu as conv_cpu
from kernels import conv2d_backward, conv2d_forward, maxpool2d_backward, maxpool2d_forward

TOL = {np.float32: 2e-5, np.float64: 1e-12}

# (name, C, F, kernel, stride, padding, the model's input width there, a small H x W here, path)
CONV_LAYERS = [
    ("melanoma_cnn conv1 7x7 on RGB", 3, 32, 7, 1, 0, 230, (10, 64), "rows"),
    ("melanoma_cnn conv2 5x5", 32, 64, 5, 1, 0, 116, (9, 11), "winograd"),
    ("melanoma_cnn conv3 3x3", 64, 128, 3, 1, 0, 58, (7, 9), "winograd"),
    ("melanoma_cnn conv4 3x3 stride 3", 128, 128, 3, 3, 0, 28, (9, 10), "space_to_depth"),
    # at inference (no_grad) nn.Sequential joins each ZeroPad2d to the convolution's padding
    ("melanoma_cnn conv1 at inference", 3, 32, 7, 1, 3, 224, (10, 64), "rows"),
    ("melanoma_cnn conv2 at inference", 32, 64, 5, 1, 2, 112, (9, 11), "winograd"),
    ("melanoma_cnn conv3 at inference", 64, 128, 3, 1, 1, 56, (7, 9), "winograd"),
    ("padua conv 3x3 on RGB", 3, 32, 3, 1, 1, 100, (10, 40), "grid"),
    ("padua conv 3x3 32->32", 32, 32, 3, 1, 1, 100, (7, 9), "winograd"),
    ("baseline_cnn conv 3x3 16->32", 16, 32, 3, 1, 1, 64, (16, 17), "winograd"),
    ("baseline_cnn conv 3x3 RGB->16", 3, 16, 3, 1, 1, 128, (8, 40), "grid"),
]


def conv_case(C, F, k, H, W, N, dtype, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((N, C, H, W)).astype(dtype)
    w = (rng.standard_normal((F, C, k, k)) / np.sqrt(C * k * k)).astype(dtype)
    b = rng.standard_normal(F).astype(dtype)
    return x, w, b, rng


def rel_err(got, ref, scale):
    return float(np.abs(got - ref).max() / max(np.abs(scale).max(), 1e-30))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("N", [1, 4])
@pytest.mark.parametrize("name, C, F, k, s, p, model_width, small, path", CONV_LAYERS,
                         ids=[c[0] for c in CONV_LAYERS])
def test_each_models_conv_path_equals_the_reference(name, C, F, k, s, p, model_width, small,
                                                    path, N, dtype):
    H, W = small
    assert conv_cpu._path(C, (k, k), (s, s), model_width, (p, p), F) == path
    assert conv_cpu._path(C, (k, k), (s, s), W, (p, p), F) == path   # the same path here
    x, w, b, rng = conv_case(C, F, k, H, W, N, dtype)
    stride, padding = (s, s), (p, p)
    for relu in (False, True):
        y = conv2d_forward(x, w, b, stride, padding, relu=relu, impl="cpu")
        ref = conv2d_forward(x, w, b, stride, padding, relu=relu, impl="reference")
        scale = conv2d_forward(abs(x), abs(w), abs(b), stride, padding, impl="reference")
        assert y.shape == ref.shape and y.dtype == dtype
        assert rel_err(y, ref, scale) < TOL[dtype], (name, relu)
    gy = rng.standard_normal(y.shape).astype(dtype)
    got = conv2d_backward(gy, x, w, stride, padding, impl="cpu")
    ref = conv2d_backward(gy, x, w, stride, padding, impl="reference")
    scale = conv2d_backward(abs(gy), abs(x), abs(w), stride, padding, impl="reference")
    for g, r, sc, what in zip(got, ref, scale, ("gx", "gW", "gb")):
        assert g.shape == r.shape and g.dtype == dtype, what
        assert rel_err(g, r, sc) < TOL[dtype], (name, what)


def test_every_models_conv_layer_takes_a_path_tested_here(monkeypatch):
    import tinylesion as tl
    from tinylesion.models import get_model, list_models
    tested = {(C, F, k, s, p, path) for _, C, F, k, s, p, _, _, path in CONV_LAYERS}
    seen = []
    real = conv_cpu._path

    def spy(C, kernel, stride, W, padding, F, H=None):
        path = real(C, kernel, stride, W, padding, F, H=H)
        seen.append((C, F, kernel[0], stride[0], padding[0], path))
        return path

    monkeypatch.setattr(conv_cpu, "_path", spy)
    # the seed papers' networks (the examples' models; the backbones are tested elsewhere)
    seed_models = ["melanoma_cnn", "baseline_cnn"] + [f"padua{b}" for b in range(1, 6)]
    assert set(seed_models) <= set(list_models())
    for name in seed_models:
        model = get_model(name)
        model.eval()
        W, H = model.image_size
        with tl.no_grad():
            model(tl.Tensor(np.zeros((1, 3, H, W), np.float32)))
    assert seen, "no convolution ran"
    paths = {entry[-1] for entry in seen}
    assert {"rows", "grid", "winograd", "space_to_depth"} <= paths
    # every layer's path is tested above at the layer's own channels, kernel, stride, padding,
    # or, for the channel-count-insensitive paths, at the same kernel/stride/padding
    for C, F, k, s, p, path in set(seen):
        same = [t for t in tested if t[-1] == path and t[2:5] == (k, s, p)]
        assert same, f"conv {C}->{F} {k}x{k} stride {s} padding {p} takes {path}, untested"


# -- max pooling: the unrolled 2x2 and 3x3 windows, the row kernel's stride-2 and other steps --

POOLS = [((2, 2), (2, 2)), ((3, 3), (3, 3)), ((2, 2), (1, 1)), ((3, 3), (2, 2)),
         ((2, 3), (2, 2)), ((3, 2), (1, 3)), ((2, 2), (3, 3)), ((1, 1), (2, 2))]


def pool_input(shape, dtype, kind, seed):
    rng = np.random.default_rng(seed)
    if kind == "ties":
        return rng.integers(0, 3, shape).astype(dtype)
    x = rng.standard_normal(shape).astype(dtype)
    if kind == "nans":
        x[rng.random(shape) < 0.15] = np.nan
    return x


@pytest.mark.parametrize("kind", ["plain", "ties", "nans"])
@pytest.mark.parametrize("size", [(12, 16), (13, 17), (6, 3)])
@pytest.mark.parametrize("kernel, stride", POOLS, ids=[f"{k[0]}x{k[1]}s{s[0]}x{s[1]}"
                                                       for k, s in POOLS])
def test_max_pool_paths_equal_the_reference(kernel, stride, size, kind):
    H, W = size
    for dtype in (np.float32, np.float64):
        for N, C in ((1, 1), (3, 5)):
            x = pool_input((N, C, H, W), dtype, kind, seed=H * W + N)
            y, am = maxpool2d_forward(x, kernel, stride, impl="cpu")
            y_ref, am_ref = maxpool2d_forward(x, kernel, stride, impl="reference")
            np.testing.assert_array_equal(y, y_ref)
            np.testing.assert_array_equal(am, am_ref)
            gy = np.random.default_rng(1).standard_normal(y.shape).astype(dtype)
            gx = maxpool2d_backward(gy, am, x.shape, kernel, stride, impl="cpu")
            gx_ref = maxpool2d_backward(gy, am_ref, x.shape, kernel, stride, impl="reference")
            np.testing.assert_allclose(gx, gx_ref, rtol=TOL[dtype], atol=TOL[dtype])


@pytest.mark.parametrize("kernel", [2, 3])
def test_max_pool_by_hand(kernel):
    # one window per output: the maximum's value and place
    x = np.arange(2 * kernel * 3 * kernel, dtype=np.float64).reshape(1, 1, 2 * kernel,
                                                                     3 * kernel)
    x = (x * 7) % 11                                 # scrambled, no ties within a window?
    y, _ = maxpool2d_forward(x, (kernel, kernel), (kernel, kernel), impl="cpu")
    expected = np.array([[x[0, 0, r * kernel:(r + 1) * kernel, c * kernel:(c + 1) * kernel].max()
                          for c in range(3)] for r in range(2)])
    np.testing.assert_array_equal(y[0, 0], expected)
    gx = maxpool2d_backward(np.ones_like(y), _, x.shape, (kernel, kernel), (kernel, kernel),
                            impl="cpu")
    # each window sends its 1 to its first maximum, nowhere else
    assert gx.sum() == 6
    for r in range(2):
        for c in range(3):
            window = x[0, 0, r * kernel:(r + 1) * kernel, c * kernel:(c + 1) * kernel]
            g = gx[0, 0, r * kernel:(r + 1) * kernel, c * kernel:(c + 1) * kernel]
            first = np.unravel_index(np.argmax(window), window.shape)
            assert g[first] == 1 and g.sum() == 1
