"""bench/distributed.py's flags: the timed steps cover at least --min-seconds, and flags that
cannot run are refused in one line (the benchmark itself needs mpirun and runs outside the
tests)."""
import importlib.util
import os
import sys

import pytest

BENCH = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "bench")
# NOTE: appended, not inserted first: bench/kernels.py must not shadow the kernels package
sys.path.append(BENCH)
_spec = importlib.util.spec_from_file_location("bench_distributed",
                                               os.path.join(BENCH, "distributed.py"))
bench = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench)


def test_short_steps_are_timed_for_at_least_two_seconds_by_default():
    args = bench.parse_args([])
    assert args.min_seconds == 2.0 and args.steps == 5
    assert bench.parse_args(["--min-seconds", "0"]).min_seconds == 0.0


@pytest.mark.parametrize("argv", [["--warmup", "0"], ["--steps", "0"], ["--min-seconds", "-1"],
                                  ["--batch-size", "3"]])
def test_flags_that_cannot_run_are_refused(argv, capsys):
    with pytest.raises(SystemExit):
        bench.parse_args(argv)
    assert "error" in capsys.readouterr().err
