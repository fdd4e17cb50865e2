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


def test_the_tables_show_one_synchronisation_against_two_and_where_the_step_goes(capsys):
    phases = {"forward": 4e-4, "backward": 3e-4, "reduction": 2e-4, "signal_wait": 1e-4,
              "update": 1e-4}
    one = {"model": "logistic_regression", "batch": 32, "images_per_s": 30000.0,
           "step_s": 32 / 30000, "phases_s": dict(phases, reduction=0.0, signal_wait=0.0)}
    two = {"model": "logistic_regression", "images_per_s": 27000.0, "step_s": 32 / 27000,
           "allreduce_s": 2e-4, "bytes_per_step": 6e5, "param_bytes": 602116,
           "forward_flops": 301056, "mpi": "2 ranks", "phases_s": phases,
           "two_sync_images_per_s": 24000.0, "two_sync_allreduce_s": 4e-4}
    bench.render([(one, two)])
    out = capsys.readouterr().out
    assert "| logistic_regression | 30000.0 | 27000.0 | 0.90 | 0.20 | 24000.0 | 0.80 | 0.40 " \
           "| 1.12 |" in out
    assert "| logistic_regression | 2 processes, rank 0 | 1.185 | 0.400 | 0.300 | 0.200 | " \
           "0.100 | 0.100 |" in out


def test_each_set_up_steps_through_batches_that_fill_twice_the_l3_cache(tmp_path, monkeypatch):
    size = tmp_path / "size"
    size.write_text("32768K\n")
    monkeypatch.setattr(bench, "L3_FILE", str(size))
    assert bench.l3_bytes() == 32 << 20
    batch = 32 * 3 * 224 * 224 * 4                      # logistic_regression's 19.3 MB
    assert bench.batch_count(None, batch) == 4           # 77 MB >= 2 x 32 MB > 3 batches
    assert bench.batch_count(None, 1 << 30) == 2         # never fewer than two
    assert bench.batch_count(1, batch) == 1              # --batches 1: the old fixed batch
    monkeypatch.setattr(bench, "L3_FILE", str(tmp_path / "missing"))
    assert bench.l3_bytes() == bench.L3_FALLBACK
    assert bench.parse_args(["--batches", "3"]).batches == 3
    with pytest.raises(SystemExit):
        bench.parse_args(["--batches", "0"])


def test_the_header_says_how_batches_were_fed_and_each_ranks_threads(capsys):
    one = {"model": "logistic_regression", "batch": 32, "images_per_s": 30000.0,
           "step_s": 32 / 30000, "batches": 4, "rank_threads": ["rank 0: libopenblas "
                                                                  "SkylakeX 2 thread(s)"]}
    two = dict(one, images_per_s=27000.0, step_s=32 / 27000, allreduce_s=2e-4,
               bytes_per_step=6e5, param_bytes=602116, forward_flops=301056, mpi="2 ranks",
               rank_threads=["rank 0: a 1 thread(s)", "rank 1: a 1 thread(s)"])
    bench.render([(one, two)])
    out = capsys.readouterr().out
    assert "each set-up steps through distinct batches in turn (read from memory, as in a " \
           "run): logistic_regression 4" in out
    assert "2 processes: rank 0: a 1 thread(s) | rank 1: a 1 thread(s)" in out
    bench.render([(dict(one, batches=1), dict(two, batches=1))])
    assert "one fixed batch every step" in capsys.readouterr().out


def test_rounds_alternate_the_set_ups_and_print_each_ratio_and_the_median(capsys):
    assert bench.parse_args(["--rounds", "3"]).rounds == 3
    with pytest.raises(SystemExit):
        bench.parse_args(["--rounds", "0"])
    base = {"model": "logistic_regression", "batch": 32, "step_s": 1e-3, "allreduce_s": 2e-4,
            "bytes_per_step": 6e5, "param_bytes": 602116, "forward_flops": 301056,
            "mpi": "2 ranks"}
    results = [(dict(base, images_per_s=1000.0), dict(base, images_per_s=v))
               for v in (800.0, 1100.0, 900.0)]
    assert bench.round_ratios(results) == ["logistic_regression: 0.80 / 1.10 / 0.90 "
                                           "(median 0.90)"]
    assert bench.round_ratios(results[:1]) == []
    bench.render(results)
    assert "logistic_regression: 0.80 / 1.10 / 0.90 (median 0.90)" in capsys.readouterr().out


_cache_spec = importlib.util.spec_from_file_location(
    "bench_distributed_cache", os.path.join(BENCH, "distributed_cache.py"))
cache = importlib.util.module_from_spec(_cache_spec)
_cache_spec.loader.exec_module(cache)


def test_the_cache_check_compares_a_fixed_batch_with_batches_filling_twice_the_l3():
    runs = cache.variants(2, "rotate", 8.0, l3=4 * 2 * cache.FEATURES * 4)   # 4 batches' worth
    assert list(runs) == ["fixed", "in turn"]
    fixed, turn = runs["fixed"][0], runs["in turn"][0]
    assert len(fixed) == 1 and len(turn) == 8 and turn[0] is fixed[0]
    assert len({id(b) for b in turn}) == 8 and runs["in turn"][1] == []
    runs = cache.variants(2, "extra", 8.0, l3=32 << 20)
    (alone, none), (same, buffers) = runs["alone"], runs["other buffers"]
    assert same == alone and none == [] and 7.5e6 < sum(b.nbytes for b in buffers) < 8.5e6
    for argv in (["--rounds", "0"], ["--extra-mb", "0"], ["--steps", "5000"]):
        with pytest.raises(SystemExit):
            cache.parse_args(argv)
