"""Class probabilities of image files from a finished run: python -m tinylesion.predict."""
import json
import os
import sys
from pathlib import Path

import numpy as np

from . import backend
from .flags import DEVICE, OneLineParser, folder_path, int_at_least


class PredictError(Exception):
    """A missing or unusable run folder, or an unreadable image; the message says which."""


def load_run(run_dir, device="cpu"):
    """(model in eval mode on `device`, run.json as a dict) of a run folder.

    Every file is checked as untrusted input (a run folder may have been changed since it was
    written): each run.json key, and the weights' names, shapes, dtypes and finiteness."""
    from .runinfo import RunInfoError, build_model, read_run_info
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise PredictError(f"--weights {run_dir}: " + (
            "is a file; give the run folder (holding run.json and weights.npz)"
            if run_dir.exists() else "no such run folder"))
    model, run = _read_consistent(run_dir, build_model, read_run_info, RunInfoError)
    return model.to(device).eval(), run


def _read_consistent(run_dir, build_model, read_run_info, RunInfoError):
    """Read run.json and weights.npz of one run: a run being swapped in meanwhile is waited
    for (a second at most), so the two files never come from two runs."""
    import time
    from .runfolder import RunFolder
    folder = RunFolder(run_dir)
    for _ in range(20):
        if not folder.moving():
            result = _read(run_dir, folder, build_model, read_run_info, RunInfoError)
            if not folder.moving():
                return result
        time.sleep(0.05)
    raise PredictError(f"--weights {run_dir}: a new run is being moved into this folder (or its "
                       "move was cut short: run the example with --resume --out on it)")


def _read(run_dir, folder, build_model, read_run_info, RunInfoError):
    from . import io
    for name in ("run.json", "weights.npz"):
        if (run_dir / name).is_dir():
            raise PredictError(f"--weights {run_dir}: {run_dir / name} is a folder, not the "
                               f"run's {name} file")
        if not (run_dir / name).is_file():
            raise PredictError(f"--weights {run_dir}: {name} is missing (is this the --out "
                               "folder of a finished run?" + (
                                   " The run there has not finished: continue it with "
                                   "--resume)" if folder.unfinished() else ")"))
    try:
        run = read_run_info(run_dir / "run.json")
        model = build_model(run, run_dir / "run.json")
    except RunInfoError as exc:
        raise PredictError(str(exc)) from None
    try:
        weights = io.load(run_dir / "weights.npz")
        model.load_state_dict(weights)
    except (ValueError, KeyError, OSError, RuntimeError) as exc:
        raise PredictError(f"{run_dir / 'weights.npz'}: cannot load the weights ({exc})") \
            from None
    for key, value in weights.items():
        if not np.isfinite(np.asarray(value, dtype=np.float64)).all():
            raise PredictError(f"{run_dir / 'weights.npz'}: '{key}' holds NaN or infinite "
                               "values (a diverged run?)")
    return model, run


BATCH_SIZE = 64  # images per forward pass: the kernels' speed per image levels off about here


def predict_files(model, run, paths, device="cpu", batch_size=BATCH_SIZE, num_workers=None):
    """(N, K) class probabilities of the image files, preprocessed as in training, in the
    order of `paths`.

    The files are streamed: the data Loader's threads (`num_workers`, default the engine's
    thread count) decode and resize the next batches while the model runs on the current one,
    and a batch is normalised and moved to `device` in the background (data.DeviceLoader).
    An unreadable file raises the ImageReadError that names it (the first such file in
    `paths`), as reading it alone would."""
    from kernels.threads import get_num_threads
    from .data import ImageDataset, Loader
    from .tensor import Tensor, no_grad
    from .train import device_batches, probabilities
    paths = [os.fspath(p) for p in paths]
    if not paths:
        return np.zeros((0, len(run["class_names"])), np.float64)
    dataset = ImageDataset(paths, np.zeros(len(paths), np.int64), run["class_names"],
                           tuple(run["image_size"]), run.get("preprocess", "resize"))
    workers = get_num_threads() if num_workers is None else num_workers
    # NOTE: prefetch 2 keeps the threads a batch ahead of the model (the one being filled
    # while the model runs, and the one waiting for the transfer) without holding more.
    loader = Loader(dataset, batch_size=batch_size, num_workers=workers, prefetch=2)
    out = []
    with no_grad():
        for x, _ in device_batches(loader, device, run["mean"], run["std"]):
            # (x is a fresh batch of the loader's: wrapped as it is, not copied)
            p = probabilities(model(Tensor._wrap(x)), model.binary).numpy().astype(np.float64)
            out.append(np.stack([1 - p, p], axis=1) if model.binary else p)
    return np.concatenate(out)


def format_line(path, probs, class_names):
    """'path: name p  name p ...' with the classes from most to least probable."""
    order = np.argsort(-probs, kind="stable")
    return f"{path}: " + "  ".join(f"{class_names[k]} {probs[k]:.4f}" for k in order)


def main(argv=None):
    """Print each image's class probabilities, one line per image (exit 2 on bad input)."""
    from .data import ImageReadError, LoaderError
    parser = OneLineParser(
        prog="python -m tinylesion.predict",
        description="Class probabilities of images, from the --out folder of a training run.")
    parser.add_argument("--weights", required=True, metavar="RUN_DIR", type=folder_path,
                        help="the run folder (holding run.json and weights.npz)")
    parser.add_argument("--device", default="cpu", type=DEVICE,
                        help="cpu, gpu (cuda is taken as gpu) or auto; default cpu")
    parser.add_argument("--explain", metavar="OUT_DIR", type=folder_path,
                        help="also write each image's Grad-CAM overlay there as a PNG")
    parser.add_argument("--batch-size", default=BATCH_SIZE, type=int_at_least(1),
                        help=f"images per forward pass; default {BATCH_SIZE}")
    parser.add_argument("images", nargs="+", metavar="IMAGE")
    args = parser.parse_args(argv)
    try:
        device = backend.as_device(args.device)
        model, run = load_run(args.weights, device)
        for path in args.images:  # one by one, so that a bad file is named before any work
            if Path(path).is_dir():
                raise PredictError(f"{path} is a folder; give image files (e.g. {path}/*.jpg)")
            if not Path(path).is_file():
                raise PredictError(f"image file not found: {path}")
        if args.explain is not None:
            from .flags import UsageError
            from .runfolder import check_folder
            try:
                check_folder(Path(args.explain), "--explain")
            except UsageError as exc:
                raise PredictError(str(exc)) from None
        probs = predict_files(model, run, args.images, device, args.batch_size)
        if args.explain is not None:
            from .explain import write_overlays
            try:
                write_overlays(model, run, args.images, args.explain, device)
            except OSError as exc:
                raise PredictError(f"--explain {args.explain}: cannot write "
                                   f"{exc.filename or args.explain} "
                                   f"({exc.strerror or exc})") from None
    except (PredictError, ImageReadError, LoaderError, backend.DeviceError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for path, p in zip(args.images, probs):
        print(format_line(path, p, run["class_names"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
