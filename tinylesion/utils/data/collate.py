"""default_collate / default_convert: samples into batched tinylesion Tensors, as torch's."""
import collections.abc

import numpy as np

from ... import backend
from ...tensor import Tensor

_WHAT = "tensors, numpy arrays, numbers, dicts or lists"


def _not_collatable(elem, name):
    hint = "; convert it with transforms.ToTensor() or PILToTensor()" \
        if type(elem).__module__.startswith("PIL") else ""
    return TypeError(f"{name}: batch must contain {_WHAT}; found {type(elem)}{hint}")


def _stack(arrays, where):
    """Stack same-shaped arrays (NumPy or CuPy) into one new array along a new first axis."""
    shapes = {a.shape for a in arrays}
    if len(shapes) > 1:
        first = arrays[0].shape
        k = next(i for i, a in enumerate(arrays) if a.shape != first)
        raise RuntimeError(f"default_collate: stack expects each {where} to be equal size, but "
                           f"got {tuple(first)} at entry 0 and {tuple(arrays[k].shape)} at entry "
                           f"{k}; resize the samples to one size or pass a collate_fn")
    xp = backend.get_array_module(*arrays)
    return xp.stack([xp.asarray(a) for a in arrays])


def _is_namedtuple(elem):
    return isinstance(elem, tuple) and hasattr(elem, "_fields")


def default_collate(batch):
    """Batch a list of samples: tensors and arrays are stacked into a Tensor with a new first
    dimension, Python ints become an int64 Tensor, floats a float64 one, bools a bool one;
    strings stay a list; dicts, tuples and lists are collated entry by entry (tuples give
    lists, as torch's)."""
    if not isinstance(batch, (list, tuple)) or not batch:
        raise TypeError(f"default_collate expects a non-empty list of samples, got "
                        f"{type(batch).__name__}")
    elem = batch[0]
    if isinstance(elem, Tensor):
        if not all(isinstance(b, Tensor) for b in batch):
            raise TypeError("default_collate: a batch mixes Tensors with other types")
        dtypes = {b.dtype for b in batch}
        if len(dtypes) > 1:
            raise TypeError(f"default_collate: the Tensors of a batch have different dtypes "
                            f"{sorted(map(str, dtypes))}")
        return Tensor._wrap(_stack([b.array for b in batch], "tensor"))
    if isinstance(elem, np.ndarray) or backend.is_cupy_array(elem):
        if elem.dtype.kind not in "biuf":
            raise _not_collatable(elem, f"default_collate (numpy dtype {elem.dtype})")
        return Tensor._wrap(_stack(list(batch), "array"))
    if isinstance(elem, (bool, np.bool_)):
        return Tensor._wrap(np.array(batch, dtype=np.bool_))
    if isinstance(elem, np.generic) and elem.dtype.kind in "biuf":
        return Tensor._wrap(np.array(batch, dtype=elem.dtype))
    if isinstance(elem, int):
        return Tensor._wrap(np.array(batch, dtype=np.int64))
    if isinstance(elem, float):
        return Tensor._wrap(np.array(batch, dtype=np.float64))
    if isinstance(elem, (str, bytes)):
        return list(batch)
    if isinstance(elem, collections.abc.Mapping):
        return {key: default_collate([d[key] for d in batch]) for key in elem}
    if _is_namedtuple(elem):
        return type(elem)(*(default_collate(list(s)) for s in zip(*batch)))
    if isinstance(elem, collections.abc.Sequence):
        size = len(elem)
        if any(len(b) != size for b in batch):
            raise RuntimeError("each element in list of batch should be of equal size")
        return [default_collate(list(samples)) for samples in zip(*batch)]
    raise _not_collatable(elem, "default_collate")


def default_convert(data):
    """What DataLoader(batch_size=None) does to each sample: NumPy arrays become Tensors,
    inside dicts, tuples and lists too; everything else is left as it is."""
    if isinstance(data, np.ndarray) and data.dtype.kind in "biuf":
        return Tensor._wrap(data)
    if isinstance(data, collections.abc.Mapping):
        return {key: default_convert(value) for key, value in data.items()}
    if _is_namedtuple(data):
        return type(data)(*(default_convert(d) for d in data))
    if isinstance(data, tuple):
        return [default_convert(d) for d in data]
    if isinstance(data, list):
        return [default_convert(d) for d in data]
    return data
