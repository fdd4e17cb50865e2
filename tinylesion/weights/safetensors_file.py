"""Read .safetensors files (Hugging Face's and timm's format) into NumPy arrays."""
import numpy as np

from ..io import CheckpointError

MAGIC_HEADER_START = b"{"


def is_safetensors(path):
    """True when the file starts as a safetensors file: an 8-byte little-endian header
    length, then the JSON header."""
    try:
        with open(path, "rb") as f:
            head = f.read(9)
    except OSError:
        return False
    return len(head) == 9 and head[8:9] == MAGIC_HEADER_START and \
        0 < int.from_bytes(head[:8], "little") < 100_000_000


def read_safetensors(path):
    """The dict of NumPy arrays in a .safetensors file (safetensors.numpy.load_file);
    CheckpointError names the file when it cannot be read."""
    try:
        from safetensors.numpy import load_file
    except ImportError:
        raise CheckpointError(f"{path}: reading .safetensors needs the safetensors package "
                              "(pip install safetensors)") from None
    try:
        state = load_file(str(path))
    except Exception as exc:  # SafetensorError and what numpy raises for a dtype it lacks
        text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        hint = " (NumPy has no bfloat16: convert the file to float32)" \
            if "bf16" in text.lower() or "bfloat16" in text.lower() else ""
        raise CheckpointError(f"{path} is not a readable safetensors file: {text}{hint}") \
            from None
    return {key: np.asarray(value) for key, value in state.items()}
