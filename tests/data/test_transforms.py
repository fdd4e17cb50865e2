"""Tests of Augment (against scipy.ndimage and Keras' semantics), normalize and channel_stats."""
import numpy as np
import pytest

from tinylesion.data.loader import Loader
from tinylesion.data.transforms import (Augment, channel_stats, normalize,
                                        warp_affine_reference)

NO_MOVE = dict(theta=0.0, tx=0.0, ty=0.0, zx=1.0, zy=1.0, flip_h=False, flip_v=False)


def random_image(h=13, w=17, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def params(**kw):
    return {**NO_MOVE, **kw}


@pytest.mark.parametrize("fill_mode", ["nearest", "constant"])
def test_warp_equals_scipy_reference(fill_mode):
    aug = Augment(rotation_range=45, zoom_range=0.3, width_shift_range=0.3,
                  height_shift_range=0.3, horizontal_flip=True, vertical_flip=True,
                  fill_mode=fill_mode, cval=17)
    for seed in range(30):
        img = random_image(11 + seed % 3, 14 + seed % 5, seed)
        p = aug.draw(np.random.default_rng(seed), *img.shape[:2])
        A = aug.matrix(p, *img.shape[:2])
        got = aug.apply(img, p)
        ref = warp_affine_reference(img, A, fill_mode, cval=17)
        diff = np.abs(got.astype(int) - ref)
        # equal up to float rounding at .5 boundaries
        assert diff.max() <= 1 and (diff > 0).mean() < 0.01, (seed, p)


def test_zero_transform_is_identity_and_flips_are_exact():
    img = random_image()
    aug = Augment()
    np.testing.assert_array_equal(aug.apply(img, params()), img)
    np.testing.assert_array_equal(aug.apply(img, params(flip_h=True)), img[:, ::-1])
    np.testing.assert_array_equal(aug.apply(img, params(flip_v=True)), img[::-1])
    np.testing.assert_array_equal(aug.apply(img, params(flip_h=True, flip_v=True)),
                                  img[::-1, ::-1])


def test_rotation_by_90_is_about_the_true_centre():
    img = random_image(15, 15)
    # Keras' matrix [[cos, -sin], [sin, cos]] on (row, col): +90 degrees turns clockwise
    out = Augment().apply(img, params(theta=90.0))
    np.testing.assert_array_equal(out, np.rot90(img, k=-1))
    out = Augment().apply(img, params(theta=-90.0))
    np.testing.assert_array_equal(out, np.rot90(img, k=1))


def test_shift_fills_with_the_edge_pixel():
    img = random_image(10, 12)
    # tx = +3 rows: output row r samples input row r + 3; the last 3 rows come from outside
    out = Augment().apply(img, params(tx=3.0))
    np.testing.assert_array_equal(out[:7], img[3:])
    for r in range(7, 10):
        np.testing.assert_array_equal(out[r], img[-1])       # edge row replicated
    out = Augment().apply(img, params(ty=-4.0))                # columns, from the left
    np.testing.assert_array_equal(out[:, 4:], img[:, :-4])
    for c in range(4):
        np.testing.assert_array_equal(out[:, c], img[:, 0])
    out = Augment(fill_mode="constant", cval=9).apply(img, params(ty=-4.0))
    assert (out[:, :4] == 9).all()


def test_zoom_follows_keras_input_scaling():
    img = random_image(9, 9)
    # a scale of 0.5 samples input coordinates at half the distance from the centre: zoom in
    out = Augment().apply(img, params(zx=0.5, zy=0.5))
    np.testing.assert_array_equal(out[4, 4], img[4, 4])
    np.testing.assert_array_equal(out[::2, ::2], img[2:7, 2:7])
    mid = (img[2, 2].astype(float) + img[2, 3] + img[3, 2] + img[3, 3]) / 4   # at (2.5, 2.5)
    np.testing.assert_array_equal(out[1, 1], np.floor(mid + 0.5).astype(np.uint8))


def test_draw_ranges_follow_keras():
    H, W = 75, 100
    rng = np.random.default_rng(0)
    aug = Augment(rotation_range=20, zoom_range=0.1, width_shift_range=0.2,
                  height_shift_range=0.1, horizontal_flip=True)
    draws = [aug.draw(rng, H, W) for _ in range(2000)]
    theta = np.array([d["theta"] for d in draws])
    assert -20 <= theta.min() < -19 and 19 < theta.max() <= 20
    ty = np.array([d["ty"] for d in draws])          # width shift: fraction of the width
    assert -20 <= ty.min() < -19 and 19 < ty.max() <= 20
    tx = np.array([d["tx"] for d in draws])
    assert -7.5 <= tx.min() < -7 and 7 < tx.max() <= 7.5
    z = np.array([[d["zx"], d["zy"]] for d in draws])
    assert 0.9 <= z.min() < 0.91 and 1.09 < z.max() <= 1.1
    assert not np.allclose(z[:, 0], z[:, 1])          # independent per axis, as in Keras
    flips = np.mean([d["flip_h"] for d in draws])
    assert 0.45 < flips < 0.55 and not any(d["flip_v"] for d in draws)
    # an int shift is whole pixels in (-n, n); a float >= 1 is pixels
    ints = {Augment(width_shift_range=3).draw(rng, H, W)["ty"] for _ in range(300)}
    assert ints == {-2.0, -1.0, 0.0, 1.0, 2.0}
    px = [Augment(height_shift_range=4.0).draw(rng, H, W)["tx"] for _ in range(300)]
    assert -4 <= min(px) < -3.5 and 3.5 < max(px) <= 4 and px[0] != int(px[0])
    assert Augment(zoom_range=(0.5, 0.7)).draw(rng, H, W)["zx"] <= 0.7


def test_same_rng_same_result_and_shapes():
    aug = Augment(rotation_range=30, zoom_range=0.2, horizontal_flip=True)
    img = random_image(20, 30)
    a = aug(img, np.random.default_rng([1, 2, 3]))
    b = aug(img, np.random.default_rng([1, 2, 3]))
    c = aug(img, np.random.default_rng([1, 2, 4]))
    np.testing.assert_array_equal(a, b)
    assert a.shape == img.shape and a.dtype == np.uint8 and not np.array_equal(a, c)


def test_invalid_augment_arguments():
    for kwargs, word in (({"rotation_range": -1}, "rotation_range"),
                         ({"zoom_range": 1.5}, "zoom_range"),
                         ({"zoom_range": (1.2, 0.8)}, "zoom_range"),
                         ({"zoom_range": (1, 2, 3)}, "zoom_range"),
                         ({"width_shift_range": -0.1}, "width_shift_range"),
                         ({"fill_mode": "wrap"}, "fill_mode"),
                         ({"width_shift_range": float("nan")}, "width_shift_range"),
                         ({"rotation_range": float("inf")}, "rotation_range"),
                         ({"zoom_range": "0.1"}, "zoom_range"),
                         ({"zoom_range": (0.5, float("inf"))}, "zoom_range"),
                         ({"cval": "0"}, "cval")):
        with pytest.raises(ValueError, match=word):
            Augment(**kwargs)
    for name in ("horizontal_flip", "vertical_flip"):   # "yes" and 1 were taken as True
        for value in ("yes", 1, None):
            with pytest.raises(TypeError, match=name):
                Augment(**{name: value})
    with pytest.raises(ValueError, match="uint8"):
        Augment(rotation_range=5)(np.zeros((4, 4, 3), np.float32), np.random.default_rng())
    for image in (np.zeros((4, 4), np.uint8), np.zeros((0, 4, 3), np.uint8)):  # was IndexError
        with pytest.raises(ValueError, match=r"uint8 \(H, W, C\)"):
            Augment(rotation_range=5)(image, np.random.default_rng())


def test_normalize_matches_the_formula():
    x = np.random.default_rng(0).integers(0, 256, (4, 3, 5, 6), dtype=np.uint8)
    mean, std = [0.6, 0.5, 0.4], [0.1, 0.2, 0.3]
    ref = (x / 255.0 - np.reshape(mean, (1, 3, 1, 1))) / np.reshape(std, (1, 3, 1, 1))
    y = normalize(x, mean, std)
    assert y.dtype == np.float32 and y.shape == x.shape
    np.testing.assert_allclose(y, ref, rtol=1e-5, atol=1e-5)
    y64 = normalize(x, mean, std, xp=np, dtype=np.float64)
    assert y64.dtype == np.float64
    np.testing.assert_allclose(y64, ref, rtol=1e-12, atol=1e-12)
    with pytest.raises(ValueError, match="one per channel"):
        normalize(x, [0.5, 0.5], [0.2, 0.2])
    with pytest.raises(ValueError, match="std"):
        normalize(x, mean, [0.1, 0.0, 0.3])


class StatsDataset:
    def __init__(self, n=13):
        rng = np.random.default_rng(1)
        self.images = rng.integers(0, 256, (n, 6, 7, 3), dtype=np.uint8)
        self.images[..., 0] //= 2
        self.image_size = (7, 6)
        self.targets = np.zeros(n, np.int64)
        self.paths = [f"s{i}.png" for i in range(n)]

    def __len__(self):
        return len(self.images)

    def load(self, i):
        return self.images[i]


def test_channel_stats_streams_exactly():
    ds = StatsDataset()
    x = ds.images.astype(np.float64) / 255.0
    mean, std = channel_stats(ds, num_workers=2, batch_size=4)
    np.testing.assert_allclose(mean, x.mean(axis=(0, 1, 2)), rtol=1e-12)
    np.testing.assert_allclose(std, x.std(axis=(0, 1, 2)), rtol=1e-10)
    assert mean[0] < mean[1]
    m2, s2 = channel_stats(Loader(ds, batch_size=5, num_workers=0))
    np.testing.assert_allclose(m2, mean, rtol=1e-12)
    np.testing.assert_allclose(s2, std, rtol=1e-12)


def test_channel_stats_on_ham10000(synthetic_ham):
    from tinylesion.data import HAM10000
    ds = HAM10000(synthetic_ham, image_size=(40, 30))
    x = np.stack([ds.load(i) for i in range(len(ds))]).astype(np.float64) / 255.0
    mean, std = channel_stats(ds, num_workers=2)
    np.testing.assert_allclose(mean, x.mean(axis=(0, 1, 2)), rtol=1e-12)
    np.testing.assert_allclose(std, x.std(axis=(0, 1, 2)), rtol=1e-10)


def _matrix_by_products(params, height, width):
    """Augment.matrix's definition: the elementary 3x3 maps multiplied out."""
    t = np.deg2rad(params["theta"])
    R = np.array([[np.cos(t), -np.sin(t), 0.0], [np.sin(t), np.cos(t), 0.0], [0, 0, 1.0]])
    S = np.array([[1.0, 0.0, params["tx"]], [0.0, 1.0, params["ty"]], [0, 0, 1.0]])
    Z = np.diag([params["zx"], params["zy"], 1.0])
    cy, cx = (height - 1) / 2.0, (width - 1) / 2.0
    to_centre = np.array([[1.0, 0.0, -cy], [0.0, 1.0, -cx], [0, 0, 1.0]])
    back = np.array([[1.0, 0.0, cy], [0.0, 1.0, cx], [0, 0, 1.0]])
    A = back @ R @ S @ Z @ to_centre
    if params["flip_h"]:
        A = A @ np.array([[1.0, 0.0, 0.0], [0.0, -1.0, width - 1.0], [0, 0, 1.0]])
    if params["flip_v"]:
        A = A @ np.array([[-1.0, 0.0, height - 1.0], [0.0, 1.0, 0.0], [0, 0, 1.0]])
    return A[:2]


def test_matrix_closed_form_equals_the_product_of_its_parts():
    aug = Augment(rotation_range=180, zoom_range=0.5, width_shift_range=0.3,
                  height_shift_range=0.3, horizontal_flip=True, vertical_flip=True)
    rng = np.random.default_rng(7)
    for _ in range(500):
        height, width = (int(v) for v in rng.integers(2, 400, 2))
        params = aug.draw(rng, height, width)
        A = aug.matrix(params, height, width)
        assert A.shape == (2, 3) and A.dtype == np.float64 and A.flags.c_contiguous
        np.testing.assert_allclose(A, _matrix_by_products(params, height, width),
                                   rtol=0, atol=1e-12 * max(height, width))
