"""Weights files from other libraries: PyTorch's zip .pth/.pt and .safetensors, as dicts of
NumPy arrays (tl.load dispatches here), and their loading into a model with head handling."""
from .torch_zip import is_torch_zip, read_torch_zip
from .safetensors_file import is_safetensors, read_safetensors

PICKLE_PROTOCOL_2_OR_LATER = b"\x80"


def foreign_reader(path):
    """The reader of a PyTorch zip or safetensors file, None for other files (tl.save's
    .npz); a CheckpointError for PyTorch's legacy pickled format."""
    from ..io import CheckpointError
    if str(path).endswith(".safetensors") or is_safetensors(path):
        return read_safetensors
    if is_torch_zip(path):
        return read_torch_zip
    with open(path, "rb") as f:
        head = f.read(2)
    if head[:1] == PICKLE_PROTOCOL_2_OR_LATER and head[1:2] in (b"\x02", b"\x03", b"\x04",
                                                                b"\x05"):
        raise CheckpointError(f"{path} is not a tinylesion checkpoint nor a PyTorch zip file "
                              "but a bare pickle, as PyTorch's legacy format (torch.save before "
                              "1.6 or with _use_new_zipfile_serialization=False) writes; "
                              "pickles are not read: in PyTorch, torch.save(torch.load(path), "
                              "new_path) writes the zip format, which tl.load reads")
    return None
