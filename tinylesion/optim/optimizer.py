"""The Optimizer base class: parameter groups, per-parameter state, zero_grad, state_dict."""
import numbers

import numpy as np

from .. import backend, inference_cache


def _is_tensor(x):
    """True for a Tensor or Parameter (anything holding a backend array in `.array`)."""
    data = getattr(x, "array", None)
    return isinstance(data, np.ndarray) or backend.is_cupy_array(data)


def _check(name, value, ok, rule):
    """Raise ValueError naming the hyper-parameter unless it is a number with ok(value)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not ok(value):
        raise ValueError(f"Invalid {name} value: {name}={value!r} ({rule})")


def _as_tuple(value, name):
    """A tuple hyper-parameter (betas) from a tuple or list, or a ValueError naming it."""
    if not isinstance(value, (tuple, list)):
        raise ValueError(f"Invalid {name} value: {name}={value!r} (must be a tuple)")
    return tuple(value)


class Optimizer:
    """Base class: parameter groups, per-parameter state, zero_grad and state_dict.

    Subclasses define `_validate(group)`, `_state_keys(group)` and `_update(p, g, state,
    group)`, which changes `p.array` in place from the gradient array `g`.
    """

    _tuple_keys = ()  # hyper-parameters that are tuples (JSON brings them back as lists)
    _optional_keys = ("maximize", "decoupled_weight_decay")  # absent from older checkpoints
    _group_keys = {"params", "initial_lr", "param_names"}  # group entries besides the defaults

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
        names = None
        if params and all(isinstance(p, tuple) and len(p) == 2 and isinstance(p[0], str)
                          for p in params):  # named_parameters(), as PyTorch takes too
            names, params = [name for name, _ in params], [p for _, p in params]
        for p in params:
            if not _is_tensor(p):
                raise TypeError("optimizer can only optimize Tensors, but one of the params "
                                f"is a {type(p).__name__}")
        unknown = sorted(set(param_group) - set(self.defaults) - self._group_keys)
        if unknown:
            raise ValueError(f"unknown hyper-parameters {unknown} for {type(self).__name__}; "
                             f"it takes {sorted(self.defaults)}")
        group = {"params": params}
        if names is not None:
            group["param_names"] = names
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
                    grad = p.grad.array if _is_tensor(p.grad) else p.grad
                    grad[...] = 0

    def step(self, closure=None):
        """Update every parameter that has a gradient and requires one (frozen parameters
        are skipped); returns closure() when one is given."""
        loss = closure() if closure is not None else None
        index = 0
        for group in self.param_groups:
            for p in group["params"]:
                index += 1
                if p.grad is None or not getattr(p, "requires_grad", True):
                    continue  # NOTE: a frozen parameter never moves, whatever its gradient
                g = p.grad.array if _is_tensor(p.grad) else p.grad
                if g.shape != p.array.shape:
                    raise ValueError(f"the gradient of parameter {index - 1} has shape "
                                     f"{tuple(g.shape)}, the parameter {tuple(p.array.shape)}")
                state = self.state.get(p)
                if state is None:
                    state = self.state[p] = {}
                self._update(p, g, state, group)
        inference_cache.weights_changed()   # (arrays derived from the old weights: dropped)
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
        if not isinstance(state_dict["param_groups"], (list, tuple)) or not all(
                isinstance(g, dict) for g in state_dict["param_groups"]):
            raise ValueError(f"{where}: 'param_groups' must be a list of dicts")
        if not isinstance(state_dict["state"], dict) or not all(
                isinstance(v, dict) for v in state_dict["state"].values()):
            raise ValueError(f"{where}: 'state' must be a dict of per-parameter dicts")
        saved_groups = list(state_dict["param_groups"])
        if len(saved_groups) != len(self.param_groups):
            raise ValueError(f"{where} has {len(saved_groups)} parameter groups, the optimizer "
                             f"has {len(self.param_groups)}")
        by_index, new_groups = {}, []
        for i, (saved, group) in enumerate(zip(saved_groups, self.param_groups)):
            indices = saved.get("params", [])
            if not isinstance(indices, (list, tuple)) or not all(
                    isinstance(k, (int, np.integer)) and not isinstance(k, bool) for k in indices):
                raise ValueError(f"{where}: parameter group {i}: 'params' must be a list of "
                                 "parameter indices")
            if len(indices) != len(group["params"]):
                raise ValueError(f"{where}: parameter group {i} has {len(indices)} parameters, "
                                 f"the optimizer's has {len(group['params'])}")
            # NOTE: flags added since a checkpoint was written take their defaults (PyTorch
            # does the same for `maximize` and the like).
            saved = {**{k: self.defaults[k] for k in self._optional_keys if k in self.defaults},
                     **saved}
            missing = sorted(set(self.defaults) - set(saved))
            if missing:
                raise ValueError(f"{where}: parameter group {i} lacks hyper-parameters {missing}")
            unknown = sorted(set(saved) - set(self.defaults) - self._group_keys)
            if unknown:
                raise ValueError(f"{where}: parameter group {i} has unknown hyper-parameters "
                                 f"{unknown} for {type(self).__name__}")
            new = {k: v for k, v in saved.items() if k != "params"}
            try:
                for name in self._tuple_keys:
                    new[name] = _as_tuple(new[name], name)
                self._validate(new)
            except (TypeError, ValueError) as exc:
                raise ValueError(f"{where}: parameter group {i}: {exc}") from None
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
            if name in ("step", "mu_product"):
                number = value.item() if hasattr(value, "item") and np.size(value) == 1 \
                    else value
                if isinstance(number, bool) or not isinstance(number, (int, float)) or \
                        not np.isfinite(number) or (name == "step" and (
                            number < 0 or int(number) != number)):
                    raise ValueError(f"{where}: state '{name}' must be a "
                                     f"{'whole ' if name == 'step' else ''}number, got "
                                     f"{str(value)[:40]!r}")
                state[name] = int(number) if name == "step" else float(number)
            else:
                array = value.array if _is_tensor(value) else value
                shape = tuple(getattr(array, "shape", ()))
                if shape != tuple(p.array.shape):
                    raise ValueError(f"{where}: state '{name}' has shape {shape}, the parameter "
                                     f"has shape {tuple(p.array.shape)}")
                if getattr(getattr(array, "dtype", None), "kind", "") not in "biuf" or \
                        not hasattr(array, "dtype"):
                    raise ValueError(f"{where}: state '{name}' must be an array of numbers")
                array = backend.to_device(array, backend.device_of(p.array))
                state[name] = array.astype(p.array.dtype)  # a copy the optimizer owns
        return state

    def __repr__(self):
        lines = [f"{type(self).__name__} ("]
        for i, group in enumerate(self.param_groups):
            lines.append(f"Parameter Group {i}")
            lines += [f"    {k}: {v}" for k, v in group.items() if k != "params"]
        return "\n".join(lines + [")"])
