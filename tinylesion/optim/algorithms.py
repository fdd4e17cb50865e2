"""SGD, Adam, AdamW, NAdam, RMSprop, Adadelta and Adagrad, computing their updates in the order
PyTorch does."""
import numpy as np

from .. import backend
from .optimizer import Optimizer, _check


def _lerp_(a, b, weight):
    """a ← a + weight·(b − a) in place, in the form torch.lerp_ uses for this weight."""
    if abs(weight) < 0.5:
        a += weight * (b - a)
    else:
        a[...] = b - (b - a) * (1 - weight)


def _zeros(x):
    """Zeros shaped and typed like x, on its device."""
    return backend.get_array_module(x).zeros_like(x)


_FUSED = {}  # name → the function in kernels/adam.py, or None when that file is missing


def _fused_kernel(name):
    """kernels.adam.<name> (adam_step, adam_update) when that kernel file is present."""
    if name not in _FUSED:
        try:
            from kernels import adam
            _FUSED[name] = getattr(adam, name, None)
        except ImportError:
            _FUSED[name] = None
    return _FUSED[name]


def _pick_kernel(fused, name, x, g):
    """The fused kernel if `fused` allows it and the arrays suit it, else None (array path).

    The kernels take contiguous float32/float64 arrays of one dtype: NumPy arrays (Numba CPU
    kernel) or CuPy arrays (the numba.cuda kernel, launched on CuPy's current stream).
    """
    on_device = isinstance(x, np.ndarray) or backend.is_cupy_array(x)
    if fused is False or not on_device or x.dtype not in (np.float32, np.float64):
        return None
    if g.dtype != x.dtype or not (x.flags.c_contiguous and g.flags.c_contiguous):
        return None
    return _fused_kernel(name)


def _check_fused(cls, fused, name):
    if fused and _fused_kernel(name) is None:
        raise ValueError(f"{cls}(fused=True) needs kernels.adam.{name}, which is not available")


class SGD(Optimizer):
    """Stochastic gradient descent with momentum, dampening, Nesterov and L2 weight decay."""

    def __init__(self, params, lr=1e-3, momentum=0.0, dampening=0.0, weight_decay=0.0,
                 nesterov=False, *, maximize=False):
        defaults = dict(lr=lr, momentum=momentum, dampening=dampening,
                        weight_decay=weight_decay, nesterov=nesterov, maximize=maximize)
        super().__init__(params, defaults)

    def _validate(self, group):
        _check("lr", group["lr"], lambda v: v >= 0, "must be >= 0")
        _check("momentum", group["momentum"], lambda v: v >= 0, "must be >= 0")
        _check("weight_decay", group["weight_decay"], lambda v: v >= 0, "must be >= 0")
        if group["nesterov"] and (group["momentum"] <= 0 or group["dampening"] != 0):
            raise ValueError("Nesterov momentum requires a momentum and zero dampening "
                             f"(nesterov=True, momentum={group['momentum']}, "
                             f"dampening={group['dampening']})")

    def _state_keys(self, group):
        return {"momentum_buffer"} if group["momentum"] != 0 else set()

    def _update(self, p, g, state, group):
        x, lr, mu = p.array, group["lr"], group["momentum"]
        if group["maximize"]:
            g = -g
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
    """Adam (Kingma & Ba) with PyTorch's bias correction, L2 weight decay and AMSGrad;
    decoupled_weight_decay=True decays the weights directly, as AdamW.

    fused=None uses the fused kernel `kernels.adam.adam_step` (Numba on NumPy, numba.cuda on CuPy)
    when it is installed (AMSGrad always uses the array expression); fused=False always uses the
    array expression; fused=True requires the kernel.
    """

    _tuple_keys = ("betas",)

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0,
                 amsgrad=False, *, maximize=False, decoupled_weight_decay=False, fused=None):
        _check_fused(type(self).__name__, fused, "adam_step")
        self.fused = fused
        defaults = dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, amsgrad=amsgrad,
                        maximize=maximize, decoupled_weight_decay=decoupled_weight_decay)
        super().__init__(params, defaults)

    def _validate(self, group):
        _check_adam_family(group)

    def _state_keys(self, group):
        keys = {"step", "exp_avg", "exp_avg_sq"}
        return keys | {"max_exp_avg_sq"} if group["amsgrad"] else keys

    def _update(self, p, g, state, group):
        x = p.array
        if not state:
            state.update(step=0, exp_avg=_zeros(x), exp_avg_sq=_zeros(x))
            if group["amsgrad"]:
                state["max_exp_avg_sq"] = _zeros(x)
        state["step"] += 1
        t, m, v = state["step"], state["exp_avg"], state["exp_avg_sq"]
        lr, (beta1, beta2), eps, wd = group["lr"], group["betas"], group["eps"], \
            group["weight_decay"]
        g, wd = _maximize_and_decay(x, g, lr, wd, group)
        kernel = _pick_kernel(self.fused, "adam_step", x, g)
        if kernel is not None and not group["amsgrad"]:
            kernel(x, g, m, v, lr, beta1, beta2, eps, wd, t)
            return
        _adam_xp(x, g, m, v, state.get("max_exp_avg_sq"), lr, beta1, beta2, eps, wd, t)


def _maximize_and_decay(x, g, lr, weight_decay, group):
    """(gradient, L2 weight decay) left to apply after `maximize` (the gradient negated) and
    a decoupled weight decay (x ← x·(1 − lr·wd), then no L2 term), as PyTorch orders them."""
    if group["maximize"]:
        g = -g
    if group["decoupled_weight_decay"] and weight_decay != 0:
        x *= 1 - lr * weight_decay
        weight_decay = 0.0
    return g, weight_decay


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov & Hutter), as torch.optim.AdamW."""

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2,
                 amsgrad=False, *, maximize=False, fused=None):
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad, maximize=maximize,
                         decoupled_weight_decay=True, fused=fused)


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
    _check("lr", group["lr"], lambda v: v >= 0, "must be >= 0")
    _check("eps", group["eps"], lambda v: v >= 0, "must be >= 0")
    betas = group["betas"]
    if len(betas) != 2:
        raise ValueError(f"Invalid betas value: betas={betas!r} (must be two numbers)")
    for i, beta in enumerate(betas):
        _check(f"betas[{i}]", beta, lambda v: 0 <= v < 1, "must be in [0, 1)")
    _check("weight_decay", group["weight_decay"], lambda v: v >= 0, "must be >= 0")


class NAdam(Optimizer):
    """Adam with Nesterov momentum and PyTorch's momentum-decay schedule (Dozat, 2016).

    fused: as for Adam, with the kernel `kernels.adam.adam_update`.
    """

    _tuple_keys = ("betas",)

    def __init__(self, params, lr=2e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0,
                 momentum_decay=4e-3, decoupled_weight_decay=False, *, maximize=False,
                 fused=None):
        _check_fused("NAdam", fused, "adam_update")
        self.fused = fused
        defaults = dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
                        momentum_decay=momentum_decay, maximize=maximize,
                        decoupled_weight_decay=decoupled_weight_decay)
        super().__init__(params, defaults)

    def _validate(self, group):
        _check_adam_family(group)
        _check("momentum_decay", group["momentum_decay"], lambda v: v >= 0, "must be >= 0")

    def _state_keys(self, group):
        return {"step", "mu_product", "exp_avg", "exp_avg_sq"}

    def _update(self, p, g, state, group):
        x = p.array
        xp = backend.get_array_module(x)
        if not state:
            state.update(step=0, mu_product=1.0, exp_avg=_zeros(x), exp_avg_sq=_zeros(x))
        state["step"] += 1
        t, m, v = state["step"], state["exp_avg"], state["exp_avg_sq"]
        lr, (beta1, beta2), eps, wd = group["lr"], group["betas"], group["eps"], \
            group["weight_decay"]
        g, wd = _maximize_and_decay(x, g, lr, wd, group)
        bias_correction2 = 1 - beta2 ** t
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
        c_g = lr * (1.0 - mu) / (1.0 - mu_product)
        c_m = lr * mu_next / (1.0 - mu_product * mu_next)
        kernel = _pick_kernel(self.fused, "adam_update", x, g)
        if kernel is not None:  # the kernel adds the weight decay itself
            kernel(x, g, m, v, beta1, beta2, eps, wd, c_m, c_g, bias_correction2)
            return
        if wd != 0:
            g = g + wd * x
        _lerp_(m, g, 1 - beta1)
        v *= beta2
        v += (1 - beta2) * g * g
        denom = xp.sqrt(v / bias_correction2)
        denom += eps
        x += -c_g * g / denom
        x += -c_m * m / denom


class RMSprop(Optimizer):
    """RMSprop (Hinton) with PyTorch's options: momentum, centered, L2 weight decay."""

    def __init__(self, params, lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0.0, momentum=0.0,
                 centered=False, *, maximize=False):
        defaults = dict(lr=lr, alpha=alpha, eps=eps, weight_decay=weight_decay,
                        momentum=momentum, centered=centered, maximize=maximize)
        super().__init__(params, defaults)

    def _validate(self, group):
        _check("lr", group["lr"], lambda v: v >= 0, "must be >= 0")
        _check("eps", group["eps"], lambda v: v >= 0, "must be >= 0")
        _check("momentum", group["momentum"], lambda v: v >= 0, "must be >= 0")
        _check("weight_decay", group["weight_decay"], lambda v: v >= 0, "must be >= 0")
        _check("alpha", group["alpha"], lambda v: v >= 0, "must be >= 0")

    def _state_keys(self, group):
        keys = {"step", "square_avg"}
        if group["momentum"] > 0:
            keys.add("momentum_buffer")
        if group["centered"]:
            keys.add("grad_avg")
        return keys

    def _update(self, p, g, state, group):
        x = p.array
        xp = backend.get_array_module(x)
        if not state:
            state.update(step=0, square_avg=_zeros(x))
            if group["momentum"] > 0:
                state["momentum_buffer"] = _zeros(x)
            if group["centered"]:
                state["grad_avg"] = _zeros(x)
        state["step"] += 1
        lr, alpha, sq = group["lr"], group["alpha"], state["square_avg"]
        if group["maximize"]:
            g = -g
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


class Adadelta(Optimizer):
    """Adadelta (Zeiler, 2012): steps scaled by the ratio of running RMS of past updates and
    of gradients, times lr (1.0 as in the paper), with L2 weight decay, as torch.optim.Adadelta."""

    def __init__(self, params, lr=1.0, rho=0.9, eps=1e-6, weight_decay=0.0, *, maximize=False):
        defaults = dict(lr=lr, rho=rho, eps=eps, weight_decay=weight_decay, maximize=maximize)
        super().__init__(params, defaults)

    def _validate(self, group):
        _check("lr", group["lr"], lambda v: v >= 0, "must be >= 0")
        _check("rho", group["rho"], lambda v: 0 <= v <= 1, "must be in [0, 1]")
        _check("eps", group["eps"], lambda v: v >= 0, "must be >= 0")
        _check("weight_decay", group["weight_decay"], lambda v: v >= 0, "must be >= 0")

    def _state_keys(self, group):
        return {"step", "square_avg", "acc_delta"}

    def _update(self, p, g, state, group):
        x = p.array
        xp = backend.get_array_module(x)
        if not state:
            state.update(step=0, square_avg=_zeros(x), acc_delta=_zeros(x))
        state["step"] += 1
        rho, eps = group["rho"], group["eps"]
        if group["maximize"]:
            g = -g
        if group["weight_decay"] != 0:
            g = g + group["weight_decay"] * x
        square_avg, acc_delta = state["square_avg"], state["acc_delta"]
        square_avg *= rho
        square_avg += (1 - rho) * g * g
        # NOTE: delta = √(E[Δx²] + eps) / √(E[g²] + eps) · g, the update's units matching x's
        delta = xp.sqrt(acc_delta + eps)
        delta /= xp.sqrt(square_avg + eps)
        delta *= g
        acc_delta *= rho
        acc_delta += (1 - rho) * delta * delta
        x += -group["lr"] * delta


class Adagrad(Optimizer):
    """Adagrad (Duchi et al., 2011): each coordinate's step divided by the root of its summed
    squared gradients, with lr decay and L2 weight decay, as torch.optim.Adagrad."""

    def __init__(self, params, lr=1e-2, lr_decay=0.0, weight_decay=0.0,
                 initial_accumulator_value=0.0, eps=1e-10, *, maximize=False):
        defaults = dict(lr=lr, lr_decay=lr_decay, weight_decay=weight_decay,
                        initial_accumulator_value=initial_accumulator_value, eps=eps,
                        maximize=maximize)
        super().__init__(params, defaults)

    def _validate(self, group):
        _check("lr", group["lr"], lambda v: v >= 0, "must be >= 0")
        _check("lr_decay", group["lr_decay"], lambda v: v >= 0, "must be >= 0")
        _check("weight_decay", group["weight_decay"], lambda v: v >= 0, "must be >= 0")
        _check("initial_accumulator_value", group["initial_accumulator_value"],
               lambda v: v >= 0, "must be >= 0")
        _check("eps", group["eps"], lambda v: v >= 0, "must be >= 0")

    def _state_keys(self, group):
        return {"step", "sum"}

    def _update(self, p, g, state, group):
        x = p.array
        xp = backend.get_array_module(x)
        if not state:
            state.update(step=0, sum=xp.full_like(x, group["initial_accumulator_value"]))
        state["step"] += 1
        if group["maximize"]:
            g = -g
        if group["weight_decay"] != 0:
            g = g + group["weight_decay"] * x
        clr = group["lr"] / (1 + (state["step"] - 1) * group["lr_decay"])
        total = state["sum"]
        total += g * g
        std = xp.sqrt(total)
        std += group["eps"]
        x += -clr * (g / std)
