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
from .datalayout import open_data, _synthetic_root  # noqa: F401 (cli.open_data, as before)
from .flags import (DEVICE, OneLineParser, UsageError, choice, folder_path, image_size,
                    int_at_least)
from .runfolder import check_folder as _check_folder, make_folder as _make_folder

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
    p.add_argument("--distributed", action="store_true",
                   help="data-parallel over the processes of `mpirun -n N` (--batch-size is "
                        "per process; rank 0 writes the run folder); needs tinylesion[mpi]")
    _add_finetune_flags(p)
    return p


def _add_finetune_flags(p):
    """--pretrained, --freeze-epochs, --unfreeze-blocks, --finetune-lr-factor, --head."""
    from .finetune import DEFAULT_FREEZE_EPOCHS, HEADS, file_path
    p.add_argument("--pretrained", metavar="FILE", type=file_path,
                   help="fine-tune from these weights (.npz, .pth/.pt, .safetensors); a head "
                        "for other classes is replaced; ImageNet mean and std normalise")
    p.add_argument("--freeze-epochs", type=int_at_least(0), metavar="N",
                   help="with --pretrained: train only the head for N epochs, then unfreeze "
                        f"(default {DEFAULT_FREEZE_EPOCHS})")
    p.add_argument("--unfreeze-blocks", type=int_at_least(1), metavar="B",
                   help="with --pretrained: unfreeze only the last B blocks (default: all)")
    p.add_argument("--finetune-lr-factor", type=_float(True), default=0.1, metavar="F",
                   help="the unfrozen backbone trains at --lr times F (default 0.1)")
    p.add_argument("--head", type=choice("a head", HEADS), default="default",
                   help="default (the model's own), maxpool512 (global max pool, FC 512, "
                        "dropout 0.5) or fc4096 (FC 4096-1024-256-32)")


def parse_args(task, argv=None):
    """Parse an example's command line (sys.argv[1:] by default).

    The flags given on it are kept in args._given (what --resume may take from the run it
    continues are the others)."""
    from .resume import given_flags
    args = build_parser(task).parse_args(argv)
    args._given = given_flags(build_parser(task), argv)
    return args


def _given(args, task):
    """The flags given on the command line (those differing from the defaults when args was
    not made by parse_args)."""
    if hasattr(args, "_given"):
        return set(args._given)
    defaults = vars(build_parser(task).parse_args([]))
    return {k for k, v in vars(args).items() if k in defaults and v != defaults[k]}


# ---------------------------------------------------------------------------------------------
# run
# ---------------------------------------------------------------------------------------------

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
    from .runfolder import write_text_atomic
    write_text_atomic(path, json.dumps(obj, indent=2, default=_jsonable) + "\n")


def run(args, task, log=print):
    """Train and evaluate as the parsed flags say; write the run folder; return the metrics.

    Problems the user can fix (device, data folder, flags, a folder another run is writing)
    print one line to stderr and exit with status 2; a diverged run or a file that cannot be
    written (a full disk) with status 1; Ctrl-C with status 130. The run folder is only
    changed once everything has been checked, and an earlier run in it is replaced whole.
    With --distributed, a failure on any rank ends every rank (MPI_Abort) with its message.
    """
    if getattr(args, "distributed", False):
        from .distributed import abort_on_failure
        with abort_on_failure():  # a rank that stops ends every rank, never a hang
            return _report(args, task, log)
    return _report(args, task, log)


def _report(args, task, log):
    """run() without the abort of the other ranks: every failure a one-line error."""
    from .runreport import Progress, catch_interrupts, interrupted, report
    progress = Progress()
    restore = catch_interrupts(progress)
    try:
        result = _run(args, task, log, progress)
        restore()
        return result
    except BaseException as exc:
        if not interrupted(exc):
            restore()
        if isinstance(exc, SystemExit):
            raise
        code = report(exc, args, progress, UsageError)
        if code is None:
            raise
        raise SystemExit(code) from None


def _run(args, task, log, progress):
    from .runfolder import RunFolder
    spec = TASKS[task]
    device = backend.as_device(args.device)
    world = _distributed(args, device, log)
    if world is not None and not world.is_main:
        return _run_other_rank(args, task, world, device)
    if args.device == "auto":
        log(f"device auto: using {device}")
    if args.resume and args.out is None:
        raise UsageError("--resume needs --out RUN_DIR (the folder of the run to continue)")
    out = Path(args.out) if args.out else Path("runs") / (
        f"{spec['example']}-{datetime.datetime.now():%Y%m%d-%H%M%S}")
    args.out = out
    _check_folder(out, "--out")
    if args.cache:
        _check_folder(Path(args.cache), "--cache")
    folder = progress.folder = RunFolder(out)
    progress.resumed = bool(args.resume)
    existed = out.exists()
    try:
        return _locked_run(args, task, log, progress, folder, device, world)
    except BaseException:
        if not existed:  # a folder this run made and left empty goes again
            try:
                out.rmdir()
            except OSError:
                pass
        raise


def _locked_run(args, task, log, progress, folder, device, world=None):
    """_run, from taking the run folder's lock on (on rank 0 of a distributed run)."""
    from contextlib import ExitStack
    from .runreport import interrupted
    from .resume import Resumed
    from .runlock import RunLock
    out = folder.path
    with ExitStack() as stack:
        lock = None
        if out.is_dir():  # the lock first: what --resume reads must not change meanwhile
            lock = stack.enter_context(RunLock(out, "--out", log))
            folder.recover(log)
            folder.check_files()
        resume = None
        if args.resume:
            if not out.is_dir():
                raise UsageError(f"--resume: no checkpoint at {out / 'checkpoint.npz'}")
            types = {a.dest: a.type for a in build_parser(task)._actions}
            resume = Resumed(folder, args, _given(args, task), types, log)
        prepared = _prepare(args, task, log, resume, device)
        if world is not None:  # the other ranks prepare the same run from here
            world.comm.bcast(_shared(args, prepared, resume), root=0)
        if lock is None:
            _make_folder(out, "--out")
            stack.enter_context(RunLock(out, "--out", log))
            folder.recover(log)
        # from here on the run folder changes; an earlier run is replaced only at the end
        try:
            staging = folder.begin(resume is not None and resume.from_staging, log)
            progress.staged = True
            return _train_and_write(args, task, log, prepared, resume, folder, staging, device)
        except BaseException as exc:
            progress.stopping = interrupted(exc)
            progress.kept = folder.abandon()
            raise


class _Prepared:
    """Everything a run needs, checked before the run folder changes."""


def _prepare(args, task, log, resume, device, shared=None):
    """Open and check the data, build the model and optimizer, read the resume state, fill
    the cache and compute the channel statistics: nothing of the run folder changes.
    `shared`: what rank 0 prepared (_shared), on the other ranks of a distributed run."""
    from .data import Augment, Loader, OversampleSampler, channel_stats
    from .models import get_model
    from .optim import ReduceLROnPlateau
    import tinylesion as tl

    spec = TASKS[task]
    p = _Prepared()
    synthetic = args.data is None
    defaults = spec["synthetic" if synthetic else "real"]
    if args.image_size is None:
        args.image_size = defaults["image_size"]
    if args.epochs is None:
        args.epochs = defaults["epochs"]
    from . import finetune
    try:
        finetune.check_flags(args, _given(args, task), resuming=resume is not None)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    p.preprocess = "resize" if synthetic else spec["preprocess"]
    if args.pretrained is not None and not synthetic:  # the crop the ImageNet weights saw
        p.preprocess = "imagenet_crop"
    if resume is not None:
        p.preprocess = resume.run.get("preprocess", p.preprocess)
    if shared is not None:
        p.preprocess = shared["preprocess"]
    if synthetic and task != "ham":
        log(f"synthetic data: images at {args.image_size[0]}x{args.image_size[1]}, resized "
            f"whole (on real data the default is {'x'.join(map(str, spec['real']['image_size']))}"
            f" with the half-then-crop-224 preprocessing), so that the quick look stays quick")
    data = p.data = _synthetic_root(spec["layout"], log) if synthetic else Path(args.data)
    p.synthetic = synthetic
    try:
        train_ds, val_ds, test_ds, kind = open_data(data, args.image_size, p.preprocess,
                                                    args.split, args.seed, log, args.skip_bad)
    except ValueError as exc:  # a malformed metadata file, a bad split of few images...
        raise UsageError(str(exc)) from None
    classes = p.classes = list(train_ds.classes)
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
        model = p.model = get_model(args.model, num_classes=len(classes),
                                    image_size=args.image_size)
    except ValueError as exc:  # e.g. an image size too small for the model's layers
        raise UsageError(f"--model {args.model} --image-size {args.image_size[0]}x"
                         f"{args.image_size[1]}: {exc}") from None
    try:
        params, p.phases = finetune.setup(args, model, log, resuming=resume is not None)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    model.to(device)
    weight_decay = args.weight_decay if args.weight_decay is not None else model.weight_decay
    args.weight_decay = weight_decay
    p.optimizer = _optimizer(args.optimizer, params, args.lr, weight_decay)
    # NOTE: Keras' ReduceLROnPlateau(patience=3) lowers the rate on the 3rd epoch without
    # improvement; PyTorch's (used here) waits for more than `patience`, so patience=2.
    p.scheduler = ReduceLROnPlateau(p.optimizer, mode="min", factor=0.5, patience=2)
    p.override = None if shared is None else shared["override"]
    if resume is not None:
        p.override = resume.check(classes, model, p.optimizer, p.scheduler, args)

    if args.cache:
        from .data import CachedDataset
        _make_folder(Path(args.cache), "--cache")
        train_ds, val_ds, test_ds = (CachedDataset(d, args.cache)
                                     for d in (train_ds, val_ds, test_ds))
        for d in (train_ds, val_ds, test_ds):
            d.build(num_workers=max(args.workers, 1))  # decodes only when stale or absent
    if resume is not None:
        p.mean, p.std = np.asarray(resume.run["mean"], float), np.asarray(resume.run["std"],
                                                                          float)
    elif shared is not None:
        p.mean, p.std = shared["mean"], shared["std"]
    elif args.pretrained is not None:
        p.mean, p.std, source = finetune.pretrained_stats(args.pretrained)
        log(f"channel mean and std: {source}, which {args.pretrained} was trained with")
    else:
        t0 = time.perf_counter()
        p.mean, p.std = channel_stats(train_ds, num_workers=args.workers)
        log(f"channel mean {np.round(p.mean, 3).tolist()}, std {np.round(p.std, 3).tolist()} "
            f"({time.perf_counter() - t0:.1f}s)")
    p.train_ds, p.test_ds = train_ds, test_ds
    p.weights = _train_class_weights(train_ds.targets, classes, args.class_weights, log)
    augment = (Augment(rotation_range=90, zoom_range=0.1, width_shift_range=0.1,
                       height_shift_range=0.1, horizontal_flip=True, vertical_flip=True)
               if args.augment else None)
    sampler = OversampleSampler(train_ds.targets, seed=args.seed) if args.oversample else None
    p.train_loader = Loader(train_ds, batch_size=args.batch_size, shuffle=sampler is None,
                            num_workers=args.workers, seed=args.seed, augment=augment,
                            sampler=sampler, skip_bad=args.skip_bad)
    p.val_loader = Loader(val_ds, batch_size=args.batch_size, num_workers=args.workers,
                          skip_bad=args.skip_bad)
    p.test_loader = Loader(test_ds, batch_size=args.batch_size, num_workers=args.workers,
                           skip_bad=args.skip_bad)
    group = {**p.optimizer.param_groups[0], **(p.override or {})}  # what training uses
    from_ck = " (the checkpoint's)" if resume is not None else ""
    log(f"model {args.model}: {model.num_parameters():,} parameters; {args.optimizer} lr "
        f"{group['lr']:g}{'' if 'lr' in (p.override or {}) else from_ck}, weight decay "
        f"{group['weight_decay']:g}; class weights {args.class_weights}"
        f"{'; oversampling' if sampler else ''}{'; augmentation' if augment else ''}; "
        f"device {device}")
    if resume is not None:
        from .resume import describe_changes
        log(f"resume: the {'unfinished' if resume.from_staging else 'finished'} run in "
            f"{args.out}, from its checkpoint after epoch {resume.epoch}")
        from .distributed import world_size
        line = describe_changes(resume.changes, resume.epoch,
                                (resume.ranks, world_size()),
                                args.batch_size)
        if line:
            log(line)
    return p


def _train_and_write(args, task, log, p, resume, folder, staging, device):
    """Train into the staging folder, write the run's files there, then swap them in."""
    import shutil
    from . import io, plots
    from .metrics import classification_report, evaluate
    from .runfolder import write_atomic
    from .train import TrainingError, evaluate_model, fit, write_history_csv

    spec = TASKS[task]
    settings = {k: _jsonable(v) for k, v in sorted(vars(args).items()) if not k.startswith("_")}
    settings.update(task=task, data=str(p.data), synthetic=p.synthetic,
                    preprocess=p.preprocess)
    if resume is not None:
        settings["resumed_after_epoch"] = resume.epoch
        settings["changed_on_resume"] = {k: [was, now] for k, (was, now) in
                                         resume.changes.items()}
    model = p.model
    _write_json(staging / "run.json", {
        "example": spec["example"], "model": args.model, "config": model.config,
        "image_size": list(args.image_size), "preprocess": p.preprocess,
        "mean": np.asarray(p.mean).tolist(), "std": np.asarray(p.std).tolist(),
        "class_names": p.classes, "binary": bool(model.binary), "settings": settings})

    checkpoint = staging / "checkpoint.npz"
    diverged = None
    try:
        history = fit(model, p.optimizer, p.train_loader, p.val_loader, epochs=args.epochs,
                      device=device, class_weights=p.weights, mean=p.mean, std=p.std,
                      scheduler=p.scheduler, early_stopping=args.early_stop,
                      checkpoint_path=checkpoint, resume=resume.ck if resume else False,
                      log=log, override=p.override, phases=p.phases)
    except TrainingError as exc:
        if getattr(exc, "best_epoch", None) is None or not checkpoint.is_file():
            raise TrainingError(f"{exc}; nothing was written: {folder.path} is as it was"
                                if not checkpoint.is_file() else str(exc)) from None
        diverged, history = exc, exc.history
    if not checkpoint.is_file():  # a resumed run with nothing left to train
        def copy(f):
            with open(resume.checkpoint, "rb") as source:
                shutil.copyfileobj(source, f)
        write_atomic(checkpoint, copy)

    y_true, y_score = evaluate_model(model, p.test_loader, device, p.mean, p.std)
    metrics = evaluate(y_true, y_score, p.classes, y_true_train=p.train_ds.targets)
    metrics["settings"] = settings
    _write_json(staging / "metrics.json", metrics)
    write_history_csv(history, staging / "history.csv")
    io.save({k: backend.to_numpy(v) for k, v in model.state_dict().items()},
            staging / "weights.npz")
    files = ["metrics.json", "history.csv", "weights.npz", "checkpoint.npz", "run.json"]
    files += _plots(plots, history, metrics, y_true, y_score, p.classes, model, args, staging,
                    log)
    folder.commit(files)
    log("\ntest set:\n" + classification_report(metrics))
    log(f"wrote {', '.join(files)} to {folder.path}")
    if diverged is not None:
        reason = str(diverged).split(": training stopped")[0]
        raise TrainingError(
            f"{reason}: training stopped (try a smaller --lr); {folder.path} holds the weights "
            f"of epoch {diverged.best_epoch} (loss {diverged.best_score:.4f}), the best with "
            f"finite losses, and the last good checkpoint (after epoch "
            f"{diverged.checkpoint_epoch}), which --resume --lr SMALLER continues")
    return metrics


def _distributed(args, device, log):
    """The World of a --distributed run over several ranks (None otherwise); a launch by
    mpirun without --distributed is a one-line error (N copies would write one run folder)."""
    from . import distributed
    if not getattr(args, "distributed", False):
        if distributed.launched_size() > 1:
            raise UsageError(f"started by an MPI launcher as {distributed.launched_size()} "
                             "processes without --distributed: add --distributed to train one "
                             "run on all of them (or start one process)")
        return None
    from .gradient_overlap import default_overlap
    from .row_parallel import default_split
    from .sharded_optimizer import default_shard
    from .shared_window import default_shared
    try:
        # TINYLESION_OVERLAP, _SHARD_OPTIMIZER, _SPLIT_LINEAR and _SHARED_WINDOW checked
        # before anything starts
        default_overlap()
        default_shard()
        default_split()
        default_shared()
        world = distributed.init(device)
    except distributed.DistributedError as exc:
        raise UsageError(str(exc)) from None
    if world.size == 1:
        log("note: --distributed with a single process (start it with mpirun -n N)")
        return None
    if world.is_main:
        log(f"distributed: {distributed.environment_note()}; batch {args.batch_size} per "
            f"rank, {args.batch_size * world.size} per step")
    return world


def _shared(args, p, resume):
    """What rank 0 hands the other ranks once it has checked and prepared the run."""
    return {"args": {k: v for k, v in vars(args).items() if k != "distributed"},
            "preprocess": p.preprocess, "override": p.override, "mean": p.mean, "std": p.std,
            "ck": resume.ck if resume is not None else None}


def _run_other_rank(args, task, world, device):
    """A rank other than 0: the same run as rank 0 prepared it, taking part in training and
    evaluation; rank 0 alone logs and writes the run folder."""
    from .train import TrainingError, evaluate_model, fit

    def quiet(*_, **__):
        pass

    shared = world.comm.bcast(None, root=0)
    vars(args).update(shared["args"])
    p = _prepare(args, task, quiet, None, device, shared)
    try:
        fit(p.model, p.optimizer, p.train_loader, p.val_loader, epochs=args.epochs,
            device=device, class_weights=p.weights, mean=p.mean, std=p.std,
            scheduler=p.scheduler, early_stopping=args.early_stop,
            checkpoint_path=Path(args.out) / "checkpoint.npz", log=quiet,
            resume=shared["ck"] if shared["ck"] is not None else False, override=p.override)
    except TrainingError as exc:  # every rank saw the same global loss: rank 0 reports it
        if exc.best_epoch is None or exc.checkpoint_epoch is None:
            world.barrier()  # rank 0 ends the job after its message
    return evaluate_model(p.model, p.test_loader, device, p.mean, p.std)


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
        tmp = out / f".{name}.{os.getpid()}.tmp.png"  # drawn whole, then renamed
        try:
            job(tmp)
            os.replace(tmp, out / name)
            made.append(name)
        except ValueError as exc:
            log(f"note: {name} not drawn: {exc}")
        except OSError as exc:
            if exc.errno is not None:
                exc.filename = str(out / name)
            raise
        finally:
            tmp.unlink(missing_ok=True)
    return made


def main(task, argv=None):
    """Parse the command line and run one example: the examples' entry point.

    A run that stops with a status (Ctrl-C 130, a one-line error 1 or 2) has already cleaned
    up and said why; the process then ends at once. NOTE: not through the interpreter's
    shutdown, in which a thread still inside a kernel when Ctrl-C came (the loader's, Numba's)
    can abort the process ("Fatal Python error: PyThreadState_Get") and turn status 130 into
    a crash after the message."""
    try:
        run(parse_args(task, argv), task)
    except SystemExit as stop:
        if isinstance(stop.code, int) and not isinstance(stop.code, bool) and stop.code != 0:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(stop.code)
        raise
    return 0
