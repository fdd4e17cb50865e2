"""bilinear_resize is Pillow's bilinear resize of RGB images, bit for bit."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from tinylesion.data.resample import bilinear_resize, resize

BILINEAR = Image.Resampling.BILINEAR


def pillow_two_passes(x, size, box):
    """Pillow's horizontal pass, then its vertical pass, each as a one-axis resize."""
    (W, H), (h, w) = size, x.shape[:2]
    x0, y0, x1, y1 = box
    rows = Image.fromarray(x).resize((W, h), BILINEAR, box=(x0, 0, x1, h))
    return np.asarray(rows.resize((W, H), BILINEAR, box=(0, y0, W, y1)))


@st.composite
def resize_cases(draw):
    h, w = draw(st.integers(1, 90)), draw(st.integers(1, 90))
    W, H = draw(st.integers(1, 120)), draw(st.integers(1, 120))
    if draw(st.booleans()):
        box = (0.0, 0.0, float(w), float(h))
    else:
        x0 = draw(st.floats(0, w - 0.25))
        y0 = draw(st.floats(0, h - 0.25))
        box = (x0, y0, draw(st.floats(x0 + 0.2, w)), draw(st.floats(y0 + 0.2, h)))
    seed = draw(st.integers(0, 2**32 - 1))
    x = np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)
    return x, (W, H), box


@settings(max_examples=300, deadline=None)
@given(resize_cases())
def test_equals_pillows_two_passes(case):
    x, size, box = case
    np.testing.assert_array_equal(bilinear_resize(x, size, box), pillow_two_passes(x, size, box))


@pytest.mark.parametrize("src, size", [((150, 113), (100, 75)), ((150, 113), (120, 90)),
                                       ((300, 225), (200, 150)), ((300, 225), (128, 128)),
                                       ((75, 57), (100, 75)), ((224, 224), (96, 96)),
                                       ((600, 450), (250, 190))])
def test_equals_pillows_one_call_for_the_dataset_sizes(src, size):
    # the sizes the loader resizes between (after draft decoding), shrinking or growing both sides
    x = np.random.default_rng(1).integers(0, 256, src[::-1] + (3,), dtype=np.uint8)
    ref = np.asarray(Image.fromarray(x).resize(size, BILINEAR))
    np.testing.assert_array_equal(bilinear_resize(x, size), ref)


def test_whole_pixel_box_of_the_output_size_is_a_crop():
    x = np.random.default_rng(2).integers(0, 256, (30, 40, 3), dtype=np.uint8)
    np.testing.assert_array_equal(bilinear_resize(x, (10, 8), (5, 6, 15, 14)), x[6:14, 5:15])
    np.testing.assert_array_equal(bilinear_resize(x, (40, 30)), x)


def test_reducing_gap_hands_big_reductions_to_pillow():
    x = np.random.default_rng(3).integers(0, 256, (450, 600, 3), dtype=np.uint8)
    for size in ((100, 75), (250, 190)):    # 6x reduces first; 2.4x does not
        ref = np.asarray(Image.fromarray(x).resize(size, BILINEAR, reducing_gap=3.0))
        np.testing.assert_array_equal(resize(x, size, reducing_gap=3.0), ref)


def test_bad_input_is_named():
    x = np.zeros((4, 4, 3), np.uint8)
    with pytest.raises(ValueError, match="uint8"):
        bilinear_resize(x.astype(np.float32), (2, 2))
    with pytest.raises(ValueError, match="box"):
        bilinear_resize(x, (2, 2), (1, 1, 6, 3))
