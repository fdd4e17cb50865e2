"""Whether a fixed batch stays in the cache: logistic_regression's two products, one fixed batch
against batches taken in turn, alone and as two ranks side by side.

    python bench/distributed_cache.py                 # the three measurements, a markdown table
    python bench/distributed_cache.py --rounds 40 --extra-mb 8

The products are those of a logistic_regression training step at 224x224 (x Wᵀ, then the
weight gradient dYᵀ x, through kernels.matmul on one thread). Measured: CPU time
(time.process_time) per step of both products, the two variants alternating in one process
(medians over --rounds rounds of --steps steps):
1. one process, 16 and 32 rows: one fixed batch, against distinct batches filling twice the L3
   cache taken in turn (bench/distributed.py's default);
2. two such processes side by side at 16 rows (the ranks of `mpirun -n 2`), the same;
3. two processes side by side with one fixed batch of 16 rows each: alone, against each
   also writing --extra-mb MB of other buffers between steps (what the other set-ups of
   bench/distributed.py's 2-rank job hold: gradient buckets, optimizer state).
CPU-time ratios hold on a loaded machine where wall times do not. Runs on the processor's own
BLAS kernel (bench/machine.py).
"""
import argparse
import json
import subprocess
import sys
from pathlib import Path

import machine

FEATURES = 3 * 224 * 224   # logistic_regression's inputs at 224x224


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=20, help="alternated rounds (median)")
    p.add_argument("--steps", type=int, default=20, help="steps per round and variant")
    p.add_argument("--extra-mb", type=float, default=8.0,
                   help="MB of other buffers written between steps in measurement 3")
    p.add_argument("--worker", nargs=2, metavar=("ROWS", "MODE"), help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if not (1 <= args.rounds <= 1000 and 1 <= args.steps <= 1000):
        p.error("--rounds and --steps must be between 1 and 1000")
    if not 0 < args.extra_mb <= 1024:
        p.error(f"--extra-mb must be above 0 and at most 1024, not {args.extra_mb}")
    return args


def variants(rows, mode, extra_mb, l3):
    """{variant name: (the batches it takes in turn, the buffers it writes between steps)}."""
    import numpy as np
    rng = np.random.default_rng(rows)
    batch = lambda: rng.standard_normal((rows, FEATURES), dtype=np.float32)  # noqa: E731
    fixed = [batch()]
    if mode == "rotate":
        count = max(2, -(-2 * l3 // (rows * FEATURES * 4)))
        return {"fixed": (fixed, []), "in turn": (fixed + [batch() for _ in range(count - 1)],
                                                  [])}
    buffers = [np.ones(FEATURES, np.float32) for _ in range(max(1, round(extra_mb * 1e6 /
                                                                      (FEATURES * 4))))]
    return {"alone": (fixed, []), "other buffers": (fixed, buffers)}


def worker(args):
    """One process: the medians of the two variants, as one JSON line."""
    import time

    import numpy as np
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    import kernels
    from distributed import l3_bytes
    kernels.set_num_threads(1)
    rows, mode = int(args.worker[0]), args.worker[1]
    runs = variants(rows, mode, args.extra_mb, l3_bytes())
    rng = np.random.default_rng(0)
    w = rng.standard_normal((1, FEATURES), dtype=np.float32)
    g = rng.standard_normal((rows, 1), dtype=np.float32)
    times = {name: [] for name in runs}
    for r in range(args.rounds + 1):   # the first round warms up
        for name in (list(runs) if r % 2 else list(runs)[::-1]):
            batches, buffers = runs[name]
            spent = 0.0
            for i in range(args.steps):
                for b in buffers:
                    b *= np.float32(1.0)
                x = batches[i % len(batches)]
                start = time.process_time()
                kernels.matmul(x, w, trans_b=True)
                kernels.matmul(g, x, trans_a=True)
                spent += time.process_time() - start
            if r:
                times[name].append(spent / args.steps)
    print(json.dumps({name: sorted(t)[len(t) // 2] for name, t in times.items()}))


def run(args, rows, mode, processes):
    cmd = [sys.executable, __file__, "--worker", str(rows), mode, "--rounds", str(args.rounds),
           "--steps", str(args.steps), "--extra-mb", str(args.extra_mb)]
    env = dict(__import__("os").environ, OMP_NUM_THREADS="1", NUMBA_NUM_THREADS="1",
               OPENBLAS_NUM_THREADS="1")
    procs = [subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              env=env) for _ in range(processes)]
    found = []
    for proc in procs:
        out, err = proc.communicate()
        if proc.returncode != 0:
            raise SystemExit(f"{' '.join(cmd)} failed:\n{err[-3000:]}")
        found.append(json.loads(out.strip().splitlines()[-1]))
    return found


def main(args):
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from distributed import l3_bytes
    print(f"{machine.blas_note()}; L3 cache {l3_bytes() >> 20} MB; CPU ms per step of the two "
          f"products, medians of {args.rounds} alternated rounds of {args.steps} steps\n")
    print("| set-up | rows | variant A (ms) | variant B (ms) | B / A |")
    print("|---|---|---|---|---|")
    for label, rows, mode, processes in (
            ("one process: fixed (A) / batches in turn (B)", 16, "rotate", 1),
            ("one process: fixed (A) / batches in turn (B)", 32, "rotate", 1),
            ("two side by side: fixed (A) / batches in turn (B)", 16, "rotate", 2),
            (f"two side by side, fixed: alone (A) / {args.extra_mb:g} MB of other buffers "
             f"written between steps (B)", 16, "extra", 2)):
        for i, result in enumerate(run(args, rows, mode, processes)):
            a, b = list(result.values())
            who = f" (process {i + 1})" if processes > 1 else ""
            print(f"| {label}{who} | {rows} | {a * 1e3:.3f} | {b * 1e3:.3f} | {b / a:.2f} |")


if __name__ == "__main__":
    machine.use_processor_blas()   # here and in the processes it starts, before NumPy loads
    ARGS = parse_args()
    if ARGS.worker:
        worker(ARGS)
    else:
        main(ARGS)
