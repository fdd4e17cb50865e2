"""The streaming loader: threads decode into uint8 batches; device transfer overlapped."""
import bisect
import queue
import threading
import warnings

import numpy as np

from kernels.threads import apply_memory_policy

from .. import backend

_THREAD_PREFIX = "tinylesion-loader"
_POLL = 0.1          # seconds between checks of the stop flag while waiting
_JOIN_TIMEOUT = 2.0  # seconds to wait for a worker to finish its current sample
# Freed memory malloc keeps for reuse while loading: each image's buffers (up to ~1 MB for a
# 600x450 decode) then come from the heap instead of fresh pages, whose faults cost ~10% of
# the time per image and, with two threads, wait on each other.
_KEEP_FREED_BYTES = 32 << 20


class LoaderError(RuntimeError):
    """A sample failed inside the loader; the message names its index and path."""


def _path_of(dataset, index):
    try:
        return str(dataset.paths[index])
    except Exception:
        return f"<sample {index}>"


def _describe_failure(dataset, index, exc):
    """The exception to raise in the consumer for `exc` raised while loading `index`."""
    path = _path_of(dataset, index)
    if path in str(exc):
        # Already names the file (ImageReadError does): keep its type so callers can catch it.
        if hasattr(exc, "add_note"):  # Python >= 3.11
            exc.add_note(f"(raised in the loader while loading sample {index})")
        return exc
    err = LoaderError(f"loading sample {index} ({path}) failed: {type(exc).__name__}: {exc}")
    err.__cause__ = exc
    return err


class _Batch:
    """One batch being filled: its images, labels, and which slots failed."""

    __slots__ = ("images", "labels", "remaining", "errors")

    def __init__(self, size, shape, labels):
        self.images = np.empty((size,) + shape, np.uint8)
        self.labels = labels
        self.remaining = size
        self.errors = {}     # slot -> ("skip", slot, index) or ("error", slot, exception)


class _Pass:
    """The state shared by the consumer and the workers during one epoch.

    What a batch holds and how a sample is loaded into it are the loader's (hooks _new_batch,
    _load_slot, _finish_batch, _describe_failure): Loader fills uint8 image arrays,
    tinylesion.utils.data.DataLoader fills lists of Python samples and collates them. Batches
    are consecutive runs of the serving order: all `batch_size` long but the last, unless the
    loader gives their sizes (`batch_sizes`, as a batch sampler does).

    NOTE: rather than whole batches through a queue.Queue, the workers take short runs of
    samples in serving order and write each straight into its slot of its batch, so every thread
    helps finish the batch the consumer waits for next. The bound of a queue is kept as a window:
    no sample is started in batch b unless b < (batches consumed) + prefetch, so at most
    `prefetch` batches exist besides the one the caller holds.
    """

    def __init__(self, loader, order, epoch, batch_sizes=None):
        self.loader = loader
        self.order = order
        self.epoch = epoch
        if batch_sizes is None:
            bs = loader.batch_size
            nsamples = loader._num_used(len(order))
            batch_sizes = [bs] * (nsamples // bs) + ([nsamples % bs] if nsamples % bs else [])
        # starts[b] is the serving position of batch b's first sample; starts[-1] the total
        self.starts = [0]
        for size in batch_sizes:
            self.starts.append(self.starts[-1] + int(size))
        self.nsamples = self.starts[-1]
        self.nbatches = len(self.starts) - 1
        self.cond = threading.Condition()
        self.next_task = 0
        self.consumed = 0          # batches handed to the consumer
        self.limit = self.nbatches  # no task beyond this batch (lowered when one fails)
        self.batches = {}
        self.stop = False
        self.skipped = []
        # where each served sample stands in the whole epoch's order (a shard's sampler says;
        # else its own place): the augmentation draw's position
        positions = getattr(loader.sampler, "positions", None)
        self.positions = None if positions is None else np.asarray(positions(epoch), np.int64)
        # A complete cache copies whole runs of samples in one call (CachedDataset.gather_into)
        self.gather = loader._gather_function()

    def batch_of(self, t):
        """The number of the batch that serving position t belongs to."""
        return bisect.bisect_right(self.starts, t) - 1

    def batch(self, b):
        """The batch object of batch number b (allocated on first use; call under the lock)."""
        obj = self.batches.get(b)
        if obj is None:
            obj = self.batches[b] = self.loader._new_batch(
                self.order[self.starts[b]:self.starts[b + 1]])
        return obj

    def run_task(self, t, batch):
        """Load sample t into its slot; a failure is recorded on the batch, never raised."""
        slot = t - self.starts[self.batch_of(t)]
        index = int(self.order[t])
        try:
            position = t if self.positions is None else int(self.positions[t])
            self.loader._load_slot(index, position, self.epoch, batch, slot)
            return None
        except Exception as exc:
            if self.loader.skip_bad and isinstance(exc, OSError):
                return ("skip", slot, index)
            return ("error", slot, self.loader._describe_failure(index, exc))

    def gathered(self, t0, t1, batch):
        """True when samples t0..t1-1 were copied into their slots by the dataset in one call."""
        if self.gather is None:
            return False
        s0 = t0 - self.starts[self.batch_of(t0)]
        try:
            return bool(self.gather(self.order[t0:t1], batch.images[s0:s0 + t1 - t0]))
        except Exception:   # loaded one by one instead, which names any failure
            return False

    def record(self, batch, b, outcomes, done):
        """Account for `done` finished tasks of batch b (call under the lock)."""
        for outcome in outcomes:
            batch.errors[outcome[1]] = outcome
            if outcome[0] == "error":
                self.limit = min(self.limit, b + 1)
        batch.remaining -= done
        if batch.remaining == 0:
            self.cond.notify_all()

    def worker(self, chunk, number):
        """Take runs of up to `chunk` samples in order; never more than `prefetch` batches ahead."""
        prefetch = self.loader.prefetch
        cond = self.cond
        try:
            self.loader._worker_started(number)
        except Exception as exc:   # raised in the consumer, which sees the threads stop
            with cond:
                self.worker_error = exc
                self.limit = 0
                cond.notify_all()
            return
        while True:
            with cond:
                while True:
                    if self.stop or self.next_task >= self.nsamples:
                        return
                    b = self.batch_of(self.next_task)
                    if b >= self.limit:
                        return
                    if b < self.consumed + prefetch:
                        break
                    cond.wait(_POLL * 5)
                t0 = self.next_task
                t1 = min(t0 + chunk, self.starts[b + 1])
                self.next_task = t1
                batch = self.batch(b)
            outcomes = []
            if not self.gathered(t0, t1, batch):
                for t in range(t0, t1):
                    if self.stop:
                        return
                    outcome = self.run_task(t, batch)
                    if outcome is not None:
                        outcomes.append(outcome)
            with cond:
                self.record(batch, b, outcomes, t1 - t0)

    def finish(self, b, batch):
        """Turn a complete batch into what the consumer gets (or raise its first error)."""
        if batch.errors:
            slots = sorted(batch.errors)
            for slot in slots:
                kind, _, what = batch.errors[slot]
                if kind == "error":
                    raise what
            self.skipped.extend(batch.errors[s][2] for s in slots)
            keep = np.ones(self.starts[b + 1] - self.starts[b], bool)
            keep[slots] = False
            return self.loader._finish_batch(batch, keep)
        return self.loader._finish_batch(batch, None)

    def inline(self):
        """num_workers == 0: load every batch in the consumer's thread."""
        if self.nbatches:
            self.loader._worker_started(None)
        for b in range(self.nbatches):
            batch = self.batch(b)
            t0, t1 = self.starts[b], self.starts[b + 1]
            for t in range(t0, t0 if self.gathered(t0, t1, batch) else t1):
                outcome = self.run_task(t, batch)
                if outcome is not None:
                    batch.errors[outcome[1]] = outcome
                    if outcome[0] == "error":
                        break
            del self.batches[b]
            yield self.finish(b, batch)

    def threaded(self, num_workers):
        """Start the workers and yield finished batches in order; always stop the workers."""
        # Runs of samples per lock round trip: fewer hand-offs when samples are cheap (a cache),
        # while every batch is still shared by the threads.
        first = self.starts[1] - self.starts[0] if self.nbatches else 1   # the batch size
        chunk = max(1, first // (2 * num_workers))
        self.worker_error = None
        threads = [threading.Thread(target=self.worker, args=(chunk, k),
                                    name=f"{_THREAD_PREFIX}-{k}", daemon=True)
                   for k in range(num_workers)]
        try:
            for th in threads:
                th.start()
            for b in range(self.nbatches):
                with self.cond:
                    while True:
                        batch = self.batches.get(b)
                        if batch is not None and batch.remaining == 0:
                            break
                        if self.worker_error is not None:
                            raise self.worker_error
                        if not any(th.is_alive() for th in threads):
                            raise LoaderError("the loader's worker threads stopped unexpectedly")
                        # A timed wait keeps Ctrl-C (delivered to this thread) prompt.
                        self.cond.wait(_POLL)
                    del self.batches[b]
                    self.consumed = b + 1
                    self.cond.notify_all()
                yield self.finish(b, batch)
        finally:
            with self.cond:
                self.stop = True
                self.batches.clear()
                self.cond.notify_all()
            for th in threads:
                th.join(_JOIN_TIMEOUT)


class Loader:
    """Stream (images, labels) batches from a dataset with a pool of threads.

    Yields `images` uint8 (B, 3, H, W) C-contiguous and `labels` int64 (B,); each yielded array
    is freshly allocated and owned by the caller. The order is `sampler.indices(epoch)` with a
    sampler, a permutation from default_rng([seed, epoch]) with shuffle, else dataset order;
    augmentation of the sample at position p draws from default_rng([seed, epoch, p]) (p in
    the whole epoch's order when the sampler is a rank's shard with `positions(epoch)`). So the
    batches depend on (seed, epoch) only, never on num_workers (0 loads in the caller's thread).
    The epoch is the counter set by set_epoch, incremented after each pass begins.
    With skip_bad, samples whose load raises OSError are left out of their batch (which is then
    shorter) and counted in `skipped` (for the latest pass) with one warning per pass.
    With cache_dir, the dataset is served through a CachedDataset there (filled on the first
    pass, or by `loader.dataset.build()`), so later epochs do no JPEG work.
    A pass asks glibc's malloc to keep freed memory for reuse, up to 32 MB a block
    (kernels.threads.keep_freed_memory; not with TINYLESION_KEEP_FREED_MEMORY=0): the process
    keeps up to its peak memory.
    """

    def __init__(self, dataset, batch_size=32, shuffle=False, num_workers=2, seed=0,
                 drop_last=False, augment=None, sampler=None, prefetch=4, skip_bad=False,
                 cache_dir=None):
        for name, value, low in (("batch_size", batch_size, 1), ("num_workers", num_workers, 0),
                                 ("prefetch", prefetch, 1)):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
                raise ValueError(f"Loader: {name} must be an integer >= {low}, got {value!r}")
        if sampler is not None and shuffle:
            raise ValueError("Loader: sampler and shuffle=True are mutually exclusive "
                             "(the sampler decides the order)")
        if augment is not None and not callable(augment):
            raise TypeError(f"Loader: augment must be callable (image, rng) -> image, "
                            f"got {type(augment).__name__}")
        if cache_dir is not None:
            from .cache import CachedDataset
            dataset = dataset if isinstance(dataset, CachedDataset) else \
                CachedDataset(dataset, cache_dir)
        if not (hasattr(dataset, "image_size") and hasattr(dataset, "__len__")):
            raise TypeError(f"Loader: the dataset must be one of tinylesion.data's image "
                            f"datasets (with image_size and len()), got {type(dataset).__name__}"
                            f"; for tensors use tinylesion.utils.data.DataLoader")
        width, height = dataset.image_size
        self.dataset = dataset
        self.batch_size = int(batch_size)
        self.shuffle = bool(shuffle)
        self.num_workers = int(num_workers)
        self.seed = int(seed)
        self.drop_last = bool(drop_last)
        self.augment = augment
        self.sampler = sampler
        self.prefetch = int(prefetch)
        self.skip_bad = bool(skip_bad)
        self.epoch = 0
        self.skipped = 0
        self.skipped_paths = []
        self._sample_shape = (3, int(height), int(width))

    def set_epoch(self, epoch):
        """Make the next pass use `epoch` (its order and augmentation draws)."""
        self.epoch = int(epoch)

    def _num_used(self, n):
        return n - n % self.batch_size if self.drop_last else n

    def __len__(self):
        n = len(self.sampler) if self.sampler is not None else len(self.dataset)
        n = self._num_used(n)
        return -(-n // self.batch_size)

    def order(self, epoch):
        """The dataset indices of one epoch, in the order they are served."""
        n = len(self.dataset)
        if self.sampler is not None:
            order = np.asarray(self.sampler.indices(epoch), dtype=np.int64)
            if order.ndim != 1 or (order.size and (order.min() < 0 or order.max() >= n)):
                raise ValueError(f"Loader: the sampler gave indices outside [0, {n}) for a "
                                 f"dataset of {n} samples")
            return order
        if self.shuffle:
            return np.random.default_rng([self.seed, epoch]).permutation(n).astype(np.int64)
        return np.arange(n, dtype=np.int64)

    # The hooks _Pass calls: a batch is uint8 images with the dataset's labels.
    def _gather_function(self):
        return getattr(self.dataset, "gather_into", None) if self.augment is None else None

    def _new_batch(self, indices):
        return _Batch(len(indices), self._sample_shape, self._targets[indices])

    def _load_slot(self, index, position, epoch, batch, slot):
        self._load_into(index, position, epoch, batch.images[slot])

    def _finish_batch(self, batch, keep):
        if keep is None:
            return batch.images, batch.labels
        return np.ascontiguousarray(batch.images[keep]), batch.labels[keep]

    def _describe_failure(self, index, exc):
        return _describe_failure(self.dataset, index, exc)

    def _worker_started(self, number):
        pass

    def _load_into(self, index, position, epoch, out):
        """Load sample `index` (served at `position`) into the (3, H, W) slot `out`."""
        image = self.dataset.load(index)
        H, W = out.shape[1:]
        if not (isinstance(image, np.ndarray) and image.dtype == np.uint8
                and image.shape == (H, W, 3)):
            got = f"{getattr(image, 'dtype', type(image).__name__)} " \
                  f"{getattr(image, 'shape', '')}"
            raise ValueError(f"the dataset returned {got.strip()}; expected uint8 ({H}, {W}, 3) "
                             f"for image_size {self.dataset.image_size}")
        if self.augment is None:
            out[...] = image.transpose(2, 0, 1)
            return
        rng = np.random.default_rng([self.seed, epoch, position])
        warp_into = getattr(self.augment, "warp_into", None)
        if warp_into is not None:
            warp_into(image, rng, out)
        else:
            image = np.asarray(self.augment(image, rng))
            if image.shape != (H, W, 3):
                raise ValueError(f"augment returned shape {image.shape}; expected ({H}, {W}, 3)")
            out[...] = image.transpose(2, 0, 1)

    def __iter__(self):
        epoch = self.epoch
        self.epoch += 1
        return self._iterate(epoch)

    def _iterate(self, epoch):
        self._targets = np.asarray(self.dataset.targets, dtype=np.int64)
        state = _Pass(self, self.order(epoch), epoch)
        apply_memory_policy(_KEEP_FREED_BYTES)
        self.skipped = 0
        self.skipped_paths = []
        workers = min(self.num_workers, state.nsamples)
        gen = state.inline() if workers == 0 else state.threaded(workers)
        try:
            for images, labels in gen:
                if len(labels):
                    yield images, labels
        finally:
            gen.close()
            self.skipped = len(state.skipped)
            self.skipped_paths = [_path_of(self.dataset, i) for i in state.skipped]
            if self.skipped:
                first = ", ".join(self.skipped_paths[:3])
                warnings.warn(f"Loader skipped {self.skipped} unreadable image(s) in epoch "
                              f"{epoch} (e.g. {first})", stacklevel=2)


# ---------------------------------------------------------------------------------------------
# Device transfer: batch i+1 goes to the device while the model computes on batch i.

class _HostToCpu:
    """CPU "transfer": only the normalisation, done in the transfer thread."""

    def __init__(self, mean, std, dtype):
        from .transforms import normalize
        self.normalize, self.mean, self.std, self.dtype = normalize, mean, std, dtype

    def request_token(self):
        return None

    def convert(self, images, labels, token):
        x = images.astype(self.dtype) if self.mean is None else \
            self.normalize(images, self.mean, self.std, np, self.dtype)
        return x, labels, None

    def ready(self, marker):
        pass


class _HostToCupy:
    """Copy and normalise on a separate non-blocking CUDA stream (all the direct CuPy calls)."""

    def __init__(self, mean, std, dtype):
        from .transforms import normalize
        self.cp = backend.cupy_module()
        self.normalize, self.mean, self.std, self.dtype = normalize, mean, std, dtype
        self.device_id = self.cp.cuda.Device().id
        self.stream = None

    def request_token(self):
        # Recorded on the consumer's stream when it asks for the next batch: every kernel
        # reading the previous batch is queued before it.
        event = self.cp.cuda.Event()
        event.record(self.cp.cuda.get_current_stream())
        return event

    def convert(self, images, labels, token):
        cp = self.cp
        with cp.cuda.Device(self.device_id):
            if self.stream is None:
                self.stream = cp.cuda.Stream(non_blocking=True)
            # NOTE: this stream's memory pool may hand out the memory of a batch the consumer
            # has just dropped; waiting on the consumer's event first makes the reuse safe.
            if token is not None:
                self.stream.wait_event(token)
            with self.stream:
                x = cp.asarray(images)
                y = cp.asarray(labels)
                x = x.astype(self.dtype) if self.mean is None else \
                    self.normalize(x, self.mean, self.std, cp, self.dtype)
                done = cp.cuda.Event()
                done.record(self.stream)
        return x, y, done

    def ready(self, marker):
        # The consumer's stream waits for the copy on the device; the host does not block.
        if marker is not None:
            self.cp.cuda.get_current_stream().wait_event(marker)


class DeviceLoader:
    """Wrap a Loader: yield (float32 normalised images, int64 labels) on `device`.

    A background thread moves batch i+1 to the device (CuPy: on its own stream) and normalises
    it, ((x/255) - mean)/std per channel, while the caller computes on batch i. With mean=None
    the images are only cast to `dtype` (0..255). Each pass runs one pass of the wrapped loader.
    """

    def __init__(self, loader, device="cpu", mean=None, std=None, dtype=np.float32):
        if (mean is None) != (std is None):
            raise ValueError("DeviceLoader: give both mean and std, or neither")
        self.loader = loader
        self.device = backend.as_device(device)
        self.mean = None if mean is None else np.asarray(mean, dtype=np.float64)
        self.std = None if std is None else np.asarray(std, dtype=np.float64)
        if mean is not None:
            from .transforms import check_mean_std
            if self.mean.shape != self.std.shape or self.mean.ndim != 1:
                raise ValueError(f"DeviceLoader: mean and std need one value per channel each, "
                                 f"got {self.mean.tolist()} and {self.std.tolist()}")
            check_mean_std(self.mean, self.std, "DeviceLoader")
        self.dtype = dtype

    def __len__(self):
        return len(self.loader)

    def set_epoch(self, epoch):
        """Set the wrapped loader's next epoch."""
        self.loader.set_epoch(epoch)

    def _transfer(self):
        if self.device.name == "cpu":
            return _HostToCpu(self.mean, self.std, self.dtype)
        return _HostToCupy(self.mean, self.std, self.dtype)

    def __iter__(self):
        return self._iterate(self._transfer(), iter(self.loader))

    def _iterate(self, transfer, host_batches):
        requests = queue.Queue()
        results = queue.Queue()
        stop = threading.Event()
        done = object()

        def run():
            try:
                while not stop.is_set():
                    try:
                        token = requests.get(timeout=_POLL)
                    except queue.Empty:
                        continue
                    item = next(host_batches, done)
                    if item is done:
                        results.put(("end", None))
                        return
                    results.put(("ok", transfer.convert(item[0], item[1], token)))
            except BaseException as exc:  # handed to the consumer, raised there
                results.put(("error", exc))
            finally:
                host_batches.close()

        thread = threading.Thread(target=run, name=f"{_THREAD_PREFIX}-device", daemon=True)
        try:
            thread.start()
            requests.put(transfer.request_token())
            while True:
                requests.put(transfer.request_token())
                while True:
                    try:
                        kind, value = results.get(timeout=_POLL)
                        break
                    except queue.Empty:
                        if not thread.is_alive() and results.empty():
                            raise LoaderError("the device transfer thread stopped unexpectedly")
                if kind == "end":
                    return
                if kind == "error":
                    raise value
                x, y, marker = value
                transfer.ready(marker)
                yield x, y
        finally:
            stop.set()
            thread.join(_JOIN_TIMEOUT * 2)
