"""HAM10000, ImageFolder and Subset: layout discovery, metadata, errors, skip_bad."""
import csv
import warnings

import numpy as np
import pytest

from tinylesion.data import HAM10000, ImageFolder, ImageReadError, Subset, read_rgb


def read_csv(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


# -- HAM10000 --------------------------------------------------------------------------------

def test_ham_loads_synthetic_release(synthetic_ham):
    ds = HAM10000(synthetic_ham)
    rows = read_csv(synthetic_ham / "HAM10000_metadata.csv")
    assert len(ds) == len(rows) == 60
    assert ds.classes == list(HAM10000.CLASSES)
    assert [HAM10000.CLASSES[t] for t in ds.targets] == [r["dx"] for r in rows]
    assert ds.targets.dtype == np.int64 and ds.groups.dtype == np.int64
    for i, row in enumerate(rows):
        assert ds.paths[i].name == row["image_id"] + ".jpg"
        assert ds.metadata[i]["lesion_id"] == row["lesion_id"]
        assert ds.metadata[i]["age"] == (float(row["age"]) if row["age"] else None)
    lesions = [r["lesion_id"] for r in rows]
    for i in range(len(ds)):                     # same group exactly when same lesion
        same = ds.groups == ds.groups[i]
        assert same.tolist() == [lesion == lesions[i] for lesion in lesions]
    x = ds.load(0)
    assert ds.image_size == (100, 75) and x.shape == (75, 100, 3) and x.dtype == np.uint8
    image, label = ds[3]
    assert label == ds.targets[3] and image.shape == (75, 100, 3)


def test_ham_image_size_and_preprocess(synthetic_ham):
    ds = HAM10000(synthetic_ham, image_size=(64, 32))
    assert ds.load(1).shape == (32, 64, 3)
    ds = HAM10000(synthetic_ham, image_size=(56, 56), preprocess="half_crop224")
    assert ds.load(1).shape == (56, 56, 3) and ds.preprocess == "half_crop224"
    with pytest.raises(ValueError, match="preprocess"):
        HAM10000(synthetic_ham, preprocess="zoom")
    with pytest.raises(ValueError, match="image_size"):
        HAM10000(synthetic_ham, image_size=(0, 10))


def test_draft_switch_reaches_the_decoder(synthetic_ham, synthetic_dermmel):
    fast, full = HAM10000(synthetic_ham), HAM10000(synthetic_ham, draft=False)
    assert fast.draft and not full.draft
    np.testing.assert_array_equal(full.load(4), read_rgb(full.paths[4], (100, 75), draft=False))
    np.testing.assert_array_equal(fast.load(4), read_rgb(fast.paths[4], (100, 75), draft=True))
    # both decode the same picture: the two differ only by resampling
    diff = np.abs(full.load(4).astype(int) - fast.load(4).astype(int))
    assert diff.mean() < 8
    assert not Subset(full, [1, 2]).draft
    folder = ImageFolder(synthetic_dermmel / "train_sep", draft=False)
    assert not folder.draft
    with pytest.raises(TypeError, match="draft must be True or False"):
        HAM10000(synthetic_ham, draft="no")


def test_ham_finds_images_anywhere_in_any_case_once(helpers, tmp_path):
    rows = helpers.ham_rows(4)
    root = helpers.write_ham(tmp_path / "ham", rows, images=False)
    helpers.write_image(root / "a" / "deep" / "ISIC_0000000.JPG")
    helpers.write_image(root / "b" / "isic_0000001.jpeg")
    helpers.write_image(root / "part_1" / "ISIC_0000002.jpg")
    helpers.write_image(root / "part_2" / "ISIC_0000002.jpg")        # unzipped twice
    helpers.write_image(root / "ISIC_0000003.jpg")
    helpers.write_image(root / "ISIC_9999999.jpg")                  # not listed: ignored
    ds = HAM10000(root)
    assert len(ds) == 4
    assert ds.paths[0] == root / "a" / "deep" / "ISIC_0000000.JPG"
    assert ds.paths[2] == root / "part_1" / "ISIC_0000002.jpg"   # the first in sorted order


def test_ham_metadata_in_a_subfolder_and_extra_column(helpers, tmp_path):
    rows = [r + ("vidir_modern",) for r in helpers.ham_rows(3)]
    root = tmp_path / "release"
    helpers.write_ham(root / "unzipped", rows, header=helpers.HAM_COLUMNS + ("dataset",))
    ds = HAM10000(root)
    assert len(ds) == 3 and ds.metadata[0]["dataset"] == "vidir_modern"
    assert ds.metadata_path == root / "unzipped" / "HAM10000_metadata.csv"


def test_ham_missing_metadata_names_where_it_looked(helpers, tmp_path):
    helpers.write_image(tmp_path / "ham" / "ISIC_0000000.jpg")
    with pytest.raises(FileNotFoundError) as info:
        HAM10000(tmp_path / "ham")
    msg = str(info.value)
    assert "HAM10000_metadata.csv" in msg and str(tmp_path / "ham") in msg and "subfolder" in msg


def test_ham_missing_root(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        HAM10000(tmp_path / "absent")


def test_ham_missing_columns_are_named(helpers, tmp_path):
    header = ("lesion", "image_id", "diagnosis", "dx_type", "age", "sex", "localization")
    root = helpers.write_ham(tmp_path / "ham", helpers.ham_rows(2), header=header)
    with pytest.raises(ValueError) as info:
        HAM10000(root)
    msg = str(info.value)
    assert "lesion_id" in msg and "dx" in msg and "HAM10000_metadata.csv" in msg
    assert "image_id" not in msg.split("(")[0]             # only the missing ones are listed


def test_ham_unknown_dx_names_file_line_and_value(helpers, tmp_path):
    rows = helpers.ham_rows(4)
    rows[2] = rows[2][:2] + ("melanoma",) + rows[2][3:]
    root = helpers.write_ham(tmp_path / "ham", rows)
    with pytest.raises(ValueError) as info:
        HAM10000(root)
    msg = str(info.value)
    assert "HAM10000_metadata.csv" in msg and "line 4" in msg and "'melanoma'" in msg


def test_ham_dx_letter_case_and_empty_age(helpers, tmp_path):
    rows = helpers.ham_rows(2)
    rows[1] = rows[1][:2] + ("MEL",) + rows[1][3:]
    ds = HAM10000(helpers.write_ham(tmp_path / "ham", rows))
    assert ds.targets[1] == HAM10000.CLASSES.index("mel") and ds.metadata[0]["age"] is None


def test_ham_bad_age_names_line(helpers, tmp_path):
    rows = helpers.ham_rows(3)
    rows[1] = rows[1][:4] + ("forty",) + rows[1][5:]
    with pytest.raises(ValueError, match="line 3.*age 'forty'"):
        HAM10000(helpers.write_ham(tmp_path / "ham", rows))


def test_ham_repeated_rows(helpers, tmp_path):
    rows = helpers.ham_rows(3)
    ds = HAM10000(helpers.write_ham(tmp_path / "a", rows + [rows[1]]))
    assert len(ds) == 3
    clash = rows[1][:2] + ("nv",) + rows[1][3:]
    with pytest.raises(ValueError, match="lines 3 and 5"):
        HAM10000(helpers.write_ham(tmp_path / "b", rows + [clash]))


def test_ham_absent_image_names_id_and_folder(helpers, tmp_path):
    root = helpers.write_ham(tmp_path / "ham", helpers.ham_rows(4))
    (root / "HAM10000_images_part_1" / "ISIC_0000002.jpg").unlink()
    with pytest.raises(FileNotFoundError) as info:
        HAM10000(root)
    msg = str(info.value)
    assert "ISIC_0000002" in msg and str(root) in msg and "line 4" in msg


def test_ham_truncated_image_raises_on_load_with_path(helpers, tmp_path):
    root = helpers.write_ham(tmp_path / "ham", helpers.ham_rows(3))
    bad = root / "HAM10000_images_part_1" / "ISIC_0000001.jpg"
    bad.write_bytes(bad.read_bytes()[:100])
    ds = HAM10000(root)
    ds.load(0)
    with pytest.raises(ImageReadError, match="ISIC_0000001.jpg"):
        ds.load(1)


def test_ham_skip_bad_drops_and_counts(helpers, tmp_path):
    root = helpers.write_ham(tmp_path / "ham", helpers.ham_rows(6))
    folder = root / "HAM10000_images_part_1"
    (folder / "ISIC_0000001.jpg").write_bytes((folder / "ISIC_0000001.jpg").read_bytes()[:100])
    (folder / "ISIC_0000004.jpg").write_bytes(b"not a jpeg")
    (folder / "ISIC_0000005.jpg").unlink()
    with pytest.warns(UserWarning) as record:
        ds = HAM10000(root, skip_bad=True)
    messages = " | ".join(str(w.message) for w in record)
    assert "skipped 1 image(s) listed" in messages and "skipped 2 unreadable" in messages
    assert [p.stem for p in ds.paths] == ["ISIC_0000000", "ISIC_0000002", "ISIC_0000003"]
    assert len(ds.targets) == len(ds.groups) == len(ds.metadata) == 3
    assert [m["image_id"] for m in ds.metadata] == [p.stem for p in ds.paths]
    for i in range(len(ds)):
        ds.load(i)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        good = helpers.write_ham(tmp_path / "ok", helpers.ham_rows(3))
        assert len(HAM10000(good, skip_bad=True)) == 3


# -- ImageFolder -----------------------------------------------------------------------------

def test_image_folder_dermmel(synthetic_dermmel):
    total = 0
    for split in ("train_sep", "valid", "test"):
        ds = ImageFolder(synthetic_dermmel / split, image_size=(64, 48))
        assert ds.classes == ["Melanoma", "NotMelanoma"]
        assert set(ds.targets.tolist()) == {0, 1}
        assert all(p.parent.name == ds.classes[t] for p, t in zip(ds.paths, ds.targets))
        assert ds.load(0).shape == (48, 64, 3)
        assert np.array_equal(ds.groups, np.arange(len(ds)))
        total += len(ds)
    assert total == 40


def test_image_folder_extensions_order_and_classes(helpers, tmp_path):
    helpers.write_image(tmp_path / "b" / "1.PNG")
    helpers.write_image(tmp_path / "b" / "sub" / "2.jpeg")
    helpers.write_image(tmp_path / "a" / "3.JPG")
    (tmp_path / "a" / "notes.txt").write_text("not an image")
    helpers.write_image(tmp_path / "c" / "4.jpg")
    ds = ImageFolder(tmp_path, image_size=(8, 6))
    assert ds.classes == ["a", "b", "c"] and ds.targets.tolist() == [0, 1, 1, 2]
    ds = ImageFolder(tmp_path, classes=["c", "a"])
    assert ds.classes == ["c", "a"] and [p.name for p in ds.paths] == ["4.jpg", "3.JPG"]


def test_image_folder_errors(helpers, tmp_path):
    helpers.write_image(tmp_path / "full" / "1.jpg")
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "readme.txt").write_text("x")
    with pytest.raises(FileNotFoundError, match=r"class folder .*empty.* holds no"):
        ImageFolder(tmp_path)
    with pytest.raises(FileNotFoundError, match=r"class folder .*absent.* does not exist"):
        ImageFolder(tmp_path, classes=["full", "absent"])
    (tmp_path / "bare").mkdir()
    with pytest.raises(FileNotFoundError, match="no class subfolders"):
        ImageFolder(tmp_path / "bare")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        ImageFolder(tmp_path / "nothing")


def test_image_folder_skip_bad(helpers, tmp_path):
    helpers.write_image(tmp_path / "x" / "1.jpg")
    helpers.write_image(tmp_path / "x" / "2.jpg")
    (tmp_path / "x" / "2.jpg").write_bytes(b"garbage")
    helpers.write_image(tmp_path / "y" / "3.png")
    with pytest.warns(UserWarning, match="skipped 1 unreadable image"):
        ds = ImageFolder(tmp_path, skip_bad=True)
    assert [p.name for p in ds.paths] == ["1.jpg", "3.png"] and ds.targets.tolist() == [0, 1]


# -- Subset ----------------------------------------------------------------------------------

def test_subset_interface(synthetic_ham):
    ds = HAM10000(synthetic_ham, image_size=(32, 24))
    sub = Subset(ds, [5, 2, 9, 11])
    assert len(sub) == 4 and sub.classes == ds.classes and sub.image_size == (32, 24)
    assert sub.targets.tolist() == ds.targets[[5, 2, 9, 11]].tolist()
    assert sub.paths == [ds.paths[i] for i in (5, 2, 9, 11)]
    assert sub.groups.tolist() == ds.groups[[5, 2, 9, 11]].tolist()
    assert sub.metadata[1] is ds.metadata[2] and sub.preprocess == "resize"
    np.testing.assert_array_equal(sub.load(2), ds.load(9))
    inner = Subset(sub, [3, 0])
    assert inner.dataset is ds and inner.indices.tolist() == [11, 5]
    np.testing.assert_array_equal(inner.load(0), ds.load(11))
    assert len(Subset(ds, [])) == 0
    with pytest.raises(IndexError, match="index 60 is out of range"):
        Subset(ds, [1, 60])


def test_image_folder_skips_hidden_files_and_matches_class_case(helpers, tmp_path):
    for cls in ("Melanoma", "NotMelanoma"):
        helpers.write_image(tmp_path / "train" / cls / "a.jpg")
        helpers.write_image(tmp_path / "train" / cls / "deep" / "b.PNG", fmt="PNG")
        (tmp_path / "train" / cls / "._a.jpg").write_bytes(b"\0\5\26\7 Mac OS X AppleDouble")
        (tmp_path / "train" / cls / ".DS_Store").write_bytes(b"\0\0\0\1Bud1")
        (tmp_path / "train" / cls / "notes.txt").write_text("not an image")
    (tmp_path / "train" / "__MACOSX" / "Melanoma").mkdir(parents=True)
    helpers.write_image(tmp_path / "train" / "__MACOSX" / "Melanoma" / "._x.jpg")
    ds = ImageFolder(tmp_path / "train", image_size=(8, 6))
    assert ds.classes == ["Melanoma", "NotMelanoma"] and len(ds) == 4
    assert all(ds.load(i).shape == (6, 8, 3) for i in range(len(ds)))
    (tmp_path / "train" / "Melanoma").rename(tmp_path / "train" / "melanoma")
    ds = ImageFolder(tmp_path / "train", image_size=(8, 6), classes=["NotMelanoma", "Melanoma"])
    assert ds.targets.tolist() == [0, 0, 1, 1] and ds.paths[2].parts[-2] == "melanoma"
    with pytest.raises(FileNotFoundError, match="Naevus does not exist .*subfolders: NotMelanoma, melanoma"):
        ImageFolder(tmp_path / "train", classes=["Naevus"])


def test_ham_ignores_apple_double_copies(helpers, tmp_path):
    rows = helpers.ham_rows(4)
    helpers.write_ham(tmp_path, rows)
    for row in rows:  # a zip made on macOS: ._ISIC_x.jpg beside each image and in __MACOSX
        (tmp_path / "HAM10000_images_part_1" / f"._{row[1]}.jpg").write_bytes(b"\0\5\26\7")
        helpers.write_image(tmp_path / "__MACOSX" / f"{row[1]}.jpg", colour=(0, 0, 0))
    ds = HAM10000(tmp_path, image_size=(8, 6))
    assert all("__MACOSX" not in p.parts and not p.name.startswith(".") for p in ds.paths)


def test_ham_image_ids_listed_with_their_extension(helpers, tmp_path):
    rows = helpers.ham_rows(4)
    helpers.write_ham(tmp_path, rows)
    listed = [row[:1] + (row[1] + ".jpg",) + row[2:] for row in rows]
    helpers.write_ham(tmp_path, listed, images=False)  # metadata only: "ISIC_0000000.jpg"
    ds = HAM10000(tmp_path, image_size=(8, 6))
    assert [p.stem for p in ds.paths] == [row[1] for row in rows]


def test_ham_dataverse_tab_metadata(helpers, tmp_path):
    # the Harvard Dataverse serves the metadata ingested: tab-separated, strings quoted
    rows = helpers.ham_rows(4)
    helpers.write_ham(tmp_path, rows)
    (tmp_path / "HAM10000_metadata.csv").unlink()
    with open(tmp_path / "HAM10000_metadata.tab", "w", newline="") as f:
        writer = csv.writer(f, delimiter="\t", quoting=csv.QUOTE_NONNUMERIC)
        writer.writerow(helpers.HAM_COLUMNS)
        writer.writerows(rows)
    ds = HAM10000(tmp_path, image_size=(8, 6))
    assert len(ds) == 4 and ds.metadata_path.name == "HAM10000_metadata.tab"
    assert ds.metadata[1]["localization"] == "back" and ds.metadata[1]["age"] == 41.0


@pytest.mark.parametrize("delimiter, encoding, newline, trailer", [
    (",", "utf-8-sig", "\r\n", "\r\n\r\n"),    # a spreadsheet's CSV: BOM, CRLF, blank lines
    ("\t", "utf-16", "\r\n", ""),              # a spreadsheet's "Unicode text"
    (";", "utf-8", "\n", "\n"),                # CSV in a locale whose decimal mark is a comma
    (",", "cp1252", "\n", ""),                 # Windows-1252, with a non-ASCII character
])
def test_ham_metadata_as_spreadsheets_save_it(helpers, tmp_path, delimiter, encoding,
                                               newline, trailer):
    rows = [row[:6] + ("côté",) for row in helpers.ham_rows(4)]
    helpers.write_ham(tmp_path, rows)
    text = newline.join(delimiter.join(fields) for fields in [helpers.HAM_COLUMNS] + rows)
    (tmp_path / "HAM10000_metadata.csv").write_bytes((text + newline + trailer).encode(encoding))
    ds = HAM10000(tmp_path, image_size=(8, 6))
    assert len(ds) == 4 and ds.metadata[1]["age"] == 41.0
    assert ds.metadata[3]["localization"] == "côté" and ds.metadata[3]["dx"] == "bcc"


def test_linked_image_folders_are_followed_once(helpers, tmp_path):
    # images kept elsewhere and linked in (a shared disk); a link back up must not loop
    rows = helpers.ham_rows(4)
    helpers.write_ham(tmp_path / "store", rows)
    ham = tmp_path / "ham"
    ham.mkdir()
    (tmp_path / "store" / "HAM10000_metadata.csv").rename(ham / "HAM10000_metadata.csv")
    (ham / "HAM10000_images_part_1").symlink_to(tmp_path / "store" / "HAM10000_images_part_1")
    (ham / "HAM10000_images_part_1" / "loop").symlink_to(ham)
    ds = HAM10000(ham, image_size=(8, 6))
    assert [p.stem for p in ds.paths] == [row[1] for row in rows]
    assert all(p.parent.name == "HAM10000_images_part_1" for p in ds.paths)
    for cls in ("Melanoma", "NotMelanoma"):
        helpers.write_image(tmp_path / "elsewhere" / cls / "a.jpg")
        (tmp_path / "folder" / cls).mkdir(parents=True)
        (tmp_path / "folder" / cls / "linked").symlink_to(tmp_path / "elsewhere" / cls)
    assert len(ImageFolder(tmp_path / "folder", image_size=(8, 6))) == 2


def test_image_folder_classes_given_as_one_string_is_a_clear_error(helpers, tmp_path):
    helpers.write_image(tmp_path / "mel" / "a.jpg")
    with pytest.raises(TypeError, match="classes must be a list of folder names, got the "
                                        "string 'mel'"):
        ImageFolder(tmp_path, classes="mel")
