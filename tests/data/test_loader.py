"""Tests of the threaded Loader and DeviceLoader: order, determinism, errors, clean shutdown."""
import _thread
import threading
import time
import types

import numpy as np
import pytest

from tinylesion import backend
from tinylesion.data.loader import DeviceLoader, Loader, LoaderError
from tinylesion.data.transforms import Augment, normalize


class FakeReadError(OSError):
    """Stands in for ImageReadError: an OSError whose message names the file."""


class FakeDataset:
    """A dataset following the interface; sample i is a deterministic pattern of i."""

    def __init__(self, n=23, size=(6, 5), bad=(), delay=0.0, fail_with=None, num_classes=3):
        self.image_size = size
        self.classes = [f"c{k}" for k in range(num_classes)]
        self.targets = np.arange(n, dtype=np.int64) % num_classes
        self.paths = [f"/data/img_{i:04d}.jpg" for i in range(n)]
        self.metadata = [{} for _ in range(n)]
        self.groups = np.arange(n)
        self.bad = set(bad)
        self.delay = delay
        self.fail_with = fail_with
        self.calls = 0
        self._lock = threading.Lock()

    def __len__(self):
        return len(self.targets)

    def image(self, i):
        W, H = self.image_size
        y, x = np.mgrid[0:H, 0:W]
        return np.stack([(i + x) % 256, (3 * i + y) % 256, (i * 7 + x * y) % 256],
                        axis=-1).astype(np.uint8)

    def load(self, i):
        with self._lock:
            self.calls += 1
        if self.delay:
            time.sleep(self.delay)
        if i in self.bad:
            if self.fail_with is not None:
                raise self.fail_with
            raise FakeReadError(f"cannot read image file {self.paths[i]}: truncated JPEG")
        return self.image(i)


_BEFORE = set()


@pytest.fixture(autouse=True)
def _threads_before_the_test():
    """Remember the threads alive before each test, so only the test's own count as leaked."""
    _BEFORE.clear()
    _BEFORE.update(threading.enumerate())
    yield


def loader_threads():
    return [t for t in threading.enumerate()
            if t.name.startswith("tinylesion-loader") and t not in _BEFORE]


def wait_no_threads(timeout=1.0):
    """The test's loader threads still alive after waiting up to `timeout` seconds."""
    end = time.monotonic() + timeout
    while loader_threads() and time.monotonic() < end:
        time.sleep(0.01)
    return loader_threads()


def collect(loader):
    return [(x.copy(), y.copy()) for x, y in loader]


def test_batches_shape_dtype_and_length():
    ds = FakeDataset(n=23)
    loader = Loader(ds, batch_size=5, num_workers=2)
    batches = list(loader)
    assert len(loader) == len(batches) == 5
    for k, (x, y) in enumerate(batches):
        assert x.dtype == np.uint8 and x.flags.c_contiguous and x.shape[1:] == (3, 5, 6)
        assert y.dtype == np.int64 and x.shape[0] == y.shape[0]
        idx = np.arange(5 * k, 5 * k + len(y))
        np.testing.assert_array_equal(y, ds.targets[idx])
        for j, i in enumerate(idx):      # dataset order, HWC -> CHW
            np.testing.assert_array_equal(x[j], ds.image(i).transpose(2, 0, 1))
    assert [len(y) for _, y in batches] == [5, 5, 5, 5, 3]


def test_drop_last():
    ds = FakeDataset(n=23)
    loader = Loader(ds, batch_size=5, drop_last=True, shuffle=True, num_workers=2)
    sizes = [len(y) for _, y in loader]
    assert len(loader) == 4 and sizes == [5, 5, 5, 5]


@pytest.mark.parametrize("workers", [0, 1, 3])
def test_every_sample_once_per_epoch_and_epochs_reshuffle(workers):
    ds = FakeDataset(n=31)
    ds.targets = np.arange(31, dtype=np.int64)      # labels identify the sample
    loader = Loader(ds, batch_size=4, shuffle=True, num_workers=workers, seed=5)
    orders = []
    for _ in range(3):
        seen = np.concatenate([y for _, y in loader])
        assert sorted(seen) == list(range(31))
        orders.append(seen)
    assert not np.array_equal(orders[0], orders[1])
    assert not np.array_equal(orders[1], orders[2])
    loader.set_epoch(1)
    np.testing.assert_array_equal(np.concatenate([y for _, y in loader]), orders[1])


def test_same_batches_for_any_number_of_workers():
    ds = FakeDataset(n=29, size=(9, 7))
    aug = Augment(rotation_range=30, zoom_range=0.2, width_shift_range=0.2,
                  height_shift_range=2, horizontal_flip=True, vertical_flip=True)
    runs = []
    for workers in (0, 1, 3):
        loader = Loader(ds, batch_size=4, shuffle=True, num_workers=workers, seed=11,
                        augment=aug, prefetch=2)
        runs.append([collect(loader), collect(loader)])      # epochs 0 and 1
    for other in runs[1:]:
        for epoch in range(2):
            for (x0, y0), (x1, y1) in zip(runs[0][epoch], other[epoch]):
                np.testing.assert_array_equal(x0, x1)
                np.testing.assert_array_equal(y0, y1)
    # augmentation really happened and differs between epochs
    plain = np.stack([ds.image(i).transpose(2, 0, 1) for i in range(29)])
    ep0 = np.concatenate([x for x, _ in runs[0][0]])
    ep1 = np.concatenate([x for x, _ in runs[0][1]])
    assert not np.array_equal(ep0, ep1)
    assert not np.array_equal(np.sort(ep0.reshape(29, -1), 0), np.sort(plain.reshape(29, -1), 0))


def test_augmentation_draws_depend_on_seed_epoch_position():
    ds = FakeDataset(n=6, size=(8, 8))
    aug = Augment(rotation_range=40, horizontal_flip=True)
    loader = Loader(ds, batch_size=6, num_workers=2, seed=3, augment=aug)
    x, _ = next(iter(loader))
    for p in range(6):
        rng = np.random.default_rng([3, 0, p])
        np.testing.assert_array_equal(x[p], aug(ds.image(p), rng).transpose(2, 0, 1))


def test_plain_callable_augment():
    ds = FakeDataset(n=7)
    loader = Loader(ds, batch_size=3, num_workers=2, augment=lambda img, rng: 255 - img)
    x = np.concatenate([b for b, _ in loader])
    assert np.array_equal(x[4], 255 - ds.image(4).transpose(2, 0, 1))


class ListSampler:
    def __init__(self, per_epoch):
        self.per_epoch = per_epoch

    def indices(self, epoch):
        return np.asarray(self.per_epoch[epoch % len(self.per_epoch)])

    def __len__(self):
        return len(self.per_epoch[0])


def test_sampler_gives_the_order():
    ds = FakeDataset(n=5)
    ds.targets = np.arange(5, dtype=np.int64)
    sampler = ListSampler([[4, 4, 0, 1, 4, 2, 3], [0, 1, 2, 3, 4, 4, 4]])
    loader = Loader(ds, batch_size=3, sampler=sampler, num_workers=2)
    assert len(loader) == 3
    assert np.concatenate([y for _, y in loader]).tolist() == [4, 4, 0, 1, 4, 2, 3]
    assert np.concatenate([y for _, y in loader]).tolist() == [0, 1, 2, 3, 4, 4, 4]
    with pytest.raises(ValueError, match="mutually exclusive"):
        Loader(ds, sampler=sampler, shuffle=True)
    bad = Loader(ds, sampler=ListSampler([[0, 5]]))
    with pytest.raises(ValueError, match="outside"):
        list(bad)


def test_yielded_batches_are_owned_by_the_caller():
    ds = FakeDataset(n=40, size=(4, 4))
    loader = Loader(ds, batch_size=2, num_workers=3, prefetch=2)
    held = list(loader)                 # hold every batch while the workers run ahead
    x = np.concatenate([b for b, _ in held])
    for i in range(40):
        np.testing.assert_array_equal(x[i], ds.image(i).transpose(2, 0, 1))


def test_workers_stay_within_prefetch():
    ds = FakeDataset(n=200, size=(4, 4))
    loader = Loader(ds, batch_size=4, num_workers=2, prefetch=3)
    it = iter(loader)
    next(it)
    time.sleep(0.3)                     # the consumer stalls: workers must not run ahead
    assert ds.calls <= 4 * (1 + 3)
    it.close()
    assert wait_no_threads() == []


@pytest.mark.parametrize("workers", [0, 2])
def test_worker_error_names_the_path_at_its_batch(workers):
    ds = FakeDataset(n=20, bad={13})
    loader = Loader(ds, batch_size=4, num_workers=workers)
    got = []
    with pytest.raises(FakeReadError, match="img_0013.jpg"):
        for _, y in loader:
            got.append(len(y))
    assert got == [4, 4, 4]              # batches before the failing one arrive in order
    assert wait_no_threads() == []


def test_error_without_path_is_wrapped_and_chained():
    cause = ValueError("bad pixel format")
    ds = FakeDataset(n=10, bad={3}, fail_with=cause)
    with pytest.raises(LoaderError, match="img_0003.jpg") as info:
        list(Loader(ds, batch_size=4, num_workers=2))
    assert info.value.__cause__ is cause
    assert wait_no_threads() == []


def test_wrong_image_shape_is_a_clear_error():
    ds = FakeDataset(n=4)
    ds.load = lambda i: np.zeros((2, 2, 3), np.uint8)
    with pytest.raises(LoaderError, match=r"img_0000.jpg.*expected uint8 \(5, 6, 3\)"):
        list(Loader(ds, batch_size=2, num_workers=0))


@pytest.mark.parametrize("workers", [0, 2])
def test_skip_bad_skips_and_counts(workers):
    ds = FakeDataset(n=12, bad={1, 2, 9})
    ds.targets = np.arange(12, dtype=np.int64)
    loader = Loader(ds, batch_size=4, num_workers=workers, skip_bad=True)
    with pytest.warns(UserWarning, match="skipped 3 unreadable"):
        batches = list(loader)
    labels = np.concatenate([y for _, y in batches])
    assert labels.tolist() == [0, 3, 4, 5, 6, 7, 8, 10, 11]
    x = np.concatenate([b for b, _ in batches])
    for j, i in enumerate(labels):
        np.testing.assert_array_equal(x[j], ds.image(i).transpose(2, 0, 1))
    assert loader.skipped == 3 and loader.skipped_paths[0].endswith("img_0001.jpg")
    # other failures are still raised with skip_bad
    ds2 = FakeDataset(n=4, bad={1}, fail_with=KeyError("x"))
    with pytest.raises(LoaderError):
        list(Loader(ds2, batch_size=2, skip_bad=True))


def test_break_stops_threads_promptly():
    ds = FakeDataset(n=400, delay=0.002)
    baseline = set(threading.enumerate())
    for _ in Loader(ds, batch_size=4, num_workers=3):
        break
    start = time.monotonic()
    assert wait_no_threads(1.0) == []
    assert time.monotonic() - start < 1.0
    assert set(threading.enumerate()) <= baseline


def test_exception_in_loop_body_stops_threads():
    ds = FakeDataset(n=400, delay=0.002)
    with pytest.raises(RuntimeError, match="training step failed"):
        for _ in Loader(ds, batch_size=4, num_workers=2):
            raise RuntimeError("training step failed")
    assert wait_no_threads(1.0) == []


def test_keyboard_interrupt_while_waiting_stops_threads():
    ds = FakeDataset(n=400, delay=0.02)    # ~4 s of work: the interrupt comes long before
    timer = threading.Timer(0.3, _thread.interrupt_main)
    timer.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            for _ in Loader(ds, batch_size=8, num_workers=2):
                pass
    finally:
        timer.cancel()
    assert wait_no_threads(1.0) == []


def test_abandoned_iterator_stops_threads():
    ds = FakeDataset(n=400, delay=0.001)
    it = iter(Loader(ds, batch_size=4, num_workers=2))
    next(it)
    del it
    assert wait_no_threads(1.0) == []


def test_invalid_arguments():
    ds = FakeDataset(n=4)
    for kwargs in ({"batch_size": 0}, {"num_workers": -1}, {"prefetch": 0},
                   {"batch_size": 2.5}):
        with pytest.raises(ValueError, match=next(iter(kwargs))):
            Loader(ds, **kwargs)
    with pytest.raises(TypeError, match="augment"):
        Loader(ds, augment="flip")


# ----- DeviceLoader -------------------------------------------------------------------------

MEAN, STD = [0.5, 0.4, 0.3], [0.2, 0.25, 0.3]


def test_device_loader_cpu_normalises_in_background():
    ds = FakeDataset(n=11)
    host = list(Loader(ds, batch_size=4, shuffle=True, seed=2))
    dl = DeviceLoader(Loader(ds, batch_size=4, shuffle=True, seed=2), "cpu", MEAN, STD)
    assert len(dl) == 3
    got = list(dl)
    assert len(got) == 3
    for (x, y), (hx, hy) in zip(got, host):
        assert x.dtype == np.float32 and y.dtype == np.int64
        np.testing.assert_allclose(x, normalize(hx, MEAN, STD), rtol=1e-6)
        ref = (hx / 255.0 - np.reshape(MEAN, (1, 3, 1, 1))) / np.reshape(STD, (1, 3, 1, 1))
        np.testing.assert_allclose(x, ref, rtol=1e-5, atol=1e-5)
        np.testing.assert_array_equal(y, hy)
    assert wait_no_threads() == []
    raw = next(iter(DeviceLoader(Loader(ds, batch_size=4), "cpu")))[0]
    assert raw.dtype == np.float32 and raw.max() > 1


def test_device_loader_errors_and_break():
    ds = FakeDataset(n=40, bad={9})
    dl = DeviceLoader(Loader(ds, batch_size=4, num_workers=2), "cpu", MEAN, STD)
    with pytest.raises(FakeReadError, match="img_0009.jpg"):
        list(dl)
    assert wait_no_threads() == []
    ds = FakeDataset(n=400, delay=0.001)
    for _ in DeviceLoader(Loader(ds, batch_size=4, num_workers=2), "cpu"):
        break
    assert wait_no_threads() == []
    with pytest.raises(ValueError, match="both mean and std"):
        DeviceLoader(Loader(ds), "cpu", mean=MEAN)


class _FakeCupy:
    """Just enough of CuPy's API (NumPy underneath) to run DeviceLoader's GPU path here."""

    def __init__(self):
        self.log = []
        fake = self

        class Stream:
            def __init__(self, non_blocking=False):
                assert non_blocking, "the copy stream must not sync with the default stream"
                self.name = "copy"

            def wait_event(self, event):
                fake.log.append(("copy waits", event.id))

            def __enter__(self):
                fake.log.append(("enter copy", threading.current_thread().name))
                return self

            def __exit__(self, *exc):
                return False

        class Event:
            count = 0

            def __init__(self):
                Event.count += 1
                self.id = Event.count

            def record(self, stream):
                fake.log.append(("record", self.id, stream.name))

        class Device:
            def __init__(self, i=0):
                self.id = i

            def __enter__(self):
                return self

            def __exit__(self, *exc):
                return False

        main_stream = types.SimpleNamespace(
            name="main", wait_event=lambda e: fake.log.append(("main waits", e.id)))
        self.cuda = types.SimpleNamespace(Stream=Stream, Event=Event, Device=Device,
                                          get_current_stream=lambda: main_stream)
        self.asarray = np.asarray


def test_device_loader_gpu_path_with_a_fake_cupy(monkeypatch):
    fake = _FakeCupy()
    monkeypatch.setattr(backend, "cupy_module", lambda: fake)
    ds = FakeDataset(n=10)
    host = list(Loader(ds, batch_size=4))
    got = list(DeviceLoader(Loader(ds, batch_size=4), "gpu", MEAN, STD))
    assert len(got) == 3
    for (x, y), (hx, hy) in zip(got, host):
        np.testing.assert_allclose(x, normalize(hx, MEAN, STD))
        np.testing.assert_array_equal(y, hy)
    copies = [e for e in fake.log if e[0] == "enter copy"]
    assert copies and all(name.endswith("device") for _, name in copies)   # in the thread
    # the consumer's stream waits for each batch's copy before using it
    assert sum(e[0] == "main waits" for e in fake.log) == 3
    assert wait_no_threads() == []


# ----- on the real HAM10000 dataset class, over the synthetic folder ---------------------------

def test_ham10000_batches_equal_the_dataset(synthetic_ham):
    from tinylesion.data import HAM10000
    ds = HAM10000(synthetic_ham, image_size=(40, 30))
    aug = Augment(rotation_range=20, horizontal_flip=True)
    runs = [collect(Loader(ds, batch_size=16, shuffle=True, num_workers=w, seed=1, augment=aug))
            for w in (0, 3)]
    for (x0, y0), (x1, y1) in zip(*runs):
        np.testing.assert_array_equal(x0, x1)
        np.testing.assert_array_equal(y0, y1)
    order = np.random.default_rng([1, 0]).permutation(len(ds))
    x, y = runs[0][0]
    np.testing.assert_array_equal(y, ds.targets[order[:16]])
    rng = np.random.default_rng([1, 0, 5])
    np.testing.assert_array_equal(x[5], aug(ds.load(order[5]), rng).transpose(2, 0, 1))


@pytest.fixture
def ham_with_a_corrupt_jpeg(synthetic_ham, tmp_path):
    import shutil
    root = tmp_path / "ham"
    shutil.copytree(synthetic_ham, root)
    from tinylesion.data import HAM10000
    victim = HAM10000(root, image_size=(40, 30)).paths[21]
    data = open(victim, "rb").read()
    with open(victim, "wb") as f:
        f.write(data[: len(data) // 3])           # a truncated JPEG
    return root, str(victim)


@pytest.mark.parametrize("workers", [0, 2])
def test_ham10000_corrupt_jpeg_raises_with_its_path(ham_with_a_corrupt_jpeg, workers):
    from tinylesion.data import HAM10000, ImageReadError
    root, victim = ham_with_a_corrupt_jpeg
    ds = HAM10000(root, image_size=(40, 30))
    with pytest.raises(ImageReadError, match=victim.replace("\\", "\\\\")):
        list(Loader(ds, batch_size=8, num_workers=workers))
    assert wait_no_threads() == []


def test_ham10000_corrupt_jpeg_skipped_and_counted(ham_with_a_corrupt_jpeg):
    from tinylesion.data import HAM10000
    root, victim = ham_with_a_corrupt_jpeg
    ds = HAM10000(root, image_size=(40, 30))
    loader = Loader(ds, batch_size=8, num_workers=2, skip_bad=True)
    with pytest.warns(UserWarning, match="skipped 1 unreadable"):
        labels = np.concatenate([y for _, y in loader])
    assert len(labels) == len(ds) - 1 and loader.skipped == 1
    assert loader.skipped_paths == [victim]
