"""The examples' data folders: HAM10000, DermMel or one subfolder per class, split by lesion."""
import os
import time
from pathlib import Path

from .flags import UsageError

DERMMEL_SPLITS = ("train_sep", "valid", "test")
# the folder names each DermMel split is found under (in any letter case), first choice first
SPLIT_FOLDERS = {"train_sep": ("train_sep", "train"), "valid": ("valid", "val", "validation"),
                 "test": ("test",)}
METADATA = "HAM10000_metadata.csv"
SYNTHETIC_N = 2000


def _has_metadata(root):
    """True when HAM10000_metadata.csv (or .tab) is in root or any subfolder."""
    from .data import HAM10000
    from .data.datasets import _walk_files
    return any(HAM10000.is_metadata(p.name) for p in _walk_files(root))


def _metadata_folder(root):
    """A folder under root named as the metadata file (an unzip gone wrong), or None."""
    from .data import HAM10000
    for folder, dirs, _ in os.walk(root):
        for name in sorted(dirs):
            if HAM10000.is_metadata(name):
                return Path(folder) / name
    return None


def _binary_order(classes):
    """Class names with the melanoma class last (class 1 = positive) when there are two."""
    classes = sorted(classes)
    if len(classes) == 2:
        mel = [c for c in classes if c.lower().startswith("mel")]
        if len(mel) == 1:
            classes = [c for c in classes if c != mel[0]] + mel
    return classes


def _find_split(root, split):
    """The folder of a DermMel split under root (train_sep/ or train/, valid/, val/ or
    validation/, test/, in any letter case), or None."""
    from .data.datasets import find_subfolder
    for name in SPLIT_FOLDERS[split]:
        folder = find_subfolder(root, name)
        if folder is not None:
            return folder
    return None


def _dermmel(root, size, preprocess, fractions, seed, log, skip_bad=False):
    """(train, val, test) of a DermMel folder; a missing valid/ or test/ is cut from train_sep.

    The folders present are used as they are; the missing ones are split off train_sep in the
    --split proportions (with a two-way --split and no test/, valid/ is also the test split).
    """
    from .data import ImageFolder, split_by_lesion
    from .data.datasets import subfolders
    found = {s: _find_split(root, s) for s in DERMMEL_SPLITS}
    train_dir = found["train_sep"]
    if train_dir is None:
        raise UsageError(f"--data {root}: has {', '.join(s for s in found if found[s])} but no "
                         "train_sep/ folder (the DermMel layout: train_sep, valid, test)")
    unused = sorted(set(subfolders(root)) - {d.name for d in found.values() if d is not None})
    if unused:
        log(f"note: {', '.join(d + '/' for d in unused)} in {root} not used (the DermMel "
            "layout: train_sep/ or train/, valid/ or val/, test/)")
    classes = _binary_order(subfolders(train_dir))
    if len(classes) < 2:
        raise UsageError(f"--data {root}: {train_dir} needs one subfolder of images per class "
                         f"(at least two), found {', '.join(classes) or 'none'}")
    parts = {s: ImageFolder(d, image_size=size, classes=classes, preprocess=preprocess,
                            skip_bad=skip_bad)
             for s, d in found.items() if d is not None}
    share = {"train_sep": fractions[0], "valid": fractions[1],
             "test": fractions[2] if len(fractions) == 3 else 0.0}
    cut = [s for s in ("valid", "test") if s not in parts and share[s] > 0]
    if cut:
        total = share["train_sep"] + sum(share[s] for s in cut)
        pieces = split_by_lesion(parts["train_sep"], seed=seed, fractions=[
            share[s] / total for s in ["train_sep"] + cut])
        parts.update(zip(["train_sep"] + cut, pieces))
        log(f"data: DermMel layout in {root} without {' and '.join(s + '/' for s in cut)}: "
            f"{'they are' if len(cut) > 1 else 'it is'} split off train_sep/ by --split")
    if "test" not in parts:
        log("data: no test/ folder and a two-way --split: the validation split is also the "
            "test split")
        parts["test"] = parts["valid"]
    if all(found.values()):
        log(f"data: DermMel layout in {root}: {', '.join(d.name for d in found.values())} "
            "used as the train/val/test splits (--split is not used)")
    return parts["train_sep"], parts["valid"], parts["test"]


def open_data(root, size, preprocess, fractions, seed, log=print, skip_bad=False):
    """(train, val, test, kind): the splits of the folder at root and the layout found.

    skip_bad: leave out images that are missing or do not verify (one warning counts them)."""
    from .data import HAM10000, ImageFolder, split_by_lesion
    from .data.datasets import subfolders
    root = Path(root).expanduser()
    if not root.is_dir():
        raise UsageError(f"--data {root}: " + ("is not a folder" if root.exists()
                                               else "no such folder"))
    has_metadata = _has_metadata(root)
    taken = None if has_metadata else _metadata_folder(root)
    if taken is not None:
        raise UsageError(f"--data {root}: {taken} is a folder, not the metadata file; HAM10000 "
                         f"needs {METADATA} (or .tab) there as a file: a table of the images")
    if has_metadata:
        kind, ds = "HAM10000", HAM10000(root, image_size=size, preprocess=preprocess,
                                        skip_bad=skip_bad)
    elif any(_find_split(root, s) is not None for s in DERMMEL_SPLITS):
        return _dermmel(root, size, preprocess, fractions, seed, log, skip_bad) + \
            ("DermMel",)
    else:
        subs = subfolders(root)
        if any(s.lower().startswith("ham10000_images") for s in subs):
            raise UsageError(f"--data {root}: looks like HAM10000 but {METADATA} is missing; "
                             "put it in that folder")
        if len(subs) < 2:
            found = (f"only one subfolder, {subs[0]}/; if the data is inside it, give --data "
                     f"{root / subs[0]}" if subs else "no subfolders")
            raise UsageError(f"--data {root}: neither a HAM10000 folder (no {METADATA}) nor "
                             f"a folder with one subfolder of images per class (at least two "
                             f"classes; found {found})")
        kind = "ImageFolder"
        ds = ImageFolder(root, image_size=size, classes=_binary_order(subs),
                         preprocess=preprocess, skip_bad=skip_bad)
    splits = split_by_lesion(ds, fractions=fractions, seed=seed)
    if len(splits) == 2:
        log("data: two-way --split: the validation split is also the test split")
        splits = (splits[0], splits[1], splits[1])
    return splits[0], splits[1], splits[2], kind


def _synthetic_root(layout, log):
    from .data import default_synthetic_root
    log(f"no --data given: using the synthetic {layout} dataset ({SYNTHETIC_N} images), "
        "generated once into the cache folder (a minute or two the first time)")
    t0 = time.perf_counter()
    root = default_synthetic_root(layout, n=SYNTHETIC_N, log=log)
    took = time.perf_counter() - t0
    log(f"synthetic dataset {'generated' if took > 2 else 'found'} in {root}")
    return root
