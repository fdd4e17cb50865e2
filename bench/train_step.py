"""Images per second of one training step (forward, loss, backward, Adam), tinylesion vs PyTorch.

    python bench/train_step.py --model padua4 [--batch-size 32] [--threads 2] [--steps 10]
    python bench/train_step.py --all            # the three seed CNNs, as a markdown table
    python bench/train_step.py --model padua4 --profile   # cProfile of the tinylesion step

Each engine runs in a process of its own, on the same fixed batch, with the same initial
weights and thread count; the processes take turns, one step each, so that both see the same
machine load; warm-up steps (Numba compilation) are outside the timing. tinylesion's process
keeps freed memory for reuse, as its training loop does (kernels.threads.keep_freed_memory);
PyTorch runs as installed and, as a second reference, with the same malloc setting.
Memory: the step's peak of NumPy allocations (tracemalloc), the process's peak RSS during a
step (sampled every millisecond, so it also sees Numba's and BLAS's own buffers, and the freed
memory the process keeps), and the RSS after each timed step, to show whether memory grows
from step to step.
"""
import argparse
import os
import sys

DEFAULT_SIZES = {"padua4": (100, 75), "baseline_cnn": (128, 128), "melanoma_cnn": (224, 224)}


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", choices=sorted(DEFAULT_SIZES), default="padua4")
    parser.add_argument("--all", action="store_true", help="all three models, markdown table")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--steps", type=int, default=7, help="timed steps per engine")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps per engine")
    parser.add_argument("--device", choices=("cpu", "gpu"), default="cpu")
    parser.add_argument("--no-torch", action="store_true", help="time tinylesion only")
    parser.add_argument("--no-torch-kept-memory", action="store_true",
                        help="skip the second PyTorch run (with tinylesion's malloc setting)")
    parser.add_argument("--profile", action="store_true",
                        help="print a cProfile of the tinylesion step instead of timing")
    args = parser.parse_args(argv)
    for name in ("batch_size", "threads", "steps"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    if args.warmup < 1:
        parser.error("--warmup must be at least 1 (the first step compiles the kernels)")
    return args


ARGS = parse_args() if __name__ == "__main__" else None
if ARGS is not None:
    # NOTE: thread pools read these when they start, so they are set before NumPy is imported.
    for var in ("TINYLESION_NUM_THREADS", "NUMBA_NUM_THREADS", "OMP_NUM_THREADS",
                "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(ARGS.threads)

import cProfile  # noqa: E402
import datetime  # noqa: E402
import io  # noqa: E402
import multiprocessing  # noqa: E402
import platform  # noqa: E402
import pstats  # noqa: E402
import statistics  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
import traceback  # noqa: E402
import tracemalloc  # noqa: E402

import numpy as np  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import kernels  # noqa: E402
import tinylesion as tl  # noqa: E402
from tinylesion import models, optim  # noqa: E402
from tinylesion.nn import functional as F  # noqa: E402

MB = 2.0 ** 20


# ---- threads and machine ----------------------------------------------------------------
def set_threads(n):
    """One thread count for Numba, the BLAS and PyTorch (when imported)."""
    if hasattr(kernels, "set_num_threads"):
        kernels.set_num_threads(n)
    else:  # the kernels' own setting is not there yet: set Numba and the BLAS directly
        import numba
        from threadpoolctl import threadpool_limits
        numba.set_num_threads(min(n, numba.config.NUMBA_NUM_THREADS))
        threadpool_limits(n)
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(n)


def cpu_model():
    """The CPU's model name from /proc/cpuinfo (or the platform's)."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def rss():
    """The resident set size of this process, in bytes."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


class RssSampler:
    """The peak RSS while a block runs, sampled every millisecond in a thread."""

    def __enter__(self):
        self.start = self.peak = rss()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def _run(self):
        while not self._stop.wait(0.001):
            self.peak = max(self.peak, rss())

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, rss())


# ---- the two engines ------------------------------------------------------------------------
def torch_model(torch, name, num_classes, size):
    """The same architecture in PyTorch (layer for layer, so state_dict names match)."""
    from torch_models import torch_model as twin  # bench/torch_models.py, beside this file
    return twin(name, num_classes, size)


class Engine:
    """One engine's model, optimizer and fixed batch, with a `step()` and a `sync()`."""

    def __init__(self, label, step, sync=lambda: None):
        self.label, self.step, self.sync = label, step, sync

    def timed_step(self):
        self.sync()
        start = time.perf_counter()
        self.step()
        self.sync()
        return time.perf_counter() - start


def make_tinylesion(name, batch_size, device):
    tl.manual_seed(0)
    model = models.get_model(name).to(device)
    W, H = model.image_size
    rng = np.random.default_rng(0)
    x = tl.Tensor(rng.standard_normal((batch_size, 3, H, W)).astype(np.float32), device=device)
    if model.binary:
        target = tl.Tensor(rng.integers(0, 2, (batch_size, 1)).astype(np.float32), device=device)
        loss_fn = F.binary_cross_entropy_with_logits
    else:
        target = tl.Tensor(rng.integers(0, model.num_classes, batch_size), device=device)
        loss_fn = F.cross_entropy
    opt = optim.Adam(model.parameters(), lr=1e-4)
    model.train()

    def step():
        opt.zero_grad()
        loss = loss_fn(model(x), target)
        loss.backward()
        opt.step()
        return loss

    sync = lambda: None
    if tl.backend.as_device(device).name == "gpu":
        cp = tl.backend.cupy_module()
        sync = cp.cuda.Device().synchronize
    return model, x, target, Engine("tinylesion", step, sync)


def make_torch(torch, model, x, target, device):
    """PyTorch's model with tinylesion's initial weights, on the same batch."""
    ref = torch_model(torch, model.name, model.num_classes, model.image_size)
    ref.load_state_dict({k: torch.from_numpy(tl.backend.to_numpy(v).copy())
                         for k, v in model.state_dict().items()})
    dev = "cuda" if device == "gpu" else "cpu"
    ref = ref.to(dev).train()
    tx = torch.from_numpy(x.numpy()).to(dev)
    tt = torch.from_numpy(target.numpy()).to(dev)
    loss_fn = (torch.nn.functional.binary_cross_entropy_with_logits if model.binary
               else torch.nn.functional.cross_entropy)
    opt = torch.optim.Adam(ref.parameters(), lr=1e-4)

    def step():
        opt.zero_grad()
        loss = loss_fn(ref(tx), tt)
        loss.backward()
        opt.step()
        return loss

    sync = torch.cuda.synchronize if dev == "cuda" else (lambda: None)
    return Engine("PyTorch", step, sync)


# ---- measurements ---------------------------------------------------------------------------
def memory_of_step(engine):
    """(tracemalloc peak, the process's peak RSS) during one step, in bytes."""
    tracemalloc.start()
    tracemalloc.reset_peak()
    engine.step()
    _, traced_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    with RssSampler() as sampler:
        engine.step()
    return traced_peak, sampler.peak


def _engine_worker(conn, label, name, args, keep_memory):
    """One engine in its own process: build it, warm it up, then time a step per request."""
    try:
        set_threads(args.threads)
        if keep_memory:
            kernels.threads.keep_freed_memory()
        model, x, target, engine = make_tinylesion(name, args.batch_size, args.device)
        if label != "tinylesion":
            import torch
            set_threads(args.threads)
            engine = make_torch(torch, model, x, target, args.device)
        engine.label = label
        for _ in range(args.warmup):
            engine.step()
        engine.sync()
        conn.send(("ready", None))
        while True:
            request = conn.recv()
            if request == "step":
                conn.send(("ok", (engine.timed_step(), rss())))
            elif request == "memory":
                conn.send(("ok", memory_of_step(engine)))
            else:
                return
    except BaseException:
        conn.send(("error", traceback.format_exc()))


class EngineProcess:
    """The parent's handle on an `_engine_worker`."""

    def __init__(self, label, name, args, keep_memory):
        self.label = label
        ctx = multiprocessing.get_context("spawn")
        self.conn, child = ctx.Pipe()
        self.process = ctx.Process(target=_engine_worker,
                                   args=(child, label, name, args, keep_memory), daemon=True)
        self.process.start()

    def ask(self, request):
        status, value = self.conn.recv() if request is None else self._send(request)
        if status == "error":
            raise RuntimeError(f"the {self.label} process failed:\n{value}")
        return value

    def _send(self, request):
        self.conn.send(request)
        return self.conn.recv()

    def close(self):
        try:
            self.conn.send("stop")
        except OSError:
            pass
        self.process.join(10)
        if self.process.is_alive():
            self.process.terminate()


TORCH_KEPT = "PyTorch, memory kept"


def bench_model(name, args, torch):
    """Time the engines in turn, each in its own process; returns a dict of results."""
    model = models.get_model(name)
    plan = [("tinylesion", True)]
    if torch is not None:
        plan.append(("PyTorch", False))
        if not args.no_torch_kept_memory:
            plan.append((TORCH_KEPT, True))
    engines = []
    try:
        for label, keep in plan:  # one at a time: warm-ups must not overlap
            engines.append(EngineProcess(label, name, args, keep))
            engines[-1].ask(None)
        times = {e.label: [] for e in engines}
        rss_after = []
        for i in range(args.steps):
            # NOTE: rotate who goes first, so that no engine always follows the same one
            k = i % len(engines)
            for engine in engines[k:] + engines[:k]:
                elapsed, resident = engine.ask("step")
                times[engine.label].append(elapsed)
                if engine.label == "tinylesion":
                    rss_after.append(resident)
        traced, rss_peak = engines[0].ask("memory")
    finally:
        for engine in engines:
            engine.close()
    result = dict(model=name, size=model.image_size, batch=args.batch_size,
                  params=model.num_parameters(), times=times, rss_after=rss_after,
                  traced_peak=traced, rss_peak=rss_peak)
    for label, ts in times.items():
        result[label] = args.batch_size / statistics.median(ts)
    return result


def print_result(r):
    W, H = r["size"]
    print(f"{r['model']} at {W}x{H}, batch {r['batch']}, {r['params']:,} parameters")
    for label, ts in r["times"].items():
        ms = ", ".join(f"{1000 * t:.0f}" for t in ts)
        print(f"  {label:10s} median {1000 * statistics.median(ts):8.1f} ms = "
              f"{r[label]:7.1f} images/s   (steps, ms: {ms})")
    for label in ("PyTorch", TORCH_KEPT):
        if label in r:
            print(f"  ratio tinylesion / {label}: {r['tinylesion'] / r[label]:.2f}x")
    growth = (r["rss_after"][-1] - r["rss_after"][0]) / MB
    print(f"  tinylesion step memory: NumPy peak (tracemalloc) {r['traced_peak'] / MB:.0f} MB, "
          f"process RSS peak {r['rss_peak'] / MB:.0f} MB")
    print(f"  RSS after each timed step (MB): "
          + ", ".join(f"{v / MB:.0f}" for v in r["rss_after"])
          + f"  (growth {growth:+.1f} MB)")


def header(args, torch):
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


def print_table(results, args, torch):
    print(f"\nTraining step (forward, loss, backward, Adam): {header(args, torch)}\n")
    print("| model | input (WxH) | batch | tinylesion img/s | PyTorch img/s (ratio) | "
          "PyTorch, memory kept, img/s (ratio) | step peak memory (NumPy / process RSS) | "
          "RSS growth over steps |")
    print("|---|---|---|---|---|---|---|---|")
    for r in results:
        W, H = r["size"]
        peers = []
        for label in ("PyTorch", TORCH_KEPT):
            theirs = r.get(label)
            peers.append(f"{theirs:.1f} ({r['tinylesion'] / theirs:.2f}x)" if theirs else "n/a")
        growth = (r["rss_after"][-1] - r["rss_after"][0]) / MB
        print(f"| {r['model']} | {W}x{H} | {r['batch']} | {r['tinylesion']:.1f} | "
              f"{peers[0]} | {peers[1]} | "
              f"{r['traced_peak'] / MB:.0f} / {r['rss_peak'] / MB:.0f} MB | "
              f"{growth:+.1f} MB over {len(r['rss_after'])} steps |")


def profile(name, args):
    """cProfile of `args.steps` tinylesion steps after the warm-up."""
    kernels.threads.keep_freed_memory()  # as fit() does
    _, _, _, ours = make_tinylesion(name, args.batch_size, args.device)
    for _ in range(args.warmup):
        ours.step()
    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(args.steps):
        ours.step()
    ours.sync()
    profiler.disable()
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out)
    stats.sort_stats("tottime").print_stats(20)
    print(f"cProfile of {args.steps} tinylesion training steps of {name}, batch "
          f"{args.batch_size}, {args.threads} thread(s), sorted by own time:")
    print(out.getvalue())


def main(args):
    torch = None
    if not args.no_torch and not args.profile:
        try:
            import torch
        except ImportError:
            print("PyTorch is not installed: timing tinylesion only")
    set_threads(args.threads)
    names = list(DEFAULT_SIZES) if args.all else [args.model]
    if args.profile:
        for name in names:
            profile(name, args)
        return
    print(header(args, torch))
    results = []
    for name in names:
        results.append(bench_model(name, args, torch))
        print_result(results[-1])
    if args.all:
        print_table(results, args, torch)


if __name__ == "__main__":
    main(ARGS)
