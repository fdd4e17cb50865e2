"""torch.amp for PyTorch scripts: `autocast` runs its block as written, in float32 (tinylesion
has no float16 or bfloat16 kernels), and `GradScaler` scales the loss, unscales the gradients
and skips a step whose gradients overflowed, with PyTorch's arguments and schedule."""
import functools
import math
import warnings

from . import backend
from .tensor import Tensor, no_grad


class _LowPrecision:
    """torch.bfloat16's name: a dtype autocast accepts; tinylesion makes no arrays of it."""

    def __init__(self, name):
        self.name = name

    def __repr__(self):
        return f"tinylesion.{self.name} (autocast's argument only: no {self.name} arrays)"


bfloat16 = _LowPrecision("bfloat16")

_warned = False


def _warn_float32_once(stacklevel):
    global _warned
    if not _warned:
        _warned = True
        warnings.warn("autocast: tinylesion has no float16/bfloat16 kernels, so the block runs "
                      "in float32 (the numbers of autocast(enabled=False))",
                      UserWarning, stacklevel=stacklevel + 1)


class autocast:
    """A context manager (and decorator) for mixed precision, as torch.autocast: the block runs
    in float32, the same numbers as with enabled=False; the first enabled use warns once."""

    def __init__(self, device_type="cuda", dtype=None, enabled=True, cache_enabled=None):
        if not isinstance(device_type, str) or \
                device_type.split(":")[0] not in ("cuda", "cpu", "gpu", "mps", "xpu"):
            raise ValueError(f"autocast: device_type must be 'cuda' or 'cpu', not "
                             f"{device_type!r}")
        self.device_type, self.fast_dtype, self.enabled = device_type, dtype, bool(enabled)

    def __enter__(self):
        if self.enabled:
            _warn_float32_once(stacklevel=2)
        return self

    def __exit__(self, *exc):
        return False

    def __call__(self, fn):
        @functools.wraps(fn)
        def run(*args, **kwargs):
            with self:
                return fn(*args, **kwargs)
        return run


def is_autocast_available(device_type):
    """True for the device types autocast accepts (it runs them in float32)."""
    return device_type in ("cuda", "cpu")


class GradScaler:
    """Loss scaling as torch.amp.GradScaler: scale(loss) multiplies by the scale,
    step(optimizer) unscales the gradients (unless unscale_ did) and skips the step when one
    is inf or NaN, update() halves the scale after such a step and doubles it after
    growth_interval steps without. Scales are powers of two, so in float32 the unscaled
    gradients are the unscaled ones exactly (barring overflow, which skips the step).

    As PyTorch's, a scaler for "cuda" on a machine without a GPU disables itself with a
    warning: scale() and step() then pass through."""

    def __init__(self, device="cuda", init_scale=2.0 ** 16, growth_factor=2.0,
                 backoff_factor=0.5, growth_interval=2000, enabled=True):
        if not growth_factor > 1.0:
            raise ValueError(f"GradScaler: growth_factor must be > 1, not {growth_factor!r}")
        if not 0.0 < backoff_factor < 1.0:
            raise ValueError(f"GradScaler: backoff_factor must be in (0, 1), not "
                             f"{backoff_factor!r}")
        if isinstance(growth_interval, bool) or not isinstance(growth_interval, int) \
                or growth_interval < 1:
            raise ValueError(f"GradScaler: growth_interval must be a positive int, not "
                             f"{growth_interval!r}")
        if not (isinstance(init_scale, (int, float)) and init_scale > 0
                and math.isfinite(init_scale)):
            raise ValueError(f"GradScaler: init_scale must be a positive number, not "
                             f"{init_scale!r}")
        self.device = str(device)
        self._enabled = bool(enabled)
        if self._enabled and self.device.startswith("cuda") and not backend.gpu_available():
            warnings.warn("GradScaler is enabled, but CUDA is not available: disabling",
                          UserWarning, stacklevel=2)
            self._enabled = False
        self._scale, self._growth_factor = float(init_scale), float(growth_factor)
        self._backoff_factor, self._growth_interval = float(backoff_factor), growth_interval
        self._growth_tracker = 0
        self._per_optimizer = {}   # id(optimizer): {"unscaled": bool, "found_inf": bool}

    def is_enabled(self):
        return self._enabled

    def get_scale(self):
        """The current scale (1.0 when disabled)."""
        return self._scale if self._enabled else 1.0

    def get_growth_factor(self):
        return self._growth_factor

    def get_backoff_factor(self):
        return self._backoff_factor

    def get_growth_interval(self):
        return self._growth_interval

    def scale(self, outputs):
        """outputs (a tensor, or a list or tuple of them) times the scale."""
        if not self._enabled:
            return outputs
        if isinstance(outputs, Tensor):
            return outputs * self._scale
        if isinstance(outputs, (list, tuple)):
            return type(outputs)(self.scale(o) for o in outputs)
        raise TypeError(f"GradScaler.scale takes a tensor or a list or tuple of tensors, not "
                        f"{type(outputs).__name__}")

    def _state(self, optimizer):
        return self._per_optimizer.setdefault(id(optimizer), {"unscaled": False,
                                                              "found_inf": False})

    def unscale_(self, optimizer):
        """Divide the gradients of optimizer's parameters by the scale, in place (before
        clipping them), and note whether any is inf or NaN."""
        if not self._enabled:
            return
        state = self._state(optimizer)
        if state["unscaled"]:
            raise RuntimeError("unscale_() has already been called on this optimizer since "
                               "the last update()")
        inverse = 1.0 / self._scale
        finite = True   # on the gradients' device until the end: one copy to the host
        with no_grad():
            for group in optimizer.param_groups:
                for p in group["params"]:
                    if p.grad is None:
                        continue
                    g = p.grad.array
                    g *= g.dtype.type(inverse)
                    all_finite = backend.get_array_module(g).isfinite(g).all()
                    finite = all_finite if finite is True else (
                        finite & all_finite if type(finite) is type(all_finite)
                        else bool(finite) and bool(all_finite))
        state.update(unscaled=True, found_inf=not bool(finite))

    def step(self, optimizer, *args, **kwargs):
        """optimizer.step(*args, **kwargs) on the unscaled gradients, or nothing (None) when
        one of them is inf or NaN."""
        if not self._enabled:
            return optimizer.step(*args, **kwargs)
        if "closure" in kwargs:
            raise RuntimeError("GradScaler.step does not take a closure")
        state = self._state(optimizer)
        if not state["unscaled"]:
            self.unscale_(optimizer)
        if state["found_inf"]:
            return None
        return optimizer.step(*args, **kwargs)

    def update(self, new_scale=None):
        """Back off after a skipped step, grow after growth_interval good ones (or set
        new_scale); then forget this iteration's unscale_ and inf checks."""
        if not self._enabled:
            return
        if new_scale is not None:
            value = new_scale.item() if isinstance(new_scale, Tensor) else new_scale
            if not (isinstance(value, (int, float)) and value > 0 and math.isfinite(value)):
                raise ValueError(f"GradScaler.update: new_scale must be a positive number, "
                                 f"not {new_scale!r}")
            self._scale = float(value)
        elif any(s["found_inf"] for s in self._per_optimizer.values()):
            self._scale *= self._backoff_factor
            self._growth_tracker = 0
        elif self._per_optimizer:
            self._growth_tracker += 1
            if self._growth_tracker == self._growth_interval:
                self._scale *= self._growth_factor
                self._growth_tracker = 0
        self._per_optimizer = {}

    def state_dict(self):
        """scale, growth_factor, backoff_factor, growth_interval, _growth_tracker (empty when
        disabled), as PyTorch's."""
        if not self._enabled:
            return {}
        return {"scale": self._scale, "growth_factor": self._growth_factor,
                "backoff_factor": self._backoff_factor,
                "growth_interval": self._growth_interval,
                "_growth_tracker": self._growth_tracker}

    def load_state_dict(self, state_dict):
        if not self._enabled:
            return
        if not state_dict:
            raise RuntimeError("GradScaler.load_state_dict: the state_dict is empty (it came "
                               "from a disabled scaler)")
        missing = sorted({"scale", "growth_factor", "backoff_factor", "growth_interval",
                          "_growth_tracker"} - set(state_dict))
        if missing:
            raise KeyError(f"GradScaler.load_state_dict: missing {', '.join(missing)}")
        self._scale = float(state_dict["scale"])
        self._growth_factor = float(state_dict["growth_factor"])
        self._backoff_factor = float(state_dict["backoff_factor"])
        self._growth_interval = int(state_dict["growth_interval"])
        self._growth_tracker = int(state_dict["_growth_tracker"])
