"""The kernels' Numba cache is stamped with the whole package: a kernel that inlines code from
another file (relu inlines channel_sums._plane_sum) is recompiled when that file changes, and
loaded from the cache when nothing changed (kernels/cache_stamp.py)."""
import os
import shutil
import subprocess
import sys

from kernels import cache_stamp

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

RUN = """
import json, numpy as np
import kernels
from kernels import relu
y = relu.relu_forward(np.linspace(-1, 1, 2 * 3 * 16 * 16, dtype=np.float32).reshape(2, 3, 16, 16))
relu.relu_backward_channel_sums(np.ones_like(y), y, impl="cpu")
stats = relu._backward_sums.stats
print(json.dumps({"hits": sum(stats.cache_hits.values()),
                  "misses": sum(stats.cache_misses.values()),
                  "file": kernels.__file__}))
"""


def _run(folder):
    env = dict(os.environ, PYTHONPATH=str(folder), NUMBA_CACHE_DIR="")
    env.pop("NUMBA_CACHE_DIR")
    out = subprocess.run([sys.executable, "-c", RUN], capture_output=True, text=True,
                         env=env, cwd=str(folder), timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    import json
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_a_change_in_an_inlined_file_recompiles_its_callers(tmp_path):
    copy = tmp_path / "kernels"
    shutil.copytree(os.path.join(ROOT, "kernels"), copy,
                    ignore=shutil.ignore_patterns("__pycache__"))
    first = _run(tmp_path)
    assert first["file"].startswith(str(copy)) and first["misses"] >= 1
    assert _run(tmp_path)["hits"] >= 1                  # unchanged: from the cache
    with open(copy / "channel_sums.py", "a") as f:      # relu.py itself is not touched
        f.write("\n# a change elsewhere in the package\n")
    again = _run(tmp_path)
    assert again["misses"] >= 1 and again["hits"] == 0


def test_only_the_kernels_files_get_the_package_stamp():
    assert cache_stamp.LOCATORS[0].from_function(len, os.path.join(ROOT, "setup.py")) is None
    assert len(cache_stamp.package_stamp()) == 32
