"""Arrays derived from a layer's weights (batch norm folded into a convolution's weights), kept
between inference calls and dropped whenever tinylesion writes into any tensor."""
import threading
import weakref

import numpy as np

# NOTE: a derived array is valid while its sources are the same arrays (`is`) holding the same
# numbers. The first part is checked at each call; the second by a process-wide count of
# writes, bumped by every path through which tinylesion writes into a tensor's array in place:
# the Tensor methods (in-place operators, x[i] = v, copy_, fill_, zero_), an optimizer's step,
# load_state_dict, nn.init, a batch norm's running statistics in training mode, and
# Module.train()/eval(); and every backward pass (the update after it may write straight into
# p.data, as hand-written loops and the sharded optimizer do). Any such write, to any tensor
# (a view of a weight, or the Tensor that `p.data` returns, is another Tensor around the same
# memory), drops every entry; a batch-1 forward pass writes into no tensor through these
# paths, so its entries live from one call to the next. A write straight into a tensor's
# NumPy/CuPy array (`p.array[...] = v`) is not seen: call `weights_changed()` (or
# model.eval() again) after one.
_writes = 0
_lock = threading.Lock()
_entries = weakref.WeakKeyDictionary()   # owner -> {slot: (writes, sources, arrays)}


def weights_changed():
    """Drop every derived array: the next inference call recomputes them from the weights.
    Call it after writing straight into a parameter's or buffer's array (`p.array[...] = v`);
    tinylesion's own writes call it by themselves."""
    global _writes
    with _lock:   # (+= is not atomic across Python threads)
        _writes += 1


def writes():
    """The count of writes so far (tests and benchmarks)."""
    return _writes


def cached(owner, sources, compute, slot=None):
    """compute() for `owner`'s `sources` (arrays, compared by identity; numbers, dtypes and
    None, by value), from the cache when neither the sources nor any tensor changed since it
    was stored. An owner keeps one entry per `slot`."""
    seen = _writes
    slots = _entries.get(owner)
    entry = None if slots is None else slots.get(slot)
    if entry is not None and entry[0] == seen and len(entry[1]) == len(sources) \
            and all(map(_same, entry[1], sources)):
        return entry[2]
    arrays = compute()
    if slots is None:
        slots = _entries[owner] = {}
    slots[slot] = (seen, tuple(sources), arrays)
    return arrays


def _same(a, b):
    return a is b or (isinstance(a, (int, float, str, np.dtype)) and type(a) is type(b)
                      and a == b)


def cached_count():
    """How many owners hold derived arrays now (tests)."""
    return len(_entries)
