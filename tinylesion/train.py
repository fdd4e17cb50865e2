"""The training loop: fit with plateau LR, early stopping, atomic checkpoints and resume."""
import math
import sys
import time

import numpy as np

from kernels import threads

from . import backend, row_parallel
from .checkpoints import (HISTORY_KEYS, check_checkpoint, load_checkpoint,  # noqa: F401
                          save_checkpoint)
from .fit_ranks import FitRanks
from .metrics import macro_f1
from .nn import functional as F
from .tensor import Tensor, no_grad


class TrainingError(RuntimeError):
    """Training cannot go on (e.g. the loss became NaN or infinite); the message says where."""


# ---------------------------------------------------------------------------------------------
# Batches: uint8 (B, 3, H, W) from the loader, to the device, normalised there
# ---------------------------------------------------------------------------------------------

def _mean_std(mean, std):
    """mean/std defaulting to 0 and 1 (the images then only scaled to [0, 1])."""
    return ((0.0, 0.0, 0.0) if mean is None else mean), ((1.0, 1.0, 1.0) if std is None else std)


def prepare_batch(images, device, mean=None, std=None):
    """A uint8 (B, 3, H, W) host batch as a normalised float32 Tensor on `device`."""
    from .data import normalize
    device = backend.as_device(device)
    mean, std = _mean_std(mean, std)
    x = backend.to_device(np.ascontiguousarray(images), device)
    return Tensor(normalize(x, mean, std, xp=device.xp))


def device_batches(loader, device, mean=None, std=None):
    """The loader's batches as (normalised float32 images, int64 labels) on `device`; the
    next batch is moved and normalised in a background thread (data.DeviceLoader)."""
    from .data.loader import DeviceLoader
    mean, std = _mean_std(mean, std)
    return DeviceLoader(loader, device, mean, std)


def _check_labels(model, loader, which):
    """Labels outside the model's classes, found on the host before training starts (on the
    device the loss only turns NaN there, with no word of why)."""
    num_classes = getattr(model, "num_classes", None)
    dataset = getattr(loader, "dataset", None)
    targets = getattr(dataset, "targets", None)
    if num_classes is None or targets is None or len(targets) == 0:
        return
    targets = np.asarray(targets)
    low, high = int(targets.min()), int(targets.max())
    if low < 0 or high >= num_classes:
        raise ValueError(f"the {which} data has labels {low}..{high}, but the model "
                         f"{getattr(model, 'name', '')} has {num_classes} classes "
                         f"(labels 0..{num_classes - 1})")


def probabilities(logits, binary):
    """Class scores from logits: sigmoid of the single unit (N,) when binary, else softmax."""
    if binary:
        return F.sigmoid(logits.reshape(-1))
    return F.softmax(logits, axis=1)


def _loss(model, logits, labels, class_weights, reduction="mean"):
    """Class-weighted cross-entropy, or binary cross-entropy with pos_weight = w[1]/w[0]."""
    if getattr(model, "binary", False):
        target = labels.reshape(-1, 1).astype(logits.dtype)
        pos_weight = None
        if class_weights is not None:  # computed where the logits are: no host round trip
            w = backend.to_device(class_weights, backend.device_of(logits.array))
            pos_weight = (w[1:2].astype(np.float64) / w[0:1]).astype(np.float32)
        return F.binary_cross_entropy_with_logits(logits.reshape(-1, 1), target,
                                                  pos_weight=pos_weight, reduction=reduction)
    return F.cross_entropy(logits, labels, weight=class_weights, reduction=reduction)


def _loss_sum(model, logits, labels, class_weights):
    """(summed loss, its weight): _loss's mean is their ratio. Ranks reduce both, so that the
    loss is the weighted mean over the global batch (DistributedOptimizer.synchronize)."""
    loss = _loss(model, logits, labels, class_weights, reduction="sum")
    if class_weights is None or getattr(model, "binary", False):
        return loss, len(labels)
    return loss, float(class_weights[labels].sum())


def _world():
    """The World of distributed.init() when this is a run over several ranks, else None."""
    from . import distributed
    world = distributed.world()
    return world if world is not None and world.size > 1 else None


def _predicted(model, logits):
    """Predicted class indices on the device."""
    if getattr(model, "binary", False):
        return (logits.array.reshape(-1) >= 0).astype(np.int64)
    return logits.array.argmax(axis=1)


def _progress(batches, total, desc, enabled):
    """A tqdm bar over the batches (rate and ETA), or the batches themselves when disabled or
    when stderr is not a terminal."""
    if not enabled or not sys.stderr.isatty():
        return batches
    from tqdm import tqdm
    return tqdm(batches, desc=desc, total=total, unit="batch", leave=False, dynamic_ncols=True)


# ---------------------------------------------------------------------------------------------
# Evaluation
# ---------------------------------------------------------------------------------------------

def _run_eval(model, loader, device, mean, std, class_weights=None):
    """(y_true, y_score, mean loss) over the loader, in eval mode and without a graph."""
    device = backend.as_device(device)
    was_training = model.training
    model.eval()
    y_true, y_score, total, n, plain, count = [], [], 0.0, 0.0, 0.0, 0
    binary = getattr(model, "binary", False)
    weighted = class_weights is not None and not binary
    world = _world()
    if world is not None:  # each rank evaluates its shard; the results are gathered below
        from .distributed import shard_loader
        shard_loader(loader, world, train=False)
    # NOTE: a split layer's forward is collective: each rank makes the most calls any makes
    padding = row_parallel.EvaluationPadding(model, world, len(loader), device) \
        if world is not None and row_parallel.split_layers(model) else None
    source = iter(device_batches(loader, device, mean, std))
    try:
        with no_grad():
            for images, y in source:
                if padding is not None:
                    padding.before(images)
                logits = model(Tensor(images))
                # NOTE: the class-weighted mean over the whole set is sum(w_y l) / sum(w_y):
                # each batch's weighted mean counts by its weight sum, and a batch of classes
                # of weight 0 (absent from training) counts for nothing, instead of 0/0 = NaN
                share = float(class_weights[y].sum()) if weighted else float(len(y))
                if share > 0:
                    total += float(_loss(model, logits, y, class_weights).item()) * share
                    n += share
                # the unweighted mean, kept while no weight is seen (by any rank: on each batch)
                if weighted and (n == 0 or world is not None):
                    plain += float(_loss(model, logits, y, None).item()) * len(y)
                    count += len(y)
                y_true.append(backend.to_numpy(y).astype(np.int64))
                y_score.append(probabilities(logits, binary).numpy())
            if padding is not None:   # an empty shard's scores shaped as the padding's
                padded = padding.finish()
                if not y_score and padded is not None:
                    y_score.append(probabilities(padded, binary).numpy()[:0])
    finally:
        source.close()
        model.train(was_training)
    if world is not None:  # as one process: the shards' rows back in order, the sums reduced
        empty = ((0,) if binary else (0, getattr(model, "num_classes", 0)), np.float32)
        y_true = world.gather_shards(np.concatenate(y_true) if y_true
                                     else np.zeros(0, np.int64))
        y_score = world.gather_shards(np.concatenate(y_score) if y_score else np.zeros(*empty))
        total, n, plain, count = world.sum(total, n, plain, count)
        y_true, y_score = [y_true], [y_score]
    if not y_true or not len(y_true[0]):
        raise ValueError("evaluation loader yielded no batches (empty dataset?)")
    loss = total / n if n > 0 else plain / max(count, 1)
    return np.concatenate(y_true), np.concatenate(y_score), loss


def evaluate_model(model, loader, device="cpu", mean=None, std=None):
    """(y_true, y_score) of the model over a loader: y_score is (N,) positive-class
    probabilities for a binary model, else (N, K) softmax probabilities."""
    y_true, y_score, _ = _run_eval(model, loader, device, mean, std)
    return y_true, y_score


def _copy_state(model):
    """A copy of the model's state_dict arrays (on their device); split Linear weights
    gathered whole (collective)."""
    if row_parallel.split_layers(model):
        return {k: v.copy() for k, v in row_parallel.whole_state_dict(model).items()}
    return {k: v.copy() for k, v in model.state_dict().items()}


def _lr(optimizer):
    groups = getattr(optimizer, "param_groups", None)
    return float(groups[0]["lr"]) if groups else float(getattr(optimizer, "lr", float("nan")))


def _set_epoch(loader, epoch):
    if hasattr(loader, "set_epoch"):
        loader.set_epoch(epoch)


# ---------------------------------------------------------------------------------------------
# fit
# ---------------------------------------------------------------------------------------------


def _apply_override(optimizer, override):
    """Set the hyper-parameters a resumed run changes on every param group; a new lr scales
    every group's by the same factor (new lr / the first group's), so that ratios between
    groups (fine-tuning's backbone at a fraction of the head's rate) are kept."""
    override = dict(override)
    lr = override.pop("lr", None)
    groups = optimizer.param_groups
    if lr is not None and groups:
        base = groups[0]["lr"]
        for group in groups:
            group["lr"] = lr * group["lr"] / base if base else lr
    for group in groups:
        group.update(override)

def fit(model, optimizer, train_loader, val_loader=None, epochs=10, device="cpu",
        class_weights=None, mean=None, std=None, scheduler=None, early_stopping=10,
        checkpoint_path=None, resume=False, progress=True, log=print, on_epoch_end=None,
        override=None, phases=None):
    """Train `model` for `epochs` epochs and return its history (a dict of per-epoch lists).

    Each batch is moved to `device` and normalised there with `mean`/`std` (per channel, in
    [0, 1] scale). A binary model (`model.binary`) is trained with binary cross-entropy
    (pos_weight = w[1]/w[0] from `class_weights`), others with class-weighted cross-entropy.
    After each epoch: validation (val_loss, val_accuracy, val_macro_f1), `scheduler.step
    (val_loss)`, early stopping on val_loss (patience `early_stopping`, None/0 for none; the
    best weights are restored at the end), an atomic checkpoint at `checkpoint_path`, then
    `on_epoch_end(epoch, history)`. With `resume=True` training continues from the
    checkpoint at `checkpoint_path` (or from `resume` itself, a checkpoint already read with
    load_checkpoint) and ends with the same weights as an uninterrupted run; `override`, a
    dict of optimizer hyper-parameters (e.g. {"lr": 0.01}), is then set on every parameter
    group. `phases` (e.g. finetune.TwoPhase) is told `before_epoch(epoch)` (0-based) before
    each epoch trains, and its state_dict() is kept in the checkpoint. A checkpoint of a run
    that stopped early goes on only when `early_stopping` is now 0 or above its count of
    epochs without improvement, as a run with that patience would.

    A NaN or infinite training loss, validation loss or weight stops training: the model gets
    the weights of the best epoch with finite losses (if any), no checkpoint is written for
    the diverged epoch, and TrainingError says where; its attributes `best_epoch` (1-based,
    or None), `best_score`, `checkpoint_epoch` (of the last checkpoint written, all finite,
    or None) and `history` tell the caller what is left.

    Training asks the C library to keep freed memory for reuse (kernels.threads.
    keep_freed_memory, as the engine's first large op does in any loop; not with
    TINYLESION_KEEP_FREED_MEMORY=0): every step allocates the same large arrays again, and
    fresh pages cost more to fault in than the step's arithmetic on them (a third of a
    melanoma_cnn step).
    """
    threads.apply_memory_policy()
    device = backend.as_device(device)
    _check_labels(model, train_loader, "training")
    if val_loader is not None:
        _check_labels(model, val_loader, "validation")
    if class_weights is not None:
        class_weights = backend.to_device(np.asarray(backend.to_numpy(class_weights),
                                                     np.float32), device)
    history = {k: [] for k in HISTORY_KEYS}
    best_score, best_state, best_epoch, wait, start = math.inf, None, None, 0, 0
    saved_epoch = None
    patience = int(early_stopping) if early_stopping else 0
    seed = getattr(train_loader, "seed", None)
    ranks = FitRanks(_world())   # one process, or one rank of several (fit_ranks.py)
    if resume is not False and resume is not None:
        if isinstance(resume, dict):
            ck = check_checkpoint(resume, checkpoint_path or "the checkpoint")
        elif checkpoint_path is None:
            raise ValueError("resume=True needs a checkpoint_path")
        else:
            ck = check_checkpoint(load_checkpoint(checkpoint_path), checkpoint_path)
        model.load_state_dict(ck["model"])
        optimizer.load_state_dict(_to_device_tree(ck["optimizer"], device))
        if scheduler is not None and ck.get("scheduler") is not None:
            scheduler.load_state_dict(ck["scheduler"])
        if phases is not None and ck.get("finetune") is not None:
            phases.load_state_dict(ck["finetune"])
        _apply_override(optimizer, override or {})
        history = {k: list(ck["history"].get(k, [])) for k in HISTORY_KEYS}
        best_score, wait, start = ck["best_score"], ck["wait"], ck["epoch"]
        best_epoch, saved_epoch = ck.get("best_epoch"), start
        best_state = ({k: backend.to_device(v, device) for k, v in ck["best"].items()}
                      if ck.get("best") is not None else None)
        backend.set_rng_state(ck["rng"])
        if ck.get("loader_seed") is not None and seed is not None and ck["loader_seed"] != seed:
            log(f"warning: the checkpoint's loader seed {ck['loader_seed']} differs from this "
                f"loader's {seed}: the resumed run will not repeat the original")
        if ck.get("world_size", 1) != ranks.size:
            log(f"note: the checkpoint was written by {ck.get('world_size', 1)} rank(s), this "
                f"run has {ranks.size}: the epochs go on in the same global order, and repeat "
                f"the original run when ranks x batch size is the same")
        source = "the checkpoint" if isinstance(resume, dict) else checkpoint_path
        if ck.get("stopped") and patience and wait >= patience:
            log(f"{source}: training had already stopped early at epoch {start} ({wait} "
                f"epochs without improvement); a larger --early-stop (or 0) trains on")
            start = epochs
        elif ck.get("stopped"):  # as a run with this patience would have gone on
            log(f"{source}: training had stopped early at epoch {start} ({wait} epochs "
                f"without improvement); with a patience of {patience or 'none'} it goes on"
                + ("" if start < epochs else f", given more than {start} epochs"))
        else:
            log(f"resuming from {source} after epoch {start}")

    world = ranks.world
    optimizer, log = ranks.prepare(model, optimizer, train_loader, val_loader, log)
    progress = progress and ranks.is_main

    def diverged(what):
        """Keep the best finite epoch's weights and raise TrainingError saying so."""
        ranks.unsplit(model, optimizer)  # every rank diverges together (global checks)
        if best_state is not None:
            model.load_state_dict(best_state)
        kept = (f"; the weights kept are epoch {best_epoch}'s (loss {best_score:.4f}), the "
                "best with finite losses" if best_state is not None and best_epoch else
                "; the weights kept are those of the best epoch with finite losses"
                if best_state is not None else "")
        where = (f"; the last good checkpoint (after epoch {saved_epoch}) is {checkpoint_path}"
                 if checkpoint_path is not None and saved_epoch else "")
        error = TrainingError(f"{what}: training stopped (try a smaller --lr){kept}{where}")
        error.best_epoch = best_epoch if best_state is not None else None
        error.best_score = best_score if best_state is not None else None
        error.checkpoint_epoch = saved_epoch if checkpoint_path is not None else None
        error.history = history
        return error

    stopped = False
    for epoch in range(start, epochs):
        t0 = time.perf_counter()
        if phases is not None:
            phases.before_epoch(epoch)
        model.train()
        _set_epoch(train_loader, epoch)
        total, correct, n = 0.0, 0, 0
        source = iter(device_batches(train_loader, device, mean, std))
        bar = _progress(source, len(train_loader), f"epoch {epoch + 1}/{epochs}", progress)
        bad_batch = None
        try:
            # NOTE: a diverging run overflows to inf/NaN inside the ops; the finite-loss
            # check below stops it with one message, so NumPy's warnings would only
            # bury that message
            with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
                for b, (images, y) in enumerate(bar):
                    logits = model(Tensor(images))
                    if world is None:
                        loss = _loss(model, logits, y, class_weights)
                        value, count = float(loss.item()), len(y)
                        if not math.isfinite(value):
                            bad_batch = (value, b)
                            break
                        optimizer.zero_grad()
                        loss.backward()
                    else:
                        # NOTE: backward of this rank's summed loss; its weight, value and
                        # count travel with the gradients (one reduction per step), which
                        # come back divided by the global batch's weight: the gradient of
                        # its weighted mean, and its value on every rank
                        local, weight = _loss_sum(model, logits, y, class_weights)
                        optimizer.zero_grad()
                        # (with split Linear layers: their gradients divided in backward)
                        optimizer.scale_split_gradients(weight)
                        local.backward()
                        value, count = optimizer.synchronize(
                            loss=(weight, float(local.item()), len(y)))
                        if not math.isfinite(value):   # every rank alike: no step
                            bad_batch = (value, b)
                            break
                    optimizer.step()
                    total += value * count
                    correct += (_predicted(model, logits) == y).sum()  # on the device: no wait
                    n += count
                    if bar is not source:
                        bar.set_postfix(loss=f"{total / n:.4f}", acc=f"{int(correct) / n:.3f}"
                                        if world is None else "")
        finally:  # stop the loader's threads now, also on an error or Ctrl-C
            if bar is not source:
                bar.close()
            source.close()
        if bad_batch is not None:
            raise diverged(f"the training loss became {bad_batch[0]} at epoch {epoch + 1}, "
                           f"batch {bad_batch[1] + 1} of {len(train_loader)}")
        if n == 0:
            raise TrainingError(f"the training loader yielded no batches at epoch {epoch + 1}")
        history["loss"].append(total / n)
        history["lr"].append(_lr(optimizer))
        if val_loader is not None:
            with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
                y_true, y_score, val_loss = _run_eval(model, val_loader, device, mean, std,
                                                      class_weights)
            if not math.isfinite(val_loss):
                _drop_after(history, len(history["val_loss"]))
                raise diverged(f"the validation loss became {val_loss} at epoch {epoch + 1}")
            y_pred = (y_score >= 0.5).astype(np.int64) if y_score.ndim == 1 \
                else y_score.argmax(axis=1)
            history["val_loss"].append(val_loss)
            history["val_accuracy"].append(float(np.mean(y_pred == y_true)))
            history["val_macro_f1"].append(macro_f1(y_true, y_pred))
            monitor = val_loss
        else:
            for k in ("val_loss", "val_accuracy", "val_macro_f1"):
                history[k].append(None)
            monitor = history["loss"][-1]
        # after validation too (a model may change its weights there): one copy per epoch
        correct, name = ranks.count_and_non_finite(model, correct)
        if name is not None:
            _drop_after(history, len(history["loss"]) - 1)
            raise diverged(f"weight {name} became NaN or infinite at epoch {epoch + 1}")
        history["accuracy"].append(correct / n)
        if scheduler is not None:
            scheduler.step(monitor)
        if monitor < best_score:
            best_score, best_state, best_epoch, wait = monitor, _copy_state(model), epoch + 1, 0
        else:
            wait += 1
            stopped = bool(patience) and wait >= patience
        log(_epoch_line(epoch, epochs, history, time.perf_counter() - t0))
        if checkpoint_path is not None:   # collective with split layers or a sharded state
            optimizer_state = ranks.optimizer_state(optimizer)   # in this order on every rank
            model_state = ranks.model_state(model)
        if checkpoint_path is not None and ranks.is_main:
            save_checkpoint({
                "model": model_state, "optimizer": optimizer_state,
                "scheduler": scheduler.state_dict() if scheduler is not None else None,
                "epoch": epoch + 1, "history": history, "best": best_state,
                "best_score": best_score, "wait": wait, "stopped": stopped,
                "rng": backend.get_rng_state(), "loader_seed": seed, "best_epoch": best_epoch,
                "world_size": ranks.size,
                "finetune": phases.state_dict() if phases is not None else None,
            }, checkpoint_path)
        if checkpoint_path is not None:  # on every rank (rank 0 writes it)
            saved_epoch = epoch + 1
        if on_epoch_end is not None:
            on_epoch_end(epoch, history)
        if stopped:
            log(f"early stopping: no val_loss improvement for {patience} epochs")
            break
    ranks.unsplit(model, optimizer)   # a whole model again for what follows fit
    if best_state is not None and patience:
        model.load_state_dict(best_state)
        log(f"restored the weights of the best epoch (loss {best_score:.4f})")
    return history


def _drop_after(history, length):
    """Keep the first `length` entries of each series (drop those of a diverged epoch)."""
    for values in history.values():
        del values[length:]


def _to_device_tree(obj, device):
    """Every array in a nested dict/list moved to `device`."""
    if isinstance(obj, np.ndarray):
        return backend.to_device(obj, device)
    if isinstance(obj, dict):
        return {k: _to_device_tree(v, device) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_to_device_tree(v, device) for v in obj)
    return obj


def _epoch_line(epoch, epochs, history, seconds):
    """One log line summarising an epoch."""
    parts = [f"epoch {epoch + 1}/{epochs}", f"loss {history['loss'][-1]:.4f}",
             f"acc {history['accuracy'][-1]:.3f}"]
    if history["val_loss"][-1] is not None:
        parts += [f"val_loss {history['val_loss'][-1]:.4f}",
                  f"val_acc {history['val_accuracy'][-1]:.3f}",
                  f"val_macro_f1 {history['val_macro_f1'][-1]:.3f}"]
    parts += [f"lr {history['lr'][-1]:.2e}", f"{seconds:.1f}s"]
    return "  ".join(parts)


def write_history_csv(history, path):
    """history as a CSV file: one row per epoch, one column per series (written whole or
    not at all)."""
    from .runfolder import write_text_atomic
    keys = [k for k in HISTORY_KEYS if k in history]
    n = max((len(history[k]) for k in keys), default=0)
    lines = ["epoch," + ",".join(keys)]
    for i in range(n):
        row = [history[k][i] if i < len(history[k]) else None for k in keys]
        lines.append(f"{i + 1}," + ",".join("" if v is None else repr(float(v)) for v in row))
    write_text_atomic(path, "\n".join(lines) + "\n")
