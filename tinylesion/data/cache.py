"""A uint8 memory-mapped cache of a dataset's decoded, resized images, rebuilt when stale."""
import errno
import hashlib
import json
import os
import threading
import uuid
from pathlib import Path

import numpy as np
from numba import njit

CACHE_VERSION = 1


@njit(cache=True, nogil=True)
def _gather_chw(images, indices, out):
    """out[k] = images[indices[k]] as (3, H, W): the loader's batch layout from the cache's."""
    for k in range(indices.shape[0]):
        src = images[indices[k]]
        dst = out[k]
        for c in range(3):
            for y in range(src.shape[0]):
                for x in range(src.shape[1]):
                    dst[c, y, x] = src[y, x, c]


def _dataset_id(ds):
    """Names the cache file: what the images are (sources, size, preprocessing), not their age."""
    h = hashlib.sha256()
    h.update(json.dumps({
        "version": CACHE_VERSION,
        "kind": type(ds).__name__,
        "image_size": [int(v) for v in ds.image_size],
        "preprocess": str(getattr(ds, "preprocess", None)),
        "draft": str(getattr(ds, "draft", None)),
        "n": len(ds),
    }, sort_keys=True).encode())
    for p in ds.paths:
        h.update(os.fsencode(os.path.abspath(p)) + b"\0")
    return h.hexdigest()[:24]


def _source_key(ds):
    """Changes when any source file is replaced or rewritten.

    NOTE: size and modification time alone miss a file replaced by another of the same size
    whose time was kept (cp -p, rsync -t, unzip); the inode number and the status-change time
    (which no user call can set back) catch that too. A false alarm (chmod) only rebuilds.
    """
    h = hashlib.sha256()
    for p in ds.paths:
        try:
            st = os.stat(p)
            h.update(f"{st.st_size}:{st.st_mtime_ns}:{st.st_ctime_ns}:{st.st_ino}\n".encode())
        except OSError:
            h.update(b"missing\n")
    return h.hexdigest()


def _file_key(path):
    """Size, modification and status-change times and inode of a file: they change when it
    is rewritten or replaced."""
    st = os.stat(path)
    return f"{st.st_size}:{st.st_mtime_ns}:{st.st_ctime_ns}:{st.st_ino}"


def _reserve(path, size):
    """Create `path` with `size` bytes of disk really allocated, so that filling its memory
    map can never meet a full disk (which kills the process with SIGBUS, no message).

    An OSError names the cache file and its size; nothing is left behind."""
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644)
    except OSError as exc:
        if exc.errno is not None:
            exc.filename = str(path)
        raise
    try:
        try:
            os.posix_fallocate(fd, 0, size)
        except OSError as exc:
            if exc.errno not in (errno.EOPNOTSUPP, errno.EINVAL, errno.ENOSYS):
                raise
            # no fallocate here: write the zeros, which allocates the blocks as well
            free = os.statvfs(fd).f_bavail * os.statvfs(fd).f_frsize
            if free < size:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC)) from None
            chunk = bytes(1 << 20)
            for start in range(0, size, len(chunk)):
                os.pwrite(fd, chunk[:min(len(chunk), size - start)], start)
    except OSError as exc:
        os.close(fd)
        Path(path).unlink(missing_ok=True)
        raise OSError(exc.errno, f"{exc.strerror} (the cache needs {size / 1e6:,.1f} MB)",
                      str(path)) from None
    os.close(fd)


class CachedDataset:
    """Serve `ds` from one uint8 np.memmap (N, H, W, 3) file under `cache_dir`.

    The cache is written once, either by build(num_workers) or lazily as load(i) first meets each
    sample; it is written under a temporary name and renamed, and a JSON manifest is written last,
    so an interrupted build is never taken as complete. It is reused while the source paths,
    the files themselves (size, modification and status-change times, inode), the image size
    and the preprocessing are unchanged, and the cache file is the one written (else it is
    rebuilt). Same dataset interface as `ds` (classes, targets, groups, paths, ...).
    """

    def __init__(self, ds, cache_dir):
        self.dataset = ds
        self.cache_dir = Path(cache_dir)
        try:
            self.cache_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise type(exc)(f"CachedDataset: cannot create the cache folder {self.cache_dir} "
                            f"({exc.strerror or exc})") from None
        width, height = (int(v) for v in ds.image_size)
        self.shape = (len(ds), height, width, 3)
        name = _dataset_id(ds)
        self.data_path = self.cache_dir / f"{name}.u8"
        self.manifest_path = self.cache_dir / f"{name}.json"
        self.key = _source_key(ds)
        self._lock = threading.Lock()
        self._mm = None
        self._filled = None      # bool per sample while building
        self._nfilled = 0
        self._tmp_path = None
        self.rebuilt = False     # True when this object had to decode the sources
        self._remove_orphans()
        if self._valid():
            self._mm = np.memmap(self.data_path, np.uint8, "r", shape=self.shape)
        else:
            self.manifest_path.unlink(missing_ok=True)

    def _remove_orphans(self):
        """Delete temporary files left by builds whose process has died."""
        for tmp in self.cache_dir.glob(f"{self.data_path.name}.tmp-*"):
            try:
                pid = int(tmp.name.split(".tmp-")[1].split("-")[0])
                os.kill(pid, 0)
            except ProcessLookupError:
                tmp.unlink(missing_ok=True)
            except (ValueError, IndexError, OSError):
                pass

    def _manifest(self):
        return {"version": CACHE_VERSION, "key": self.key, "shape": list(self.shape),
                "image_size": list(self.dataset.image_size),
                "preprocess": str(getattr(self.dataset, "preprocess", None))}

    def _valid(self):
        """True when the manifest describes these sources and the cache file is the one it
        was written with (not replaced or rewritten since: size, times and inode)."""
        try:
            manifest = json.loads(self.manifest_path.read_text())
            size = self.data_path.stat().st_size
            key = _file_key(self.data_path)
        except (OSError, ValueError, RecursionError):
            return False
        if not isinstance(manifest, dict) or manifest.pop("file", None) != key:
            return False
        return manifest == self._manifest() and size == int(np.prod(self.shape))

    @property
    def complete(self):
        """True when every sample is in the cache file and the manifest is written."""
        return self._mm is not None and self._filled is None

    # ----- the dataset interface ------------------------------------------------------------
    def __len__(self):
        return self.shape[0]

    @property
    def classes(self):
        """The source dataset's class names."""
        return self.dataset.classes

    @property
    def targets(self):
        """The source dataset's labels (int64)."""
        return self.dataset.targets

    @property
    def groups(self):
        """The source dataset's group ids."""
        return self.dataset.groups

    @property
    def metadata(self):
        """The source dataset's per-sample metadata."""
        return self.dataset.metadata

    @property
    def paths(self):
        """The source files (the cache key is made from them)."""
        return self.dataset.paths

    @property
    def image_size(self):
        """(width, height) of the cached images."""
        return self.dataset.image_size

    def __getattr__(self, name):
        # Anything else the source dataset offers (preprocess, CLASSES, ...).
        if name.startswith("_") or name == "dataset":
            raise AttributeError(name)
        return getattr(self.dataset, name)

    def __repr__(self):
        state = "complete" if self.complete else "building"
        return f"CachedDataset({self.dataset!r}, {str(self.cache_dir)!r}, {state})"

    def load(self, index):
        """The (H, W, 3) uint8 image of sample `index`, from the cache (read-only view)."""
        if self._filled is not None or self._mm is None:     # not complete yet
            self._start()
            with self._lock:
                missing = self._filled is not None and not self._filled[index]
            if missing:
                self._fill(index)
        view = self._mm[index].view(np.ndarray)
        view.flags.writeable = False
        return view

    def gather_into(self, indices, out):
        """Copy the samples `indices` into out (k, 3, H, W) uint8 in one call without the GIL.

        Returns False, with nothing copied, while the cache is not complete (load() fills it).
        """
        mm = self._mm
        if self._filled is not None or mm is None:
            return False
        indices = np.asarray(indices, dtype=np.int64)
        n = self.shape[0]
        if indices.size and (indices.min() < -n or indices.max() >= n):
            raise IndexError(f"gather_into: an index is outside the {n} cached samples")
        if out.dtype != np.uint8 or out.shape != (len(indices), 3) + self.shape[1:3]:
            raise ValueError(f"gather_into: out must be uint8 {(len(indices), 3) + self.shape[1:3]}"
                             f", got {out.dtype} {out.shape}")
        _gather_chw(mm.view(np.ndarray), indices % n, out)
        return True

    # ----- building -----------------------------------------------------------------------
    def _start(self):
        """Open a fresh temporary cache file to fill (idempotent)."""
        with self._lock:
            if self._mm is not None:
                return
            self._tmp_path = self.data_path.with_name(
                f"{self.data_path.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}")
            try:
                _reserve(self._tmp_path, int(np.prod(self.shape)))
            except OSError as exc:
                if exc.errno is not None:
                    exc.filename = str(self.data_path)
                self._tmp_path = None
                raise
            self._filled = np.zeros(self.shape[0], bool)
            self._nfilled = 0
            self.rebuilt = True
            self._mm = np.memmap(self._tmp_path, np.uint8, "r+", shape=self.shape)

    def _fill(self, index):
        image = self.dataset.load(index)
        if image.shape != self.shape[1:] or image.dtype != np.uint8:
            raise ValueError(f"{self.dataset.paths[index]}: the dataset returned "
                             f"{image.dtype} {image.shape}; expected uint8 {self.shape[1:]}")
        with self._lock:
            if self._filled is None or self._filled[index]:
                return      # another thread cached it meanwhile
            mm = self._mm   # the writable map (it stays valid after the rename)
        mm[index] = image
        with self._lock:
            if self._filled is None or self._filled[index]:
                return
            self._filled[index] = True
            self._nfilled += 1
            if self._nfilled == self.shape[0]:
                self._commit()

    def _commit(self):
        """Flush, rename the file into place, then write the manifest (call under the lock)."""
        self._mm.flush()
        os.replace(self._tmp_path, self.data_path)
        tmp_manifest = self.manifest_path.with_name(self._tmp_path.name + ".json")
        try:
            tmp_manifest.write_text(json.dumps({**self._manifest(),
                                                "file": _file_key(self.data_path)}, indent=1))
            os.replace(tmp_manifest, self.manifest_path)
        except OSError as exc:
            tmp_manifest.unlink(missing_ok=True)
            if exc.errno is not None:
                exc.filename = str(self.manifest_path)
            raise
        self._filled = None
        self._tmp_path = None
        # Reopen read-only: the memmap written so far keeps the renamed inode alive anyway.
        self._mm = np.memmap(self.data_path, np.uint8, "r", shape=self.shape)

    def build(self, num_workers=2, progress=False):
        """Decode every sample not yet cached, with `num_workers` threads; returns self."""
        if self.complete:
            return self
        self._start()
        todo = iter([int(i) for i in np.flatnonzero(~self._filled)])
        bar = None
        if progress:
            from tqdm import tqdm
            bar = tqdm(total=self.shape[0] - self._nfilled, desc="caching images", unit="img")
        errors = []
        stop = threading.Event()
        take = threading.Lock()

        def work():
            while not stop.is_set():
                with take:
                    index = next(todo, None)
                if index is None:
                    return
                try:
                    self._fill(index)
                except BaseException as exc:
                    errors.append(exc)
                    stop.set()
                    return
                if bar is not None:
                    bar.update(1)

        threads = [threading.Thread(target=work, name=f"tinylesion-cache-{k}", daemon=True)
                   for k in range(max(1, int(num_workers)))]
        try:
            for th in threads:
                th.start()
            for th in threads:
                while th.is_alive():
                    th.join(0.1)   # a timed join keeps Ctrl-C prompt
        finally:
            stop.set()
            for th in threads:
                th.join()
            if bar is not None:
                bar.close()
        if errors:
            raise errors[0]
        return self

    def discard(self):
        """Delete this cache's files (the complete one and any temporary file of this object)."""
        with self._lock:
            self._mm = None
            self._filled = None
            for p in (self.manifest_path, self.data_path, self._tmp_path):
                if p is not None:
                    Path(p).unlink(missing_ok=True)
            self._tmp_path = None

    def __del__(self):
        tmp = getattr(self, "_tmp_path", None)
        if tmp is not None:
            self._mm = None
            try:
                Path(tmp).unlink(missing_ok=True)
            except Exception:
                pass
