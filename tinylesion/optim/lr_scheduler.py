"""Learning-rate schedules with PyTorch's names, arguments and rules (recursive forms included)."""
import bisect
import math
import numbers
import types

from .optimizer import Optimizer, _check


class _Scheduler:
    """Shared state_dict/load_state_dict: every attribute but the optimizer, JSON-able."""

    _unsaved = ("optimizer",)  # attributes that subclasses save their own way, or not at all

    def state_dict(self):
        """The scheduler's state (numbers and lists; tl.save stores it as JSON)."""
        return {k: (list(v) if isinstance(v, tuple) else v)
                for k, v in self.__dict__.items() if k not in self._unsaved}

    def load_state_dict(self, state_dict):
        """Restore a state_dict, naming any missing or unexpected entry."""
        own = set(self.state_dict())
        missing, unknown = sorted(own - set(state_dict)), sorted(set(state_dict) - own)
        if missing or unknown:
            raise ValueError(f"{type(self).__name__} state_dict: missing entries {missing}, "
                             f"unexpected entries {unknown}")
        self.__dict__.update({k: (list(v) if isinstance(v, tuple) else v)
                              for k, v in state_dict.items() if k not in self._unsaved})

    def get_last_lr(self):
        """The learning rates of the parameter groups after the last step."""
        return list(self._last_lr)


def _check_optimizer(optimizer):
    if not isinstance(optimizer, Optimizer):
        raise TypeError(f"{type(optimizer).__name__} is not an Optimizer")


class LRScheduler(_Scheduler):
    """Base of epoch-indexed schedules: call step() once per epoch, after optimizer.step()."""

    def __init__(self, optimizer, last_epoch=-1):
        _check_optimizer(optimizer)
        self.optimizer = optimizer
        for i, group in enumerate(optimizer.param_groups):
            if last_epoch == -1:
                group.setdefault("initial_lr", group["lr"])
            elif "initial_lr" not in group:
                raise KeyError(f"param 'initial_lr' is not specified in param_groups[{i}] when "
                               "resuming a scheduler with last_epoch >= 0 (load the "
                               "optimizer's state_dict first)")
        self.base_lrs = [group["initial_lr"] for group in optimizer.param_groups]
        self.last_epoch = last_epoch
        self._initial_step()

    def _initial_step(self):
        """The constructor's step: last_epoch -1 → 0 (or a resumed epoch + 1)."""
        self._step_count = 0
        self._is_initial = True
        self.step()
        self._is_initial = False

    def get_lr(self):
        """The learning rates for the new value of last_epoch."""
        raise NotImplementedError

    def step(self):
        """Advance one epoch and set every group's learning rate."""
        self._step_count += 1
        self._update_lr()

    def _update_lr(self, epoch=None):
        """Set the learning rates for last_epoch + 1, or for `epoch` by the closed form
        (SequentialLR restarts a schedule at epoch 0 this way)."""
        if epoch is None:
            self.last_epoch += 1
            lrs = self.get_lr()
        else:
            self.last_epoch = epoch
            closed_form = getattr(self, "_get_closed_form_lr", self.get_lr)
            lrs = closed_form()
        self._set_lrs(lrs)

    def _set_lrs(self, lrs):
        for group, lr in zip(self.optimizer.param_groups, lrs):
            group["lr"] = lr
        self._last_lr = [group["lr"] for group in self.optimizer.param_groups]

    def _group_lrs(self):
        return [group["lr"] for group in self.optimizer.param_groups]


class StepLR(LRScheduler):
    """Multiply the learning rate by gamma every step_size epochs."""

    def __init__(self, optimizer, step_size, gamma=0.1, last_epoch=-1):
        if int(step_size) != step_size or step_size < 1:
            raise ValueError(f"Invalid step_size value: step_size={step_size!r} "
                             "(must be a positive integer)")
        self.step_size, self.gamma = int(step_size), gamma
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        lrs = [group["lr"] for group in self.optimizer.param_groups]
        if self.last_epoch == 0 or self.last_epoch % self.step_size != 0:
            return lrs
        return [lr * self.gamma for lr in lrs]

    def _get_closed_form_lr(self):
        return [base * self.gamma ** (self.last_epoch // self.step_size)
                for base in self.base_lrs]


class CosineAnnealingLR(LRScheduler):
    """Cosine annealing from the initial learning rate to eta_min over T_max epochs."""

    def __init__(self, optimizer, T_max, eta_min=0.0, last_epoch=-1):
        if T_max <= 0:
            raise ValueError(f"Invalid T_max value: T_max={T_max!r} (must be > 0)")
        self.T_max, self.eta_min = T_max, eta_min
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        # NOTE: PyTorch's recursive form: each lr is the previous one scaled by the ratio of
        # consecutive cosine factors, so that changes made from outside are kept.
        groups, t, T, eta = self.optimizer.param_groups, self.last_epoch, self.T_max, self.eta_min
        if self._is_initial:
            return [group["lr"] for group in groups]
        if self._step_count == 1 and t > 0:
            return [eta + (base - eta) * (1 + math.cos(t * math.pi / T)) / 2
                    for base in self.base_lrs]
        if (t - 1 - T) % (2 * T) == 0:
            return [group["lr"] + (base - eta) * (1 - math.cos(math.pi / T)) / 2
                    for base, group in zip(self.base_lrs, groups)]
        return [(1 + math.cos(math.pi * t / T)) / (1 + math.cos(math.pi * (t - 1) / T))
                * (group["lr"] - eta) + eta for group in groups]

    def _get_closed_form_lr(self):
        return [self.eta_min + (base - self.eta_min)
                * (1 + math.cos(math.pi * self.last_epoch / self.T_max)) / 2
                for base in self.base_lrs]


def _is_int(value):
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _per_group(name, value, optimizer):
    """One value per parameter group, from one value or a list of them (as PyTorch)."""
    n_groups = len(optimizer.param_groups)
    if isinstance(value, (list, tuple)):
        if len(value) != n_groups:
            raise ValueError(f"{name} must have one value per parameter group: expected "
                             f"{n_groups}, got {len(value)}")
        return list(value)
    return [value] * n_groups


def _lambdas(lr_lambda, optimizer):
    lambdas = _per_group("lr_lambda", lr_lambda, optimizer)
    for fn in lambdas:
        if not callable(fn):
            raise TypeError(f"lr_lambda should be a function, but got {type(fn).__name__}")
    return lambdas


class _LambdaState:
    """Schedules holding functions, one per group: in state_dict a plain function is not
    saved (None), a callable object is saved by its attributes (PyTorch's rule)."""

    _unsaved = ("optimizer", "lr_lambdas")

    def __init__(self, optimizer, lr_lambda, last_epoch=-1):
        _check_optimizer(optimizer)
        self.lr_lambdas = _lambdas(lr_lambda, optimizer)
        super().__init__(optimizer, last_epoch)

    def state_dict(self):
        state = super().state_dict()
        state["lr_lambdas"] = [None if isinstance(fn, types.FunctionType) else dict(fn.__dict__)
                               for fn in self.lr_lambdas]
        return state

    def load_state_dict(self, state_dict):
        super().load_state_dict(state_dict)
        for fn, saved in zip(self.lr_lambdas, state_dict["lr_lambdas"]):
            if saved is not None:
                fn.__dict__.update(saved)


class LambdaLR(_LambdaState, LRScheduler):
    """lr = initial lr · lr_lambda(epoch); one function, or a list with one per group."""

    def get_lr(self):
        return [base * fn(self.last_epoch) for fn, base in zip(self.lr_lambdas, self.base_lrs)]


class MultiplicativeLR(_LambdaState, LRScheduler):
    """Multiply the learning rate by lr_lambda(epoch) at every epoch after the first."""

    def get_lr(self):
        if self._is_initial:
            return self._group_lrs()
        return [lr * fn(self.last_epoch) for fn, lr in zip(self.lr_lambdas, self._group_lrs())]


class MultiStepLR(LRScheduler):
    """Multiply the learning rate by gamma at each milestone epoch (twice if listed twice)."""

    def __init__(self, optimizer, milestones, gamma=0.1, last_epoch=-1):
        milestones = list(milestones)
        if not all(_is_int(m) for m in milestones):
            raise ValueError(f"Invalid milestones value: milestones={milestones!r} "
                             "(must be integers)")
        self.milestones, self.gamma = sorted(int(m) for m in milestones), gamma
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        count = self.milestones.count(self.last_epoch)
        if count == 0:
            return self._group_lrs()
        return [lr * self.gamma ** count for lr in self._group_lrs()]

    def _get_closed_form_lr(self):
        passed = bisect.bisect_right(self.milestones, self.last_epoch)
        return [base * self.gamma ** passed for base in self.base_lrs]


class ExponentialLR(LRScheduler):
    """Multiply the learning rate by gamma every epoch."""

    def __init__(self, optimizer, gamma, last_epoch=-1):
        self.gamma = gamma
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        if self._is_initial:
            return self._group_lrs()
        return [lr * self.gamma for lr in self._group_lrs()]

    def _get_closed_form_lr(self):
        return [base * self.gamma ** self.last_epoch for base in self.base_lrs]


class ConstantLR(LRScheduler):
    """Scale the learning rate by `factor` for the first total_iters epochs."""

    def __init__(self, optimizer, factor=1.0 / 3, total_iters=5, last_epoch=-1):
        if not 0 <= factor <= 1.0:
            raise ValueError(f"Invalid factor value: factor={factor!r} (must be in [0, 1])")
        self.factor, self.total_iters = factor, total_iters
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        if self.last_epoch == 0:
            return [lr * self.factor for lr in self._group_lrs()]
        if self.last_epoch != self.total_iters:
            return self._group_lrs()
        return [lr * (1.0 / self.factor) for lr in self._group_lrs()]

    def _get_closed_form_lr(self):
        scale = self.factor + (self.last_epoch >= self.total_iters) * (1 - self.factor)
        return [base * scale for base in self.base_lrs]


class LinearLR(LRScheduler):
    """Scale the learning rate linearly from start_factor to end_factor over total_iters."""

    def __init__(self, optimizer, start_factor=1.0 / 3, end_factor=1.0, total_iters=5,
                 last_epoch=-1):
        if not 0 < start_factor <= 1.0:
            raise ValueError(f"Invalid start_factor value: start_factor={start_factor!r} "
                             "(must be in (0, 1])")
        if not 0 <= end_factor <= 1.0:
            raise ValueError(f"Invalid end_factor value: end_factor={end_factor!r} "
                             "(must be in [0, 1])")
        self.start_factor, self.end_factor, self.total_iters = start_factor, end_factor, \
            total_iters
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        if self.last_epoch == 0:
            return [lr * self.start_factor for lr in self._group_lrs()]
        if self._is_initial or self.last_epoch > self.total_iters:
            return self._group_lrs()
        # NOTE: the ratio of consecutive factors s + (e − s)·t/T, as PyTorch's recursive form.
        delta = self.end_factor - self.start_factor
        ratio = 1.0 + delta / (self.total_iters * self.start_factor
                               + (self.last_epoch - 1) * delta)
        return [lr * ratio for lr in self._group_lrs()]

    def _get_closed_form_lr(self):
        done = min(self.total_iters, self.last_epoch) / self.total_iters
        return [base * (self.start_factor + (self.end_factor - self.start_factor) * done)
                for base in self.base_lrs]


class SequentialLR(LRScheduler):
    """Run `schedulers` one after the other, switching at each of the `milestones` epochs."""

    def __init__(self, optimizer, schedulers, milestones, last_epoch=-1):
        _check_optimizer(optimizer)
        schedulers, milestones = list(schedulers), list(milestones)
        if not schedulers:
            raise ValueError("SequentialLR expects at least one scheduler, but got none")
        for i, scheduler in enumerate(schedulers):
            if isinstance(scheduler, ReduceLROnPlateau):
                raise ValueError(f"SequentialLR cannot run ReduceLROnPlateau (index {i}): its "
                                 "step() needs a metric")
            if not isinstance(scheduler, LRScheduler):
                raise TypeError(f"SequentialLR: the scheduler at index {i} is a "
                                f"{type(scheduler).__name__}, not an LRScheduler")
            if scheduler.optimizer is not optimizer:
                raise ValueError(f"SequentialLR expects all schedulers to belong to the same "
                                 f"optimizer, but the one at index {i} "
                                 f"({type(scheduler).__name__}) has another")
        if len(milestones) != len(schedulers) - 1:
            raise ValueError(f"SequentialLR expects one milestone fewer than schedulers, got "
                             f"{len(schedulers)} schedulers and {len(milestones)} milestones")
        self._schedulers, self._milestones = schedulers, milestones
        self.last_epoch, self.optimizer = last_epoch + 1, optimizer
        for group in optimizer.param_groups:  # undo the schedulers' construction steps
            group["lr"] = group["initial_lr"]
        for scheduler in schedulers:
            _undo_step(scheduler)
        first = schedulers[bisect.bisect_right(milestones, 0)]
        first._initial_step()
        self._last_lr = first.get_last_lr()

    _unsaved = ("optimizer", "_schedulers")

    def step(self):
        """Advance one epoch: the current schedule steps, or the next one starts at epoch 0."""
        self.last_epoch += 1
        idx = bisect.bisect_right(self._milestones, self.last_epoch)
        scheduler = self._schedulers[idx]
        if idx > 0 and self._milestones[idx - 1] == self.last_epoch:
            scheduler._update_lr(0)
        else:
            scheduler.step()
        self._last_lr = scheduler.get_last_lr()

    def state_dict(self):
        state = super().state_dict()
        state["_schedulers"] = [s.state_dict() for s in self._schedulers]
        return state

    def load_state_dict(self, state_dict):
        super().load_state_dict(state_dict)
        for scheduler, saved in zip(self._schedulers, state_dict["_schedulers"]):
            scheduler.load_state_dict(saved)


def _undo_step(scheduler):
    """Take back one epoch of a scheduler (and of those it contains)."""
    if hasattr(scheduler, "_schedulers"):
        for inner in scheduler._schedulers:
            _undo_step(inner)
    else:
        scheduler.last_epoch -= 1


class ReduceLROnPlateau(_Scheduler):
    """Multiply the learning rate by `factor` when a metric has stopped improving.

    step(metric) once per epoch: after more than `patience` epochs without an improvement
    (relative or absolute `threshold`), every group's lr becomes max(lr·factor, min_lr),
    then `cooldown` epochs pass before bad epochs count again. Changes smaller than eps are
    skipped.
    """

    def __init__(self, optimizer, mode="min", factor=0.1, patience=10, threshold=1e-4,
                 threshold_mode="rel", cooldown=0, min_lr=0, eps=1e-8):
        _check_optimizer(optimizer)
        if not 0 <= factor < 1.0:
            raise ValueError(f"Invalid factor value: factor={factor!r} (must be in [0, 1))")
        _check("patience", patience, lambda v: v >= 0, "must be >= 0")
        _check("cooldown", cooldown, lambda v: v >= 0, "must be >= 0")
        if mode not in ("min", "max"):
            raise ValueError(f"Invalid mode value: mode={mode!r} (use 'min' or 'max')")
        if threshold_mode not in ("rel", "abs"):
            raise ValueError(f"Invalid threshold_mode value: threshold_mode={threshold_mode!r} "
                             "(use 'rel' or 'abs')")
        self.optimizer = optimizer
        n_groups = len(optimizer.param_groups)
        if isinstance(min_lr, (list, tuple)):
            if len(min_lr) != n_groups:
                raise ValueError(f"expected {n_groups} min_lrs (one per parameter group), "
                                 f"got {len(min_lr)}")
            self.default_min_lr, self.min_lrs = None, list(min_lr)
        else:
            self.default_min_lr, self.min_lrs = min_lr, [min_lr] * n_groups
        self.factor, self.patience, self.cooldown, self.eps = factor, patience, cooldown, eps
        self.mode, self.threshold, self.threshold_mode = mode, threshold, threshold_mode
        self.mode_worse = math.inf if mode == "min" else -math.inf
        self.last_epoch = 0
        self._last_lr = [group["lr"] for group in optimizer.param_groups]
        self.best, self.cooldown_counter, self.num_bad_epochs = self.mode_worse, 0, 0

    @property
    def in_cooldown(self):
        """True while the cooldown after a reduction lasts."""
        return self.cooldown_counter > 0

    def is_better(self, a, best):
        """Whether metric value `a` improves on `best` by more than the threshold."""
        if self.mode == "min":
            return a < best * (1.0 - self.threshold) if self.threshold_mode == "rel" \
                else a < best - self.threshold
        return a > best * (self.threshold + 1.0) if self.threshold_mode == "rel" \
            else a > best + self.threshold

    def step(self, metrics):
        """Record one epoch's metric (a number, 0-d array or one-element Tensor)."""
        current = float(metrics.item() if hasattr(metrics, "item") else metrics)
        self.last_epoch += 1
        if self.is_better(current, self.best):
            self.best, self.num_bad_epochs = current, 0
        else:
            self.num_bad_epochs += 1
        if self.in_cooldown:
            self.cooldown_counter -= 1
            self.num_bad_epochs = 0  # bad epochs in cooldown do not count
        if self.num_bad_epochs > self.patience:
            self._reduce_lr()
            self.cooldown_counter, self.num_bad_epochs = self.cooldown, 0
        self._last_lr = [group["lr"] for group in self.optimizer.param_groups]

    def _reduce_lr(self):
        groups = self.optimizer.param_groups
        if len(groups) != len(self.min_lrs):
            if self.default_min_lr is None:
                raise RuntimeError(f"the optimizer has {len(groups)} parameter groups but "
                                   f"ReduceLROnPlateau was given {len(self.min_lrs)} min_lrs")
            self.min_lrs = [self.default_min_lr] * len(groups)
        for group, min_lr in zip(groups, self.min_lrs):
            old_lr = float(group["lr"])
            new_lr = max(old_lr * self.factor, min_lr)
            if old_lr - new_lr > self.eps:
                group["lr"] = new_lr


# the cyclic schedules live in cyclic.py; lr_scheduler.OneCycleLR is where PyTorch users look
from .cyclic import CosineAnnealingWarmRestarts, OneCycleLR  # noqa: E402,F401
