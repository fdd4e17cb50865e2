"""The examples' shared flags and run(): data → model → fit → metrics.json, plots, weights."""
import argparse
import datetime
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

from . import backend
from .flags import DEVICE, OneLineParser, choice, folder_path, image_size, int_at_least

# Per example: the model, the synthetic layout used without --data, and the defaults on real
# and on synthetic data (smaller where the real size would make the quick look slow).
TASKS = {
    "ham": dict(
        example="ham_cnn", layout="ham10000", model="padua4", optimizer="adam", lr=1e-3,
        batch_size=32, preprocess="resize", real=dict(image_size=(100, 75), epochs=50),
        synthetic=dict(image_size=(100, 75), epochs=7),
        about="Train a CNN on HAM10000 (7 classes) or on a folder with one subfolder per class."),
    "melanoma": dict(
        example="melanoma_cnn", layout="dermmel", model="melanoma_cnn", optimizer="adam",
        lr=1e-3, batch_size=32, preprocess="half_crop224",
        real=dict(image_size=(224, 224), epochs=50),
        synthetic=dict(image_size=(96, 96), epochs=5),
        about="Melanoma vs. not melanoma (DermMel layout: train_sep, valid, test); AUROC, "
              "sensitivity, specificity."),
    "logistic": dict(
        example="logistic_regression", layout="dermmel", model="logistic_regression",
        optimizer="adam", lr=1e-4, batch_size=32, preprocess="half_crop224",
        real=dict(image_size=(224, 224), epochs=30),
        synthetic=dict(image_size=(64, 64), epochs=10),
        about="Logistic regression on the pixels; its weights are drawn as an RGB image."),
    "dense": dict(
        example="dense_nn", layout="dermmel", model="dense_nn", optimizer="adam", lr=1e-4,
        batch_size=32, preprocess="half_crop224", real=dict(image_size=(224, 224), epochs=30),
        synthetic=dict(image_size=(64, 64), epochs=10),
        about="A dense network (1024-256-64-16-4) on the pixels, with L2 regularisation."),
}
OPTIMIZERS = ("adam", "nadam", "sgd", "rmsprop")
DERMMEL_SPLITS = ("train_sep", "valid", "test")
# the folder names each DermMel split is found under (in any letter case), first choice first
SPLIT_FOLDERS = {"train_sep": ("train_sep", "train"), "valid": ("valid", "val", "validation"),
                 "test": ("test",)}
METADATA = "HAM10000_metadata.csv"
SYNTHETIC_N = 2000


class UsageError(Exception):
    """A problem with the command line or the data folder, reported in one line (exit 2)."""


# ---------------------------------------------------------------------------------------------
# Flag types: each raises ArgumentTypeError with a one-line reason
# ---------------------------------------------------------------------------------------------

def _float(positive):
    def parse(text):
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
        if not np.isfinite(value) or value < 0 or (positive and value == 0):
            raise argparse.ArgumentTypeError(
                f"must be a {'positive' if positive else 'non-negative'} number, got {text}")
        return value
    return parse


def split_fractions(text):
    """'80/10/10' or '80/20' → fractions summing to 1 (train, val[, test])."""
    try:
        parts = [float(p) for p in text.split("/")]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected percentages such as 80/10/10 or 80/20, got {text!r}") from None
    if len(parts) not in (2, 3) or any(p <= 0 for p in parts):
        raise argparse.ArgumentTypeError(
            f"expected 2 or 3 positive percentages such as 80/10/10, got {text!r}")
    if abs(sum(parts) - 100) > 1e-6:
        raise argparse.ArgumentTypeError(f"the percentages must add up to 100, got {text!r} "
                                         f"(sum {sum(parts):g})")
    return tuple(p / 100 for p in parts)


def _model_name(text):
    from .models import list_models
    if text not in list_models():
        raise argparse.ArgumentTypeError(f"unknown model {text!r}; choose one of: "
                                         f"{', '.join(list_models())}")
    return text


def build_parser(task):
    """The argument parser of one example."""
    spec = TASKS[task]
    p = OneLineParser(prog=f"{spec['example']}.py", description=spec["about"])
    p.add_argument("--data", metavar="DIR", type=folder_path,
                   help="HAM10000 folder (with HAM10000_metadata.csv), DermMel folder "
                   "(train_sep/valid/test) or one subfolder per class; default: a synthetic "
                   "dataset generated once into the cache folder")
    p.add_argument("--device", type=DEVICE, default="cpu",
                   help="cpu, gpu (CuPy; cuda is taken as gpu) or auto (gpu when one works); "
                        "default cpu")
    p.add_argument("--model", type=_model_name, default=spec["model"],
                   help=f"model name (default {spec['model']})")
    p.add_argument("--image-size", type=image_size, metavar="WxH",
                   help=f"image size (default {'x'.join(map(str, spec['real']['image_size']))}"
                        f"; {'x'.join(map(str, spec['synthetic']['image_size']))} on the "
                        "synthetic data)")
    p.add_argument("--epochs", type=int_at_least(1),
                   help=f"epochs (default {spec['real']['epochs']}; "
                        f"{spec['synthetic']['epochs']} on the synthetic data)")
    p.add_argument("--batch-size", type=int_at_least(1), default=spec["batch_size"])
    p.add_argument("--lr", type=_float(True), default=spec["lr"], help="learning rate")
    p.add_argument("--optimizer", type=choice("an optimizer", OPTIMIZERS),
                   default=spec["optimizer"], help="adam, nadam, sgd or rmsprop")
    p.add_argument("--weight-decay", type=_float(False),
                   help="L2 factor (default: the model's own, e.g. 1e-3 for dense_nn, else 0)")
    p.add_argument("--class-weights", type=choice("class weights", ("none", "balanced")),
                   default="balanced", help="none or balanced (default)")
    p.add_argument("--oversample", action="store_true",
                   help="draw minority classes up to the majority count each epoch")
    p.add_argument("--augment", action="store_true",
                   help="random rotations, flips, shifts and zoom of the training images")
    p.add_argument("--split", type=split_fractions, default=(0.8, 0.1, 0.1), metavar="TR/VA/TE",
                   help="train/val/test percentages, split by lesion (default 80/10/10)")
    p.add_argument("--seed", type=int_at_least(0), default=0)
    p.add_argument("--workers", type=int_at_least(0), default=2,
                   help="loader threads (default 2)")
    p.add_argument("--cache", metavar="DIR", type=folder_path,
                   help="keep decoded, resized images in a uint8 memmap cache here")
    p.add_argument("--out", metavar="DIR", type=folder_path,
                   help=f"output folder (default runs/{spec['example']}-<timestamp>)")
    p.add_argument("--resume", action="store_true",
                   help="continue the run in --out from its checkpoint.npz")
    p.add_argument("--skip-bad", action="store_true",
                   help="leave out unreadable or missing images (counted in one warning) "
                        "instead of stopping at the first")
    p.add_argument("--early-stop", type=int_at_least(0), default=10, metavar="N",
                   help="stop after N epochs without val-loss improvement (0: never)")
    return p


def parse_args(task, argv=None):
    """Parse an example's command line (sys.argv[1:] by default)."""
    return build_parser(task).parse_args(argv)


# ---------------------------------------------------------------------------------------------
# Data
# ---------------------------------------------------------------------------------------------

def _has_metadata(root):
    """True when HAM10000_metadata.csv (or .tab) is in root or any subfolder."""
    from .data import HAM10000
    from .data.datasets import _walk_files
    return any(HAM10000.is_metadata(p.name) for p in _walk_files(root))


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
    if _has_metadata(root):
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
    root = default_synthetic_root(layout, n=SYNTHETIC_N)
    took = time.perf_counter() - t0
    log(f"synthetic dataset {'generated' if took > 2 else 'found'} in {root}")
    return root


# ---------------------------------------------------------------------------------------------
# run
# ---------------------------------------------------------------------------------------------

# The files a run writes into --out (a new run replaces these, and only these).
RUN_FILES = ("metrics.json", "history.csv", "weights.npz", "checkpoint.npz", "run.json",
             "history.png", "confusion_matrix.png", "roc.png", "weights.png")


def _check_resume(checkpoint, run_json, args, classes, model):
    """Raise a UsageError unless the run in --out can continue with these flags and data."""
    from .train import load_checkpoint
    if run_json.is_file():
        try:
            saved = json.loads(run_json.read_text())
        except ValueError as exc:
            raise UsageError(f"--resume: {run_json} cannot be read ({exc!r})") from None
        was = {"--model": saved.get("model"),
               "--image-size": "x".join(map(str, saved.get("image_size", ())))}
        now = {"--model": args.model, "--image-size": "x".join(map(str, args.image_size))}
        for flag in was:
            if was[flag] is not None and was[flag] != now[flag]:
                raise UsageError(f"--resume: the run in {run_json.parent} was trained with "
                                 f"{flag} {was[flag]}, not {now[flag]}; give the same {flag}")
        if saved.get("class_names") not in (None, classes):
            raise UsageError(f"--resume: the run in {run_json.parent} was trained on classes "
                             f"{', '.join(saved['class_names'])}; --data gives "
                             f"{', '.join(classes)}")
    try:
        model.load_state_dict(load_checkpoint(checkpoint)["model"])
    except (ValueError, KeyError, TypeError, OSError, RuntimeError) as exc:
        raise UsageError(f"--resume: cannot continue from {checkpoint}: {exc}") from None


def _make_folder(path, flag):
    """Create the folder a flag names (and its parents), or raise a UsageError saying why."""
    if path.exists() and not path.is_dir():
        raise UsageError(f"{flag} {path}: is a file, not a folder")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"{flag} {path}: cannot create the folder "
                         f"({exc.strerror or exc})") from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise UsageError(f"{flag} {path}: the folder is not writable")


def _clear_earlier_run(out, log):
    """A new run into a folder that holds an earlier run replaces the earlier run's files."""
    earlier = [name for name in RUN_FILES if (out / name).is_file()]
    if not earlier:
        return
    log(f"note: --out {out} holds an earlier run; it is replaced (--resume would continue it)")
    for name in earlier:
        try:
            (out / name).unlink()
        except OSError as exc:
            raise UsageError(f"--out {out}: cannot replace {name} ({exc.strerror or exc})") \
                from None


def _optimizer(name, params, lr, weight_decay):
    from . import optim
    if name == "sgd":
        return optim.SGD(params, lr=lr, momentum=0.9, weight_decay=weight_decay)
    cls = {"adam": optim.Adam, "nadam": optim.NAdam, "rmsprop": optim.RMSprop}[name]
    return cls(params, lr=lr, weight_decay=weight_decay)


def _jsonable(value):
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, tuple):
        return list(value)
    if isinstance(value, np.generic):
        return value.item()
    return value


def _write_json(path, obj):
    tmp = Path(f"{path}.tmp")
    tmp.write_text(json.dumps(obj, indent=2, default=_jsonable) + "\n")
    os.replace(tmp, path)


def run(args, task, log=print):
    """Train and evaluate as the parsed flags say; write the run folder; return the metrics.

    Problems the user can fix (device, data folder, flags) print one line to stderr and exit
    with status 2; a NaN loss exits with status 1.
    """
    from .data import ImageReadError
    from .train import TrainingError
    try:
        return _run(args, task, log)
    except (UsageError, backend.DeviceError, ImageReadError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(2)
    except TrainingError as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(1)
    except Exception as exc:
        if not backend.is_out_of_memory(exc):
            raise
        print(f"error: out of {'device' if backend.is_cupy_error(exc) else 'host'} memory "
              f"with --batch-size {args.batch_size} ({type(exc).__name__}); try a smaller "
              f"--batch-size or --image-size; continue with --resume --out {args.out}",
              file=sys.stderr)
        raise SystemExit(2)
    except KeyboardInterrupt:
        out = getattr(args, "out", None)
        print(f"\ninterrupted; continue with --resume --out {out}", file=sys.stderr)
        raise SystemExit(130)


def _run(args, task, log):
    from . import io, plots
    from .data import Augment, Loader, OversampleSampler, channel_stats
    from .metrics import classification_report, evaluate
    from .models import get_model
    from .optim import ReduceLROnPlateau
    from .train import evaluate_model, fit, write_history_csv
    import tinylesion as tl

    spec = TASKS[task]
    device = backend.as_device(args.device)
    if args.device == "auto":
        log(f"device auto: using {device}")
    if args.resume and args.out is None:
        raise UsageError("--resume needs --out RUN_DIR (the folder of the run to continue)")
    synthetic = args.data is None
    defaults = spec["synthetic" if synthetic else "real"]
    if args.image_size is None:
        args.image_size = defaults["image_size"]
    if args.epochs is None:
        args.epochs = defaults["epochs"]
    preprocess = "resize" if synthetic else spec["preprocess"]
    if synthetic and task != "ham":
        log(f"synthetic data: images at {args.image_size[0]}x{args.image_size[1]}, resized "
            f"whole (on real data the default is {'x'.join(map(str, spec['real']['image_size']))}"
            f" with the half-then-crop-224 preprocessing), so that the quick look stays quick")
    data = _synthetic_root(spec["layout"], log) if synthetic else Path(args.data)
    out = Path(args.out) if args.out else Path("runs") / (
        f"{spec['example']}-{datetime.datetime.now():%Y%m%d-%H%M%S}")
    args.out = out
    checkpoint = out / "checkpoint.npz"
    if args.resume and not checkpoint.is_file():
        raise UsageError(f"--resume: no checkpoint at {checkpoint}")
    _make_folder(out, "--out")
    if args.cache:
        _make_folder(Path(args.cache), "--cache")
    if not args.resume:
        _clear_earlier_run(out, log)

    try:
        train_ds, val_ds, test_ds, kind = open_data(data, args.image_size, preprocess,
                                                    args.split, args.seed, log, args.skip_bad)
    except ValueError as exc:  # a malformed metadata file, a bad split of few images...
        raise UsageError(str(exc)) from None
    classes = list(train_ds.classes)
    log(f"data: {kind} in {data}: {len(classes)} classes, train {len(train_ds)}, val "
        f"{len(val_ds)}, test {len(test_ds)} images at {args.image_size[0]}x"
        f"{args.image_size[1]}")
    for name, ds in (("train", train_ds), ("val", val_ds), ("test", test_ds)):
        if len(ds) == 0:
            raise UsageError(f"--data {data}: the {name} split is empty; use more images or "
                             "another --split")

    # the model first: a size too small for it, or a run that cannot resume, is said at
    # once, not after the cache and the channel statistics have read every image
    tl.manual_seed(args.seed)
    try:
        model = get_model(args.model, num_classes=len(classes), image_size=args.image_size)
    except ValueError as exc:  # e.g. an image size too small for the model's layers
        raise UsageError(f"--model {args.model} --image-size {args.image_size[0]}x"
                         f"{args.image_size[1]}: {exc}") from None
    run_json = out / "run.json"
    if args.resume:
        _check_resume(checkpoint, run_json, args, classes, model)

    if args.cache:
        from .data import CachedDataset
        train_ds, val_ds, test_ds = (CachedDataset(d, args.cache)
                                     for d in (train_ds, val_ds, test_ds))
        for d in (train_ds, val_ds, test_ds):
            d.build(num_workers=max(args.workers, 1))  # decodes only when stale or absent
    if args.resume and run_json.is_file():
        try:
            saved = json.loads(run_json.read_text())
            mean, std = np.asarray(saved["mean"], float), np.asarray(saved["std"], float)
        except (ValueError, KeyError, TypeError) as exc:
            raise UsageError(f"--resume: {run_json} cannot be read ({exc!r})") from None
    else:
        t0 = time.perf_counter()
        mean, std = channel_stats(train_ds, num_workers=args.workers)
        log(f"channel mean {np.round(mean, 3).tolist()}, std {np.round(std, 3).tolist()} "
            f"({time.perf_counter() - t0:.1f}s)")

    model.to(device)
    weight_decay = args.weight_decay if args.weight_decay is not None else model.weight_decay
    args.weight_decay = weight_decay
    optimizer = _optimizer(args.optimizer, model.parameters(), args.lr, weight_decay)
    # NOTE: Keras' ReduceLROnPlateau(patience=3) lowers the rate on the 3rd epoch without
    # improvement; PyTorch's (used here) waits for more than `patience`, so patience=2.
    scheduler = ReduceLROnPlateau(optimizer, mode="min", factor=0.5, patience=2)
    weights = _train_class_weights(train_ds.targets, classes, args.class_weights, log)
    augment = (Augment(rotation_range=90, zoom_range=0.1, width_shift_range=0.1,
                       height_shift_range=0.1, horizontal_flip=True, vertical_flip=True)
               if args.augment else None)
    sampler = OversampleSampler(train_ds.targets, seed=args.seed) if args.oversample else None
    train_loader = Loader(train_ds, batch_size=args.batch_size, shuffle=sampler is None,
                          num_workers=args.workers, seed=args.seed, augment=augment,
                          sampler=sampler, skip_bad=args.skip_bad)
    val_loader = Loader(val_ds, batch_size=args.batch_size, num_workers=args.workers,
                        skip_bad=args.skip_bad)
    test_loader = Loader(test_ds, batch_size=args.batch_size, num_workers=args.workers,
                         skip_bad=args.skip_bad)
    log(f"model {args.model}: {model.num_parameters():,} parameters; {args.optimizer} lr "
        f"{args.lr:g}, weight decay {weight_decay:g}; class weights {args.class_weights}"
        f"{'; oversampling' if sampler else ''}{'; augmentation' if augment else ''}; "
        f"device {device}")

    settings = {k: _jsonable(v) for k, v in sorted(vars(args).items())}
    settings.update(task=task, data=str(data), synthetic=synthetic, preprocess=preprocess)
    _write_json(run_json, {
        "example": spec["example"], "model": args.model, "config": model.config,
        "image_size": list(args.image_size), "preprocess": preprocess,
        "mean": np.asarray(mean).tolist(), "std": np.asarray(std).tolist(),
        "class_names": classes, "binary": bool(model.binary), "settings": settings})

    history = fit(model, optimizer, train_loader, val_loader, epochs=args.epochs,
                  device=device, class_weights=weights, mean=mean, std=std,
                  scheduler=scheduler, early_stopping=args.early_stop,
                  checkpoint_path=checkpoint, resume=args.resume, log=log)

    y_true, y_score = evaluate_model(model, test_loader, device, mean, std)
    metrics = evaluate(y_true, y_score, classes, y_true_train=train_ds.targets)
    metrics["settings"] = settings
    _write_json(out / "metrics.json", metrics)
    write_history_csv(history, out / "history.csv")
    io.save({k: backend.to_numpy(v) for k, v in model.state_dict().items()},
            out / "weights.npz")
    files = ["metrics.json", "history.csv", "weights.npz", "checkpoint.npz", "run.json"]
    files += _plots(plots, history, metrics, y_true, y_score, classes, model, args, out, log)
    log("\ntest set:\n" + classification_report(metrics))
    log(f"wrote {', '.join(files)} to {out}")
    return metrics


def _train_class_weights(targets, classes, mode, log):
    """The loss's class weights (None for mode "none"); classes absent from training get 0.

    NOTE: w_c = N / (K n_c) with K the classes present in the training split, so that the
    weights still average to 1 over the training samples; an absent class is never a target,
    so its weight never enters the loss. Absent classes are named, since the model still has
    an output for each (a HAM10000 subset keeps the seven classes).
    """
    from .data import class_weights
    counts = np.bincount(np.asarray(targets, np.int64), minlength=len(classes))
    absent = [name for name, n in zip(classes, counts) if n == 0]
    if absent:
        log(f"note: no training images of class(es) {', '.join(absent)}; the model keeps an "
            "output for each, and never learns to predict them")
    if mode != "balanced":
        return None
    present = np.flatnonzero(counts)
    weights = np.zeros(len(classes), np.float32)
    remap = np.searchsorted(present, np.asarray(targets, np.int64))
    weights[present] = class_weights(remap, "balanced", num_classes=len(present))
    return weights


def _plots(plots, history, metrics, y_true, y_score, classes, model, args, out, log):
    """Write the PNG plots; a plot that cannot be drawn is reported, not fatal."""
    made = []
    jobs = [("history.png", lambda p: plots.plot_history(history, p)),
            ("confusion_matrix.png",
             lambda p: plots.plot_confusion_matrix(metrics["confusion_matrix"], classes, p)),
            ("roc.png", lambda p: plots.plot_roc(y_true, y_score, classes, p))]
    if args.model == "logistic_regression":
        W = next(p for p in model.parameters() if p.ndim == 2)
        names = classes[1:] if model.binary else classes
        jobs.append(("weights.png", lambda p: plots.plot_weights_image(
            W.numpy(), (args.image_size[1], args.image_size[0]), p, class_names=names)))
    for name, job in jobs:
        try:
            job(out / name)
            made.append(name)
        except ValueError as exc:
            log(f"note: {name} not drawn: {exc}")
    return made


def main(task, argv=None):
    """Parse the command line and run one example."""
    run(parse_args(task, argv), task)
    return 0
