"""Datasets: HAM10000 (metadata csv + image folders), ImageFolder (one folder per class), Subset."""
import csv
import os
import warnings
from pathlib import Path

import numpy as np

from .imageio import check_preprocess, check_size, read_rgb, verify_image

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")


class ImageDataset:
    """The dataset interface: images read from `paths`, labelled by `targets`.

    Attributes: `classes` (names), `targets` (int64), `image_size` ((width, height) of what
    `load` returns), `preprocess`, `draft` (decode JPEGs at a reduced scale when that is still
    large enough: much faster, and the same result to within resampling differences), `paths`,
    `metadata` (one dict per sample), `groups` (int64 group ids: samples of a group are never
    split apart).
    """

    def __init__(self, paths, targets, classes, image_size, preprocess="resize", metadata=None,
                 groups=None, draft=True):
        self.paths = list(paths)
        self.targets = np.asarray(targets, dtype=np.int64)
        self.classes = list(classes)
        self.image_size = check_size(image_size)
        self.preprocess = check_preprocess(preprocess)
        if not isinstance(draft, (bool, np.bool_)):
            raise TypeError(f"{type(self).__name__}: draft must be True or False, got {draft!r}")
        self.draft = bool(draft)
        n = len(self.paths)
        self.metadata = [{} for _ in range(n)] if metadata is None else list(metadata)
        self.groups = (np.arange(n, dtype=np.int64) if groups is None
                       else np.asarray(groups, dtype=np.int64))
        if not len(self.targets) == len(self.metadata) == len(self.groups) == n:
            raise ValueError(f"{type(self).__name__}: {n} paths but {len(self.targets)} targets, "
                             f"{len(self.metadata)} metadata and {len(self.groups)} groups")

    def __len__(self):
        return len(self.paths)

    def load(self, index):
        """The image at index as uint8 (height, width, 3); ImageReadError names a bad file."""
        return read_rgb(self.paths[index], self.image_size, self.preprocess, self.draft)

    def __getitem__(self, index):
        """(image, label) at index."""
        return self.load(index), int(self.targets[index])

    def class_counts(self):
        """Number of samples of each class, as an int64 array."""
        return np.bincount(self.targets, minlength=len(self.classes))

    def __repr__(self):
        counts = ", ".join(f"{c}={k}" for c, k in zip(self.classes, self.class_counts()))
        return (f"{type(self).__name__}({len(self)} images, image_size={self.image_size}, "
                f"{counts})")

    def _drop_bad(self, skip_bad, name):
        """With skip_bad, drop samples whose file fails verify_image, warning once with a count."""
        if not skip_bad:
            return
        bad = [i for i, p in enumerate(self.paths) if verify_image(p) is not None]
        if bad:
            example = f"{self.paths[bad[0]]} ({verify_image(self.paths[bad[0]])})"
            warnings.warn(f"{name}: skipped {len(bad)} unreadable image(s) of "
                          f"{len(self.paths)}, e.g. {example}", stacklevel=3)
            self._keep(np.setdiff1d(np.arange(len(self)), bad))

    def _keep(self, keep):
        """Keep only the samples at the sorted indices keep."""
        self.paths = [self.paths[i] for i in keep]
        self.metadata = [self.metadata[i] for i in keep]
        self.targets = self.targets[keep]
        self.groups = self.groups[keep]


class Subset(ImageDataset):
    """The samples of dataset at indices, in that order; the same interface as any dataset."""

    def __init__(self, dataset, indices):
        idx = np.asarray(indices, dtype=np.int64).reshape(-1)
        if len(idx) and (idx.min() < 0 or idx.max() >= len(dataset)):
            bad = idx[(idx < 0) | (idx >= len(dataset))][0]
            raise IndexError(f"Subset: index {bad} is out of range for a dataset of "
                             f"{len(dataset)} samples")
        if isinstance(dataset, Subset):  # a subset of a subset reads the base dataset directly
            idx, dataset = dataset.indices[idx], dataset.dataset
        self.dataset, self.indices = dataset, idx
        self.classes = list(dataset.classes)
        self.image_size = dataset.image_size
        self.preprocess = getattr(dataset, "preprocess", "resize")
        self.draft = getattr(dataset, "draft", True)
        self.paths = [dataset.paths[i] for i in idx]
        self.targets = np.asarray(dataset.targets, dtype=np.int64)[idx]
        self.metadata = [dataset.metadata[i] for i in idx]
        self.groups = np.asarray(dataset.groups, dtype=np.int64)[idx]

    def load(self, index):
        """The image of the base dataset at indices[index]."""
        return self.dataset.load(int(self.indices[index]))

    def gather_into(self, indices, out):
        """The base dataset's gather_into (a complete cache's) at these samples, else False."""
        gather = getattr(self.dataset, "gather_into", None)
        return gather is not None and gather(self.indices[np.asarray(indices, np.int64)], out)


def _check_root(root, name):
    root = Path(root).expanduser()
    if not root.is_dir():
        what = "is not a folder" if root.exists() else "does not exist"
        raise FileNotFoundError(f"{name}: data folder {root} {what}")
    return root


def is_hidden(name):
    """True for names a listing should skip: dot files and folders (.DS_Store, macOS's
    AppleDouble `._x.jpg`, .ipynb_checkpoints) and the `__MACOSX` folder of zip files."""
    return name.startswith(".") or name == "__MACOSX"


def _walk_files(root):
    """Every file under root that is not hidden, as sorted Paths. Linked folders are followed
    (an image folder may be a symlink), each real folder once, so that a link loop ends."""
    found, seen = [], set()
    for folder, dirs, files in os.walk(root, followlinks=True):
        real = os.path.realpath(folder)
        if real in seen:
            dirs[:] = []
            continue
        seen.add(real)
        dirs[:] = sorted(d for d in dirs if not is_hidden(d))
        found.extend(Path(folder) / f for f in files if not is_hidden(f))
    return sorted(found)


def subfolders(root):
    """The sorted names of root's subfolders that are not hidden."""
    return sorted(d.name for d in Path(root).iterdir() if d.is_dir() and not is_hidden(d.name))


def find_subfolder(root, name):
    """root / name, or the one subfolder whose name differs from it only in letter case."""
    exact = Path(root) / name
    if exact.is_dir():
        return exact
    alike = [d for d in subfolders(root) if d.lower() == name.lower()]
    return Path(root) / alike[0] if len(alike) == 1 else None


class HAM10000(ImageDataset):
    """The HAM10000 release: `HAM10000_metadata.csv` (or `.tab`) and `<image_id>.jpg` files.

    The metadata file is looked for at root, then in any subfolder; images in any subfolder
    and letter case, each image_id once (the first path in sorted order when copies exist; an
    image_id listed with its extension is found too; hidden files such as `._x.jpg` and the
    `__MACOSX` folder are skipped).
    Classes are CLASSES in that order; `groups` numbers the lesion_ids (sorted), `metadata`
    keeps each csv row (age as float or None). skip_bad drops unreadable or absent images
    with one warning instead of raising. draft=False decodes every JPEG at full size.
    """

    CLASSES = ("akiec", "bcc", "bkl", "df", "mel", "nv", "vasc")
    METADATA = "HAM10000_metadata.csv"
    METADATA_TAB = "HAM10000_metadata.tab"
    COLUMNS = ("lesion_id", "image_id", "dx", "dx_type", "age", "sex", "localization")

    def __init__(self, root, image_size=(100, 75), preprocess="resize", skip_bad=False,
                 draft=True):
        root = _check_root(root, "HAM10000")
        files = _walk_files(root)
        self.root = root
        self.metadata_path = self._find_metadata(root, files)
        rows = self._read_metadata(self.metadata_path)
        by_id = {}
        for p in files:
            if p.suffix.lower() in IMAGE_SUFFIXES:
                by_id.setdefault(p.stem.lower(), p)  # files are sorted: the first copy wins
        paths, missing = [], []
        for line, row in rows:
            key = row["image_id"].lower()
            # some copies of the metadata list "ISIC_0024306.jpg" rather than "ISIC_0024306"
            p = by_id.get(key) or by_id.get(os.path.splitext(key)[0]
                                            if key.endswith(IMAGE_SUFFIXES) else None)
            paths.append(p)
            if p is None:
                missing.append((line, row["image_id"]))
        if missing and not skip_bad:
            line, image_id = missing[0]
            more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
            raise FileNotFoundError(
                f"HAM10000: image {image_id} listed in {self.metadata_path} line {line} was not "
                f"found as {image_id}.jpg in {root} or any subfolder{more}")
        lesions = sorted({row["lesion_id"] for _, row in rows})
        lesion_index = {lesion: i for i, lesion in enumerate(lesions)}
        super().__init__(
            paths=paths,
            targets=[self.CLASSES.index(row["dx"]) for _, row in rows],
            classes=self.CLASSES,
            image_size=image_size,
            preprocess=preprocess,
            metadata=[row for _, row in rows],
            groups=[lesion_index[row["lesion_id"]] for _, row in rows],
            draft=draft,
        )
        if missing:
            warnings.warn(f"HAM10000: skipped {len(missing)} image(s) listed in "
                          f"{self.metadata_path} but absent from {root}, e.g. {missing[0][1]}",
                          stacklevel=2)
            self._keep(np.array([i for i, p in enumerate(paths) if p is not None], np.int64))
        for row, p in zip(self.metadata, self.paths):
            row["path"] = str(p)
        self._drop_bad(skip_bad, "HAM10000")

    @classmethod
    def is_metadata(cls, name):
        """True for a metadata file name: HAM10000_metadata.csv, or the Harvard Dataverse's
        tab-separated HAM10000_metadata.tab, in any letter case."""
        return name.lower() in (cls.METADATA.lower(), cls.METADATA_TAB.lower())

    @classmethod
    def _find_metadata(cls, root, files):
        for direct in (root / cls.METADATA, root / cls.METADATA_TAB):
            if direct.is_file():
                return direct
        direct = root / cls.METADATA
        found = [p for p in files if cls.is_metadata(p.name)]
        for taken in (root / cls.METADATA, root / cls.METADATA_TAB):
            if not found and taken.is_dir():
                raise FileNotFoundError(f"HAM10000: {taken} is a folder, not the metadata file")
        if not found:
            raise FileNotFoundError(
                f"HAM10000: metadata file {cls.METADATA} not found at {direct} nor in any "
                f"subfolder of {root}")
        # the shallowest; the .csv before the .tab
        return min(found, key=lambda p: (len(p.parts), p.suffix.lower() != ".csv", str(p)))

    @classmethod
    def _read_metadata(cls, path):
        """[(line number, row dict)] of the metadata csv, checked; one row per image_id."""
        with open(path, newline="", encoding=_text_encoding(path)) as f:
            first = f.readline()
            f.seek(0)
            # NOTE: the Dataverse serves the metadata ingested as tab-separated .tab (with
            # quoted strings), and spreadsheets in many locales save CSV with semicolons;
            # the header tells which it is
            reader = csv.reader(f, delimiter=_delimiter(first))
            header = next(reader, None)
            if header is None:
                raise ValueError(f"HAM10000: metadata file {path} is empty")
            header = [h.strip().lower() for h in header]
            absent = [c for c in cls.COLUMNS if c not in header]
            if absent:
                raise ValueError(
                    f"HAM10000: metadata file {path} lacks column(s) {', '.join(absent)} "
                    f"(its header: {', '.join(header)})")
            rows, seen = [], {}
            for record in reader:
                line = reader.line_num
                if not any(field.strip() for field in record):
                    continue  # blank line
                if len(record) != len(header):
                    raise ValueError(f"HAM10000: {path} line {line}: {len(record)} fields, "
                                     f"the header has {len(header)}")
                row = {k: v.strip() for k, v in zip(header, record)}
                row["dx"] = row["dx"].lower()
                if row["dx"] not in cls.CLASSES:
                    raise ValueError(
                        f"HAM10000: {path} line {line}: unknown dx {row['dx']!r} (expected one "
                        f"of {', '.join(cls.CLASSES)})")
                for key in ("lesion_id", "image_id"):
                    if not row[key]:
                        raise ValueError(f"HAM10000: {path} line {line}: empty {key}")
                row["age"] = cls._age(row["age"], path, line)
                first = seen.get(row["image_id"].lower())
                if first is not None:
                    if first[1]["dx"] != row["dx"]:
                        raise ValueError(
                            f"HAM10000: {path}: image {row['image_id']} is listed on lines "
                            f"{first[0]} and {line} with different dx")
                    continue  # a repeated row: each image once
                seen[row["image_id"].lower()] = (line, row)
                rows.append((line, row))
        if not rows:
            raise ValueError(f"HAM10000: metadata file {path} lists no images")
        return rows

    @staticmethod
    def _age(text, path, line):
        if text == "":
            return None
        try:
            return float(text)
        except ValueError:
            raise ValueError(f"HAM10000: {path} line {line}: age {text!r} is not a number")


def _text_encoding(path):
    """The encoding of a text file: UTF-16 when it starts with a UTF-16 byte-order mark (a
    spreadsheet's "Unicode text"), else UTF-8 (with or without BOM) when it decodes as such,
    else Latin-1, which reads any bytes (a spreadsheet's "CSV" on Windows is Windows-1252;
    the columns used are ASCII either way)."""
    data = Path(path).read_bytes()
    if data[:2] in (b"\xff\xfe", b"\xfe\xff"):
        return "utf-16"
    try:
        data.decode("utf-8")
        return "utf-8-sig"
    except UnicodeDecodeError:
        return "latin-1"


def _delimiter(header_line):
    """The field separator of a metadata file, from its header: tab, semicolon or comma."""
    for delimiter in ("\t", ";"):
        if delimiter in header_line and "," not in header_line:
            return delimiter
    return ","


class ImageFolder(ImageDataset):
    """One subfolder of root per class, holding .jpg, .jpeg or .png files (any letter case).

    Classes are the sorted subfolder names, or `classes` in the order given (other subfolders
    are then ignored; a class folder may differ from its name in letter case). Files are found
    recursively within each class folder, in sorted order; hidden files and folders (.DS_Store,
    `._x.jpg`, `__MACOSX`) are skipped.
    E.g. DermMel: ImageFolder("DermMel/train_sep") has classes Melanoma, NotMelanoma.
    """

    def __init__(self, root, image_size=(100, 75), classes=None, preprocess="resize",
                 skip_bad=False, draft=True):
        root = _check_root(root, "ImageFolder")
        self.root = root
        if classes is None:
            classes = subfolders(root)
            if not classes:
                raise FileNotFoundError(f"ImageFolder: {root} has no class subfolders")
        if isinstance(classes, (str, bytes)):
            raise TypeError(f"ImageFolder: classes must be a list of folder names, got the "
                            f"string {classes!r}")
        classes = list(classes)
        if len(set(classes)) != len(classes):
            raise ValueError(f"ImageFolder: classes has repeated names: {classes}")
        paths, targets = [], []
        for k, name in enumerate(classes):
            folder = find_subfolder(root, name)
            if folder is None:
                raise FileNotFoundError(f"ImageFolder: class folder {root / name} does not "
                                        f"exist (subfolders: {', '.join(subfolders(root))})")
            found = [p for p in _walk_files(folder) if p.suffix.lower() in IMAGE_SUFFIXES]
            if not found:
                raise FileNotFoundError(
                    f"ImageFolder: class folder {folder} holds no .jpg, .jpeg or .png images")
            paths += found
            targets += [k] * len(found)
        super().__init__(paths, targets, classes, image_size, preprocess,
                         metadata=[{"path": str(p)} for p in paths], draft=draft)
        self._drop_bad(skip_bad, "ImageFolder")
