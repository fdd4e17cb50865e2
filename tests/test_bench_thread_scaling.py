"""bench/thread_scaling.py: its flags, and the per-line times and calls it reads from cProfile
(the timed steps themselves take minutes and run outside the tests)."""
import cProfile
import os
import sys
import time

import pytest

# NOTE: appended, not inserted first: bench/kernels.py must not shadow the kernels package
sys.path.append(os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "bench"))
import thread_scaling  # noqa: E402


def test_flags():
    args = thread_scaling.parse_args([])
    assert (args.model, args.steps, args.top) == ("melanoma_cnn", 4, 30)
    args = thread_scaling.parse_args(["--model", "padua4", "--steps", "2", "--top", "5"])
    assert (args.model, args.steps, args.top) == ("padua4", 2, 5)
    for bad in (["--steps", "0"], ["--top", "0"], ["--model", "resnet9"]):
        with pytest.raises(SystemExit):
            thread_scaling.parse_args(bad)


def _nap():
    time.sleep(0.01)


def test_lines_are_own_ms_and_calls_per_step():
    profile = cProfile.Profile(time.perf_counter)
    profile.enable()
    for _ in range(3):
        _nap()
    profile.disable()
    lines = thread_scaling._lines(profile, steps=3)
    ms, calls = lines["built-in method time.sleep"]   # a C call: its name, unbracketed
    assert calls == 1 and 10.0 <= ms < 10.0 + 100.0   # 10 ms of wall time a step
    ms, calls = lines["test_bench_thread_scaling.py:_nap"]   # a Python function: file:name
    assert calls == 1 and ms < 5.0   # its own time, without the sleep it called
