"""Fixtures for the data tests: tiny synthetic datasets on disk, and helpers that write images."""
import csv
from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image

from tinylesion.data.synthetic import make_synthetic

HAM_COLUMNS = ("lesion_id", "image_id", "dx", "dx_type", "age", "sex", "localization")


@pytest.fixture(scope="session")
def synthetic_ham(tmp_path_factory):
    """A HAM10000-layout folder of 60 small (120 x 90) synthetic images; do not modify it."""
    root = tmp_path_factory.mktemp("synthetic") / "ham"
    return make_synthetic(root, n=60, seed=0, layout="ham10000", image_size=(120, 90))


@pytest.fixture(scope="session")
def synthetic_dermmel(tmp_path_factory):
    """A DermMel-layout folder ({train_sep,valid,test}/{Melanoma,NotMelanoma}) of 40 images."""
    root = tmp_path_factory.mktemp("synthetic") / "dermmel"
    return make_synthetic(root, n=40, seed=0, layout="dermmel", image_size=(120, 90))


def write_image(path, size=(24, 18), colour=(200, 120, 90), fmt=None):
    """Write a small solid-colour RGB image (format from the suffix unless fmt is given)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, colour).save(path, fmt)
    return path


def write_ham(root, rows, header=HAM_COLUMNS, images=True, folder="HAM10000_images_part_1",
              metadata_name="HAM10000_metadata.csv"):
    """A small HAM10000 folder: metadata csv of rows (tuples in header order) and one JPEG per
    row's image_id (when images)."""
    root.mkdir(parents=True, exist_ok=True)
    with open(root / metadata_name, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)
    if images:
        col = list(header).index("image_id") if "image_id" in header else 1
        for k, row in enumerate(rows):
            write_image(root / folder / f"{row[col]}.jpg", colour=(10 * k % 256, 100, 50))
    return root


def ham_rows(n=6):
    """n well-formed metadata rows, two images per lesion, cycling through the classes."""
    classes = ("akiec", "bcc", "bkl", "df", "mel", "nv", "vasc")
    return [(f"HAM_{i // 2:07d}", f"ISIC_{i:07d}", classes[(i // 2) % 7], "histo",
             "" if i == 0 else str(40 + i), "male", "back") for i in range(n)]


@pytest.fixture
def helpers():
    """write_image, write_ham, ham_rows and HAM_COLUMNS, for tests that build small folders."""
    return SimpleNamespace(write_image=write_image, write_ham=write_ham, ham_rows=ham_rows,
                           HAM_COLUMNS=HAM_COLUMNS)


@pytest.fixture
def gradient_rgb():
    """A smooth 600 x 450 RGB test picture (gradients and a disc) as a uint8 array."""
    y, x = np.mgrid[0:450, 0:600]
    disc = ((x - 300) ** 2 + (y - 200) ** 2 < 120 ** 2) * 80
    img = np.stack([x * 255 // 599, y * 255 // 449, 128 + disc - (x + y) * 60 // 1049], -1)
    return np.clip(img, 0, 255).astype(np.uint8)
