"""Optimizers (SGD, Adam, NAdam, RMSprop) and learning-rate schedules, with PyTorch's formulas."""
import math

import numpy as np

from . import backend


def _is_tensor(x):
    """True for a Tensor or Parameter (anything holding a backend array in `.data`)."""
    data = getattr(x, "data", None)
    return isinstance(data, np.ndarray) or backend.is_cupy_array(data)


def _lerp_(a, b, weight):
    """a ← a + weight·(b − a) in place, in the form torch.lerp_ uses for this weight."""
    if abs(weight) < 0.5:
        a += weight * (b - a)
    else:
        a[...] = b - (b - a) * (1 - weight)


def _zeros(x):
    """Zeros shaped and typed like x, on its device."""
    return backend.get_array_module(x).zeros_like(x)


def _check(condition, name, value, rule):
    """Raise ValueError naming the hyper-parameter unless `condition` holds."""
    if not condition:
        raise ValueError(f"Invalid {name} value: {name}={value!r} ({rule})")


def _as_tuple(value, name):
    """A tuple hyper-parameter (betas) from a tuple or list, or a ValueError naming it."""
    if not isinstance(value, (tuple, list)):
        raise ValueError(f"Invalid {name} value: {name}={value!r} (must be a tuple)")
    return tuple(value)


_FUSED_ADAM = []  # [adam_step or None], filled on first use


def _fused_adam_kernel():
    """kernels.adam_step when that kernel family is present, else None."""
    if not _FUSED_ADAM:
        try:
            import kernels
            _FUSED_ADAM.append(getattr(kernels, "adam_step", None))
        except ImportError:
            _FUSED_ADAM.append(None)
    return _FUSED_ADAM[0]


class Optimizer:
    """Base class: parameter groups, per-parameter state, zero_grad and state_dict.

    Subclasses define `_validate(group)`, `_state_keys(group)` and `_update(p, g, state,
    group)`, which changes `p.data` in place from the gradient array `g`.
    """

    _tuple_keys = ()  # hyper-parameters that are tuples (JSON brings them back as lists)

    def __init__(self, params, defaults):
        if _is_tensor(params):
            raise TypeError("params given to the optimizer should be an iterable of Tensors "
                            f"or dicts, but got a single {type(params).__name__}")
        if isinstance(params, (set, dict)):
            raise TypeError("params given to the optimizer must be an ordered iterable "
                            f"(list, generator), not a {type(params).__name__}")
        self.defaults = dict(defaults)
        self.state = {}          # parameter → dict of its state (arrays on its device)
        self.param_groups = []
        groups = list(params)
        if not groups:
            raise ValueError("optimizer got an empty parameter list (params=[])")
        if not isinstance(groups[0], dict):
            groups = [{"params": groups}]
        for group in groups:
            self.add_param_group(group)

    def add_param_group(self, param_group):
        """Add a dict with "params" and optional hyper-parameters (defaults fill the rest)."""
        if not isinstance(param_group, dict):
            raise TypeError(f"a parameter group must be a dict, not {type(param_group).__name__}")
        if "params" not in param_group:
            raise ValueError("a parameter group needs a 'params' entry")
        params = param_group["params"]
        if _is_tensor(params):
            params = [params]
        elif isinstance(params, set):
            raise TypeError("a parameter group's params must be ordered (a list), not a set")
        params = list(params)
        for p in params:
            if not _is_tensor(p):
                raise TypeError("optimizer can only optimize Tensors, but one of the params "
                                f"is a {type(p).__name__}")
        unknown = sorted(set(param_group) - set(self.defaults) - {"params", "initial_lr"})
        if unknown:
            raise ValueError(f"unknown hyper-parameters {unknown} for {type(self).__name__}; "
                             f"it takes {sorted(self.defaults)}")
        group = {"params": params}
        for name, default in self.defaults.items():
            group[name] = param_group.get(name, default)
        for name in self._tuple_keys:
            group[name] = _as_tuple(group[name], name)
        if "initial_lr" in param_group:
            group["initial_lr"] = param_group["initial_lr"]
        self._validate(group)
        seen = {id(p) for g in self.param_groups for p in g["params"]}
        ids = [id(p) for p in params]
        if len(set(ids)) != len(ids):
            raise ValueError("a parameter appears twice in the same parameter group")
        if seen & set(ids):
            raise ValueError("some parameters appear in more than one parameter group")
        self.param_groups.append(group)

    def zero_grad(self, set_to_none=True):
        """Drop every parameter's gradient (or fill it with zeros when set_to_none=False)."""
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                if set_to_none:
                    p.grad = None
                else:
                    grad = p.grad.data if _is_tensor(p.grad) else p.grad
                    grad[...] = 0

    def step(self, closure=None):
        """Update every parameter that has a gradient; returns closure() when one is given."""
        loss = closure() if closure is not None else None
        index = 0
        for group in self.param_groups:
            for p in group["params"]:
                index += 1
                if p.grad is None:
                    continue
                g = p.grad.data if _is_tensor(p.grad) else p.grad
                if g.shape != p.data.shape:
                    raise ValueError(f"the gradient of parameter {index - 1} has shape "
                                     f"{tuple(g.shape)}, the parameter {tuple(p.data.shape)}")
                state = self.state.get(p)
                if state is None:
                    state = self.state[p] = {}
                self._update(p, g, state, group)
        return loss

    # ---- checkpoints --------------------------------------------------------------------
    def state_dict(self):
        """{"state": {index: {name: array or number}}, "param_groups": [{..., "params": [index]}]}.

        Parameters are numbered in the order of the groups; the arrays are the optimizer's own
        (not copies) and stay on the parameters' device, as in PyTorch.
        """
        index, groups = {}, []
        for group in self.param_groups:
            packed = {k: v for k, v in group.items() if k != "params"}
            packed["params"] = [index.setdefault(id(p), len(index)) for p in group["params"]]
            groups.append(packed)
        state = {}
        for group in self.param_groups:
            for p in group["params"]:
                if self.state.get(p):
                    state[index[id(p)]] = dict(self.state[p])
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict):
        """Restore a state_dict (e.g. from tl.load) so that training resumes exactly.

        Everything is checked before anything changes: the number of groups and parameters,
        each group's hyper-parameters, each state entry's name and shape. Arrays are copied
        onto each parameter's device in its dtype.
        """
        where = "optimizer state_dict"
        if not isinstance(state_dict, dict) or {"state", "param_groups"} - set(state_dict):
            raise ValueError(f"{where} must be a dict with keys 'state' and 'param_groups'")
        saved_groups = list(state_dict["param_groups"])
        if len(saved_groups) != len(self.param_groups):
            raise ValueError(f"{where} has {len(saved_groups)} parameter groups, the optimizer "
                             f"has {len(self.param_groups)}")
        by_index, new_groups = {}, []
        for i, (saved, group) in enumerate(zip(saved_groups, self.param_groups)):
            indices = list(saved.get("params", []))
            if len(indices) != len(group["params"]):
                raise ValueError(f"{where}: parameter group {i} has {len(indices)} parameters, "
                                 f"the optimizer's has {len(group['params'])}")
            missing = sorted(set(self.defaults) - set(saved))
            if missing:
                raise ValueError(f"{where}: parameter group {i} lacks hyper-parameters {missing}")
            unknown = sorted(set(saved) - set(self.defaults) - {"params", "initial_lr"})
            if unknown:
                raise ValueError(f"{where}: parameter group {i} has unknown hyper-parameters "
                                 f"{unknown} for {type(self).__name__}")
            new = {k: v for k, v in saved.items() if k != "params"}
            for name in self._tuple_keys:
                new[name] = _as_tuple(new[name], name)
            self._validate(new)
            new["params"] = group["params"]
            new_groups.append(new)
            for k, p in zip(indices, group["params"]):
                by_index[int(k)] = (p, new)
        if len(by_index) != sum(len(g["params"]) for g in self.param_groups):
            raise ValueError(f"{where}: parameter indices repeat across its parameter groups")
        new_state = {}
        for key, saved in state_dict["state"].items():
            try:
                k = int(key)
            except (TypeError, ValueError):
                raise ValueError(f"{where}: state key {key!r} is not a parameter index") from None
            if k not in by_index:
                raise ValueError(f"{where}: state for parameter {k}, but the parameter groups "
                                 f"list only indices {sorted(by_index)}")
            p, group = by_index[k]
            new_state[p] = self._load_param_state(saved, p, group, f"{where}: parameter {k}")
        for group, new in zip(self.param_groups, new_groups):
            group.clear()
            group.update(new)
        self.state = new_state

    def _load_param_state(self, saved, p, group, where):
        """Check one parameter's saved state and bring it to the parameter's device/dtype."""
        if not saved:
            return {}
        expected = self._state_keys(group)
        missing, unknown = sorted(expected - set(saved)), sorted(set(saved) - expected)
        if missing or unknown:
            raise ValueError(f"{where} has state entries {sorted(saved)}; {type(self).__name__} "
                             f"with these hyper-parameters expects {sorted(expected)}"
                             f" (missing {missing}, unexpected {unknown})")
        state = {}
        for name, value in saved.items():
            if name == "step":
                state[name] = int(value)
            elif name == "mu_product":
                state[name] = float(value)
            else:
                array = value.data if _is_tensor(value) else value
                shape = tuple(getattr(array, "shape", ()))
                if shape != tuple(p.data.shape):
                    raise ValueError(f"{where}: state '{name}' has shape {shape}, the parameter "
                                     f"has shape {tuple(p.data.shape)}")
                array = backend.to_device(array, backend.device_of(p.data))
                state[name] = array.astype(p.data.dtype)  # a copy the optimizer owns
        return state

    def __repr__(self):
        lines = [f"{type(self).__name__} ("]
        for i, group in enumerate(self.param_groups):
            lines.append(f"Parameter Group {i}")
            lines += [f"    {k}: {v}" for k, v in group.items() if k != "params"]
        return "\n".join(lines + [")"])


class SGD(Optimizer):
    """Stochastic gradient descent with momentum, dampening, Nesterov and L2 weight decay."""

    def __init__(self, params, lr=1e-3, momentum=0.0, dampening=0.0, weight_decay=0.0,
                 nesterov=False):
        defaults = dict(lr=lr, momentum=momentum, dampening=dampening,
                        weight_decay=weight_decay, nesterov=nesterov)
        super().__init__(params, defaults)

    def _validate(self, group):
        _check(group["lr"] >= 0, "lr", group["lr"], "must be >= 0")
        _check(group["momentum"] >= 0, "momentum", group["momentum"], "must be >= 0")
        _check(group["weight_decay"] >= 0, "weight_decay", group["weight_decay"], "must be >= 0")
        if group["nesterov"] and (group["momentum"] <= 0 or group["dampening"] != 0):
            raise ValueError("Nesterov momentum requires a momentum and zero dampening "
                             f"(nesterov=True, momentum={group['momentum']}, "
                             f"dampening={group['dampening']})")

    def _state_keys(self, group):
        return {"momentum_buffer"} if group["momentum"] != 0 else set()

    def _update(self, p, g, state, group):
        x, lr, mu = p.data, group["lr"], group["momentum"]
        if group["weight_decay"] != 0:
            g = g + group["weight_decay"] * x
        if mu != 0:
            buf = state.get("momentum_buffer")
            if buf is None:  # NOTE: PyTorch starts the buffer at the first gradient, not at 0
                buf = state["momentum_buffer"] = g.copy()
            else:
                buf *= mu
                buf += (1 - group["dampening"]) * g
            g = g + mu * buf if group["nesterov"] else buf
        x -= lr * g


class Adam(Optimizer):
    """Adam (Kingma & Ba) with PyTorch's bias correction, L2 weight decay and AMSGrad.

    fused=None uses the Numba kernel `kernels.adam_step` for NumPy float32/float64 arrays when
    it is installed; fused=False always uses the array expression; fused=True requires the
    kernel.
    """

    _tuple_keys = ("betas",)

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0,
                 amsgrad=False, fused=None):
        if fused and _fused_adam_kernel() is None:
            raise ValueError("Adam(fused=True) needs kernels.adam_step, which is not available")
        self.fused = fused
        defaults = dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, amsgrad=amsgrad)
        super().__init__(params, defaults)

    def _validate(self, group):
        _check_adam_family(group)

    def _state_keys(self, group):
        keys = {"step", "exp_avg", "exp_avg_sq"}
        return keys | {"max_exp_avg_sq"} if group["amsgrad"] else keys

    def _update(self, p, g, state, group):
        x = p.data
        if not state:
            state.update(step=0, exp_avg=_zeros(x), exp_avg_sq=_zeros(x))
            if group["amsgrad"]:
                state["max_exp_avg_sq"] = _zeros(x)
        state["step"] += 1
        t, m, v = state["step"], state["exp_avg"], state["exp_avg_sq"]
        lr, (beta1, beta2), eps, wd = group["lr"], group["betas"], group["eps"], \
            group["weight_decay"]
        kernel = _fused_adam_kernel() if self.fused is not False else None
        if (kernel is not None and not group["amsgrad"] and isinstance(x, np.ndarray)
                and x.dtype in (np.float32, np.float64) and g.dtype == x.dtype
                and x.flags.c_contiguous and g.flags.c_contiguous):
            kernel(x, g, m, v, lr, beta1, beta2, eps, wd, t)
            return
        _adam_xp(x, g, m, v, state.get("max_exp_avg_sq"), lr, beta1, beta2, eps, wd, t)


def _adam_xp(x, g, m, v, v_max, lr, beta1, beta2, eps, weight_decay, step):
    """One Adam step in array operations, in the order torch.optim.Adam computes it."""
    xp = backend.get_array_module(x)
    if weight_decay != 0:
        g = g + weight_decay * x
    _lerp_(m, g, 1 - beta1)
    v *= beta2
    v += (1 - beta2) * g * g
    # NOTE: with m̂ = m/(1−β1ᵗ) and v̂ = v/(1−β2ᵗ), x −= lr·m̂/(√v̂ + eps) is written, as in
    # PyTorch, as x −= (lr/(1−β1ᵗ))·m / (√v/√(1−β2ᵗ) + eps).
    step_size = lr / (1 - beta1 ** step)
    bias_correction2_sqrt = (1 - beta2 ** step) ** 0.5
    if v_max is not None:
        xp.maximum(v_max, v, out=v_max)
        v = v_max
    denom = xp.sqrt(v) / bias_correction2_sqrt
    denom += eps
    x += (-step_size * m) / denom


def _check_adam_family(group):
    """Validate lr, eps, betas and weight_decay as torch.optim.Adam does."""
    _check(group["lr"] >= 0, "lr", group["lr"], "must be >= 0")
    _check(group["eps"] >= 0, "eps", group["eps"], "must be >= 0")
    betas = group["betas"]
    if len(betas) != 2:
        raise ValueError(f"Invalid betas value: betas={betas!r} (must be two numbers)")
    for i, beta in enumerate(betas):
        _check(0 <= beta < 1, f"betas[{i}]", beta, "must be in [0, 1)")
    _check(group["weight_decay"] >= 0, "weight_decay", group["weight_decay"], "must be >= 0")


class NAdam(Optimizer):
    """Adam with Nesterov momentum and PyTorch's momentum-decay schedule (Dozat, 2016)."""

    _tuple_keys = ("betas",)

    def __init__(self, params, lr=2e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0,
                 momentum_decay=4e-3):
        defaults = dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
                        momentum_decay=momentum_decay)
        super().__init__(params, defaults)

    def _validate(self, group):
        _check_adam_family(group)
        _check(group["momentum_decay"] >= 0, "momentum_decay", group["momentum_decay"],
               "must be >= 0")

    def _state_keys(self, group):
        return {"step", "mu_product", "exp_avg", "exp_avg_sq"}

    def _update(self, p, g, state, group):
        x = p.data
        xp = backend.get_array_module(x)
        if not state:
            state.update(step=0, mu_product=1.0, exp_avg=_zeros(x), exp_avg_sq=_zeros(x))
        state["step"] += 1
        t, m, v = state["step"], state["exp_avg"], state["exp_avg_sq"]
        lr, (beta1, beta2), eps = group["lr"], group["betas"], group["eps"]
        bias_correction2 = 1 - beta2 ** t
        if group["weight_decay"] != 0:
            g = g + group["weight_decay"] * x
        # NOTE: μₜ = β1·(1 − ½·0.96^(t·ψ)) is the momentum at step t; the update mixes the
        # gradient, weighted (1−μₜ)/(1−Πμ), with the next momentum μₜ₊₁/(1−Πμ·μₜ₊₁).
        psi = group["momentum_decay"]
        mu = beta1 * (1.0 - 0.5 * 0.96 ** (t * psi))
        mu_next = beta1 * (1.0 - 0.5 * 0.96 ** ((t + 1) * psi))
        # NOTE: the product is rounded in the parameter's precision, as PyTorch keeps it in a
        # scalar tensor of the default dtype.
        scalar = np.float32 if x.dtype == np.float32 else np.float64
        mu_product = float(scalar(state["mu_product"]) * scalar(mu))
        state["mu_product"] = mu_product
        _lerp_(m, g, 1 - beta1)
        v *= beta2
        v += (1 - beta2) * g * g
        denom = xp.sqrt(v / bias_correction2)
        denom += eps
        x += (-lr * (1.0 - mu) / (1.0 - mu_product)) * g / denom
        x += ((-lr * mu_next) / (1.0 - mu_product * mu_next)) * m / denom


class RMSprop(Optimizer):
    """RMSprop (Hinton) with PyTorch's options: momentum, centered, L2 weight decay."""

    def __init__(self, params, lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0.0, momentum=0.0,
                 centered=False):
        defaults = dict(lr=lr, alpha=alpha, eps=eps, weight_decay=weight_decay,
                        momentum=momentum, centered=centered)
        super().__init__(params, defaults)

    def _validate(self, group):
        _check(group["lr"] >= 0, "lr", group["lr"], "must be >= 0")
        _check(group["eps"] >= 0, "eps", group["eps"], "must be >= 0")
        _check(group["momentum"] >= 0, "momentum", group["momentum"], "must be >= 0")
        _check(group["weight_decay"] >= 0, "weight_decay", group["weight_decay"], "must be >= 0")
        _check(group["alpha"] >= 0, "alpha", group["alpha"], "must be >= 0")

    def _state_keys(self, group):
        keys = {"step", "square_avg"}
        if group["momentum"] > 0:
            keys.add("momentum_buffer")
        if group["centered"]:
            keys.add("grad_avg")
        return keys

    def _update(self, p, g, state, group):
        x = p.data
        xp = backend.get_array_module(x)
        if not state:
            state.update(step=0, square_avg=_zeros(x))
            if group["momentum"] > 0:
                state["momentum_buffer"] = _zeros(x)
            if group["centered"]:
                state["grad_avg"] = _zeros(x)
        state["step"] += 1
        lr, alpha, sq = group["lr"], group["alpha"], state["square_avg"]
        if group["weight_decay"] != 0:
            g = g + group["weight_decay"] * x
        sq *= alpha
        sq += (1 - alpha) * g * g
        if group["centered"]:  # NOTE: divide by the standard deviation, E[g²] − E[g]²
            _lerp_(state["grad_avg"], g, 1 - alpha)
            avg = xp.sqrt(sq - state["grad_avg"] * state["grad_avg"])
        else:
            avg = xp.sqrt(sq)
        avg += group["eps"]
        if group["momentum"] > 0:
            buf = state["momentum_buffer"]
            buf *= group["momentum"]
            buf += g / avg
            x -= lr * buf
        else:
            x += (-lr * g) / avg


# ---- learning-rate schedules ------------------------------------------------------------------
class _Scheduler:
    """Shared state_dict/load_state_dict: every attribute but the optimizer, JSON-able."""

    def state_dict(self):
        """The scheduler's state (numbers and lists; tl.save stores it as JSON)."""
        return {k: (list(v) if isinstance(v, tuple) else v)
                for k, v in self.__dict__.items() if k != "optimizer"}

    def load_state_dict(self, state_dict):
        """Restore a state_dict, naming any missing or unexpected entry."""
        own = set(self.state_dict())
        missing, unknown = sorted(own - set(state_dict)), sorted(set(state_dict) - own)
        if missing or unknown:
            raise ValueError(f"{type(self).__name__} state_dict: missing entries {missing}, "
                             f"unexpected entries {unknown}")
        self.__dict__.update({k: (list(v) if isinstance(v, tuple) else v)
                              for k, v in state_dict.items()})

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
        self.last_epoch += 1
        for group, lr in zip(self.optimizer.param_groups, self.get_lr()):
            group["lr"] = lr
        self._last_lr = [group["lr"] for group in self.optimizer.param_groups]


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
        _check(patience >= 0, "patience", patience, "must be >= 0")
        _check(cooldown >= 0, "cooldown", cooldown, "must be >= 0")
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
