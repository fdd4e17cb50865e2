"""DataLoader: torch's data loader on tinylesion's streaming loader threads."""
import threading

import numpy as np

from ... import backend
from ...data.loader import LoaderError, _Pass
from ._random import draw_seed
from .collate import default_collate, default_convert
from .dataset import IterableDataset
from .sampler import BatchSampler, RandomSampler, SequentialSampler

_local = threading.local()


class WorkerInfo:
    """What get_worker_info() returns inside a loading thread: id, num_workers, seed, dataset."""

    def __init__(self, id, num_workers, seed, dataset):
        self.id, self.num_workers, self.seed, self.dataset = id, num_workers, seed, dataset

    def __repr__(self):
        return f"WorkerInfo(id={self.id}, num_workers={self.num_workers}, seed={self.seed})"


def get_worker_info():
    """The WorkerInfo of the calling loader thread, or None outside the loader's threads."""
    return getattr(_local, "info", None)


class _Samples:
    """One batch being filled: the samples the dataset returned, and which slots failed."""

    __slots__ = ("items", "remaining", "errors")

    def __init__(self, size):
        self.items = [None] * size
        self.remaining = size
        self.errors = {}


def _check_int(value, name, low):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
        raise ValueError(f"DataLoader: {name} should be an integer >= {low}, got {value!r}")
    return int(value)


class DataLoader:
    """Batches of a dataset, as torch.utils.data.DataLoader, loaded by threads.

    A map-style dataset's samples (dataset[i], any Python value) are loaded by `num_workers`
    threads (0: in the caller's thread) at most `prefetch_factor * num_workers` batches ahead,
    in the order of the sampler, and batched by `collate_fn` (default_collate: Tensors).
    Each pass draws one seed from `generator` (else from the generator tl.manual_seed seeds);
    while sample p of the pass loads, tinylesion's random draws in that thread (random
    transforms, tl.rand) come from a generator seeded with (seed, p): the batches depend on
    the seed only, never on num_workers. An exception raised by the dataset is raised in the
    caller, with a note naming the index; leaving the loop stops the threads.
    pin_memory, persistent_workers, timeout and multiprocessing_context are accepted and
    have no effect (threads share the process's memory). An IterableDataset is read in the
    caller's thread as one stream.
    """

    def __init__(self, dataset, batch_size=1, shuffle=None, sampler=None, batch_sampler=None,
                 num_workers=0, collate_fn=None, pin_memory=False, drop_last=False, timeout=0,
                 worker_init_fn=None, multiprocessing_context=None, generator=None, *,
                 prefetch_factor=None, persistent_workers=False, pin_memory_device="",
                 in_order=True):
        self.num_workers = _check_int(num_workers, "num_workers", 0)
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or timeout < 0:
            raise ValueError(f"DataLoader: timeout option should be non-negative, got {timeout!r}")
        if prefetch_factor is not None:
            if self.num_workers == 0:
                raise ValueError("prefetch_factor option could only be specified in "
                                 "multiprocessing; let num_workers > 0 to enable it")
            _check_int(prefetch_factor, "prefetch_factor", 1)
        if persistent_workers and self.num_workers == 0:
            raise ValueError("persistent_workers option needs num_workers > 0")
        if worker_init_fn is not None and not callable(worker_init_fn):
            raise TypeError("DataLoader: worker_init_fn must be callable(worker_id)")
        iterable = isinstance(dataset, IterableDataset)
        if iterable and (shuffle not in (None, False) or sampler is not None
                         or batch_sampler is not None):
            raise ValueError("DataLoader with IterableDataset: expected unspecified shuffle, "
                             "sampler and batch_sampler options")
        if sampler is not None and shuffle:
            raise ValueError("sampler option is mutually exclusive with shuffle")
        if batch_sampler is not None:
            if batch_size != 1 or shuffle or sampler is not None or drop_last:
                raise ValueError("batch_sampler option is mutually exclusive with batch_size, "
                                 "shuffle, sampler, and drop_last")
            batch_size, drop_last = None, False
        elif batch_size is None:
            if drop_last:
                raise ValueError("batch_size=None option disables auto-batching and is "
                                 "mutually exclusive with drop_last")
        else:
            _check_int(batch_size, "batch_size", 1)
        if not iterable and not hasattr(dataset, "__getitem__"):
            raise TypeError(f"DataLoader: the dataset ({type(dataset).__name__}) has no "
                            "__getitem__; subclass tinylesion.utils.data.Dataset")
        if sampler is None and not iterable:
            sampler = RandomSampler(dataset, generator=generator) if shuffle else \
                SequentialSampler(dataset)
        if batch_size is not None and batch_sampler is None and not iterable:
            batch_sampler = BatchSampler(sampler, batch_size, bool(drop_last))
        self.dataset = dataset
        self.batch_size = batch_size
        self.drop_last = bool(drop_last)
        self.sampler = sampler
        self.batch_sampler = batch_sampler
        self.generator = generator
        self.worker_init_fn = worker_init_fn
        self.pin_memory = bool(pin_memory)
        self.pin_memory_device = pin_memory_device
        self.timeout = timeout
        self.persistent_workers = bool(persistent_workers)
        self.multiprocessing_context = multiprocessing_context
        self.prefetch_factor = 2 if prefetch_factor is None and self.num_workers else \
            prefetch_factor
        self.in_order = in_order
        self._auto_collation = batch_sampler is not None or (iterable and batch_size is not None)
        if collate_fn is None:
            collate_fn = default_collate if self._auto_collation else default_convert
        self.collate_fn = collate_fn
        # What _Pass reads
        self.prefetch = max(1, (self.prefetch_factor or 1) * max(self.num_workers, 1))
        self.skip_bad = False
        self._pass_seed = 0

    def __len__(self):
        if isinstance(self.dataset, IterableDataset):
            n = len(self.dataset)   # a TypeError when the stream has no length, as torch's
            if self.batch_size is None:
                return n
            return n // self.batch_size if self.drop_last else -(-n // self.batch_size)
        return len(self.batch_sampler) if self.batch_sampler is not None else len(self.sampler)

    def __iter__(self):
        seed = self._pass_seed = draw_seed(self.generator)
        if isinstance(self.dataset, IterableDataset):
            return self._stream()
        if self.batch_sampler is not None:
            batches = [list(batch) for batch in self.batch_sampler]
        else:
            batches = [[index] for index in self.sampler]
        order = [index for batch in batches for index in batch]
        try:
            order = np.asarray(order, dtype=np.int64).reshape(-1)
        except (TypeError, ValueError, OverflowError):
            raise TypeError("DataLoader: the sampler gave indices that are not integers "
                            f"(first: {order[:1]})") from None
        state = _Pass(self, order, seed, [len(batch) for batch in batches])
        return self._iterate(state)

    def _iterate(self, state):
        workers = min(self.num_workers, state.nsamples)
        gen = state.inline() if workers == 0 else state.threaded(workers)
        try:
            yield from gen
        finally:
            gen.close()

    def _stream(self):
        """An IterableDataset: read in this thread, batched as it comes."""
        if self.batch_size is None:
            for sample in self.dataset:
                yield self.collate_fn(sample)
            return
        batch = []
        for sample in self.dataset:
            batch.append(sample)
            if len(batch) == self.batch_size:
                yield self.collate_fn(batch)
                batch = []
        if batch and not self.drop_last:
            yield self.collate_fn(batch)

    # The hooks of tinylesion.data.loader._Pass: a batch is a list of samples.
    def _gather_function(self):
        return None

    def _new_batch(self, indices):
        return _Samples(len(indices))

    def _load_slot(self, index, position, seed, batch, slot):
        with backend.thread_generator(np.random.default_rng([seed, position])):
            batch.items[slot] = self.dataset[index]

    def _finish_batch(self, batch, keep):
        items = batch.items if keep is None else [s for s, k in zip(batch.items, keep) if k]
        return self.collate_fn(items) if self._auto_collation else self.collate_fn(items[0])

    def _describe_failure(self, index, exc):
        note = f"(raised in DataLoader while loading dataset[{index}])"
        if hasattr(exc, "add_note"):   # keep its type, as torch re-raises it in the caller
            exc.add_note(note)
            return exc
        err = LoaderError(f"{type(exc).__name__}: {exc} {note}")
        err.__cause__ = exc
        return err

    def _worker_started(self, number):
        if number is None:      # num_workers == 0: the caller's thread, as torch's main process
            return
        _local.info = WorkerInfo(number, self.num_workers, self._pass_seed + number,
                                 self.dataset)
        if self.worker_init_fn is not None:
            self.worker_init_fn(number)
