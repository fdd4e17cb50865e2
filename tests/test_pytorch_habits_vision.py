"""tinylesion.vision: torchvision's transforms (against stored torchvision results), folder
datasets and model builders."""
import os

import numpy as np
import pytest
from PIL import Image

import tinylesion as tl
from tinylesion import vision
from tinylesion.vision import datasets, transforms as T
from tinylesion.vision.transforms import functional as F

FIXTURE = os.path.join(os.path.dirname(__file__), "fixtures", "torchvision_reference.npz")
I = F.InterpolationMode


def image(seed=0, shape=(13, 17, 3)):
    """The image bench/vision_fixtures.py transforms."""
    return np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)


@pytest.fixture(scope="module")
def ref():
    with np.load(FIXTURE) as f:
        return dict(f)


def ours(pil, x, u):
    """Our results, by fixture key."""
    out = {
        "to_tensor": x, "pil_to_tensor": u,
        "resize/pil_short7": F.resize(pil, 7),
        "resize/pil_max": F.resize(Image.fromarray(image(1, (13, 40, 3))), 7, max_size=9),
        "resize/float_short7": F.resize(x, 7), "resize/float_up": F.resize(x, [20, 25]),
        "resize/float_bicubic": F.resize(x, [9, 11], I.BICUBIC),
        "resize/float_nearest": F.resize(x, [5, 9], I.NEAREST),
        "resize/float_nearest_up": F.resize(x, [20, 30], I.NEAREST),
        "resize/float_nearest_exact": F.resize(x, [5, 9], I.NEAREST_EXACT),
        "resize/uint8_short7": F.resize(u, 7),
        "center_crop/pil9": F.center_crop(pil, 9),
        "center_crop/float_pad": F.center_crop(x, [15, 20]),
        "center_crop/float_odd": F.center_crop(x, [6, 9]),
        "pad/pil_reflect": F.pad(pil, [2, 1], padding_mode="reflect"),
        "crop/outside": F.crop(x, -2, 10, 6, 9),
        "rotate/pil30": F.rotate(pil, 30, I.BILINEAR),
        "rotate/pil_expand": F.rotate(pil, 45, expand=True),
        "rotate/float90": F.rotate(x, 90),
        "color/hue/negative": F.adjust_hue(x, -0.35),
        "grey/float": F.rgb_to_grayscale(x), "grey/uint8": F.rgb_to_grayscale(u, 3),
        "grey/pil": F.rgb_to_grayscale(pil),
        "dtype/float_to_uint8": F.convert_image_dtype(x, np.uint8),
        "dtype/uint8_to_float": F.convert_image_dtype(u, np.float32),
        "normalize": F.normalize(x, [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]),
    }
    for mode in ("constant", "edge", "reflect", "symmetric"):
        out[f"pad/{mode}"] = F.pad(x, [2, 1, 3, 0], padding_mode=mode)
    for name, fn, factor in (("brightness", F.adjust_brightness, 1.3),
                             ("contrast", F.adjust_contrast, 0.6),
                             ("saturation", F.adjust_saturation, 1.7),
                             ("hue", F.adjust_hue, 0.2)):
        for kind, img in (("float", x), ("uint8", u), ("pil", pil)):
            out[f"color/{name}/{kind}"] = fn(img, factor)
    for k, (scale, ratio) in enumerate((((5.0, 5.0), (1.0, 1.0)), ((5.0, 5.0), (3.0, 4.0)),
                                        ((5.0, 5.0), (0.2, 0.5)))):
        out[f"rrc_fallback/{k}"] = np.array(T.RandomResizedCrop.get_params(x, scale, ratio))
    return out


def test_functional_matches_torchvision(ref):
    pil = Image.fromarray(image())
    np.testing.assert_array_equal(ref["input"], image())
    results = ours(pil, T.ToTensor()(pil), T.PILToTensor()(pil))
    assert len(results) == len(ref) - 2   # every stored case but input and versions
    for key, value in results.items():
        got = np.asarray(value.numpy() if isinstance(value, tl.Tensor) else value)
        want = ref[key]
        assert got.shape == want.shape and got.dtype == want.dtype, key
        if key == "resize/uint8_short7":
            # Pillow's rounding (ours) and torchvision's uint8 kernel differ by at most 1
            assert np.abs(got.astype(int) - want).max() <= 1, key
        elif got.dtype.kind == "f":
            np.testing.assert_allclose(got, want, rtol=0, atol=2e-6, err_msg=key)
        else:
            np.testing.assert_array_equal(got, want, err_msg=key)


def test_to_tensor_kinds():
    x = T.ToTensor()(image())
    assert x.shape == (3, 13, 17) and x.dtype == np.float32 and float(x.max()) <= 1.0
    grey = T.ToTensor()(Image.fromarray(image()[:, :, 0]))
    assert grey.shape == (1, 13, 17)
    floats = np.full((2, 2, 1), 7.0, np.float32)
    assert float(T.ToTensor()(floats).max()) == 7.0        # only uint8 is divided by 255
    with pytest.raises(TypeError, match="PIL image or a numpy"):
        T.ToTensor()([1, 2])
    with pytest.raises(TypeError, match="ToTensor"):
        T.Normalize([0.5], [0.5])(Image.fromarray(image()))
    with pytest.raises(ValueError, match="std evaluated to zero"):
        T.Normalize([0.5] * 3, [0.5, 0.0, 0.5])(T.ToTensor()(image()))
    back = T.ToPILImage()(T.PILToTensor()(Image.fromarray(image())))
    np.testing.assert_array_equal(np.asarray(back), image())


def test_resize_semantics():
    pil = Image.fromarray(image(2, (30, 40, 3)))
    assert T.Resize(12)(pil).size == (16, 12)                   # shorter side to 12
    assert T.Resize((10, 20))(pil).size == (20, 10)             # (h, w)
    batch = tl.rand(2, 3, 30, 40)
    assert T.Resize(15)(batch).shape == (2, 3, 15, 20)          # leading dims kept
    with pytest.raises(ValueError, match="size"):
        T.Resize(0)


def test_random_transforms_follow_manual_seed():
    pil = Image.fromarray(image(3, (40, 50, 3)))
    pipeline = T.Compose([T.RandomResizedCrop(24, scale=(0.3, 1.0)), T.RandomHorizontalFlip(),
                          T.RandomVerticalFlip(), T.RandomRotation(20),
                          T.ColorJitter(0.3, 0.3, 0.3, 0.1), T.ToTensor()])
    tl.manual_seed(11)
    a = [pipeline(pil).numpy() for _ in range(3)]
    tl.manual_seed(11)
    b = [pipeline(pil).numpy() for _ in range(3)]
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)
    assert a[0].shape == (3, 24, 24) and not np.array_equal(a[0], a[1])


def test_flips_and_crops():
    x = T.ToTensor()(image())
    np.testing.assert_array_equal(T.RandomHorizontalFlip(p=1.0)(x).numpy(), x.numpy()[..., ::-1])
    np.testing.assert_array_equal(T.RandomVerticalFlip(p=1.0)(x).numpy(), x.numpy()[:, ::-1])
    assert T.RandomHorizontalFlip(p=0.0)(x) is x
    tl.manual_seed(0)
    for _ in range(20):
        top, left, h, w = T.RandomCrop.get_params(x, (5, 6))
        assert 0 <= top <= 8 and 0 <= left <= 11 and (h, w) == (5, 6)
        t, l, h, w = T.RandomResizedCrop.get_params(x, (0.08, 1.0), (3 / 4, 4 / 3))
        assert 0 <= t and t + h <= 13 and 0 <= l and l + w <= 17
    padded = T.RandomCrop(17, padding=2)(x)
    assert padded.shape == (3, 17, 17)
    assert T.RandomCrop(20, pad_if_needed=True)(x).shape == (3, 20, 20)
    with pytest.raises(ValueError, match="larger than input"):
        T.RandomCrop(20)(x)


def test_color_jitter_arguments():
    assert T.ColorJitter(brightness=0.5).brightness == (0.5, 1.5)
    assert T.ColorJitter(brightness=2).brightness == (0.0, 3.0)
    assert T.ColorJitter().hue is None
    with pytest.raises(ValueError):
        T.ColorJitter(hue=0.7)
    with pytest.raises(ValueError):
        T.ColorJitter(contrast=-1)
    grey = T.Grayscale(3)(Image.fromarray(image()))
    assert grey.mode == "RGB"
    assert T.Grayscale()(T.ToTensor()(image())).shape == (1, 13, 17)
    assert T.Lambda(lambda im: 5)(None) == 5


def test_transforms_refuse_torch_tensors():
    class FakeTorch:
        pass
    FakeTorch.__module__ = "torch"
    with pytest.raises(TypeError, match="torch.Tensor; use tl.from_numpy"):
        F.hflip(FakeTorch())


def _write(path, seed):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    Image.fromarray(image(seed, (8, 10, 3))).save(path)


def test_image_folder(tmp_path):
    _write(str(tmp_path / "nevus" / "b.png"), 1)
    _write(str(tmp_path / "nevus" / "deeper" / "a.PNG"), 2)
    _write(str(tmp_path / "melanoma" / "z.jpg"), 3)
    (tmp_path / "melanoma" / "notes.txt").write_text("not an image")
    ds = datasets.ImageFolder(str(tmp_path), transform=T.ToTensor())
    assert ds.classes == ["melanoma", "nevus"]
    assert ds.class_to_idx == {"melanoma": 0, "nevus": 1}
    names = [os.path.relpath(p, tmp_path) for p, _ in ds.samples]
    assert names == ["melanoma/z.jpg", "nevus/b.png", "nevus/deeper/a.PNG"]
    assert ds.targets == [0, 1, 1] and ds.imgs == ds.samples and len(ds) == 3
    x, y = ds[1]
    assert x.shape == (3, 8, 10) and y == 1
    np.testing.assert_array_equal(T.PILToTensor()(ds.loader(ds.samples[1][0])).numpy(),
                                  image(1, (8, 10, 3)).transpose(2, 0, 1))
    only_png = datasets.ImageFolder(str(tmp_path), is_valid_file=lambda p: p.endswith(".png"),
                                    allow_empty=True)
    assert [t for _, t in only_png.samples] == [1]
    with pytest.raises(FileNotFoundError, match="melanoma"):
        datasets.ImageFolder(str(tmp_path), is_valid_file=lambda p: p.endswith(".png"))
    texts = datasets.DatasetFolder(str(tmp_path), loader=lambda p: open(p).read(),
                                   extensions=(".txt",), allow_empty=True)
    assert texts[0] == ("not an image", 0)
    with pytest.raises(ValueError, match="Both extensions and is_valid_file"):
        datasets.DatasetFolder(str(tmp_path), loader=str)
    with pytest.raises(FileNotFoundError):
        datasets.ImageFolder(str(tmp_path / "missing"))
    loader = tl.utils.data.DataLoader(ds, batch_size=2, shuffle=True, num_workers=2)
    shapes = [(x.shape, y.dtype) for x, y in loader]
    assert shapes[0] == ((2, 3, 8, 10), np.int64)


def test_downloading_datasets_refuse_in_one_line():
    with pytest.raises(RuntimeError, match="never downloads") as info:
        datasets.MNIST("../data", train=True, download=True)
    assert "\n" not in str(info.value)
    with pytest.raises(AttributeError):
        datasets.NoSuchDataset


def test_models_come_from_the_registry():
    names = vision.models.list_models()
    assert names == tl.models.list_models()
    for name in names:
        assert callable(getattr(vision.models, name)) and name in dir(vision.models)
    model = vision.models.baseline_cnn(weights=None, num_classes=3)
    assert model(tl.rand(1, 3, 128, 128)).shape == (1, 3)
    with pytest.raises(AttributeError, match="tinylesion builds"):
        vision.models.no_such_net
    with pytest.raises(ValueError, match="unknown model"):
        vision.models.get_model("no_such_net")


def test_torchvision_style_builder_call():
    if "resnet18" not in vision.models.list_models():
        pytest.skip("the registry has no resnet18 yet")
    model = vision.models.resnet18(weights=None, num_classes=7)
    # torchvision.models.resnet18(num_classes=7) has 11,180,103 parameters
    assert sum(p.numel() for p in model.parameters()) == 11_180_103


@pytest.mark.parametrize("name, size", [("resnet18", 32), ("mobilenet_v2", 32),
                                        ("melanoma_cnn", 224), ("logistic_regression", 224)])
def test_num_classes_is_the_number_of_outputs_as_in_torchvision(name, size):
    # the registry gives a two-class model one logit (binary cross-entropy); a torchvision
    # script that asks for two classes trains them with CrossEntropyLoss, over which one
    # logit would give a loss of exactly 0 and no gradient
    tl.manual_seed(0)
    x = tl.rand(2, 3, size, size)
    two = vision.models.get_model(name, num_classes=2, image_size=(size, size))
    logits = two(x)
    assert logits.shape == (2, 2) and not two.binary
    loss = tl.nn.CrossEntropyLoss()(logits, tl.tensor([0, 1]))
    assert loss.item() > 0.0
    # a checkpoint's config rebuilds the same head through the registry
    rebuilt = tl.models.get_model(name, **two.config)
    rebuilt.load_state_dict(two.state_dict())
    assert rebuilt(x).shape == (2, 2)
    one = vision.models.get_model(name, num_classes=1, image_size=(size, size))
    assert one(x).shape == (2, 1) and one.binary
    # the registry's own convention is unchanged
    assert tl.models.get_model(name, num_classes=2, image_size=(size, size))(x).shape == (2, 1)
    with pytest.raises(ValueError, match="per_class_logits must be True or False"):
        tl.models.get_model(name, num_classes=2, per_class_logits="yes")


def test_weight_enums_read_torchvision_download_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    W = vision.models.ResNet18_Weights
    assert W.DEFAULT is W.IMAGENET1K_V1 and vision.models.get_model_weights("resnet18") is W
    assert vision.models.get_weight("ResNet50_Weights.DEFAULT") is \
        vision.models.ResNet50_Weights.IMAGENET1K_V2
    assert W.DEFAULT.url == "https://download.pytorch.org/models/resnet18-f37072fd.pth"
    assert W.DEFAULT.meta["num_params"] == 11_689_512
    with pytest.raises(FileNotFoundError, match=r"put resnet18-f37072fd.pth \(from https://"
                                                r"download.pytorch.org/models/resnet18-f37072fd"
                                                r".pth\) in .*hub/checkpoints"):
        vision.models.resnet18(weights=W.DEFAULT)
    # a file in the folder (here one tinylesion wrote) is read as torchvision would read it
    tl.manual_seed(1)
    published = vision.models.resnet18()
    os.makedirs(tmp_path / "hub" / "checkpoints")
    tl.save(published.state_dict(), str(tmp_path / "hub" / "checkpoints" /
                                        "resnet18-f37072fd.pth"))
    for weights in (W.IMAGENET1K_V1, "DEFAULT"):
        loaded = vision.models.resnet18(weights=weights)
        for key, value in published.state_dict().items():
            np.testing.assert_array_equal(loaded.state_dict()[key], value, err_msg=key)
    with pytest.warns(UserWarning, match="'pretrained' is deprecated"):
        vision.models.resnet18(pretrained=True)
    with pytest.raises(ValueError, match="has 1000 classes, not num_classes=7"):
        vision.models.resnet18(weights=W.DEFAULT, num_classes=7)
    with pytest.raises(ValueError, match="are not weights of resnet34"):
        vision.models.resnet34(weights=W.DEFAULT)


def test_weights_preset_transforms_as_torchvision():
    preset = vision.models.ResNet50_Weights.IMAGENET1K_V2.transforms()
    assert (preset.crop_size, preset.resize_size) == ([224], [232])
    image = Image.fromarray(np.random.default_rng(0).integers(0, 256, (300, 400, 3),
                                                              dtype=np.uint8))
    out = preset(image)
    expected = T.Compose([T.Resize(232), T.CenterCrop(224), T.ToTensor(),
                          T.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])])(image)
    assert out.shape == (3, 224, 224) and out.dtype == np.float32
    np.testing.assert_allclose(out.numpy(), expected.numpy(), atol=1e-6)
    effnet = vision.models.EfficientNet_B0_Weights.DEFAULT.transforms()
    assert effnet.interpolation == F.InterpolationMode.BICUBIC and effnet.resize_size == [256]
