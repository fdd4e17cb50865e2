"""Augment's geometry exactly, in both fill modes: the identity, flips, quarter turns and
whole-pixel shifts are permutations of the pixels, and the fill reaches exactly the pixels
that come from outside the image."""
import numpy as np
import pytest

from tinylesion.data.transforms import Augment

NO_MOVE = dict(theta=0.0, tx=0.0, ty=0.0, zx=1.0, zy=1.0, flip_h=False, flip_v=False)


def image(h, w, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def apply(img, fill_mode="constant", **params):
    return Augment(fill_mode=fill_mode, cval=7).apply(img, {**NO_MOVE, **params})


@pytest.mark.parametrize("fill_mode", ["constant", "nearest"])
@pytest.mark.parametrize("h, w", [(9, 14), (10, 10), (1, 5)])
def test_identity_and_flips_are_exact_in_both_fill_modes(fill_mode, h, w):
    img = image(h, w)
    np.testing.assert_array_equal(apply(img, fill_mode), img)
    np.testing.assert_array_equal(apply(img, fill_mode, flip_h=True), img[:, ::-1])
    np.testing.assert_array_equal(apply(img, fill_mode, flip_v=True), img[::-1])
    np.testing.assert_array_equal(apply(img, fill_mode, flip_h=True, flip_v=True),
                                  img[::-1, ::-1])


@pytest.mark.parametrize("side", [9, 10])
def test_quarter_turns_of_a_square_are_exact(side):
    img = image(side, side, 1)
    # +90 degrees: out[r, c] = in[side - 1 - c, r] (clockwise, as Keras' matrix on (row, col))
    for theta, expected in ((90.0, np.rot90(img, k=-1)), (-90.0, np.rot90(img, k=1)),
                            (180.0, img[::-1, ::-1])):
        np.testing.assert_array_equal(apply(img, "nearest", theta=theta), expected)
        # NOTE: cos 90° is 6e-17 in floating point, so the far edge lands a hair outside
        # [0, n-1], where "constant" fills (as scipy.ndimage does); the interior is exact
        inner = apply(img, "constant", theta=theta)[1:-1, 1:-1]
        np.testing.assert_array_equal(inner, expected[1:-1, 1:-1])


@pytest.mark.parametrize("tx, ty", [(3.0, 0.0), (-2.0, 0.0), (0.0, 4.0), (0.0, -1.0),
                                    (2.0, -3.0)])
def test_whole_pixel_shifts_move_the_image_and_fill_the_rest(tx, ty):
    img = image(8, 11, 2)
    out = apply(img, "constant", tx=tx, ty=ty)
    dr, dc = int(tx), int(ty)
    # out[r, c] = in[r + dr, c + dc] where that is inside, cval elsewhere
    expected = np.full_like(img, 7)
    for r in range(8):
        for c in range(11):
            if 0 <= r + dr < 8 and 0 <= c + dc < 11:
                expected[r, c] = img[r + dr, c + dc]
    np.testing.assert_array_equal(out, expected)
    near = apply(img, "nearest", tx=tx, ty=ty)
    rows = np.clip(np.arange(8) + dr, 0, 7)
    cols = np.clip(np.arange(11) + dc, 0, 10)
    np.testing.assert_array_equal(near, img[rows][:, cols])


def test_zoom_scales_input_coordinates_about_the_centre():
    img = image(9, 9, 3)
    # zx = zy = 2: output (r, c) samples input (4 + 2 (r - 4), 4 + 2 (c - 4))
    out = apply(img, "constant", zx=2.0, zy=2.0)
    for r in range(9):
        for c in range(9):
            rr, cc = 4 + 2 * (r - 4), 4 + 2 * (c - 4)
            want = img[rr, cc] if 0 <= rr < 9 and 0 <= cc < 9 else np.full(3, 7)
            np.testing.assert_array_equal(out[r, c], want, err_msg=(r, c))


def test_the_default_augment_moves_nothing():
    aug = Augment()
    rng = np.random.default_rng(0)
    img = image(7, 6, 4)
    for _ in range(20):
        assert aug.draw(rng, 7, 6) == NO_MOVE
        np.testing.assert_array_equal(aug(img, rng), img)


class Pixels:
    """A dataset of given HWC uint8 images, label 0."""

    def __init__(self, images, size=(1, 1)):
        self.images, self.image_size = images, size
        self.targets = np.zeros(len(images), np.int64)
        self.paths = [f"p{i}.png" for i in range(len(images))]

    def __len__(self):
        return len(self.images)

    def load(self, i):
        return self.images[i]

    def __getitem__(self, i):
        return self.images[i], 0


def test_channel_stats_of_one_pixel_and_of_nothing():
    from tinylesion.data.transforms import channel_stats
    mean, std = channel_stats(Pixels([np.array([[[51, 102, 255]]], np.uint8)]), num_workers=0)
    np.testing.assert_allclose(mean, [0.2, 0.4, 1.0], rtol=1e-12)
    np.testing.assert_array_equal(std, [0.0, 0.0, 0.0])
    with pytest.raises(ValueError, match="empty"):
        channel_stats(Pixels([]), num_workers=0)


@pytest.mark.parametrize("cval, ok", [(0, True), (255, True), (256, False), (-1, False),
                                      (True, False)])
def test_cval_must_be_a_pixel_value(cval, ok):
    if ok:
        assert Augment(fill_mode="constant", cval=cval).cval == cval
    else:
        with pytest.raises(ValueError, match="cval"):
            Augment(fill_mode="constant", cval=cval)
