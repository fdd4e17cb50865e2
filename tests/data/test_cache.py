"""Tests of CachedDataset: reuse without decoding, rebuild when stale, never a half-built cache."""
import gc
import json
import os
import threading

import numpy as np
import pytest

from tinylesion.data.cache import CachedDataset
from tinylesion.data.loader import Loader


class FileDataset:
    """A dataset over real files (raw .npy images) that counts its decodes."""

    def __init__(self, root, n=10, size=(7, 5), fail_at=None):
        self.root = root
        self.image_size = size
        self.classes = ["a", "b"]
        self.targets = np.arange(n, dtype=np.int64) % 2
        self.groups = np.arange(n)
        self.metadata = [{"i": i} for i in range(n)]
        self.preprocess = "resize"
        self.paths = [os.path.join(root, f"img{i}.npy") for i in range(n)]
        self.fail_at = fail_at
        self.calls = 0
        self._lock = threading.Lock()
        W, H = size
        for i, p in enumerate(self.paths):
            if not os.path.exists(p):
                img = np.random.default_rng(i).integers(0, 256, (H, W, 3), dtype=np.uint8)
                np.save(p, img)

    def __len__(self):
        return len(self.paths)

    def load(self, i):
        with self._lock:
            self.calls += 1
        if i == self.fail_at:
            raise OSError(f"cannot read image file {self.paths[i]}")
        return np.load(self.paths[i])


@pytest.fixture
def files(tmp_path):
    root = tmp_path / "images"
    root.mkdir()
    return str(root), tmp_path / "cache"


def test_build_then_reuse_without_decoding(files):
    root, cache_dir = files
    ds = FileDataset(root)
    cached = CachedDataset(ds, cache_dir)
    assert not cached.complete
    cached.build(num_workers=2)
    assert cached.complete and ds.calls == len(ds)
    for i in range(len(ds)):
        np.testing.assert_array_equal(cached.load(i), np.load(ds.paths[i]))
    ds2 = FileDataset(root)
    again = CachedDataset(ds2, cache_dir)
    assert again.complete and not again.rebuilt
    images = [again.load(i) for i in range(len(ds2))]
    assert ds2.calls == 0                               # no decoding at all
    np.testing.assert_array_equal(images[3], np.load(ds.paths[3]))
    with pytest.raises(ValueError):
        images[3][0, 0, 0] = 1                          # the cache is read-only
    manifest = json.loads(again.manifest_path.read_text())
    assert manifest["shape"] == [10, 5, 7, 3]


def test_same_dataset_interface(files):
    root, cache_dir = files
    ds = FileDataset(root)
    cached = CachedDataset(ds, cache_dir)
    assert len(cached) == 10 and cached.classes == ["a", "b"]
    assert cached.image_size == (7, 5) and cached.paths == ds.paths
    assert cached.metadata[4] == {"i": 4} and cached.preprocess == "resize"
    np.testing.assert_array_equal(cached.targets, ds.targets)
    np.testing.assert_array_equal(cached.groups, ds.groups)


def test_filled_lazily_by_a_loader_pass(files):
    root, cache_dir = files
    ds = FileDataset(root, n=13)
    cached = CachedDataset(ds, cache_dir)
    first = [x for x, _ in Loader(cached, batch_size=4, shuffle=True, num_workers=2)]
    assert cached.complete and ds.calls == 13 and cached.manifest_path.exists()
    ds2 = FileDataset(root, n=13)
    again = CachedDataset(ds2, cache_dir)
    second = [x for x, _ in Loader(again, batch_size=4, shuffle=True, num_workers=2)]
    assert ds2.calls == 0
    for a, b in zip(first, second):
        np.testing.assert_array_equal(a, b)


def test_rebuilt_when_a_file_changes(files):
    root, cache_dir = files
    CachedDataset(FileDataset(root), cache_dir).build()
    ds = FileDataset(root)
    st = os.stat(ds.paths[2])
    os.utime(ds.paths[2], ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))   # mtime only
    cached = CachedDataset(ds, cache_dir)
    assert not cached.complete
    cached.build()
    assert cached.rebuilt and ds.calls == len(ds)
    # new content of a different size (a re-saved file) is picked up
    new = np.full((5, 7, 3), 42, np.uint8)
    with open(ds.paths[5], "wb") as f:
        np.save(f, new)
        f.write(b"\0" * 16)
    ds3 = FileDataset(root)
    cached3 = CachedDataset(ds3, cache_dir)
    assert not cached3.complete
    np.testing.assert_array_equal(cached3.build().load(5), new)
    assert CachedDataset(FileDataset(root), cache_dir).complete
    # only one cache file for this dataset (no pile-up of stale copies)
    assert len(list(cache_dir.glob("*.u8"))) == 1


def test_rebuilt_when_a_file_is_replaced_by_one_of_the_same_size_and_time(files):
    # cp -p, rsync -t and unzip keep the modification time; the size may well match too
    root, cache_dir = files
    CachedDataset(FileDataset(root), cache_dir).build()
    ds = FileDataset(root)
    st = os.stat(ds.paths[3])
    new = np.full((5, 7, 3), 7, np.uint8)
    np.save(ds.paths[3] + ".new.npy", new)
    assert os.path.getsize(ds.paths[3] + ".new.npy") == st.st_size
    os.utime(ds.paths[3] + ".new.npy", ns=(st.st_atime_ns, st.st_mtime_ns))
    os.replace(ds.paths[3] + ".new.npy", ds.paths[3])
    cached = CachedDataset(FileDataset(root), cache_dir)
    assert not cached.complete
    np.testing.assert_array_equal(cached.build().load(3), new)
    assert CachedDataset(FileDataset(root), cache_dir).complete


def test_another_image_size_is_another_cache(files):
    root, cache_dir = files
    CachedDataset(FileDataset(root, size=(7, 5)), cache_dir).build()
    other = CachedDataset(FileDataset(root, size=(7, 5)), cache_dir)
    assert other.complete
    ds = FileDataset(root, size=(7, 5))
    ds.image_size = (8, 5)            # same files, another size: not the same cache
    assert not CachedDataset(ds, cache_dir).complete


def test_interrupted_build_is_never_taken_as_complete(files):
    root, cache_dir = files
    ds = FileDataset(root, n=12, fail_at=7)
    cached = CachedDataset(ds, cache_dir)
    with pytest.raises(OSError, match="img7.npy"):
        cached.build(num_workers=2)
    assert not cached.complete and not cached.manifest_path.exists()
    assert not cached.data_path.exists()
    del cached
    gc.collect()
    assert list(cache_dir.glob("*.tmp-*")) == []       # its temporary file is gone
    ok = CachedDataset(FileDataset(root, n=12), cache_dir)
    assert not ok.complete
    ok.build()
    assert ok.complete


def test_orphaned_temporary_files_are_removed(files):
    root, cache_dir = files
    cached = CachedDataset(FileDataset(root), cache_dir)
    dead = cached.data_path.with_name(cached.data_path.name + ".tmp-999999999-abcd")
    dead.write_bytes(b"partial")
    CachedDataset(FileDataset(root), cache_dir)
    assert not dead.exists()


def test_truncated_cache_file_is_rebuilt(files):
    root, cache_dir = files
    cached = CachedDataset(FileDataset(root), cache_dir).build()
    path = cached.data_path
    del cached
    gc.collect()
    with open(path, "r+b") as f:
        f.truncate(100)
    ds = FileDataset(root)
    again = CachedDataset(ds, cache_dir)
    assert not again.complete
    again.build()
    assert ds.calls == len(ds) and again.complete


def test_loader_cache_dir_option(files):
    root, cache_dir = files
    ds = FileDataset(root, n=9)
    loader = Loader(ds, batch_size=4, num_workers=2, cache_dir=cache_dir)
    assert isinstance(loader.dataset, CachedDataset)
    first = [x for x, _ in loader]
    calls = ds.calls
    second = [x for x, _ in loader]
    assert calls == 9 and ds.calls == 9 and loader.dataset.complete
    for a, b in zip(first, second):
        np.testing.assert_array_equal(a, b)


def test_ham10000_cache_reused_without_decoding(synthetic_ham, tmp_path, monkeypatch):
    from tinylesion.data import HAM10000, split_by_lesion
    from tinylesion.data import datasets as datasets_module
    calls = []
    real = datasets_module.read_rgb

    def counting(*args, **kwargs):
        calls.append(args[0])
        return real(*args, **kwargs)

    monkeypatch.setattr(datasets_module, "read_rgb", counting)
    ds = HAM10000(synthetic_ham, image_size=(40, 30))
    cached = CachedDataset(ds, tmp_path / "cache").build(num_workers=2)
    assert len(calls) == len(ds)
    for i in (0, 17, len(ds) - 1):
        np.testing.assert_array_equal(cached.load(i), real(ds.paths[i], (40, 30)))
    calls.clear()
    again = CachedDataset(HAM10000(synthetic_ham, image_size=(40, 30)), tmp_path / "cache")
    train, val, test = split_by_lesion(again, (0.6, 0.2, 0.2), seed=0)
    batches = [x for x, _ in Loader(train, batch_size=8, shuffle=True, num_workers=2)]
    assert calls == [] and sum(len(x) for x in batches) == len(train)


def test_gather_into_copies_whole_runs_as_load_does(files):
    from tinylesion.data.datasets import Subset
    root, cache_dir = files
    ds = FileDataset(root, n=12)
    cached = CachedDataset(ds, cache_dir)
    out = np.zeros((3, 3, 5, 7), np.uint8)
    assert cached.gather_into([0, 1, 2], out) is False      # not complete: nothing copied
    assert not out.any()
    cached.build(num_workers=1)
    picks = [11, 0, 5, 5, -1]
    out = np.zeros((5, 3, 5, 7), np.uint8)
    assert cached.gather_into(picks, out)
    for k, i in enumerate(picks):
        np.testing.assert_array_equal(out[k], cached.load(i).transpose(2, 0, 1))
    sub = Subset(cached, [7, 2, 9])
    out = np.zeros((2, 3, 5, 7), np.uint8)
    assert sub.gather_into([2, 0], out)
    np.testing.assert_array_equal(out[0], np.load(ds.paths[9]).transpose(2, 0, 1))
    np.testing.assert_array_equal(out[1], np.load(ds.paths[7]).transpose(2, 0, 1))
    assert Subset(ds, [1]).gather_into([0], out[:1]) is False   # no cache underneath
    with pytest.raises(ValueError, match="out must be uint8"):
        cached.gather_into([0, 1], np.zeros((2, 5, 7, 3), np.uint8))
    with pytest.raises(IndexError, match="outside the 12 cached samples"):
        cached.gather_into([12], np.zeros((1, 3, 5, 7), np.uint8))


@pytest.mark.parametrize("num_workers", [0, 1, 3])
def test_loader_from_a_complete_cache_gives_the_same_batches(files, num_workers):
    root, cache_dir = files
    ds = FileDataset(root, n=23)
    cached = CachedDataset(ds, cache_dir).build(num_workers=2)
    calls = ds.calls
    kwargs = dict(batch_size=4, shuffle=True, seed=3, drop_last=False)
    want = list(Loader(ds, num_workers=2, **kwargs))
    got = list(Loader(cached, num_workers=num_workers, **kwargs))
    assert ds.calls == calls + len(ds)                 # only the reference loader decoded
    assert len(got) == len(want)
    for (x, y), (x0, y0) in zip(got, want):
        assert x.flags.c_contiguous and x.dtype == np.uint8
        np.testing.assert_array_equal(x, x0)
        np.testing.assert_array_equal(y, y0)


def test_loader_loads_one_by_one_when_the_gather_fails(files, monkeypatch):
    root, cache_dir = files
    ds = FileDataset(root, n=9)
    cached = CachedDataset(ds, cache_dir).build(num_workers=2)

    def broken(indices, out):
        raise RuntimeError("gather failed")
    monkeypatch.setattr(cached, "gather_into", broken)
    batches = list(Loader(cached, batch_size=4, num_workers=2))
    np.testing.assert_array_equal(np.concatenate([x for x, _ in batches]),
                                  np.stack([np.load(p).transpose(2, 0, 1) for p in ds.paths]))


def test_a_cache_folder_that_cannot_be_made_is_named(files):
    root, cache = files
    blocker = cache.parent / "a_file"
    blocker.write_text("not a folder")
    with pytest.raises(OSError, match=f"CachedDataset: cannot create the cache folder "
                                      f"{blocker / 'cache'}"):
        CachedDataset(FileDataset(root), blocker / "cache")
