"""Read .safetensors files (Hugging Face's and timm's format) into NumPy arrays."""
import json

import numpy as np

from ..io import CheckpointError

MAGIC_HEADER_START = b"{"
HEADER_LENGTH_BYTES = 8


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
    """The dict of NumPy arrays in a .safetensors file; bfloat16 tensors (timm's and Hugging
    Face's usual dtype, which NumPy lacks) come back as float32, exactly. CheckpointError
    names the file when it cannot be read."""
    try:
        from safetensors import safe_open
    except ImportError:
        raise CheckpointError(f"{path}: reading .safetensors needs the safetensors package "
                              "(pip install safetensors)") from None
    try:
        # NOTE: safe_open checks the header (offsets inside the file, sizes matching shapes
        # and dtypes) before any tensor is read, so the offsets used below are safe.
        with safe_open(str(path), framework="numpy") as f:
            keys = list(f.keys())
            bfloat16 = [k for k in keys if f.get_slice(k).get_dtype() == "BF16"]
            state = {k: np.asarray(f.get_tensor(k)) for k in keys if k not in bfloat16}
    except Exception as exc:  # SafetensorError, OSError
        text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise CheckpointError(f"{path} is not a readable safetensors file: {text}") from None
    if bfloat16:
        state.update(_read_bfloat16(path, bfloat16))
    return {key: state[key] for key in keys}


def _read_bfloat16(path, keys):
    """The named BF16 tensors as float32: each 16-bit value is the upper half of a float32."""
    with open(path, "rb") as f:
        header_length = int.from_bytes(f.read(HEADER_LENGTH_BYTES), "little")
        header = json.loads(f.read(header_length))
        data_start = HEADER_LENGTH_BYTES + header_length
        arrays = {}
        for key in keys:
            begin, end = header[key]["data_offsets"]
            shape = tuple(header[key]["shape"])
            f.seek(data_start + begin)
            bits = np.frombuffer(f.read(end - begin), dtype="<u2")
            if bits.size != int(np.prod(shape, dtype=np.int64)):
                raise CheckpointError(f"{path}: tensor {key!r} has {bits.size} values for "
                                      f"shape {list(shape)}")
            arrays[key] = (bits.astype(np.uint32) << 16).view(np.float32).reshape(shape)
    return arrays
