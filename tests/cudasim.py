"""Run a test file under Numba's CUDA simulator, in a fresh interpreter (NUMBA_ENABLE_CUDASIM
must be set before Numba is imported, so it cannot be switched on inside this process)."""
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run_under_simulator(test_file):
    """pytest on test_file with the simulator on; fails unless every test in it passed."""
    env = {**os.environ, "NUMBA_ENABLE_CUDASIM": "1", "PYTHONPATH": ROOT}
    out = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", test_file],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-2000:]
    assert " passed" in out.stdout and "skipped" not in out.stdout
