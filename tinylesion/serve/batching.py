"""Dynamic batching: requests that arrive together are answered by one call on their batch."""
import collections
import threading
import time
from concurrent.futures import Future


class Batcher:
    """Collect items submitted from any thread into batches for `run_batch(list) -> list`.

    One worker thread takes the first waiting item, then keeps taking items until it has
    `max_batch` of them or `max_wait` seconds have passed since the first, and calls run_batch
    once on them all; each submitter gets its own result (or the batch's exception) through
    the Future that submit() returned.
    """

    def __init__(self, run_batch, max_batch=32, max_wait=0.010, name="batcher"):
        if max_batch < 1 or max_wait < 0:
            raise ValueError(f"max_batch must be >= 1 and max_wait >= 0, got {max_batch}, "
                             f"{max_wait}")
        self.run_batch, self.max_batch, self.max_wait = run_batch, int(max_batch), max_wait
        self.items = self.batches = self.largest = 0     # what /health reports
        self._waiting = collections.deque()    # (item, future) pairs not yet in a batch
        self._changed = threading.Condition(threading.Lock())
        self._stopped = False
        self._thread = threading.Thread(target=self._work, name=name, daemon=True)
        self._thread.start()

    def submit(self, item):
        """A Future for run_batch's answer to `item`."""
        future = Future()
        with self._changed:
            if self._stopped:
                raise RuntimeError("the batcher is stopped")
            self._waiting.append((item, future))
            # NOTE: the worker is woken only when it has something to do: by the first item
            # (it then sleeps until max_wait has passed) and by the item that fills a batch.
            # Waking it for every item would hand the GIL back and forth once per request.
            if len(self._waiting) in (1, self.max_batch):
                self._changed.notify()
        return future

    def stop(self):
        """Finish the batches already queued, then end the worker thread."""
        with self._changed:
            self._stopped = True
            self._changed.notify()
        self._thread.join()

    def _collect(self):
        """The next batch of (item, future) pairs; None when stopped with nothing waiting."""
        with self._changed:
            while not self._waiting:
                if self._stopped:
                    return None
                self._changed.wait()
            deadline = time.monotonic() + self.max_wait
            while len(self._waiting) < self.max_batch and not self._stopped:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._changed.wait(left)
            n = min(len(self._waiting), self.max_batch)
            return [self._waiting.popleft() for _ in range(n)]

    def _work(self):
        while True:
            batch = self._collect()
            if batch is None:
                return
            futures = [f for _, f in batch if f.set_running_or_notify_cancel()]
            items = [item for item, f in batch if f in futures]
            if not items:
                continue
            self.items += len(items)
            self.batches += 1
            self.largest = max(self.largest, len(items))
            try:
                results = self.run_batch(items)
                if len(results) != len(items):
                    raise RuntimeError(f"run_batch gave {len(results)} answers for "
                                       f"{len(items)} items")
            except BaseException as exc:  # every waiting request learns of it
                for f in futures:
                    f.set_exception(exc)
                continue
            for f, result in zip(futures, results):
                f.set_result(result)
