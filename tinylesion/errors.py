"""Exceptions shared across tinylesion, and the message for another library's tensor."""


class InputError(ValueError, RuntimeError):
    """Inputs an operation cannot take (shapes that do not match in matmul, conv, cat, ...):
    a ValueError, and the RuntimeError PyTorch raises, so either `except` catches it."""


def as_input_error(exc):
    """`exc` as an InputError with its message and traceback, if it is a plain ValueError."""
    if type(exc) is not ValueError:
        return exc
    err = InputError(*exc.args)
    err.__traceback__ = exc.__traceback__
    err.__cause__, err.__context__, err.__suppress_context__ = exc.__cause__, None, True
    return err


def is_foreign_tensor(obj):
    """True for a PyTorch tensor (checked by module name: torch is never imported)."""
    return type(obj).__module__.split(".")[0] == "torch" and hasattr(obj, "shape")


def foreign_tensor_error(where):
    """The TypeError for a torch.Tensor given where a tinylesion Tensor is needed."""
    return TypeError(f"{where} got a torch.Tensor; use tl.from_numpy(t.numpy())")
