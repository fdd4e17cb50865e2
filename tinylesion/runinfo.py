"""run.json of a run folder, read as untrusted input: every key checked, errors name the key."""
import json
import math
from pathlib import Path

MAX_BYTES = 1 << 20      # a run.json is a few kilobytes
MAX_SIDE = 8192          # the largest image side a run.json may name


class RunInfoError(ValueError):
    """A run.json that is missing, unreadable or holds a wrong key; the message names it."""


def _number_list(value, n, positive):
    return (isinstance(value, list) and len(value) == n
            and all(isinstance(v, (int, float)) and not isinstance(v, bool)
                    and math.isfinite(v) and (v > 0 or not positive) for v in value))


def check_run_info(run, where):
    """Raise RunInfoError naming the first key of `run` (run.json's content) that is missing
    or wrong; return `run`. `where` (the file's path) starts the message."""
    from .data.imageio import PREPROCESS
    from .models import list_models

    def bad(key, rule):
        shown = repr(run.get(key))
        shown = shown if len(shown) <= 60 else shown[:57] + "..."
        raise RunInfoError(f"{where}: key '{key}' " + (
            "is missing" if key not in run else f"must be {rule}, got {shown}"))

    if not isinstance(run, dict):
        raise RunInfoError(f"{where}: must hold a JSON object, not a {type(run).__name__}")
    if not isinstance(run.get("model"), str) or run["model"] not in list_models():
        bad("model", "one of the model names (" + ", ".join(list_models()) + ")")
    size = run.get("image_size")
    if not (isinstance(size, list) and len(size) == 2 and all(
            isinstance(v, int) and not isinstance(v, bool) and 1 <= v <= MAX_SIDE
            for v in size)):
        bad("image_size", f"[width, height] in pixels (1..{MAX_SIDE})")
    if run.get("preprocess", "resize") not in PREPROCESS:
        bad("preprocess", " or ".join(PREPROCESS))
    if not _number_list(run.get("mean"), 3, positive=False):
        bad("mean", "a list of 3 finite numbers")
    if not _number_list(run.get("std"), 3, positive=True):
        bad("std", "a list of 3 positive finite numbers")
    names = run.get("class_names")
    if not (isinstance(names, list) and len(names) >= 2
            and all(isinstance(n, str) and n for n in names) and len(set(names)) == len(names)):
        bad("class_names", "a list of two or more distinct class names")
    if not isinstance(run.get("binary", False), bool):
        bad("binary", "true or false")
    if run.get("binary") and len(names) != 2:
        bad("class_names", "two class names for a binary model")
    config = run.get("config")
    if not (isinstance(config, dict) and all(isinstance(k, str) for k in config)):
        bad("config", "an object of the model's options")
    classes = config.get("num_classes", len(names))
    if isinstance(classes, bool) or classes != len(names):
        bad("config", f"options with num_classes {len(names)} (as many as class_names)")
    if "image_size" in config and config["image_size"] != size:
        bad("config", f"options with image_size {size} (as the key image_size)")
    if not isinstance(run.get("settings", {}), dict):
        bad("settings", "an object of the run's flags")
    return run


def read_run_info(path):
    """run.json at `path`, checked by check_run_info; RunInfoError (one line) otherwise."""
    path = Path(path)
    try:
        size = path.stat().st_size
        if size > MAX_BYTES:
            raise RunInfoError(f"{path}: is {size:,} bytes; a run.json is a few kilobytes")
        run = json.loads(path.read_bytes().decode("utf-8"))
    except FileNotFoundError:
        raise RunInfoError(f"{path}: is missing") from None
    except OSError as exc:
        raise RunInfoError(f"{path} cannot be read ({exc.strerror or exc})") from None
    except (ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError
        raise RunInfoError(f"{path} cannot be read ({type(exc).__name__}: "
                           f"{str(exc)[:100]})") from None
    return check_run_info(run, path)


def build_model(run, where):
    """The model run.json describes (untrained); RunInfoError naming 'config' on failure."""
    from .models import get_model
    config = dict(run["config"])
    config["image_size"] = tuple(run["image_size"])
    try:
        model = get_model(run["model"], **config)
    except (ValueError, TypeError, MemoryError) as exc:
        raise RunInfoError(f"{where}: key 'config' does not build model {run['model']} "
                           f"({str(exc)[:200]})") from None
    if bool(getattr(model, "binary", False)) != bool(run.get("binary", model.binary)):
        raise RunInfoError(f"{where}: key 'binary' is {run.get('binary')}, but model "
                           f"{run['model']} with these classes is "
                           f"{'binary' if model.binary else 'not binary'}")
    return model
