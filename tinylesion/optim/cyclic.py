"""The cyclic learning-rate schedules: cosine annealing with warm restarts, and one cycle."""
import math
import numbers

from .lr_scheduler import LRScheduler, _check_optimizer, _is_int, _per_group


class CosineAnnealingWarmRestarts(LRScheduler):
    """Cosine annealing restarted every T_i epochs; T_i starts at T_0 and grows by T_mult.

    step(epoch) also takes a fractional epoch (epoch + batch / batches), as PyTorch's.
    """

    def __init__(self, optimizer, T_0, T_mult=1, eta_min=0.0, last_epoch=-1):
        if not _is_int(T_0) or T_0 <= 0:
            raise ValueError(f"Invalid T_0 value: T_0={T_0!r} (must be a positive integer)")
        if not _is_int(T_mult) or T_mult < 1:
            raise ValueError(f"Invalid T_mult value: T_mult={T_mult!r} (must be an integer "
                             ">= 1)")
        if isinstance(eta_min, bool) or not isinstance(eta_min, numbers.Real):
            raise ValueError(f"Invalid eta_min value: eta_min={eta_min!r} (must be a number)")
        self.T_0, self.T_i, self.T_mult, self.eta_min = T_0, T_0, T_mult, eta_min
        self.T_cur = last_epoch
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        return [self.eta_min + (base - self.eta_min)
                * (1 + math.cos(math.pi * self.T_cur / self.T_i)) / 2 for base in self.base_lrs]

    def step(self, epoch=None):
        """Advance one epoch, or go to `epoch` (a number >= 0, possibly fractional)."""
        self._step_count += 1
        if epoch is None and self.last_epoch < 0:
            epoch = 0
        if epoch is None:
            epoch = self.last_epoch + 1
            self.T_cur += 1
            if self.T_cur >= self.T_i:
                self.T_cur, self.T_i = self.T_cur % self.T_i, self.T_i * self.T_mult
        else:
            self._go_to(epoch)
        self.last_epoch = math.floor(epoch)
        self._set_lrs(self.get_lr())

    def _go_to(self, epoch):
        if epoch < 0:
            raise ValueError(f"Expected non-negative epoch, but got {epoch}")
        if epoch < self.T_0:
            self.T_i, self.T_cur = self.T_0, epoch
        elif self.T_mult == 1:
            self.T_cur = epoch % self.T_0
        else:
            # NOTE: restart n is at T_0·(T_mult^n − 1)/(T_mult − 1); n is the last one passed.
            n = int(math.log(epoch / self.T_0 * (self.T_mult - 1) + 1, self.T_mult))
            self.T_cur = epoch - self.T_0 * (self.T_mult ** n - 1) / (self.T_mult - 1)
            self.T_i = self.T_0 * self.T_mult ** n


class OneCycleLR(LRScheduler):
    """The 1cycle policy (Smith & Topin): warm up from max_lr/div_factor to max_lr over
    pct_start of total_steps, then anneal to max_lr/(div_factor·final_div_factor); momentum
    (SGD's momentum, or Adam's beta1) cycles the other way between max_ and base_momentum.

    Call step() after every batch; stepping past total_steps raises ValueError. The groups'
    initial, max and min learning rates and momenta are kept in the scheduler (PyTorch keeps
    them in the parameter groups), so the optimizer's state_dict stays loadable.
    """

    def __init__(self, optimizer, max_lr, total_steps=None, epochs=None, steps_per_epoch=None,
                 pct_start=0.3, anneal_strategy="cos", cycle_momentum=True, base_momentum=0.85,
                 max_momentum=0.95, div_factor=25.0, final_div_factor=1e4, three_phase=False,
                 last_epoch=-1):
        _check_optimizer(optimizer)
        self.total_steps = _total_steps(total_steps, epochs, steps_per_epoch)
        if isinstance(pct_start, bool) or not isinstance(pct_start, float) \
                or not 0 <= pct_start <= 1:
            raise ValueError(f"Invalid pct_start value: pct_start={pct_start!r} (must be a "
                             "float in [0, 1])")
        if anneal_strategy not in ("cos", "linear"):
            raise ValueError(f"Invalid anneal_strategy value: anneal_strategy="
                             f"{anneal_strategy!r} (use 'cos' or 'linear')")
        self._anneal_func_type = anneal_strategy
        self._schedule_phases = _one_cycle_phases(self.total_steps, pct_start, three_phase)
        self.cycle_momentum = bool(cycle_momentum)
        self.use_beta1 = "betas" in optimizer.defaults
        if self.cycle_momentum and "momentum" not in optimizer.defaults and not self.use_beta1:
            raise ValueError(f"cycle_momentum=True needs an optimizer with momentum or betas; "
                             f"{type(optimizer).__name__} has neither (pass "
                             "cycle_momentum=False)")
        self._group_values = []
        for group, top, top_m, base_m in zip(
                optimizer.param_groups, _per_group("max_lr", max_lr, optimizer),
                _per_group("max_momentum", max_momentum, optimizer),
                _per_group("base_momentum", base_momentum, optimizer)):
            initial = top / div_factor
            self._group_values.append(dict(initial_lr=initial, max_lr=top,
                                           min_lr=initial / final_div_factor,
                                           max_momentum=top_m, base_momentum=base_m))
            if last_epoch == -1:
                group["initial_lr"] = initial
                if self.cycle_momentum:
                    self._set_momentum(group, top_m)
        super().__init__(optimizer, last_epoch)

    def _set_momentum(self, group, momentum):
        if self.use_beta1:
            group["betas"] = (momentum, *group["betas"][1:])
        else:
            group["momentum"] = momentum

    def _anneal(self, start, end, pct):
        if self._anneal_func_type == "cos":
            return end + (start - end) / 2.0 * (math.cos(math.pi * pct) + 1)
        return (end - start) * pct + start

    def get_lr(self):
        step = self.last_epoch
        if step > self.total_steps:
            raise ValueError(f"Tried to step {step} times. The specified number of total "
                             f"steps is {self.total_steps}")
        lrs = []
        for group, values in zip(self.optimizer.param_groups, self._group_values):
            start_step = 0.0
            for i, phase in enumerate(self._schedule_phases):
                end_step = phase["end_step"]
                if step <= end_step or i == len(self._schedule_phases) - 1:
                    pct = (step - start_step) / (end_step - start_step)
                    lr = self._anneal(values[phase["start_lr"]], values[phase["end_lr"]], pct)
                    momentum = self._anneal(values[phase["start_momentum"]],
                                            values[phase["end_momentum"]], pct)
                    break
                start_step = end_step
            lrs.append(lr)
            if self.cycle_momentum:
                self._set_momentum(group, momentum)
        return lrs


def _total_steps(total_steps, epochs, steps_per_epoch):
    if total_steps is not None:
        if not _is_int(total_steps) or total_steps <= 0:
            raise ValueError(f"Invalid total_steps value: total_steps={total_steps!r} (must "
                             "be a positive integer)")
        return int(total_steps)
    if epochs is None or steps_per_epoch is None:
        raise ValueError("OneCycleLR needs total_steps, or epochs and steps_per_epoch")
    for name, value in (("epochs", epochs), ("steps_per_epoch", steps_per_epoch)):
        if not _is_int(value) or value <= 0:
            raise ValueError(f"Invalid {name} value: {name}={value!r} (must be a positive "
                             "integer)")
    return int(epochs * steps_per_epoch)


def _one_cycle_phases(total_steps, pct_start, three_phase):
    """The phases of OneCycleLR: (last step, lr from → to, momentum from → to) each."""
    def phase(end_step, start_lr, end_lr, start_momentum, end_momentum):
        return dict(end_step=end_step, start_lr=start_lr, end_lr=end_lr,
                    start_momentum=start_momentum, end_momentum=end_momentum)
    warm_end = float(pct_start * total_steps) - 1
    if three_phase:
        return [phase(warm_end, "initial_lr", "max_lr", "max_momentum", "base_momentum"),
                phase(float(2 * pct_start * total_steps) - 2, "max_lr", "initial_lr",
                      "base_momentum", "max_momentum"),
                phase(total_steps - 1, "initial_lr", "min_lr", "max_momentum", "max_momentum")]
    return [phase(warm_end, "initial_lr", "max_lr", "max_momentum", "base_momentum"),
            phase(total_steps - 1, "max_lr", "min_lr", "base_momentum", "max_momentum")]
