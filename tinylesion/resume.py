"""--resume: what a resumed run takes from the run it continues, may change, and refuses."""
import argparse
import math

import numpy as np

# Flags a resumed run takes from the run it continues; giving another value is refused, since
# the checkpoint cannot go on under it (another model, input size or optimizer state) or the
# data would be split or drawn otherwise than the run was measured on.
FIXED = ("model", "image_size", "optimizer", "seed", "split", "pretrained", "head",
         "freeze_epochs", "unfreeze_blocks", "finetune_lr_factor")
# Flags taken from the run unless given; a value given is honoured from the next epoch on,
# and said in one line.
CHANGEABLE = ("epochs", "lr", "weight_decay", "early_stop", "batch_size", "class_weights",
              "oversample", "augment")


class ResumeError(ValueError):
    """The run in --out cannot be continued with these flags; the message says why."""


def flag(dest):
    """'--image-size' for 'image_size'."""
    return "--" + dest.replace("_", "-")


def show(dest, value):
    """A flag's value as it is typed on the command line."""
    if dest == "image_size":
        return "x".join(map(str, value))
    if dest == "split":
        return "/".join(f"{v * 100:g}" for v in value)
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def given_flags(parser, argv):
    """The dests of the flags present on the command line (argv; sys.argv[1:] when None)."""
    for action in parser._actions:
        action.default = argparse.SUPPRESS
    return set(vars(parser.parse_args(argv)))


def _saved_value(dest, value, parser_types, where):
    """A setting from run.json, checked with the flag's own type (run.json is untrusted)."""
    def bad():
        shown = repr(value)
        raise ResumeError(f"--resume: {where}: key 'settings.{dest}' is not a valid "
                          f"{flag(dest)} value, got {shown[:60]}")
    if dest in ("oversample", "augment"):
        if not isinstance(value, bool):
            bad()
        return value
    if dest in ("weight_decay", "pretrained", "freeze_epochs", "unfreeze_blocks") and \
            value is None:
        return None
    if dest == "image_size":
        text = "x".join(map(str, value)) if isinstance(value, list) else None
    elif dest == "split":
        ok = isinstance(value, list) and all(
            isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
            for v in value)
        text = show(dest, value) if ok else None
    elif isinstance(value, bool) or not isinstance(value, (int, float, str)):
        text = None
    else:
        text = str(value)
    if text is None:
        bad()
    try:
        parsed = parser_types[dest](text) if parser_types.get(dest) else text
    except (argparse.ArgumentTypeError, ValueError, TypeError):
        bad()
    return parsed


def merge_settings(args, run, run_json, given, parser_types, log):
    """Fill the flags not given from the run's settings; refuse a changed FIXED flag; return
    {dest: (was, now)} of the CHANGEABLE flags given with another value."""
    settings = dict(run.get("settings", {}))
    settings["model"], settings["image_size"] = run["model"], run["image_size"]
    changes = {}
    for dest in FIXED + CHANGEABLE:
        if dest not in settings:
            continue
        was = _saved_value(dest, settings[dest], parser_types, run_json)
        now = getattr(args, dest, None)
        if dest not in given:
            setattr(args, dest, was)
        elif was is not None and now != was and not (
                isinstance(now, float) and isinstance(was, float) and math.isclose(now, was)):
            if dest in FIXED:
                raise ResumeError(
                    f"--resume: the run in {run_json.parent} was trained with {flag(dest)} "
                    f"{show(dest, was)}, not {show(dest, now)}; give the same {flag(dest)}, or "
                    "start a new run (without --resume)")
            if dest not in ("lr", "weight_decay"):  # compared with the checkpoint's instead
                changes[dest] = (was, now)
    if "data" not in given and settings.get("synthetic") is False:
        data = settings.get("data")
        if not isinstance(data, str) or not data:
            raise ResumeError(f"--resume: {run_json}: key 'settings.data' is not a folder; "
                              "give --data")
        args.data = data
    return changes


def check_classes(run, run_json, classes):
    """Refuse data whose classes are not those the run was trained on."""
    if run["class_names"] != list(classes):
        raise ResumeError(f"--resume: the run in {run_json.parent} was trained on classes "
                          f"{', '.join(run['class_names'])}; --data gives {', '.join(classes)}")


def optimizer_override(args, given, ck, changes):
    """The hyper-parameters to set after the checkpoint's optimizer state is loaded: the
    --lr and --weight-decay given, where they differ from the checkpoint's."""
    group = ck["optimizer"]["param_groups"][0] if ck["optimizer"]["param_groups"] else {}
    override = {}
    for dest, key in (("lr", "lr"), ("weight_decay", "weight_decay")):
        if dest in given and getattr(args, dest) is not None:
            now, was = float(getattr(args, dest)), group.get(key)
            if not isinstance(was, (int, float)) or not math.isclose(now, was):
                override[key] = now
                changes[dest] = (was, now)
    return override


def describe_changes(changes, epoch, ranks=(1, 1), batch_size=None):
    """One line naming what a resumed run changes, or None.

    ranks: (the checkpoint's number of ranks, this run's); batch_size: this run's per-rank
    --batch-size. With --distributed the batch that matters is the global one (per-rank batch
    x ranks): a run resumed on other ranks at the same global batch repeats the original."""
    changes = dict(changes)
    said = []
    subtle = set()
    was_ranks, now_ranks = ranks
    if was_ranks != now_ranks or (now_ranks > 1 and "batch_size" in changes):
        was, now = changes.pop("batch_size", (batch_size, batch_size))
        if was is not None and now is not None:
            said.append(f"--batch-size {now} per rank on {now_ranks} rank(s), "
                        f"{now * now_ranks} per step (was {was} on {was_ranks}: "
                        f"{was * was_ranks} per step)")
            if was * was_ranks != now * now_ranks:
                subtle.add("batch_size")
    said = [f"{flag(d)} {show(d, now)} (was {show(d, was) if was is not None else '-'})"
            for d, (was, now) in changes.items()] + said
    if not said:
        return None
    subtle |= set(changes) & {"batch_size", "class_weights", "oversample", "augment"}
    return (f"resume: from epoch {epoch + 1} on, {', '.join(said)}" + (
        "; the resumed run will not repeat an uninterrupted one" if subtle else ""))


class Resumed:
    """What --resume read and checked: the run.json, the checkpoint and the flags changed."""

    def __init__(self, folder, args, given, types, log):
        from .io import CheckpointError
        from .runinfo import RunInfoError, read_run_info
        from .train import check_checkpoint, load_checkpoint
        folder.check_staged()
        source = folder.resume_source()
        self.from_staging = source != folder.path
        self.checkpoint = source / "checkpoint.npz"
        self.run_json = source / "run.json"
        if not self.checkpoint.is_file():
            raise ResumeError(f"--resume: no checkpoint at {folder.path / 'checkpoint.npz'}")
        if not self.run_json.is_file():
            raise ResumeError(f"--resume: cannot continue from {self.checkpoint}: run.json is "
                              "missing beside it")
        try:
            self.run = read_run_info(self.run_json)
        except RunInfoError as exc:
            raise ResumeError(f"--resume: {exc}") from None
        self.given = given
        self.changes = merge_settings(args, self.run, self.run_json, given, types, log)
        try:
            self.ck = check_checkpoint(load_checkpoint(self.checkpoint), self.checkpoint)
        except (CheckpointError, OSError) as exc:
            self.refuse(exc)
        self.epoch = self.ck["epoch"]
        ranks = self.ck.get("world_size", 1)
        if isinstance(ranks, bool) or not isinstance(ranks, (int, np.integer)) or ranks < 1:
            self.refuse(f"key 'world_size' is not a number of ranks, got {str(ranks)[:40]!r}")
        self.ranks = int(ranks)   # the number of ranks that wrote the checkpoint

    def refuse(self, exc):
        text = str(exc)
        if text.startswith(str(self.checkpoint)):
            text = text[len(str(self.checkpoint)):].lstrip(": ")
        raise ResumeError(f"--resume: cannot continue from {self.checkpoint}: {text}") from None

    def check(self, classes, model, optimizer, scheduler, args):
        """Refuse other classes, and a model or optimizer the checkpoint does not fit;
        return the optimizer hyper-parameters to set after its state is loaded."""
        check_classes(self.run, self.run_json, classes)
        try:
            if self.ck.get("best") is not None:  # restored at the end: checked now
                model.load_state_dict(self.ck["best"])
            model.load_state_dict(self.ck["model"])
            optimizer.load_state_dict(self.ck["optimizer"])
            if scheduler is not None and self.ck.get("scheduler") is not None:
                _check_kinds(scheduler.state_dict(), self.ck["scheduler"], "scheduler")
                scheduler.load_state_dict(self.ck["scheduler"])
        except (ValueError, KeyError, TypeError, RuntimeError) as exc:
            self.refuse(f"{exc} (was it written with another --optimizer?)"
                        if "optimizer" in str(exc) else exc)
        return optimizer_override(args, self.given, self.ck, self.changes)


def _number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _check_kinds(fresh, saved, where):
    """Raise ValueError naming the first entry of `saved` (a state read from a file) whose
    kind differs from `fresh` (the same object's own state): numbers, text, lists, dicts."""
    if isinstance(fresh, dict):
        if not isinstance(saved, dict):
            raise ValueError(f"entry '{where}' must be a dict")
        for key in fresh:
            if key in saved:
                _check_kinds(fresh[key], saved[key], f"{where}.{key}")
    elif isinstance(fresh, (list, tuple)):
        if not isinstance(saved, (list, tuple)) or len(saved) != len(fresh):
            raise ValueError(f"entry '{where}' must be a list of {len(fresh)}")
        for i, (a, b) in enumerate(zip(fresh, saved)):
            _check_kinds(a, b, f"{where}[{i}]")
    elif _number(fresh) or fresh is None:
        if not (_number(saved) or saved is None) or (
                _number(saved) and math.isnan(saved)):
            raise ValueError(f"entry '{where}' must be a number, got {str(saved)[:40]!r}")
    elif type(saved) is not type(fresh):
        raise ValueError(f"entry '{where}' must be a {type(fresh).__name__}, got "
                         f"{str(saved)[:40]!r}")

