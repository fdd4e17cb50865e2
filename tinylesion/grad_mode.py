"""inference_mode, enable_grad and set_grad_enabled: torch's other switches of graph recording."""
import functools

from .tensor import _grad_mode, is_grad_enabled


class _GradMode:
    """Context manager and decorator setting whether operations record a graph."""

    enabled = True

    def __enter__(self):
        self._previous = is_grad_enabled()
        _grad_mode.enabled = self.enabled

    def __exit__(self, *exc):
        _grad_mode.enabled = self._previous

    def _clone(self):
        return self

    def __call__(self, fn):
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            with self._clone():
                return fn(*args, **kwargs)
        return wrapper


class inference_mode(_GradMode):
    """As no_grad (tinylesion has no separate inference tensors); mode=False changes nothing."""

    def __init__(self, mode=True):
        self.mode = bool(mode)
        self.enabled = not self.mode

    def __enter__(self):
        self._previous = is_grad_enabled()
        if self.mode:
            _grad_mode.enabled = False

    def _clone(self):
        return inference_mode(self.mode)


class enable_grad(_GradMode):
    """Record graphs again inside a no_grad block."""

    enabled = True

    def _clone(self):
        return enable_grad()


class set_grad_enabled(_GradMode):
    """Switch graph recording on or off: at once, or for a with block."""

    def __init__(self, mode):
        self.enabled = bool(mode)
        self._previous = is_grad_enabled()
        _grad_mode.enabled = self.enabled

    def __enter__(self):
        pass

    def _clone(self):
        return set_grad_enabled(self.enabled)


def is_inference_mode_enabled():
    """False unless inside inference_mode() (tinylesion reads it as graph recording off)."""
    return not is_grad_enabled()
