"""Which parts of a training step use the second thread: per kernel, wall and CPU time with 1 and
with 2 threads, all in one process.

    python bench/thread_scaling.py --model melanoma_cnn [--steps 4] [--top 30]

The same model, weights and batch as bench/train_step.py (batch 32). The step runs with
2 threads (wall time, cProfile on time.perf_counter), 2 threads (CPU time, on
time.process_time), 1 thread (CPU time), 1 thread (wall time), in turn, --steps times each, so
that all see the same machine load; each Numba kernel, C call and Python function's own time is
a line. A kernel that uses both threads has wall(2) about half of wall(1) (w1/w2 near 2 on a
quiet machine); one that runs on one thread has w1/w2 near 1. c2/c1 above 1 is work the second
thread adds (spinning, duplicated passes). On a loaded machine the wall ratios mean little:
Linux's autogroup scheduling (/proc/sys/kernel/sched_autogroup_enabled) gives a session one
share of the cores however many threads it runs, so a second thread gains nothing there (every
w1/w2 near 1, the step's too); compare the lines' ratios with the whole step's. Lines are
ranked by the time lost to imperfect scaling, wall(2) - wall(1)/2.
"""
import argparse
import cProfile
import os
import pstats
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SEED_CNNS = ("padua4", "baseline_cnn", "melanoma_cnn")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", choices=SEED_CNNS, default="melanoma_cnn")
    parser.add_argument("--steps", type=int, default=4, help="steps per setting (default 4)")
    parser.add_argument("--top", type=int, default=30, help="lines shown (default 30)")
    args = parser.parse_args(argv)
    if args.steps < 1 or args.top < 1:
        parser.error("--steps and --top must be at least 1")
    return args


def _lines(profile, steps):
    """{label: (own ms per step, calls per step)} of a cProfile run."""
    out = {}
    for (path, _, name), (_, calls, own, _, _) in pstats.Stats(profile).stats.items():
        label = name.strip("<>") if path == "~" else f"{os.path.basename(path)}:{name}"
        ms, n = out.get(label, (0.0, 0.0))
        out[label] = (ms + 1000 * own / steps, n + calls / steps)
    return out


def main(args):
    # NOTE: the project first on the path (bench/kernels.py must not shadow its kernels)
    sys.path.insert(0, os.path.dirname(HERE))
    sys.path.append(HERE)
    import machine
    machine.use_processor_blas()
    import train_step
    from train_step_workers import Job, build_tinylesion
    from kernels import threads

    case = train_step.Case(args.model, None, 32, 2, args.steps, "train")
    with tempfile.TemporaryDirectory() as workdir:
        data = os.path.join(workdir, f"{args.model}.npz")
        facts, _ = train_step.prepare(case, data)
        job = Job("tinylesion", args.model, facts["num_classes"], tuple(facts["size"]),
                  facts["binary"], 32, "train", "cpu", 2, 2, True, data)
        engine = build_tinylesion(job)
    for n in (1, 2, 1, 2):   # warm-up: Numba's compilation, both thread counts
        threads.set_num_threads(n)
        engine.step()
    runs = [(2, time.perf_counter), (2, time.process_time), (1, time.process_time),
            (1, time.perf_counter)]
    profiles = [cProfile.Profile(clock) for _, clock in runs]
    totals = [0.0] * len(runs)
    for _ in range(args.steps):
        for k, ((n, clock), profile) in enumerate(zip(runs, profiles)):
            threads.set_num_threads(n)
            start = clock()
            profile.enable()
            engine.step()
            profile.disable()
            totals[k] += clock() - start
    tables = [_lines(p, args.steps) for p in profiles]
    w2, c2, c1, w1 = (1000 * t / args.steps for t in totals)
    print(f"{args.model} training step, batch 32, ms a step: wall(2 threads) {w2:.0f}, "
          f"CPU(2) {c2:.0f}, CPU(1) {c1:.0f}, wall(1) {w1:.0f}; w1/w2 {w1 / w2:.2f} "
          f"({machine.blas_note()})")
    print("| line | calls | CPU(1) | CPU(2) | c2/c1 | wall(1) | wall(2) | w1/w2 | lost ms |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    rows = []
    for label in set().union(*tables):
        b, d, c, a = (t.get(label, (0.0, 0.0))[0] for t in tables)
        rows.append((b - a / 2, label, tables[2].get(label, (0.0, 0.0))[1], c, d, a, b))
    for lost, label, n, c, d, a, b in sorted(rows, reverse=True)[:args.top]:
        print(f"| {label} | {n:.0f} | {c:.1f} | {d:.1f} | {_ratio(d, c)} | {a:.1f} | {b:.1f} "
              f"| {_ratio(a, b)} | {lost:.1f} |")


def _ratio(a, b):
    return f"{a / b:.2f}" if b else "-"


if __name__ == "__main__":
    main(parse_args())
