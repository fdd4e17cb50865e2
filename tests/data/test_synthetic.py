"""The synthetic dataset: exact HAM10000 and DermMel layouts, proportions, determinism, CLI."""
import csv
import json

import numpy as np
import pytest
from PIL import Image

from tinylesion.data import HAM10000, ImageFolder, default_synthetic_root, make_synthetic
from tinylesion.data import synthetic


def test_class_counts_keep_the_real_proportions():
    assert synthetic.class_counts(10015) == list(synthetic.REAL_COUNTS)
    real = np.array(synthetic.REAL_COUNTS) / sum(synthetic.REAL_COUNTS)
    counts = np.array(synthetic.class_counts(2000))
    assert counts.sum() == 2000 and np.abs(counts / 2000 - real).max() < 0.005
    small = synthetic.class_counts(60)
    assert sum(small) == 60 and min(small) >= 3 and max(small) == small[5]   # nv the largest
    with pytest.raises(ValueError, match="at least 20"):
        synthetic.class_counts(19)


def test_ham_layout(synthetic_ham):
    root = synthetic_ham
    with open(root / "HAM10000_metadata.csv", newline="") as f:
        reader = csv.reader(f)
        header = next(reader)
        rows = list(reader)
    assert header == list(HAM10000.COLUMNS)
    parts = [sorted((root / f"HAM10000_images_part_{k}").glob("*.jpg")) for k in (1, 2)]
    assert len(parts[0]) == len(parts[1]) == 30
    assert {p.stem for p in parts[0] + parts[1]} == {r[1] for r in rows}
    assert all(r[1].startswith("ISIC_") and r[0].startswith("HAM_") for r in rows)
    assert {r[3] for r in rows} <= set(synthetic.DX_TYPES)
    assert {r[5] for r in rows} <= {"male", "female", "unknown"}
    info = json.loads((root / "synthetic.json").read_text())
    assert info["n"] == 60 and info["layout"] == "ham10000"
    with Image.open(parts[0][0]) as im:
        assert im.format == "JPEG" and im.mode == "RGB" and im.size == (120, 90)


def test_ham_layout_loads_with_the_real_proportions(synthetic_ham):
    ds = HAM10000(synthetic_ham)
    np.testing.assert_array_equal(ds.class_counts(), synthetic.class_counts(60))
    lesions = np.bincount(ds.groups)
    assert lesions.max() >= 2 and len(lesions) < len(ds)      # some lesions have several images
    # a lesion's metadata is its own: the same age, sex and site on each of its images
    for g in np.flatnonzero(lesions > 1):
        meta = [m for m, gg in zip(ds.metadata, ds.groups) if gg == g]
        assert len({(m["age"], m["sex"], m["localization"], m["dx"]) for m in meta}) == 1


def test_images_of_one_lesion_look_alike(synthetic_ham):
    ds = HAM10000(synthetic_ham, image_size=(32, 24))
    x = np.stack([ds.load(i) for i in range(len(ds))]).reshape(len(ds), -1).astype(float)
    same, other = [], []
    for i in range(len(ds)):
        for j in range(i + 1, len(ds)):
            if ds.targets[i] == ds.targets[j]:
                d = np.abs(x[i] - x[j]).mean()
                (same if ds.groups[i] == ds.groups[j] else other).append(d)
    assert len(same) >= 3 and np.mean(same) < np.mean(other)


def test_full_size_images_and_determinism(tmp_path):
    a = make_synthetic(tmp_path / "a", n=20, seed=3, image_size=(600, 450), workers=1)
    b = make_synthetic(tmp_path / "b", n=20, seed=3, image_size=(600, 450), workers=2)
    c = make_synthetic(tmp_path / "c", n=20, seed=4, image_size=(600, 450))
    files = sorted(p.relative_to(a) for p in a.rglob("*.jpg"))
    assert len(files) == 20
    with Image.open(a / files[0]) as im:
        assert im.size == (600, 450)
    for f in files:
        assert (a / f).read_bytes() == (b / f).read_bytes()
    assert (a / "HAM10000_metadata.csv").read_text() == (b / "HAM10000_metadata.csv").read_text()
    assert (a / "HAM10000_metadata.csv").read_text() != (c / "HAM10000_metadata.csv").read_text()


def test_dermmel_layout(synthetic_dermmel):
    root = synthetic_dermmel
    assert sorted(p.name for p in root.iterdir() if p.is_dir()) == ["test", "train_sep", "valid"]
    sizes, names = {}, []
    for split in ("train_sep", "valid", "test"):
        ds = ImageFolder(root / split)
        assert ds.classes == ["Melanoma", "NotMelanoma"]
        sizes[split] = ds.class_counts().tolist()
        names += [p.name for p in ds.paths]
    assert sizes == {"train_sep": [12, 12], "valid": [4, 4], "test": [4, 4]}
    assert len(set(names)) == 40                                   # no image in two splits


def test_make_synthetic_errors(tmp_path):
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x.txt").write_text("keep me")
    with pytest.raises(FileExistsError, match="not empty"):
        make_synthetic(tmp_path / "full", n=20)
    with pytest.raises(ValueError, match="layout"):
        make_synthetic(tmp_path / "new", n=20, layout="isic")
    with pytest.raises(ValueError, match="image_size"):
        make_synthetic(tmp_path / "new", n=20, image_size=(600,))
    with pytest.raises(FileExistsError, match="not made by make_synthetic"):
        make_synthetic(tmp_path / "full", n=20, overwrite=True)
    assert (tmp_path / "full" / "x.txt").exists()
    out = make_synthetic(tmp_path / "made", n=20, image_size=(40, 30), layout="dermmel")
    (out / "extra.txt").write_text("old")
    out = make_synthetic(out, n=20, image_size=(40, 30), overwrite=True)
    assert not (out / "extra.txt").exists() and len(HAM10000(out)) == 20
    with pytest.raises(ValueError, match="at least 20"):
        make_synthetic(tmp_path / "few", n=10)
    assert not (tmp_path / "few").exists()


def test_cli(tmp_path, capsys):
    out = tmp_path / "cli"
    assert synthetic.main(["--out", str(out), "--n", "21", "--size", "48x36",
                           "--layout", "DermMel"]) == 0
    assert "wrote 21 dermmel images" in capsys.readouterr().out
    assert len(list(out.rglob("*.jpg"))) == 21
    for argv, message in ((["--out", str(out), "--n", "21"], "not empty"),
                          (["--out", str(tmp_path / "x"), "--n", "5"], "--n: must be >= 20"),
                          (["--out", str(tmp_path / "x"), "--workers", "-1"], "--workers"),
                          (["--out", str(tmp_path / "x"), "--seed", "-1"], "--seed"),
                          (["--out", str(out / "synthetic.json"), "--n", "20"],
                           "synthetic.json is a file, not a folder"),
                          (["--out", str(out / "synthetic.json" / "x"), "--n", "20"],
                           "cannot create the folder"),
                          (["--out", str(tmp_path / "x"), "--size", "48by36"], "WIDTHxHEIGHT"),
                          (["--out", "", "--n", "20"], "--out: expected a folder path"),
                          (["--out", str(tmp_path / "x"), "--size", "0x10"],
                           "--size: width and height must be positive, got '0x10'"),
                          (["--out", str(tmp_path / "x"), "--layout", "isic"],
                           "--layout: choose a layout from ham10000, dermmel; got 'isic'"),
                          (["--n", "30"], "--out")):
        with pytest.raises(SystemExit) as info:
            synthetic.main(argv)
        err = capsys.readouterr().err.strip()
        assert info.value.code == 2 and message in err and "\n" not in err
    assert "pass --force" in synthetic_error(out, capsys)


def synthetic_error(out, capsys):
    with pytest.raises(SystemExit):
        synthetic.main(["--out", str(out), "--n", "20"])
    return capsys.readouterr().err


def test_run_as_a_module_without_warnings(tmp_path):
    import subprocess
    import sys
    from pathlib import Path
    proc = subprocess.run([sys.executable, "-W", "error", "-m", "tinylesion.data.synthetic",
                           "--out", str(tmp_path / "m"), "--n", "20", "--size", "24x18"],
                          capture_output=True, text=True, timeout=120,
                          cwd=Path(__file__).resolve().parents[2])
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr


def test_default_root_is_made_once_and_reused(tmp_path, monkeypatch):
    monkeypatch.setenv("TINYLESION_CACHE", str(tmp_path / "cache"))
    root = default_synthetic_root("ham10000", n=20, seed=1, image_size=(40, 30))
    assert root == tmp_path / "cache" / "synthetic-ham10000-20-1-40x30"
    assert len(HAM10000(root)) == 20
    stamp = (root / "HAM10000_metadata.csv").stat().st_mtime_ns
    calls = []
    monkeypatch.setattr(synthetic, "make_synthetic", lambda *a, **k: calls.append(a))
    assert default_synthetic_root("ham10000", n=20, seed=1, image_size=(40, 30)) == root
    assert calls == [] and (root / "HAM10000_metadata.csv").stat().st_mtime_ns == stamp
    assert [p.name for p in (tmp_path / "cache").iterdir()] == [root.name]   # no temp folders


def test_default_root_replaces_an_older_version(tmp_path, monkeypatch):
    monkeypatch.setenv("TINYLESION_CACHE", str(tmp_path))
    root = default_synthetic_root("dermmel", n=20, seed=0, image_size=(40, 30))
    (root / "synthetic.json").write_text(json.dumps({"version": -1}))
    again = default_synthetic_root("dermmel", n=20, seed=0, image_size=(40, 30))
    assert again == root and json.loads((root / "synthetic.json").read_text())["version"] == \
        synthetic.VERSION
    assert [p.name for p in tmp_path.iterdir()] == [root.name]


@pytest.fixture(scope="module")
def separable(tmp_path_factory):
    """280 small images, loaded as (x float (N, H, W, 3) in [0, 1], targets, lesion groups)."""
    root = make_synthetic(tmp_path_factory.mktemp("separable") / "ham", n=280, seed=0,
                          image_size=(64, 48))
    ds = HAM10000(root, image_size=(32, 24))
    x = np.stack([ds.load(i) for i in range(len(ds))]).astype(float) / 255
    return x, np.asarray(ds.targets), np.asarray(ds.groups)


def test_classes_differ_as_their_textbook_looks(separable):
    x, y, _ = separable
    centre = x[:, 9:15, 12:20].mean(axis=(1, 2))              # the lesion's middle, RGB
    mean = {c: centre[y == k].mean(axis=0) for k, c in enumerate(synthetic.CLASSES)}
    brightness = {c: m.mean() for c, m in mean.items()}
    assert brightness["mel"] < brightness["nv"] < brightness["bkl"]   # dark, brown, tan
    redness = {c: (m[0] - m[1]) / m.sum() for c, m in mean.items()}      # red-purple hue
    assert max(redness, key=redness.get) == "vasc"
    # dark pixels (the lesion) cover most for melanomas, least for dermatofibromas
    lesion = (x.mean(axis=3) < 0.5 * np.median(x.mean(axis=3), axis=(1, 2))[:, None, None] + 0.25)
    area = {c: lesion[y == k].mean() for k, c in enumerate(synthetic.CLASSES)}
    assert area["mel"] > area["nv"] > area["df"]


def test_classes_are_learnable_but_not_trivially(separable):
    x, y, groups = separable
    features = x.reshape(len(x), 6, 4, 8, 4, 3).mean(axis=(2, 4)).reshape(len(x), -1)
    test = np.isin(groups, np.unique(groups)[1::3])              # a third of the lesions held out
    mu, sd = features[~test].mean(0), features[~test].std(0) + 1e-6
    f = (features - mu) / sd
    centroids = np.stack([f[~test & (y == k)].mean(0) for k in range(7)])
    pred = np.argmin(((f[test, None] - centroids) ** 2).sum(-1), axis=1)
    recall = [np.mean(pred[y[test] == k] == k) for k in np.unique(y[test])]
    # NOTE: chance is 1/7; nearest class centroid of 6 x 8 mean colours sees the signal, and misses
    # some: lesions overlap (borrowed colours, sizes, patterns), as the real classes do
    assert 0.4 < np.mean(recall) < 0.95
