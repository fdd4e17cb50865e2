"""bilinear_resize on the boxes where its shortcuts decide: a box shifted by a whole pixel at
the output's own size, boxes touching each edge, one-pixel sides; each equal to Pillow's own
resize bit for bit."""
import numpy as np
import pytest
from PIL import Image

from tinylesion.data.resample import bilinear_resize


def pillow(x, size, box):
    return np.asarray(Image.fromarray(x).resize(size, Image.Resampling.BILINEAR, box=box))


@pytest.mark.parametrize("w, h, size, box", [
    (20, 15, (20, 15), (1, 0, 20, 15)),      # the width of the output, shifted: not a crop
    (20, 15, (20, 15), (0, 1, 20, 15)),
    (20, 15, (20, 15), (0, 0, 19, 15)),
    (20, 15, (20, 15), (0, 0, 20, 14)),
    (20, 15, (20, 15), (0.5, 0, 20, 15)),
    (20, 15, (19, 15), (1, 0, 20, 15)),      # whole pixels, the output's size: a crop
    (20, 15, (20, 14), (0, 1, 20, 15)),
    (20, 15, (7, 5), (3, 2, 17, 12)),
    (20, 15, (40, 30), (0, 0, 20, 15)),
    (20, 15, (1, 1), (0, 0, 20, 15)),
    (1, 15, (4, 9), (0, 0, 1, 15)),
    (20, 1, (9, 3), (0, 0, 20, 1)),
    (20, 15, (20, 15), (0, 0, 20, 15)),      # the whole image at its size: a copy
])
def test_box_equals_pillow(w, h, size, box):
    x = np.random.default_rng(w * 100 + h).integers(0, 256, (h, w, 3), dtype=np.uint8)
    got = bilinear_resize(x, size, box)
    np.testing.assert_array_equal(got, pillow(x, size, box))
    assert got.shape == (size[1], size[0], 3)
