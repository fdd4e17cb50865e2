"""The thread setting (TINYLESION_NUM_THREADS) and parallel kernels called from several threads."""
import os
import subprocess
import sys
import textwrap

import numba
import pytest
from threadpoolctl import threadpool_info

from kernels import threads

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def run_python(code, **env):
    """Run `code` in a fresh interpreter with extra environment variables."""
    full_env = {**os.environ, "PYTHONPATH": ROOT, **env}
    for k, v in env.items():
        if v is None:
            full_env.pop(k)
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], env=full_env,
                          capture_output=True, text=True, timeout=300)


def blas_threads():
    return {i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"}


def test_set_num_threads_applies_to_numba_and_blas():
    before = threads.get_num_threads()
    try:
        threads.set_num_threads(1)
        assert threads.get_num_threads() == 1
        assert numba.get_num_threads() == 1
        assert blas_threads() <= {1}
    finally:
        threads.set_num_threads(before)
    assert numba.get_num_threads() == min(before, numba.config.NUMBA_NUM_THREADS)


def test_single_blas_holds_every_blas_at_one_thread_until_the_outermost_use_ends():
    from kernels.conv_parts import single_blas
    before = threads.get_num_threads()
    try:
        threads.set_num_threads(3)
        assert blas_threads() == {3}
        with single_blas():
            assert blas_threads() == {1}
            with single_blas():
                assert blas_threads() == {1}
            assert blas_threads() == {1}
        assert blas_threads() == {3}
        threads.set_num_threads(1)   # already at one thread: nothing to set or restore
        with single_blas():
            assert blas_threads() == {1}
        assert blas_threads() == {1}
    finally:
        threads.set_num_threads(before)


@pytest.mark.parametrize("bad", [0, -1, "abc", "2.5", 2.5, True, ""])
def test_bad_values_are_refused(bad):
    with pytest.raises(ValueError, match="positive integer"):
        threads.set_num_threads(bad)
    with pytest.raises(ValueError, match=threads.ENV):
        threads._parse(bad, threads.ENV)


def test_environment_variable():
    out = run_python("""
        import threading, numba
        from threadpoolctl import threadpool_info
        from kernels import threads
        seen = []
        probe = threads.guarded(lambda: seen.append(numba.get_num_threads()))
        t = threading.Thread(target=probe)
        t.start(); t.join()
        blas = sorted({i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"})
        print(threads.get_num_threads(), numba.get_num_threads(), seen[0], blas)
        """, TINYLESION_NUM_THREADS=" 1 ")
    assert out.returncode == 0, out.stderr
    assert out.stdout.split()[:3] == ["1", "1", "1"]  # set, main thread, another thread
    assert out.stdout.strip().endswith("[1]") or out.stdout.strip().endswith("[]")
    bad = run_python("import kernels.threads", TINYLESION_NUM_THREADS="two")
    assert bad.returncode != 0
    assert "ValueError: TINYLESION_NUM_THREADS must be a positive integer" in bad.stderr
    default = run_python("from kernels import threads, pool; print(threads.get_num_threads())",
                         TINYLESION_NUM_THREADS=None)
    assert default.returncode == 0, default.stderr
    assert int(default.stdout) == len(os.sched_getaffinity(0))


CONCURRENT = """
    import threading
    import numpy as np
    from kernels import threads
    from kernels.adam import adam_step
    from kernels.batchnorm import batchnorm_backward, batchnorm_forward
    from kernels.pool import maxpool2d_backward, maxpool2d_forward

    def work(seed, out):
        rng = np.random.default_rng(seed)
        x = rng.standard_normal((4, 8, 30, 30)).astype(np.float32)
        p, g = rng.standard_normal((2, 100000)).astype(np.float32)
        m, v = np.zeros_like(p), np.zeros_like(p)
        for step in range(1, 150):
            y, am = maxpool2d_forward(x, 3, 2)
            maxpool2d_backward(y, am, x.shape, 3, 2)
            yb, mean, var = batchnorm_forward(x, None, None, 1e-5)
            batchnorm_backward(x, x, None, mean, var, 1e-5)
            adam_step(p, g, m, v, 1e-3, 0.9, 0.999, 1e-8, 0.0, step)
        out.append(bool(np.isfinite(p).all()))

    out = []
    workers = [threading.Thread(target=work, args=(s, out)) for s in range(3)]
    for t in workers:
        t.start()
    for t in workers:
        t.join()
    print(threads.threading_layer(), out)
"""


@pytest.mark.parametrize("layer", [None, "workqueue"])
def test_parallel_kernels_from_several_threads_do_not_crash(layer):
    # Numba's workqueue layer alone aborts the process here ("Concurrent access has been
    # detected"); the thread-safe layer or the lock must prevent it.
    out = run_python(CONCURRENT, NUMBA_THREADING_LAYER=layer)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split()[1:] == ["[True,", "True,", "True]"]
    if layer == "workqueue":
        assert out.stdout.startswith("workqueue")


def test_keep_freed_memory():
    import platform
    out = run_python("""
        import numpy as np
        from kernels import threads
        ok = threads.keep_freed_memory()
        for _ in range(3):
            a = np.ones(20_000_000, np.float32)  # 80 MB: from the heap now, reused
            assert a.sum() == 20_000_000
            del a
        print(ok)
        """)
    assert out.returncode == 0, out.stderr
    if platform.system() == "Linux" and platform.libc_ver()[0] == "glibc":
        assert out.stdout.strip() == "True"


def test_keep_freed_memory_only_ever_raises_the_setting():
    import platform
    if not (platform.system() == "Linux" and platform.libc_ver()[0] == "glibc"):
        pytest.skip("mallopt is glibc's")
    out = run_python("""
        from kernels import threads
        assert threads.keep_freed_memory(64 << 20)
        assert threads.keep_freed_memory(32 << 20)      # the Loader's, after fit()'s: no change
        print(threads._kept_bytes)
        assert threads.keep_freed_memory(128 << 20)
        print(threads._kept_bytes)
        """)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == [str(64 << 20), str(128 << 20)]


WAIT_POLICY_PROBE = """
import json, os
from numba.np.ufunc import parallel
seen = {}
launch = parallel._launch_threads

def recording_launch():  # the first call starts the threads; later ones return at once
    if not seen:
        seen.update({k: os.environ.get(k) for k in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")})
    launch()

parallel._launch_threads = recording_launch
from kernels import threads
threads._start_numba_threads()
after = {k: os.environ.get(k) for k in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")}
print(json.dumps({"at_launch": seen, "after": after}))
"""


@pytest.mark.parametrize("user, at_launch", [
    ({}, {"OMP_WAIT_POLICY": "PASSIVE", "GOMP_SPINCOUNT": str(threads.SPIN_COUNT)}),
    ({"OMP_WAIT_POLICY": "ACTIVE"}, {"OMP_WAIT_POLICY": "ACTIVE", "GOMP_SPINCOUNT": None}),
    ({"GOMP_SPINCOUNT": "0"}, {"OMP_WAIT_POLICY": None, "GOMP_SPINCOUNT": "0"})])
def test_openmp_workers_spin_briefly_then_sleep_unless_the_user_said(user, at_launch):
    """The engine's OpenMP setting is in the environment when the threads start (libgomp
    reads it then) and gone after; a user's OMP_WAIT_POLICY or GOMP_SPINCOUNT is left alone."""
    import json
    env = {"OMP_WAIT_POLICY": None, "GOMP_SPINCOUNT": None, **user}
    proc = run_python(WAIT_POLICY_PROBE, **env)
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["at_launch"] == at_launch
    assert out["after"] == {"OMP_WAIT_POLICY": user.get("OMP_WAIT_POLICY"),
                            "GOMP_SPINCOUNT": user.get("GOMP_SPINCOUNT")}
