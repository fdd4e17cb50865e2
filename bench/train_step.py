"""Images per second of one training step (forward, loss, backward, Adam), tinylesion vs PyTorch.

    python bench/train_step.py --model padua4 [--batch-size 32] [--threads 2] [--steps 7]
    python bench/train_step.py --all            # the three seed CNNs, as a markdown table
    python bench/train_step.py --backbones      # resnet50, mobilenet_v2, densenet121 at 224x224
    python bench/train_step.py --inference      # forward only: seed CNNs at batch 64, resnet50
                                                # at batch 64 and 1 (latency)
    python bench/train_step.py --all --loop     # the README's hand-written loop, one process
    python bench/train_step.py --model padua4 --profile   # cProfile of the tinylesion step

Benchmarks run on the processor's own BLAS kernel (bench/machine.py: the build machines'
OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE pinning is dropped in this process and the ones it starts);
the header names the kernel that ran and the float32 matrix-product rate measured in the same
run, and each model's effective rate (its convolutions' and linear layers' FLOPs per image,
x3 for a training step, times images/s) is given in GFLOP/s and as a share of it.

Separate processes (the default): each engine runs in a process of its own, on the same batch
with the same initial weights (written once to a file both read; the PyTorch process imports
no tinylesion code, so its memory is its own), and the same thread count; the processes take
turns, one step each, so that both see the same machine load, with a pause of --settle-ms
(50 ms) before each step: PyTorch's idle OpenMP threads spin about 10 ms after its last
parallel region (measured: 9 ms of CPU time in a 200 ms sleep after a product on 2 threads),
and without the pause that spin took one of the two cores from whichever step came next (a
batch-1 resnet50 forward of tinylesion's alternated 34 / 43 ms, slow when it followed a
PyTorch step); warm-up steps (Numba compilation) are outside the timing. tinylesion's kernels make OpenMP's idle threads sleep
(OMP_WAIT_POLICY=PASSIVE); PyTorch's run as installed, spinning while idle (GNU OpenMP's
default: on a quiet machine as fast as sleeping or faster, on a loaded one several times
slower), unless --torch-omp-passive gives PyTorch's process the same policy. tinylesion's
process runs as the engine leaves it: the engine asks malloc to keep freed memory for reuse by
itself (kernels.threads, at its first large op), unless --no-keep-memory
(TINYLESION_KEEP_FREED_MEMORY=0); for the seed CNNs' training PyTorch is also run, as a second
reference, with the same malloc setting. Memory: the
step's peak of NumPy allocations (tracemalloc, tinylesion only), each process's peak RSS during
a step (sampled every millisecond, so it also sees Numba's, BLAS's and PyTorch's own buffers
and the freed memory a process keeps), and the RSS after each timed step (growth over steps).

--loop: the README's hand-written loop (model(x), F.cross_entropy, zero_grad, backward, Adam
step; no fit(), no keep_freed_memory call), both engines in one process taking turns.

Both engines' losses on the first step (dropout off) are printed: they must agree to float32
rounding, or the two models differ. The backbones at batch 32 take seconds per step on two
cores, so they default to --warmup 1 --steps 3 (the seed CNNs to 2 and 7).
"""
import argparse
import os
import sys
import time

SEED_CNNS = ("padua4", "baseline_cnn", "melanoma_cnn")
BACKBONES = ("resnet50", "mobilenet_v2", "densenet121")
DEFAULT_STEPS = {"seed": (2, 7), "backbone": (1, 3), "latency": (3, 20)}  # (warm-up, timed)
LOSS_TOLERANCE = 1e-4  # relative: float32 rounding over a network's sums, far below a real change


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    what = parser.add_mutually_exclusive_group()
    what.add_argument("--model", choices=SEED_CNNS + BACKBONES)
    what.add_argument("--all", action="store_true", help="the three seed CNNs, markdown table")
    what.add_argument("--backbones", action="store_true",
                      help="resnet50, mobilenet_v2, densenet121 at 224x224, markdown table")
    parser.add_argument("--inference", action="store_true",
                        help="forward only (eval mode, no autograd); alone: the seed CNNs and "
                             "resnet50 at batch 64, and resnet50 at batch 1 (latency) unless "
                             "--batch-size is given")
    parser.add_argument("--loop", action="store_true",
                        help="the hand-written training loop, both engines in one process")
    parser.add_argument("--batch-size", type=int,
                        help="default 32 for training, 64 for inference")
    parser.add_argument("--num-classes", type=int, default=1000,
                        help="the backbones' classes (default 1000, torchvision's head)")
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--steps", type=int, help="timed steps per engine (default: see above)")
    parser.add_argument("--warmup", type=int, help="untimed steps per engine (default: above)")
    parser.add_argument("--device", choices=("cpu", "gpu"), default="cpu")
    parser.add_argument("--no-torch", action="store_true", help="time tinylesion only")
    parser.add_argument("--no-keep-memory", action="store_true",
                        help="tinylesion's memory policy off (TINYLESION_KEEP_FREED_MEMORY=0): "
                             "glibc's malloc defaults, as PyTorch has them")
    kept = parser.add_mutually_exclusive_group()
    kept.add_argument("--torch-kept-memory", action="store_true",
                      help="also run PyTorch with tinylesion's malloc setting (the default "
                           "for the seed CNNs' training)")
    kept.add_argument("--no-torch-kept-memory", action="store_true",
                      help="skip the second PyTorch run (with tinylesion's malloc setting)")
    parser.add_argument("--settle-ms", type=float, default=50.0,
                        help="pause before each timed step, so that the engine that ran before "
                             "has stopped spinning (default 50; 0: none)")
    parser.add_argument("--torch-omp-passive", action="store_true",
                        help="PyTorch's OpenMP threads sleep while idle, as tinylesion's do "
                             "(OMP_WAIT_POLICY=PASSIVE), instead of spinning (GNU OpenMP's "
                             "default; slow on a loaded machine)")
    parser.add_argument("--profile", action="store_true",
                        help="print a cProfile of the tinylesion step instead of timing")
    args = parser.parse_args(argv)
    for name in ("batch_size", "threads", "steps", "num_classes"):
        value = getattr(args, name)
        if value is not None and value < (2 if name == "num_classes" else 1):
            parser.error(f"--{name.replace('_', '-')} must be at least "
                         f"{2 if name == 'num_classes' else 1}, not {value}")
    if not 0 <= args.settle_ms <= 10_000:
        parser.error(f"--settle-ms must be between 0 and 10000, not {args.settle_ms}")
    if args.warmup is not None and args.warmup < 1:
        parser.error("--warmup must be at least 1 (the first step compiles the kernels)")
    if args.loop and (args.inference or args.profile or args.no_torch):
        parser.error("--loop times the training loop of both engines: it does not combine "
                     "with --inference, --profile or --no-torch")
    if args.loop and args.torch_omp_passive:
        parser.error("--loop runs both engines in one process, which loads one OpenMP "
                     "library, with tinylesion's policy: --torch-omp-passive is for separate "
                     "processes")
    if args.loop and args.device != "cpu":
        parser.error("--loop runs on the CPU only")
    return args


class Case:
    """One measurement: model name, classes (None: the model's own), batch, warm-up and timed
    steps, mode ('train' or 'inference')."""

    def __init__(self, name, num_classes, batch, warmup, steps, mode):
        self.name, self.num_classes, self.batch = name, num_classes, batch
        self.warmup, self.steps, self.mode = warmup, steps, mode

    @property
    def backbone(self):
        return self.name in BACKBONES


def plan_cases(args):
    """The cases the flags ask for, in order: (name, batch) pairs with their step counts."""
    if args.all:
        names = SEED_CNNS
    elif args.backbones:
        names = BACKBONES
    elif args.model:
        names = (args.model,)
    elif args.inference:  # the inference table: batch 64, and resnet50's latency at batch 1
        names = SEED_CNNS + ("resnet50",)
    else:
        names = ("padua4",)
    batch = args.batch_size or (64 if args.inference else 32)
    pairs = [(name, batch) for name in names]
    if args.inference and not (args.all or args.backbones or args.model or args.batch_size):
        pairs.append(("resnet50", 1))
    cases = []
    for name, batch in pairs:
        kind = ("latency" if batch == 1 else "backbone") if name in BACKBONES else "seed"
        warmup, steps = DEFAULT_STEPS[kind]
        cases.append(Case(name, args.num_classes if name in BACKBONES else None, batch,
                          args.warmup or warmup, args.steps or steps,
                          "inference" if args.inference else "train"))
    return cases


ARGS = parse_args() if __name__ == "__main__" else None
if ARGS is not None:
    import machine  # bench/machine.py, beside this file
    machine.use_processor_blas()  # before NumPy: the processes started later inherit it
    if ARGS.no_keep_memory:
        os.environ["TINYLESION_KEEP_FREED_MEMORY"] = "0"  # read by the engine at its first op
    # NOTE: thread pools read these when they start, so they are set before NumPy is imported.
    for var in ("TINYLESION_NUM_THREADS", "NUMBA_NUM_THREADS", "OMP_NUM_THREADS",
                "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(ARGS.threads)

MB = 2.0 ** 20


# ---- machine ------------------------------------------------------------------------------
def cpu_model():
    """The CPU's model name from /proc/cpuinfo (or the platform's)."""
    import platform
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def header(args, torch):
    import datetime
    import numpy as np
    versions = f"NumPy {np.__version__}"
    try:
        import numba
        versions += f", Numba {numba.__version__}"
    except ImportError:
        pass
    if torch is not None:
        versions += f", PyTorch {torch.__version__}"
    load = ", load average %.1f" % os.getloadavg()[0] if hasattr(os, "getloadavg") else ""
    return (f"{datetime.date.today().isoformat()}, {cpu_model()}, {args.threads} thread(s), "
            f"device {args.device}, float32, {versions}{load}")


# ---- separate processes ---------------------------------------------------------------------
def prepare(case, path):
    """Build tinylesion's model for `case` (seed 0), write its initial weights and the fixed
    batch to `path`; returns (model facts, forward FLOPs per image)."""
    import gc
    import numpy as np
    import tinylesion as tl
    from tinylesion import models
    from train_step_flops import forward_flops

    tl.manual_seed(0)
    model = models.get_model(case.name, num_classes=case.num_classes)
    W, H = model.image_size
    rng = np.random.default_rng(0)
    x = rng.standard_normal((case.batch, 3, H, W)).astype(np.float32)
    y = rng.integers(0, model.num_classes, case.batch)
    arrays = {f"state/{k}": tl.backend.to_numpy(v) for k, v in model.state_dict().items()}
    np.savez(path, x=x, y=y, **arrays)
    facts = dict(model=case.name, size=model.image_size, batch=case.batch,
                 num_classes=model.num_classes, binary=model.binary,
                 params=model.num_parameters(), mode=case.mode)
    flops = forward_flops(model, model.image_size)
    del model, arrays
    gc.collect()
    return facts, flops


def bench_case(case, args, torch, workdir):
    """Time the engines in turn, each in its own process; returns a dict of results."""
    import statistics
    from train_step_workers import EngineProcess, Job

    path = os.path.join(workdir, f"{case.name}-{case.batch}.npz")
    facts, flops = prepare(case, path)
    keep = not args.no_keep_memory
    plan = [("tinylesion", "tinylesion", keep)]
    if torch is not None:
        plan.append(("PyTorch", "torch", False))
        kept_default = case.mode == "train" and not case.backbone and keep
        if args.torch_kept_memory or (kept_default and not args.no_torch_kept_memory):
            plan.append((TORCH_KEPT, "torch", True))
    engines, losses = [], {}
    try:
        for label, engine, keep_memory in plan:  # one at a time: warm-ups must not overlap
            job = Job(engine, case.name, facts["num_classes"], facts["size"], facts["binary"],
                      case.batch, case.mode, args.device, args.threads, case.warmup,
                      keep_memory, path, omp_passive=args.torch_omp_passive)
            engines.append(EngineProcess(label, job))
            losses[label] = engines[-1].ready()
        times = {e.label: [] for e in engines}
        cpu_times = {e.label: [] for e in engines}
        rss_after = {e.label: [] for e in engines}
        for i in range(case.steps):
            # NOTE: rotate who goes first, so that no engine always follows the same one
            k = i % len(engines)
            for engine in engines[k:] + engines[:k]:
                time.sleep(args.settle_ms / 1000)   # the previous step's spinning threads
                elapsed, cpu, resident = engine.ask("step")
                times[engine.label].append(elapsed)
                cpu_times[engine.label].append(cpu)
                rss_after[engine.label].append(resident)
        memory = {e.label: e.ask("memory") for e in engines}
    finally:
        for engine in engines:
            engine.close()
        os.remove(path)
    result = dict(facts, flops=flops, times=times, cpu_times=cpu_times, rss_after=rss_after,
                  memory=memory, losses=losses, keep_memory=keep)
    for label, ts in times.items():
        result[label] = case.batch / statistics.median(ts)
    return result


TORCH_KEPT = "PyTorch, memory kept"


def omp_note(args, torch):
    """Which OpenMP wait policy each engine's threads run with."""
    user = os.environ.get("OMP_WAIT_POLICY")
    if user:
        return f"OMP_WAIT_POLICY={user} (set by the caller) for every engine"
    if torch is None:
        return "tinylesion's idle OpenMP threads sleep (OMP_WAIT_POLICY=PASSIVE, its setting)"
    if args.loop:
        return ("one OpenMP library for both engines, its idle threads sleeping "
                "(OMP_WAIT_POLICY=PASSIVE, set by tinylesion's kernels when they load)")
    if args.torch_omp_passive:
        return ("idle OpenMP threads sleep in both processes (OMP_WAIT_POLICY=PASSIVE: "
                "tinylesion's kernels' setting, given to PyTorch's process by "
                "--torch-omp-passive)")
    return ("idle OpenMP threads sleep in tinylesion's process (its kernels' setting) and "
            "spin in PyTorch's (GNU OpenMP's default, PyTorch as installed)")


# ---- reporting ------------------------------------------------------------------------------
def passes(r):
    return 1 if r["mode"] == "inference" else 3


def gflops(r, label):
    """The effective GFLOP/s of engine `label` in result `r`."""
    return r["flops"] * passes(r) * r[label] / 1e9


def loss_check(losses):
    """'a / b (relative difference d)' with a warning when the losses differ beyond float32
    rounding; the first engine is the reference."""
    labels = list(losses)
    ref = losses[labels[0]]
    text = ", ".join(f"{label} {value:.6f}" for label, value in losses.items())
    if len(labels) == 1:
        return text
    worst = max((abs(v - ref) / max(abs(ref), 1e-12) for v in losses.values()), default=0.0)
    verdict = "" if worst <= LOSS_TOLERANCE else "  MISMATCH: the models differ"
    return f"{text} (relative difference {worst:.1e}){verdict}"


def print_result(r, rate):
    W, H = r["size"]
    what = "forward (inference)" if r["mode"] == "inference" else "training step"
    print(f"{r['model']} {what} at {W}x{H}, batch {r['batch']}, {r['params']:,} parameters, "
          f"{r['flops'] / 1e9:.3f} GFLOP per image forward")
    print(f"  first-step loss: {loss_check(r['losses'])}")
    for label, ts in r["times"].items():
        ms = ", ".join(f"{1000 * t:.0f}" for t in ts)
        cpu = r.get("cpu_times", {}).get(label)
        cpu = f"; process CPU time, median {1000 * statistics_median(cpu):.0f} ms" if cpu else ""
        share = f" = {100 * gflops(r, label) / rate:.0f}% of the matmul rate" if rate else ""
        print(f"  {label:20s} median {1000 * statistics_median(ts):8.1f} ms = "
              f"{r[label]:7.1f} images/s, {gflops(r, label):6.1f} GFLOP/s{share}   "
              f"(steps, ms: {ms}{cpu})")
    for label in ("PyTorch", TORCH_KEPT):
        if label in r:
            print(f"  ratio tinylesion / {label}: {r['tinylesion'] / r[label]:.2f}x")
    for label, (traced, peak, kept) in r.get("memory", {}).items():
        numpy_part = f"NumPy peak (tracemalloc) {traced / MB:.0f} MB, " if traced else ""
        after = r["rss_after"][label]
        print(f"  {label} step memory: {numpy_part}process RSS peak {peak / MB:.0f} MB; RSS "
              f"after each timed step (MB): {', '.join(f'{v / MB:.0f}' for v in after)} "
              f"(growth {(after[-1] - after[0]) / MB:+.1f} MB){kept_note(kept)}")
    if r.get("kept") is not None:
        print(f"  after the loop: {kept_note(r['kept'])[2:]}")


def kept_note(kept):
    """What the engine's malloc setting was (kernels.threads.kept_freed_bytes), if reported."""
    if kept is None:
        return ""
    return (f"; tinylesion's engine keeps freed blocks up to {kept / MB:,.0f} MB" if kept else
            "; tinylesion's engine left malloc's defaults")


def kept_cell(kept):
    return "not reported" if kept is None else f"up to {kept / MB:,.0f} MB" if kept else "none"


def statistics_median(values):
    import statistics
    return statistics.median(values)


def rate_cell(r, label):
    """'img/s' (and ms per image at batch 1) of engine `label`."""
    cell = f"{r[label]:.1f}"
    if r["batch"] == 1:
        cell += f" ({1000 / r[label]:.1f} ms)"
    return cell


def print_table(results, args, torch, rate, note):
    inference = results[0]["mode"] == "inference"
    what = ("Inference (forward only, eval mode, no autograd)" if inference else
            "Training step (forward, loss, backward, Adam)")
    print(f"\n{what}: {header(args, torch)}; {note}\n")
    has_kept = any(TORCH_KEPT in r for r in results)
    cols = ["model", "input (WxH)", "batch", "GFLOP/img (fwd)", "tinylesion img/s",
            "PyTorch img/s (ratio)"]
    if has_kept:
        cols.append("PyTorch, memory kept, img/s (ratio)")
    cols += ["GFLOP/s tinylesion / PyTorch (share of matmul)", "peak RSS tinylesion / PyTorch",
             "first-step loss tinylesion / PyTorch"]
    if not inference:
        cols.append("tinylesion RSS growth")
    print("| " + " | ".join(cols) + " |")
    print("|" + "---|" * len(cols))
    for r in results:
        W, H = r["size"]
        peers = []
        for label in ("PyTorch", TORCH_KEPT) if has_kept else ("PyTorch",):
            peers.append(f"{rate_cell(r, label)} ({r['tinylesion'] / r[label]:.2f}x)"
                         if label in r else "n/a")
        rates = " / ".join(f"{gflops(r, label):.0f} ({100 * gflops(r, label) / rate:.0f}%)"
                           for label in ("tinylesion", "PyTorch") if label in r)
        peaks = " / ".join(f"{r['memory'][label][1] / MB:,.0f}"
                           for label in ("tinylesion", "PyTorch") if label in r["memory"])
        losses = " / ".join(f"{r['losses'][label]:.5f}"
                            for label in ("tinylesion", "PyTorch") if label in r["losses"])
        row = [f"`{r['model']}`", f"{W}x{H}", str(r["batch"]), f"{r['flops'] / 1e9:.3f}",
               rate_cell(r, "tinylesion"), *peers, rates, f"{peaks} MB", losses]
        if not inference:
            after = r["rss_after"]["tinylesion"]
            row.append(f"{(after[-1] - after[0]) / MB:+.1f} MB over {len(after)} step(s)")
        print("| " + " | ".join(row) + " |")


def print_loop_table(results, args, torch, rate):
    print(f"\nHand-written training loop, both engines in one process taking turns: "
          f"{header(args, torch)}\n")
    print("| model | input (WxH) | batch | tinylesion img/s | PyTorch img/s | ratio | "
          "GFLOP/s tinylesion / PyTorch (share of matmul) | first-step loss tinylesion / "
          "PyTorch | freed memory tinylesion's engine keeps |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in results:
        W, H = r["size"]
        rates = " / ".join(f"{gflops(r, label):.0f} ({100 * gflops(r, label) / rate:.0f}%)"
                           for label in ("tinylesion", "PyTorch"))
        print(f"| `{r['model']}` | {W}x{H} | {r['batch']} | {r['tinylesion']:.1f} | "
              f"{r['PyTorch']:.1f} | {r['tinylesion'] / r['PyTorch']:.2f}x | {rates} | "
              f"{r['losses']['tinylesion']:.5f} / {r['losses']['PyTorch']:.5f} | "
              f"{kept_cell(r['kept'])} |")


# ---- profile --------------------------------------------------------------------------------
def profile(case, args, workdir):
    """cProfile of the timed steps of tinylesion after the warm-up, in this process."""
    import cProfile
    import io
    import pstats
    from train_step_workers import Job, build_tinylesion

    path = os.path.join(workdir, f"{case.name}-{case.batch}.npz")
    facts, _ = prepare(case, path)
    job = Job("tinylesion", case.name, facts["num_classes"], facts["size"], facts["binary"],
              case.batch, case.mode, args.device, args.threads, case.warmup,
              not args.no_keep_memory, path)
    ours = build_tinylesion(job)
    for _ in range(case.warmup):
        ours.step()
    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(case.steps):
        ours.step()
    ours.sync()
    profiler.disable()
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(20)
    print(f"cProfile of {case.steps} tinylesion {case.mode} steps of {case.name}, batch "
          f"{case.batch}, {args.threads} thread(s), sorted by own time:")
    print(out.getvalue())


# ---- main -----------------------------------------------------------------------------------
def main(args):
    import tempfile
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    import numpy  # noqa: F401  (loaded before the BLAS note and the matmul rate)
    import kernels
    import machine

    torch = None
    if not args.no_torch and not args.profile:
        try:
            import torch
            torch.set_num_threads(args.threads)
        except ImportError:
            if args.loop:
                sys.exit("train_step.py: --loop needs PyTorch, which is not installed")
            print("PyTorch is not installed: timing tinylesion only")
    kernels.set_num_threads(args.threads)
    cases = plan_cases(args)
    with tempfile.TemporaryDirectory(prefix="train_step-") as workdir:
        if args.profile:
            for case in cases:
                profile(case, args, workdir)
            return
        rate = machine.matmul_rate()
        steps = ", ".join(sorted({f"{c.name}: --warmup {c.warmup} --steps {c.steps}"
                                  for c in cases}))
        memory = ("tinylesion's memory policy off (TINYLESION_KEEP_FREED_MEMORY=0)"
                  if args.no_keep_memory else
                  "tinylesion as the engine leaves it (no keep_freed_memory call: the engine "
                  "applies its memory policy by itself)")
        note = (f"{machine.blas_note()}; float32 matmul (2048x2048) {rate:.1f} GFLOP/s in this "
                f"run; {steps}; {memory}; {omp_note(args, torch)}")
        print(header(args, torch))
        print(note)
        results = []
        for case in cases:
            if args.loop:
                from train_step_loop import run_loop
                from train_step_flops import forward_flops
                from tinylesion import models
                results.append(run_loop(case, args.threads))
                results[-1]["mode"] = "train"
                results[-1]["flops"] = forward_flops(
                    models.get_model(case.name, num_classes=case.num_classes),
                    results[-1]["size"])
            else:
                results.append(bench_case(case, args, torch, workdir))
            print_result(results[-1], rate)
            sys.stdout.flush()
    if args.loop:
        print_loop_table(results, args, torch, rate)
    elif len(results) > 1 or args.all or args.backbones:
        print_table(results, args, torch, rate, note)


if __name__ == "__main__":
    main(ARGS)
