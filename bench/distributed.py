"""Data-parallel training speed: 2 processes x 1 thread against 1 process x 2 threads.

    python bench/distributed.py                  # the examples' models, a markdown table
    python bench/distributed.py --models padua4 --steps 5 --batch-size 32
    python bench/distributed.py 2> runs.log; python bench/distributed.py --from-log runs.log

For each model, the same global batch (--batch-size) of random images at the model's example
size (each step the next of --batches distinct batches, by default enough to fill twice the L3
cache, so that every set-up reads its batch from memory as a run does; --batches 1 is one fixed
batch, which stays in the cache) takes training steps (forward, class-weighted loss, backward,
gradient averaging, Adam) in two set-ups: `mpirun -n 2` with one thread per rank (per-rank
batch B/2), and one process with two threads (batch B). On 2 ranks the allreduce after backward
sums the buckets in shared-memory windows (fit's default, shared_window.py), and the same steps
through MPI's Allreduce alternate with them in the same job (and the sharded step's with MPI's
reduce-scatter and allgather). Each step is fit's: backward of the summed loss, its weight,
value and count reduced with the gradients (DistributedOptimizer.synchronize(loss=...)).
Reported: images/s of each and their ratio, the time per step spent in the gradient allreduce,
the bytes each rank hands to MPI per step; on 2 ranks the same steps again with the allreduce
overlapped with backward (DistributedOptimizer(overlap=True)) and with the optimizer sharded
(DistributedOptimizer(shard=True): reduce-scatter, Adam on half of the weights, allgather),
their steps alternating with the others in one job: images/s, the time step() still waited for
the allreduce (overlapped) or the reduce-scatter took (sharded), and which of the two fit takes
by default for the model; for a model with a Linear weight of --split-min-mb or more
(dense_nn's first layer; fit splits from 16 MB), the same steps on a copy of the model whose
large Linear layers are split over the ranks by input features (row_parallel.py: activations
exchanged instead of those weights' gradients; the other gradients reduced as fit chooses),
alternating with the others; then, on paper, the link speed at which N = 8 and N = 64 ranks
stay compute-bound (a ring allreduce sends 2(N-1)/N x the parameter bytes per rank per step)
with the step time measured here on one CPU thread and with an H100's step time estimated from
the model's FLOP count. Warm-up steps (Numba compilation) are outside the timing. The header
names every rank's BLAS kernels and thread counts (threadpoolctl) and Numba's threads. --rounds
R alternates the two set-ups' jobs R times and prints each round's ratio and their median.
Numbers from a loaded machine are lower bounds; run it on a quiet one. Every process runs on
the processor's own BLAS kernel (bench/machine.py), named in the header.
"""
import argparse
import json
import math
import os
import statistics
import subprocess
import sys
from pathlib import Path

import machine

ROOT = Path(__file__).resolve().parents[1]
MODELS = ("padua4", "melanoma_cnn", "dense_nn", "logistic_regression")  # the examples' models
SIZES = {"padua4": (100, 75), "melanoma_cnn": (224, 224), "dense_nn": (224, 224),
         "logistic_regression": (224, 224), "baseline_cnn": (128, 128)}
# H100 SXM: 67 TFLOP/s float32 without tensor cores; assume half of it sustained in training
H100_FLOPS = 67e12 * 0.5
RANKS = (8, 64)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", nargs="+", default=list(MODELS), choices=sorted(SIZES))
    p.add_argument("--batch-size", type=int, default=32, help="global batch (even)")
    p.add_argument("--steps", type=int, default=5, help="timed steps")
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--min-seconds", type=float, default=2.0,
                   help="time at least this long: more steps than --steps where a step is "
                        "short (logistic_regression's take about 1 ms)")
    p.add_argument("--overlap-bucket-mb", type=int, default=16,
                   help="bucket size of the overlapped allreduce (MB; the first is 1 MB)")
    p.add_argument("--split-min-mb", type=float, default=16,
                   help="split the Linear layers with a weight of this many MB or more in the "
                        "split set-up (fit's default: 16)")
    p.add_argument("--batches", type=int, default=None,
                   help="distinct batches each set-up steps through in turn (default: enough "
                        "that one set-up's batches fill twice the L3 cache, so that every step "
                        "reads its batch from memory as a real run does; 1: one fixed batch, "
                        "which stays in the cache)")
    p.add_argument("--rounds", type=int, default=1,
                   help="run the set-ups this many times, alternating one process and mpirun, "
                        "and print each round's ratio and their median")
    p.add_argument("--from-log", metavar="FILE",
                   help="print the tables again from the JSON lines an earlier run wrote to "
                        "stderr")
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--threads", type=int, default=1, help=argparse.SUPPRESS)
    p.add_argument("--model", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.batch_size < 2 or args.batch_size % 2:
        p.error("--batch-size must be an even number >= 2")
    if args.warmup < 1 or args.steps < 1 or not 0 <= args.min_seconds <= 3600:
        p.error("--warmup and --steps must be at least 1, --min-seconds between 0 and 3600")
    if not 1 <= args.rounds <= 100:
        p.error(f"--rounds must be between 1 and 100, not {args.rounds}")
    if args.batches is not None and not 1 <= args.batches <= 1000:
        p.error(f"--batches must be between 1 and 1000, not {args.batches}")
    return args


# ---------------------------------------------------------------------------------------------
# worker: one set-up of one model (under mpirun or alone); rank 0 prints one JSON line
# ---------------------------------------------------------------------------------------------

def forward_flops(model, image_size):
    """Multiply-adds x 2 of one image's forward pass through the Conv2d and Linear layers."""
    import numpy as np
    from tinylesion import nn, no_grad
    from tinylesion.tensor import Tensor
    w, h = image_size
    x = Tensor(np.zeros((1, 3, h, w), np.float32))
    flops = 0
    with no_grad():
        for layer in model:
            y = layer(x)
            if isinstance(layer, nn.Conv2d):
                kh, kw = layer.weight.shape[2:]
                flops += 2 * y.array.size * layer.weight.shape[1] * kh * kw
            elif isinstance(layer, nn.Linear):
                flops += 2 * layer.weight.shape[0] * layer.weight.shape[1]
            x = y
    return flops


def fit_default(model, world, adam, batch):
    """The step fit takes for the model on these ranks at `batch` rows per rank: its large
    Linear layers split (then the other gradients reduced as below), the optimizer sharded,
    or the allreduce."""
    from tinylesion import row_parallel, sharded_optimizer
    if row_parallel.candidates(model, world, batch=batch):
        return "split"
    return "sharded" if sharded_optimizer.choose(adam) else "allreduce"


L3_FILE = "/sys/devices/system/cpu/cpu0/cache/index3/size"
L3_FALLBACK = 32 << 20   # when the system does not say


def l3_bytes():
    """The L3 cache's size in bytes (Linux's sysfs; L3_FALLBACK elsewhere)."""
    try:
        text = Path(L3_FILE).read_text().strip().upper()
        scale = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}.get(text[-1:], 1)
        return int(text.rstrip("KMG")) * scale
    except (OSError, ValueError):
        return L3_FALLBACK


def batch_count(requested, global_batch_bytes):
    """How many distinct batches a set-up steps through: `requested`, or enough that they
    fill twice the L3 cache (at least 2)."""
    # NOTE: one fixed batch stays in the cache from one step to the next (logistic_regression
    # at batch 32: 19 MB of a 32 MB L3), where a run reads each new batch from memory; one
    # thread's product over 16 such rows took half the time with a fixed batch as with
    # batches read in turn (0.22 against 0.42 ms of CPU), which favours whichever set-up
    # keeps more of its batch cached
    if requested is not None:
        return requested
    return max(2, math.ceil(2 * l3_bytes() / global_batch_bytes))


def thread_note(world):
    """One line per rank (gathered to rank 0): its BLAS libraries, kernels and thread
    counts (threadpoolctl), and Numba's threads and layer."""
    import numba
    from threadpoolctl import threadpool_info
    libs = ", ".join(f"{os.path.basename(i.get('filepath', '?'))} "
                     f"{i.get('architecture') or i.get('internal_api', '?')} "
                     f"{i.get('num_threads')} thread(s)"
                     for i in threadpool_info() if i.get("user_api") == "blas")
    mine = (f"rank {world.rank}: {libs or 'no BLAS'}; Numba {numba.get_num_threads()} "
            f"thread(s), layer {numba.threading_layer()}")
    return world.comm.gather(mine, root=0)


def worker(args):
    import time

    import numpy as np

    sys.path.insert(0, str(ROOT))
    import kernels
    import tinylesion as tl
    from tinylesion import (distributed, gradient_buckets, optim, row_parallel,
                            sharded_optimizer)
    from tinylesion.models import get_model
    from tinylesion.nn import functional as F
    from tinylesion.tensor import Tensor

    kernels.set_num_threads(args.threads)  # freed memory is kept by the engine's own policy
    world = distributed.init("cpu")
    tl.manual_seed(0)
    size = SIZES[args.model]
    model = get_model(args.model, image_size=size)
    distributed.broadcast_parameters(model.state_dict())
    adam = optim.Adam(model.parameters(), lr=1e-4)
    # NOTE: on 2 ranks, steps alternate between the allreduce after backward, the one
    # overlapped with backward and the sharded optimizer (in one job, so that all see the
    # same load on the machine); the sharded one keeps its own (half) Adam state
    blocking = distributed.DistributedOptimizer(adam, overlap=False)
    # the same allreduce through MPI's Allreduce instead of shared-memory windows
    plain = (distributed.DistributedOptimizer(adam, overlap=False, shared_memory=False)
             if world.size > 1 else None)
    # and the same buckets in windows with two barriers per step (the path before the
    # single-synchronisation one, which small gradients take: gradient_buckets.py)
    two_sync = None
    if world.size > 1 and blocking.buckets is not None and blocking.buckets.single_sync:
        single_bytes = gradient_buckets.SINGLE_SYNC_BYTES
        gradient_buckets.SINGLE_SYNC_BYTES = 0
        try:
            two_sync = distributed.DistributedOptimizer(adam, overlap=False)
        finally:
            gradient_buckets.SINGLE_SYNC_BYTES = single_bytes
    overlapped = (distributed.DistributedOptimizer(adam, overlap=True,
                                                   bucket_bytes=args.overlap_bucket_mb << 20)
                  if world.size > 1 else None)
    sharded = (distributed.DistributedOptimizer(optim.Adam(model.parameters(), lr=1e-4),
                                                shard=True) if world.size > 1 else None)
    # and its reduce-scatter and allgather through MPI's collectives
    sharded_mpi = (distributed.DistributedOptimizer(optim.Adam(model.parameters(), lr=1e-4),
                                                    shard=True, shared_memory=False)
                   if world.size > 1 else None)
    split_model = split = None
    min_bytes = int(args.split_min_mb * (1 << 20))
    batch = args.batch_size // world.size
    if world.size > 1 and row_parallel.candidates(model, world, min_bytes=min_bytes,
                                                  batch=batch):
        tl.manual_seed(0)
        split_model = get_model(args.model, image_size=size)
        distributed.broadcast_parameters(split_model.state_dict())
        adam_split = optim.Adam(split_model.parameters(), lr=1e-4)
        split_names = row_parallel.split_linear_layers(split_model, world, adam_split,
                                                       min_bytes=min_bytes, batch=batch)
        split = distributed.DistributedOptimizer(
            adam_split, shard=sharded_optimizer.choose(adam_split))
    rng = np.random.default_rng(world.rank)
    # each step takes the next of `n_batches` distinct batches (the same count in every set-up:
    # it depends on the global batch only), so that it reads its batch from memory
    n_batches = batch_count(args.batches, args.batch_size * 3 * size[0] * size[1] * 4)
    classes = 2 if model.binary else model.num_classes
    batches = [(Tensor(rng.standard_normal((batch, 3, size[1], size[0]), np.float32)),
                rng.integers(0, classes, batch).astype(np.int64)) for _ in range(n_batches)]
    assert all(x.array.flags.c_contiguous for x, _ in batches)   # one block per rank's slice
    weights = np.linspace(0.5, 2.0, classes).astype(np.float32)
    taken = [0]   # steps taken so far, over all set-ups: the next batch

    # the fit step's forward and loss, backward, reduction (of which waiting for the other
    # rank's signal, on the single-synchronisation path), update
    phases = np.zeros(5)

    def waited():
        return world._shared.waited_s if world._shared else 0.0

    def step(opt):
        """One training step; (its wall time, the time synchronize() took in it)."""
        if overlapped is not None:
            (overlapped.overlap.add_hooks if opt is overlapped
             else overlapped.overlap.remove_hooks)()
        # backward writes the gradients into the buckets of the set-up that steps next
        for owner in (blocking.buckets, getattr(plain, "buckets", None),
                      getattr(two_sync, "buckets", None),
                      getattr(sharded, "sharded", None), getattr(sharded_mpi, "sharded", None)):
            if owner is not None and owner is not getattr(opt, "buckets", None) \
                    and owner is not getattr(opt, "sharded", None):
                owner.release()
        for owner in (getattr(opt, "buckets", None), getattr(opt, "sharded", None)):
            if owner is not None:
                owner.attach()
        x, y = batches[taken[0] % n_batches]
        taken[0] += 1
        t0 = time.perf_counter()
        logits = (split_model if opt is split else model)(x)
        if model.binary:
            local = F.binary_cross_entropy_with_logits(
                logits.reshape(-1, 1), Tensor(y.reshape(-1, 1).astype(np.float32)),
                reduction="sum")
            count = float(len(y))
        else:
            local = F.cross_entropy(logits, y, weight=Tensor(weights), reduction="sum")
            count = float(weights[y].sum())
        t_fwd = time.perf_counter()
        # as fit takes a step: the summed loss's weight, value and count ride with the
        # gradients (one reduction), the gradients come back divided by the global weight
        opt.zero_grad()
        if world.size == 1:   # fit's one process: the mean loss, nothing to reduce
            (local * (1.0 / count)).backward()
        else:
            opt.scale_split_gradients(count)   # split layers: divided in their backward
            local.backward()
        t1 = time.perf_counter()
        w1 = waited()
        if world.size > 1:
            opt.synchronize(loss=(count, float(local.item()), len(y)))
        t2 = time.perf_counter()
        opt.step()
        t3 = time.perf_counter()
        if opt is blocking:   # where the step's time goes
            phases[0] += t_fwd - t0
            phases[1] += t1 - t_fwd
            phases[2] += t2 - t1
            phases[3] += t3 - t2
            phases[4] += waited() - w1
        return t3 - t0, t2 - t1

    setups = [blocking] + [opt for opt in (plain, two_sync, overlapped, sharded, sharded_mpi,
                                           split)
                           if opt is not None]
    for _ in range(args.warmup):
        start = time.perf_counter()
        for opt in setups:
            step(opt)
        round_s = time.perf_counter() - start
    # NOTE: a 1 ms step timed 5 times is noise; every rank must take the same steps (each is
    # collective), so rank 0's count from its last warm-up round goes to all
    steps = world.comm.bcast(max(args.steps, math.ceil(args.min_seconds / max(round_s, 1e-6))),
                             root=0)
    world.barrier()
    phases[...] = 0
    sent0 = {id(opt): opt.bytes_sent for opt in setups}
    took = {id(opt): [0.0, 0.0] for opt in setups}
    for i in range(steps):
        for opt in (setups if i % 2 == 0 else setups[::-1]):
            wall, wait = step(opt)
            took[id(opt)][0] += wall
            took[id(opt)][1] += wait
    world.barrier()
    step_s, comm = (t / steps for t in took[id(blocking)])
    threads = thread_note(world)
    if world.is_main:
        params = sum(p.array.nbytes for p in model.parameters())
        result = {
            "model": args.model, "ranks": world.size, "threads": args.threads,
            "images_per_s": args.batch_size / step_s, "step_s": step_s, "steps": steps,
            "allreduce_s": comm, "bytes_per_step": (blocking.bytes_sent - sent0[id(blocking)])
            / steps, "param_bytes": params, "forward_flops": forward_flops(model, size),
            "batch": args.batch_size, "mpi": distributed.environment_note(),
            "phases_s": dict(zip(("forward", "backward", "reduction", "update", "signal_wait"),
                                 (phases / steps).tolist())),
            "blas": machine.blas_note(), "batches": n_batches, "rank_threads": threads}
        if plain is not None:
            m_step, m_wait = (t / steps for t in took[id(plain)])
            result.update(shared_windows=blocking.buckets is not None and blocking.buckets.shared,
                          mpi_allreduce_images_per_s=args.batch_size / m_step,
                          mpi_allreduce_step_s=m_step, mpi_allreduce_s=m_wait)
        if plain is not None:
            result.update(single_sync=bool(blocking.buckets is not None
                                           and blocking.buckets.single_sync))
        if two_sync is not None:
            t_step, t_wait = (t / steps for t in took[id(two_sync)])
            result.update(two_sync_images_per_s=args.batch_size / t_step,
                          two_sync_step_s=t_step, two_sync_allreduce_s=t_wait)
        if overlapped is not None:
            o_step, o_wait = (t / steps for t in took[id(overlapped)])
            result.update(overlap_images_per_s=args.batch_size / o_step, overlap_step_s=o_step,
                          overlap_wait_s=o_wait)
        if sharded is not None:
            s_step, s_wait = (t / steps for t in took[id(sharded)])
            result.update(shard_images_per_s=args.batch_size / s_step, shard_step_s=s_step,
                          shard_reduce_scatter_s=s_wait,
                          shard_bytes_per_step=(sharded.bytes_sent - sent0[id(sharded)])
                          / steps,
                          fit_default=fit_default(model, world, adam, batch))
            q_step, q_wait = (t / steps for t in took[id(sharded_mpi)])
            result.update(shard_mpi_images_per_s=args.batch_size / q_step,
                          shard_mpi_reduce_scatter_s=q_wait,
                          shard_shared_windows=sharded.sharded.shared)
        if split is not None:
            p_step, p_wait = (t / steps for t in took[id(split)])
            result.update(split_images_per_s=args.batch_size / p_step, split_step_s=p_step,
                          split_sync_s=p_wait, split_layers=split_names,
                          split_min_mb=args.split_min_mb,
                          split_bytes_per_step=(split.bytes_sent - sent0[id(split)])
                          / steps, split_reduction=distributed.describe_step(split))
        print(json.dumps(result))


# ---------------------------------------------------------------------------------------------
# driver
# ---------------------------------------------------------------------------------------------

def _env(threads):
    env = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1")
    for var in ("NUMBA_NUM_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS",
                "MKL_NUM_THREADS", "TINYLESION_NUM_THREADS"):
        env[var] = str(threads)
    return env  # without the BLAS pinning variables: machine.use_processor_blas() dropped them


def run(args, model, ranks):
    threads = 2 // ranks
    cmd = [sys.executable, __file__, "--worker", "--model", model, "--threads", str(threads),
           "--batch-size", str(args.batch_size), "--steps", str(args.steps),
           "--warmup", str(args.warmup), "--overlap-bucket-mb", str(args.overlap_bucket_mb),
           "--split-min-mb", str(args.split_min_mb), "--min-seconds", str(args.min_seconds)]
    if args.batches is not None:
        cmd += ["--batches", str(args.batches)]
    if ranks > 1:
        mpirun = Path(sys.executable).parent / "mpirun"
        cmd = [str(mpirun) if mpirun.is_file() else "mpirun", "-n", str(ranks),
               "--oversubscribe", "--bind-to", "none"] + cmd
    proc = subprocess.run(cmd, capture_output=True, text=True, env=_env(threads))
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def link_speed(param_bytes, n, step_s):
    """Gbit/s a rank's link needs so that a ring allreduce takes no longer than the step."""
    return 2 * (n - 1) / n * param_bytes * 8 / step_s / 1e9


def main(args):
    results = []
    for _ in range(args.rounds):   # NOTE: the two set-ups' jobs alternate, round after round
        for model in args.models:
            one, two = run(args, model, 1), run(args, model, 2)
            print(f"{model}: {json.dumps(one)}\n{model}: {json.dumps(two)}", file=sys.stderr)
            results.append((one, two))
    render(results)


def round_ratios(results):
    """Lines 'model: ratio per round, median' of 2 processes to 1 process (images/s), for the
    models measured in more than one round."""
    ratios = {}
    for one, two in results:
        ratios.setdefault(one["model"], []).append(two["images_per_s"] / one["images_per_s"])
    return [f"{model}: {' / '.join(f'{r:.2f}' for r in values)} (median "
            f"{statistics.median(values):.2f})"
            for model, values in ratios.items() if len(values) > 1]


def render(results):
    """The two markdown tables from (1 process, 2 ranks) worker results."""
    rows, paper, shard_rows, split_rows, window_rows = [], [], [], [], []
    sync_rows, phase_rows = [], []
    for one, two in results:
        model, batch = one["model"], one["batch"]
        if "mpi_allreduce_images_per_s" in two:
            window_rows.append(
                f"| {model} | {'yes' if two['shared_windows'] else 'no'} | "
                f"{one['images_per_s']:.1f} | {two['images_per_s']:.1f} | "
                f"{two['images_per_s'] / one['images_per_s']:.2f} | "
                f"{two['allreduce_s'] * 1e3:.2f} | {two['mpi_allreduce_images_per_s']:.1f} | "
                f"{two['mpi_allreduce_images_per_s'] / one['images_per_s']:.2f} | "
                f"{two['mpi_allreduce_s'] * 1e3:.2f} | "
                + (f"{two['shard_images_per_s']:.1f} | {two['shard_mpi_images_per_s']:.1f} |"
                   if "shard_mpi_images_per_s" in two else "- | - |"))
        if "phases_s" in two and "phases_s" in one:
            for who, r in (("1 process x 2 threads", one), ("2 processes, rank 0", two)):
                ph = r["phases_s"]
                phase_rows.append(
                    f"| {model} | {who} | {r['step_s'] * 1e3:.3f} | "
                    + " | ".join(f"{ph[k] * 1e3:.3f}" for k in
                                 ("forward", "backward", "reduction", "signal_wait", "update"))
                    + " |")
        if "two_sync_images_per_s" in two:
            sync_rows.append(
                f"| {model} | {one['images_per_s']:.1f} | {two['images_per_s']:.1f} | "
                f"{two['images_per_s'] / one['images_per_s']:.2f} | "
                f"{two['allreduce_s'] * 1e3:.2f} | {two['two_sync_images_per_s']:.1f} | "
                f"{two['two_sync_images_per_s'] / one['images_per_s']:.2f} | "
                f"{two['two_sync_allreduce_s'] * 1e3:.2f} | "
                f"{two['images_per_s'] / two['two_sync_images_per_s']:.2f} |")
        if "split_images_per_s" in two:
            split_rows.append(
                f"| {model} | {', '.join(two['split_layers'])} (from {two['split_min_mb']:g} MB) "
                f"| {one['images_per_s']:.1f} | {two['images_per_s']:.1f} | "
                f"{two['images_per_s'] / one['images_per_s']:.2f} | "
                f"{two['split_images_per_s']:.1f} | "
                f"{two['split_images_per_s'] / one['images_per_s']:.2f} | "
                f"{two['split_sync_s'] * 1e3:.0f} | {two['split_bytes_per_step'] / 1e6:.2f} |")
        if "shard_images_per_s" in two:
            shard_rows.append(
                f"| {model} | {two['fit_default']} | {one['images_per_s']:.1f} | "
                f"{two['images_per_s']:.1f} | {two['images_per_s'] / one['images_per_s']:.2f} | "
                f"{two['shard_images_per_s']:.1f} | "
                f"{two['shard_images_per_s'] / one['images_per_s']:.2f} | "
                f"{two['shard_reduce_scatter_s'] * 1e3:.0f} | "
                f"{two['shard_bytes_per_step'] / 1e6:.2f} |")
        rows.append(f"| {model} | {one['images_per_s']:.1f} | {two['images_per_s']:.1f} | "
                    f"{two['images_per_s'] / one['images_per_s']:.2f} | "
                    f"{two['allreduce_s'] * 1e3:.0f} | {two['bytes_per_step'] / 1e6:.2f} | "
                    + (f"{two['overlap_images_per_s']:.1f} | {two['overlap_wait_s'] * 1e3:.0f} "
                       f"| {two['overlap_wait_s'] / two['allreduce_s']:.2f} |"
                       if "overlap_wait_s" in two else "- | - | - |"))
        # the compute of one rank's step (per-rank batch, one CPU thread), without the allreduce
        cpu_step = two["step_s"] - two["allreduce_s"]
        gpu_step = 3 * two["forward_flops"] * (batch // 2) / H100_FLOPS
        paper.append(f"| {model} | {two['param_bytes'] / 1e6:.2f} | {cpu_step * 1e3:.0f} | "
                     + " | ".join(f"{link_speed(two['param_bytes'], n, cpu_step):.2f}"
                                  for n in RANKS)
                     + f" | {gpu_step * 1e3:.3f} | ".replace(" 0.000 ", f" {gpu_step * 1e3:.2g} ")
                     + " | ".join(f"{link_speed(two['param_bytes'], n, gpu_step):,.0f}"
                                  for n in RANKS) + " |")
    counts = {r[1]["model"]: r[1].get("batches", 1) for r in results}
    batches = (f"each set-up steps through distinct batches in turn (read from memory, as in "
               f"a run): " + ", ".join(f"{m} {n}" for m, n in counts.items())
               if min(counts.values()) > 1
               else "one fixed batch every step (it may stay in the cache)")
    print(f"global batch {batch}; {batches}; {two['mpi']}; "
          f"{two.get('blas', 'BLAS kernel not logged')}")
    for who, r in (("1 process", one), ("2 processes", two)):
        if "rank_threads" in r:
            print(f"{who}: " + " | ".join(r["rank_threads"]))
    print()
    print("| model | 1 process x 2 threads (img/s) | 2 processes x 1 thread (img/s) | ratio "
          "| allreduce per step (ms) | MB sent per rank per step | 2 processes, overlapped "
          "(img/s) | step() waited, overlapped (ms) | wait: overlapped / after backward |")
    print("|---|---|---|---|---|---|---|---|---|")
    print("\n".join(rows))
    if window_rows:
        print("\nThe allreduce after backward in shared-memory windows (the table above) "
              "against MPI's Allreduce, their steps alternating in the same job:\n")
        print("| model | buckets in shared windows | 1 process x 2 threads (img/s) | 2 processes, "
              "shared windows (img/s) | ratio | allreduce per step (ms) | 2 processes, MPI's "
              "Allreduce (img/s) | ratio | allreduce per step (ms) | sharded, shared windows "
              "(img/s) | sharded, MPI's collectives (img/s) |")
        print("|---|---|---|---|---|---|---|---|---|---|---|")
        print("\n".join(window_rows))
    if phase_rows:
        print("\nWhere the step's time goes (ms per step, the table's first set-up: forward "
              "and loss, backward, the reduction with the waiting in it, the update):\n")
        print("| model | set-up | step | forward | backward | reduction | of which waiting "
              "for the other rank's signal | update |")
        print("|---|---|---|---|---|---|---|---|")
        print("\n".join(phase_rows))
    if sync_rows:
        print("\nSmall gradients in shared windows: one synchronisation per step (each rank "
              "sums every rank's bucket into its own buffer; the table above) against two "
              "barriers (each rank sums its slice for all), their steps alternating in the "
              "same job:\n")
        print("| model | 1 process x 2 threads (img/s) | 2 processes, one synchronisation "
              "(img/s) | ratio | allreduce per step (ms) | 2 processes, two barriers (img/s) "
              "| ratio | allreduce per step (ms) | one / two |")
        print("|---|---|---|---|---|---|---|---|---|")
        print("\n".join(sync_rows))
    if shard_rows:
        print("\nThe optimizer sharded over the 2 ranks (reduce-scatter, Adam on half of the "
              "weights, allgather), against the allreduce after backward, in the same job:\n")
        print("| model | fit's default | 1 process x 2 threads (img/s) | 2 processes, allreduce "
              "(img/s) | ratio | 2 processes, sharded (img/s) | ratio | reduce-scatter per "
              "step (ms) | MB handed to MPI per rank per step, sharded |")
        print("|---|---|---|---|---|---|---|---|---|")
        print("\n".join(shard_rows))
    if split_rows:
        print("\nLarge Linear layers split over the 2 ranks by input features (activations "
              "exchanged in forward and backward; the other gradients reduced as fit chooses), "
              "against the allreduce after backward, in the same job:\n")
        print("| model | layers split | 1 process x 2 threads (img/s) | 2 processes, allreduce "
              "(img/s) | ratio | 2 processes, split (img/s) | ratio | reduction of the other "
              "gradients per step (ms) | MB of gradients per rank per step, split |")
        print("|---|---|---|---|---|---|---|---|---|")
        print("\n".join(split_rows))
    rounds = round_ratios(results)
    if rounds:
        print("\n2 processes x 1 thread / 1 process x 2 threads (images/s), round by round "
              "(each round's two jobs one after the other):\n")
        print("\n".join(rounds))
    print(f"\nLink speed (Gbit/s per rank) at which a ring allreduce of the gradients takes no "
          f"longer than a step's compute (per-rank batch {batch // 2}):\n")
    print("| model | gradient MB | CPU step, 1 thread (ms) | CPU N=8 | CPU N=64 "
          "| H100 step (ms, from FLOPs) | H100 N=8 | H100 N=64 |")
    print("|---|---|---|---|---|---|---|---|")
    print("\n".join(paper))


def from_log(path):
    """Re-render the tables from the JSON lines a run printed to stderr."""
    lines = [json.loads(line.split(": ", 1)[1]) for line in Path(path).read_text().splitlines()
             if line.split(": ", 1)[0] in SIZES and ": {" in line]
    render(list(zip(lines[0::2], lines[1::2])))


if __name__ == "__main__":
    machine.use_processor_blas()  # here and in every rank, before NumPy loads OpenBLAS
    ARGS = parse_args()
    if ARGS.worker:
        worker(ARGS)
    elif ARGS.from_log:
        from_log(ARGS.from_log)
    else:
        main(ARGS)
