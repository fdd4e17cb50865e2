"""How a run of the examples ended badly, said in one line: interrupted, diverged, disk full."""
import errno
import os
import signal
import sys
import threading


class Progress:
    """How far a run got, for the message when it fails or is interrupted."""
    folder = None      # the RunFolder, once known
    staged = False     # the staging folder was made: the run folder is being written
    kept = False       # after a failure: the staging folder holds a checkpoint to resume
    resumed = False
    said = False       # the line saying how the run ended is printed
    stopping = False   # Ctrl-C was caught: the run is cleaning up (further ones wait)


def interrupted(exc):
    """True when exc is, or was caused by, Ctrl-C (Numba's dispatcher turns a
    KeyboardInterrupt raised inside a kernel call into a SystemError caused by it)."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, KeyboardInterrupt):
            return True
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return False


def interrupt_message(args, progress):
    """The line Ctrl-C ends a run with: a --resume hint only when there is a checkpoint."""
    out = args.out
    if progress.folder is not None and progress.folder.committed:
        return f"interrupted after the run was written to {out}, whole"
    if progress.kept:
        return f"interrupted; continue with --resume --out {out}"
    if progress.resumed:
        return (f"interrupted; the run in {out} is as it was; continue it with --resume "
                f"--out {out}")
    if progress.staged:
        return (f"interrupted before the first epoch ended: nothing to resume; {out} is as it "
                "was (start the run again, without --resume)")
    return "interrupted before training started; nothing was written" + (
        f" to {out}" if out is not None else "")


def os_error_message(exc):
    """'cannot write PATH: No space left on device' (or 'PATH: reason') for an OSError."""
    name = exc.filename or ""
    writing = exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES,
                            errno.EPERM, errno.EFBIG, errno.EIO)
    what = f"cannot write {name}" if writing and name else (name or type(exc).__name__)
    return f"{what}: {exc.strerror or exc}"


def catch_interrupts(progress):
    """Ctrl-C raises KeyboardInterrupt until the run starts stopping (progress.stopping);
    later ones are ignored while it cleans up and says where it stopped, and a third one
    exits at once. An interrupt swallowed by a finalizer (a __del__ it landed in) is raised
    again rather than printed. Returns the function that undoes this."""
    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    count = []

    def handler(signum, frame):
        if not progress.stopping:
            raise KeyboardInterrupt
        count.append(1)
        if len(count) >= 2:
            if not progress.said:
                os.write(2, b"\ninterrupted again: stopped at once\n")
            os._exit(130)

    def unraisable(info):
        if info.exc_type is not None and issubclass(info.exc_type, KeyboardInterrupt):
            signal.raise_signal(signal.SIGINT)  # lost in a finalizer: deliver it again
            return
        previous_hook(info)

    previous, previous_hook = signal.signal(signal.SIGINT, handler), sys.unraisablehook
    sys.unraisablehook = unraisable

    def restore():
        signal.signal(signal.SIGINT, previous)
        sys.unraisablehook = previous_hook
    return restore


def report(exc, args, progress, usage_error):
    """Print the one line a run that raised `exc` ends with; return its exit status (130
    Ctrl-C, 2 a problem of the flags or data, 1 divergence or a disk), or None for a bug."""
    from . import backend
    from .data import ImageReadError
    from .resume import ResumeError
    from .runfolder import RunFolderError
    from .runinfo import RunInfoError
    from .runlock import RunLockedError
    from .train import TrainingError
    if interrupted(exc):  # further Ctrl-C stay counted, not raised, until the exit
        progress.stopping = True
        print(f"\n{interrupt_message(args, progress)}", file=sys.stderr)
        progress.said = True
        # NOTE: a Ctrl-C handler would be reset to the default during the interpreter's
        # exit (and a Ctrl-C then kill it with SIGINT); SIG_IGN is kept
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGINT, signal.SIG_IGN)
        return 130
    if isinstance(exc, (usage_error, backend.DeviceError, ImageReadError, FileNotFoundError,
                        RunLockedError, RunFolderError, ResumeError, RunInfoError)):
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if isinstance(exc, TrainingError):
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if isinstance(exc, Exception) and backend.is_out_of_memory(exc):
        print(f"error: out of {'device' if backend.is_cupy_error(exc) else 'host'} memory "
              f"with --batch-size {args.batch_size} ({type(exc).__name__}); try a smaller "
              f"--batch-size or --image-size" + (
                  f"; continue with --resume --out {args.out}" if progress.kept else ""),
              file=sys.stderr)
        return 2
    if isinstance(exc, OSError):
        moving = progress.folder is not None and progress.folder.moving()
        hint = (f"; moving the new run into {args.out} was cut short: --resume --out "
                f"{args.out} finishes it" if moving else
                f"; the last checkpoint is kept: continue with --resume --out {args.out}"
                if progress.kept else f"; {args.out} is as it was" if progress.staged
                else "")
        print(f"error: {os_error_message(exc)}{hint}", file=sys.stderr)
        return 1
    return None
