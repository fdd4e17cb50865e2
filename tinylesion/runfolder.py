"""A run folder's files: a new run is staged in a hidden subfolder, then swapped in whole.

Layout of --out:
- the run's files (RUN_FILES) of the last finished run, all of one run;
- .tinylesion-next/ while a run (new or resumed) trains: its run.json, its checkpoints, then
  its final files; `--resume` continues from here when it holds a checkpoint;
- .tinylesion-next/commit.json while the staged files are moved in: a journal naming them,
  so that a move cut short (power loss, kill -9) is finished by the next writer.
Files of the user's own in --out are never touched.
"""
import json
import os
import shutil
import signal
import threading
from contextlib import contextmanager
from pathlib import Path

from .flags import UsageError
from .io import write_atomic

# The files a run writes into --out (a new run replaces these, and only these).
RUN_FILES = ("metrics.json", "history.csv", "weights.npz", "checkpoint.npz", "run.json",
             "history.png", "confusion_matrix.png", "roc.png", "weights.png")
STAGING = ".tinylesion-next"
JOURNAL = "commit.json"


class RunFolderError(RuntimeError):
    """The run folder cannot be read or written as needed; the message names the path."""


def check_folder(path, flag):
    """Raise a UsageError unless `path` is, or can be made, a writable folder (nothing is
    created: that waits until the run has checked everything else)."""
    if path.exists() and not path.is_dir():
        raise UsageError(f"{flag} {path}: is a file, not a folder")
    parent = path
    while not parent.exists():
        if parent.is_symlink():
            raise UsageError(f"{flag} {path}: cannot create the folder ({parent} is a broken "
                             "symbolic link)")
        parent = parent.parent
    if not parent.is_dir():
        raise UsageError(f"{flag} {path}: cannot create the folder ({parent} is a file)")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise UsageError(f"{flag} {path}: " + ("the folder is not writable" if parent == path
                                               else f"cannot create the folder ({parent} is "
                                                    "not writable)"))


def make_folder(path, flag):
    """Create the folder a flag names (and its parents), or raise a UsageError saying why."""
    check_folder(path, flag)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"{flag} {path}: cannot create the folder "
                         f"({exc.strerror or exc})") from None


def write_text_atomic(path, text):
    """write_atomic for a text file."""
    write_atomic(path, lambda f: f.write(text), "w")


@contextmanager
def interrupts_deferred():
    """Hold back Ctrl-C (SIGINT) for the block, then raise KeyboardInterrupt after it if one
    came: for steps that must not stop half-way (moving a run's files into place)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught = []
    previous = signal.signal(signal.SIGINT, lambda *_: caught.append(True))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
    if caught:
        raise KeyboardInterrupt


class RunFolder:
    """The --out folder of a run: what it holds, staging a run, and swapping it in."""

    def __init__(self, path):
        self.path = Path(path)
        self.staging = self.path / STAGING
        self.committed = False   # set when commit() has swapped a run in

    def finished_files(self):
        """The run files of the finished run in the folder (empty when there is none)."""
        return [name for name in RUN_FILES if (self.path / name).is_file()]

    def unfinished(self):
        """True when a staged run holds a checkpoint (--resume continues it)."""
        return (self.staging / "checkpoint.npz").is_file() and not self.moving()

    def moving(self):
        """True while (or when cut short while) staged files are moved into the folder."""
        return (self.staging / JOURNAL).is_file()

    def resume_source(self):
        """The folder --resume continues from: the staged run when it has a checkpoint,
        else the finished run."""
        return self.staging if self.unfinished() else self.path

    def check_staged(self):
        """Raise a RunFolderError when an unfinished run is staged (a checkpoint.npz entry is
        there) and one of its entries is no file (a folder, a broken link): --resume would
        otherwise pass it over, continue the finished run and discard the unfinished one."""
        if not self.staging.is_dir() or self.moving():
            return
        checkpoint = self.staging / "checkpoint.npz"
        if not (checkpoint.exists() or checkpoint.is_symlink()):
            return
        for name in dict.fromkeys(("checkpoint.npz",) + RUN_FILES + (JOURNAL,)):
            entry = self.staging / name
            if (entry.exists() or entry.is_symlink()) and not entry.is_file():
                what = "a folder" if entry.is_dir() else "not a file (a broken link?)"
                raise RunFolderError(
                    f"--resume: {entry} is {what}, not the {name} of the unfinished run "
                    f"there; move it away, or remove {self.staging} to continue the finished "
                    "run instead")

    def check_files(self, then=""):
        """Raise a RunFolderError when a name the run writes is taken in the folder by a
        folder (someone's edit): moving the run in would stop half-way there."""
        for name in RUN_FILES:
            target = self.path / name
            if target.is_dir() and not target.is_symlink():
                raise RunFolderError(f"--out {self.path}: {target} is a folder, where the run "
                                     f"writes its {name}; move it away{then}")

    # ----- writing (under the run lock) --------------------------------------------------
    def recover(self, log=print):
        """Finish a move of staged files that was cut short (call holding the lock)."""
        if not self.moving():
            return
        log(f"note: --out {self.path}: finishing the move of a run into place that was cut "
            "short")
        self._move_in(self._journal_files())

    def _journal_files(self):
        try:
            names = json.loads((self.staging / JOURNAL).read_text())["files"]
        except (OSError, ValueError, KeyError, TypeError):
            names = None
        if not isinstance(names, list) or not all(n in RUN_FILES for n in names):
            raise RunFolderError(f"--out {self.path}: {STAGING}/{JOURNAL} is damaged; remove "
                                 f"the {STAGING} folder (the finished run beside it is kept)")
        return names

    def begin(self, resume, log=print):
        """Prepare the staging folder: kept when resuming a staged run, else made empty."""
        if resume and self.unfinished():
            return self.staging
        if self.staging.exists():
            if (self.staging / "checkpoint.npz").is_file():
                log(f"note: --out {self.path}: an unfinished run there is discarded "
                    "(--resume would have continued it)")
            self.discard()
        if not resume and self.finished_files():
            log(f"note: --out {self.path} holds an earlier run; it is replaced when this run "
                "ends, and kept until then (--resume would continue it)")
        try:
            self.staging.mkdir()
        except OSError as exc:
            if exc.errno is not None:
                exc.filename = str(self.staging)
            raise
        return self.staging

    def discard(self):
        """Remove the staging folder and whatever it holds."""
        if self.staging.is_symlink() or self.staging.is_file():
            self.staging.unlink()
        elif self.staging.exists():
            shutil.rmtree(self.staging)

    def abandon(self):
        """After a failed run: keep the staging folder only if it holds a checkpoint to
        resume from. Returns True when it was kept."""
        if (self.staging / "checkpoint.npz").is_file() and not self.moving():
            return True
        if not self.moving():
            try:
                self.discard()
            except OSError:
                pass
        return False

    def commit(self, files):
        """Swap the staged run in: its files replace the finished run's, whole.

        The journal is written first, so that a move cut short is finished by recover();
        Ctrl-C is held back until the move is done.
        """
        files = [name for name in files if name in RUN_FILES]
        missing = [name for name in files if not (self.staging / name).is_file()]
        if missing:
            raise RunFolderError(f"--out {self.path}: the staged run lacks {', '.join(missing)}")
        with interrupts_deferred():
            write_text_atomic(self.staging / JOURNAL, json.dumps({"files": files}))
            self._move_in(files)
            self.committed = True

    def _move_in(self, files):
        self.check_files(f", then --resume --out {self.path} moves the new run in")
        for name in files:
            if (self.staging / name).is_file():
                os.replace(self.staging / name, self.path / name)
        for name in RUN_FILES:
            if name not in files:
                (self.path / name).unlink(missing_ok=True)
        self.discard()
