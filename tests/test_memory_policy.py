"""The malloc policy the engine applies by itself: in a hand-written loop, in no small process,
never with TINYLESION_KEEP_FREED_MEMORY=0, and never above the process's peak memory."""
import json
import os
import platform
import subprocess
import sys
import textwrap

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

pytestmark = pytest.mark.skipif(
    not (platform.system() == "Linux" and platform.libc_ver()[0] == "glibc"),
    reason="the policy is glibc's mallopt")

# What the child reports: the setting, and whether a 40 MB array comes from mmap (glibc's
# default for any block over 32 MB) or from the heap the policy keeps (mallinfo2's hblkhd is
# the bytes held in mmap'ed blocks).
PROBE = """
    import ctypes, json, os
    import numpy as np
    from kernels import threads

    class MallInfo2(ctypes.Structure):
        _fields_ = [(n, ctypes.c_size_t) for n in ("arena", "ordblks", "smblks", "hblks",
                    "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost")]

    def mmapped():
        f = ctypes.CDLL(None).mallinfo2
        f.restype = MallInfo2
        return f().hblkhd

    def report(**extra):
        before = mmapped()
        big = np.ones(10_000_000, np.float32)
        fresh = mmapped() - before >= big.nbytes
        del big
        print(json.dumps({"kept": threads.kept_freed_bytes(), "mmapped": fresh, **extra}))
"""

LOOP = """
    import tinylesion as tl
    import tinylesion.nn as nn
    import tinylesion.nn.functional as F
    tl.manual_seed(0)
    # as the README's first example, with a batch whose first activation is 4.2 MB
    model = nn.Sequential(nn.Conv2d(3, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(),
                          nn.MaxPool2d(2), nn.Flatten(), nn.Linear(16 * 16 * 16, 7))
    optimizer = tl.optim.Adam(model.parameters(), lr=1e-3)
    rng = np.random.default_rng(0)
    x = tl.Tensor(rng.random((64, 3, 32, 32), dtype=np.float32))
    y = rng.integers(0, 7, 64)
    after_import = threads.kept_freed_bytes()
    loss = F.cross_entropy(model(x), y)
    optimizer.zero_grad(); loss.backward(); optimizer.step()
"""


def run_child(*code, **env):
    """Run PROBE then the pieces of `code` in a fresh interpreter; the last line it printed."""
    full_env = {**os.environ, "PYTHONPATH": ROOT, **env}
    for name, value in env.items():
        if value is None:
            full_env.pop(name)
    out = subprocess.run([sys.executable, "-c", "".join(map(textwrap.dedent, (PROBE,) + code))],
                         env=full_env, capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_a_hand_written_loop_gets_the_policy_without_a_call():
    state = run_child(LOOP, "report(after_import=after_import)",
                      TINYLESION_KEEP_FREED_MEMORY=None)
    assert state["after_import"] == 0           # importing changes nothing
    assert state["kept"] == 1 << 30
    assert not state["mmapped"]                 # glibc really uses the setting


def test_the_variable_turns_the_policy_off_but_not_an_explicit_call():
    state = run_child(LOOP, "report()", TINYLESION_KEEP_FREED_MEMORY="0")
    assert state == {"kept": 0, "mmapped": True}
    state = run_child(LOOP, """
        assert not threads.apply_memory_policy() and not threads.apply_memory_policy(32 << 20)
        report()                               # what fit() and the Loader ask: refused
        """, TINYLESION_KEEP_FREED_MEMORY=" 0 ")
    assert state == {"kept": 0, "mmapped": True}
    state = run_child(LOOP, "threads.keep_freed_memory(64 << 20); report()",
                      TINYLESION_KEEP_FREED_MEMORY="0")
    assert state == {"kept": 64 << 20, "mmapped": False}


def test_small_work_leaves_malloc_as_it_was():
    state = run_child("""
        import tinylesion as tl
        import tinylesion.nn as nn
        model = nn.Sequential(nn.Conv2d(3, 8, 3), nn.Flatten(), nn.Linear(8 * 14 * 14, 2))
        model(tl.Tensor(np.ones((4, 3, 16, 16), np.float32))).sum().backward()
        report()
        """, TINYLESION_KEEP_FREED_MEMORY=None)
    assert state == {"kept": 0, "mmapped": True}


PADUA4_STEPS = """
    import tinylesion as tl
    import tinylesion.nn.functional as F
    from tinylesion.models import get_model

    def rss_mb():
        return int(open("/proc/self/statm").read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20

    tl.manual_seed(0)
    model = get_model("padua4", num_classes=7, image_size=(100, 75))
    optimizer = tl.optim.Adam(model.parameters(), lr=1e-3)
    rng = np.random.default_rng(0)
    x = tl.Tensor(rng.standard_normal((8, 3, 75, 100)).astype(np.float32))
    y = rng.integers(0, 7, 8)
    rss = []
    for step in range(20):
        loss = F.cross_entropy(model(x), y)
        optimizer.zero_grad(); loss.backward(); optimizer.step()
        rss.append(rss_mb())
    peak = [int(l.split()[1]) / 1024 for l in open("/proc/self/status") if l.startswith("VmHWM")]
    report(rss=rss, peak=peak[0])
"""


def test_memory_does_not_grow_from_step_to_step_nor_above_the_peak_without_it():
    kept = run_child(PADUA4_STEPS, TINYLESION_KEEP_FREED_MEMORY=None)
    plain = run_child(PADUA4_STEPS, TINYLESION_KEEP_FREED_MEMORY="0")
    assert kept["kept"] == 1 << 30 and plain["kept"] == 0
    # steady from the third step on (the first ones build the caches and the optimizer state)
    assert max(kept["rss"][2:]) <= kept["rss"][2] * 1.03 + 4, kept["rss"]
    # the policy keeps what the loop reaches anyway: its peak is the plain process's peak
    assert kept["peak"] <= plain["peak"] * 1.05 + 8, (kept["peak"], plain["peak"])
    assert kept["rss"][-1] <= plain["peak"] * 1.05 + 8
