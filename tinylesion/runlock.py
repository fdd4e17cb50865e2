"""One writer per run folder: a lock file naming its holder's pid and host (flock, or O_EXCL)."""
import errno
import json
import os
import socket
import time
from pathlib import Path

LOCK_NAME = ".tinylesion.lock"


class RunLockedError(RuntimeError):
    """Another process holds the run folder's lock; the message names it."""


def _describe(text):
    """'pid 123 on host h since 2026-12-07 01:02:03' from a lock file's text (untrusted)."""
    try:
        info = json.loads(text)
        pid, host, since = int(info["pid"]), str(info["host"])[:100], str(info["since"])[:40]
    except (ValueError, TypeError, KeyError):
        return None, "an unknown holder"
    return (pid, host), f"pid {pid} on host {host} since {since}"


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:   # it exists but belongs to someone else
        return True
    return True


class RunLock:
    """Hold `folder`/.tinylesion.lock while writing the run folder (a context manager).

    The lock is an flock on the file (the kernel drops it when its holder dies, even of
    kill -9); the file's text names the holder for the message a second writer gets. Where
    flock is not supported, the file's exclusive creation (O_EXCL) is the lock, and a file
    naming a dead process of this host is taken over. `flag` names the folder in messages.
    `path`: the lock file, when not in the folder itself (e.g. beside a folder not made yet).
    `wait`: wait for the holder to finish (saying so in one note) instead of refusing.
    """

    def __init__(self, folder, flag="--out", log=print, path=None, wait=False):
        self.folder, self.flag, self.log = Path(folder), flag, log
        self.path = self.folder / LOCK_NAME if path is None else Path(path)
        self.wait, self._noted = wait, False
        self._fd = None

    def __enter__(self):
        return self.acquire()

    def __exit__(self, *exc):
        self.release()

    def _refuse(self, holder):
        raise RunLockedError(f"{self.flag} {self.folder}: another run ({holder}) is writing "
                             "this folder; wait for it to end, or choose another "
                             f"{self.flag}") from None

    def _waiting(self, holder):
        """Say once that this process waits for the lock's holder."""
        if not self._noted:
            self.log(f"note: {self.flag} {self.folder}: another process ({holder}) is writing "
                     "it; waiting for it to finish")
            self._noted = True

    def _cannot(self, exc):
        raise RunLockedError(f"{self.flag} {self.folder}: cannot create the lock file "
                             f"{self.path.name} ({exc.strerror or exc})") from None

    def _claim(self, fd, previous):
        """Write our name into the locked file; say so when a stale holder is replaced."""
        _, holder = _describe(previous)
        if previous.strip():
            self.log(f"note: {self.flag} {self.folder}: took over the lock left by {holder}, "
                     "which no longer runs")
        text = json.dumps({"pid": os.getpid(), "host": socket.gethostname(),
                           "since": time.strftime("%Y-%m-%d %H:%M:%S")})
        os.ftruncate(fd, 0)
        os.pwrite(fd, text.encode(), 0)
        self._fd = fd
        return self

    def acquire(self):
        """Take the lock, or raise RunLockedError (a second writer) in one line."""
        import fcntl
        for _ in range(20):
            try:
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            except OSError as exc:
                self._cannot(exc)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = _describe(_read(fd))[1]
                if not self.wait:
                    os.close(fd)
                    self._refuse(holder)
                self._waiting(holder)
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX)
                except BaseException:
                    os.close(fd)
                    raise
            except OSError as exc:
                empty = os.fstat(fd).st_size == 0   # made by our open just now
                os.close(fd)
                if exc.errno in (errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS, errno.EINVAL):
                    if empty:
                        self.path.unlink(missing_ok=True)
                    return self._acquire_exclusive()
                raise
            # the file may have been removed (released) between our open and our flock
            try:
                same = os.path.samestat(os.fstat(fd), os.stat(self.path))
            except FileNotFoundError:
                same = False
            if same:
                try:
                    return self._claim(fd, _read(fd))
                except OSError as exc:
                    os.close(fd)
                    self._cannot(exc)
            os.close(fd)
        raise RunLockedError(f"{self.flag} {self.folder}: the lock file {self.path.name} keeps "
                             "changing; is another run starting there?")

    def _acquire_exclusive(self):
        """The lock as the exclusive creation of the file (file systems without flock)."""
        tries = 0
        while tries < 20:
            tries += 1
            try:
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644)
                return self._claim(fd, "")
            except FileExistsError:
                try:
                    text = self.path.read_text(errors="replace")
                except FileNotFoundError:
                    continue
                who, holder = _describe(text)
                if who is None or who[1] != socket.gethostname() or _alive(who[0]):
                    if not self.wait or (who is None and text.strip()):
                        self._refuse(holder)   # an empty file is being written just now
                    self._waiting(holder)
                    time.sleep(0.5)
                    tries -= 1
                    continue
                self.log(f"note: {self.flag} {self.folder}: took over the lock left by "
                         f"{holder}, which no longer runs")
                self.path.unlink(missing_ok=True)
            except OSError as exc:
                self._cannot(exc)
        self._refuse("an unknown holder")

    def release(self):
        """Remove the lock file and drop the lock (idempotent)."""
        if self._fd is None:
            return
        try:
            self.path.unlink(missing_ok=True)
        except OSError:
            pass
        os.close(self._fd)
        self._fd = None

    @property
    def held(self):
        """True while this object holds the lock."""
        return self._fd is not None


def _read(fd, limit=4096):
    try:
        return os.pread(fd, limit, 0).decode("utf-8", "replace")
    except OSError:
        return ""
