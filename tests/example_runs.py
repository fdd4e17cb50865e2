"""Helpers for tests that run the ham example in-process: its quick flags, the run, the files of
a run folder and the one-line error it printed."""
from tinylesion import cli


def quick(data, out, *more):
    """A one-epoch padua1 run on tiny images: the example's flags."""
    return ["--data", data, "--model", "padua1", "--image-size", "16x12", "--epochs", "1",
            "--batch-size", "8", "--workers", "0", "--out", out, *more]


def run(*argv, log=None):
    """(exit status, log lines) of the ham example run in-process."""
    logged = []
    args = cli.parse_args("ham", [str(a) for a in argv])
    try:
        cli.run(args, "ham", log=logged.append if log is None else log)
    except SystemExit as stop:
        return stop.code, logged
    return 0, logged


def snapshot(folder):
    """{name: bytes} of every file under folder (hidden ones too)."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file()}


def one_line(capsys):
    """The one line the command wrote to stderr (no traceback)."""
    err = capsys.readouterr().err.strip()
    assert err and "\n" not in err and "Traceback" not in err, err
    return err
