"""How a run of the examples ended badly, said in one line: interrupted, diverged, disk full."""
import errno


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
