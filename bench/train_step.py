"""Images per second of one training step (forward, loss, backward, Adam), tinylesion vs PyTorch.

    python bench/train_step.py --model padua4 [--batch-size 32] [--threads 2] [--steps 10]
    python bench/train_step.py --all            # the three seed CNNs, as a markdown table
    python bench/train_step.py --model padua4 --profile   # cProfile of the tinylesion step

The two engines run alternately in the same process on the same fixed batch, with the same
initial weights and thread count; warm-up steps (Numba compilation) are outside the timing.
Memory: the step's peak of NumPy allocations (tracemalloc), the peak RSS above the RSS before
the step (sampled every millisecond, so it also sees Numba's and BLAS's own buffers), and the
RSS after each timed step, to show whether memory grows from step to step.
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
import platform  # noqa: E402
import pstats  # noqa: E402
import statistics  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
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
    tnn = torch.nn
    W, H = size
    if name == "padua4":
        layers, c = [], 3
        for width in (32, 64, 128, 256):
            layers += [tnn.Conv2d(c, width, 3, padding="same"), tnn.ReLU(),
                       tnn.Conv2d(width, width, 3, padding="same"), tnn.ReLU(),
                       tnn.MaxPool2d(2)]
            c, H, W = width, H // 2, W // 2
        return tnn.Sequential(*layers, tnn.Flatten(), tnn.Linear(c * H * W, 512), tnn.ReLU(),
                              tnn.Dropout(0.5), tnn.Linear(512, num_classes))
    if name == "baseline_cnn":
        layers, c = [], 3
        for width in (16, 32, 64):
            layers += [tnn.Conv2d(c, width, 3, padding="same"), tnn.ReLU(), tnn.MaxPool2d(2)]
            c, H, W = width, H // 2, W // 2
        return tnn.Sequential(*layers, tnn.Flatten(), tnn.Linear(c * H * W, 512), tnn.ReLU(),
                              tnn.Dropout(0.5), tnn.Linear(512, num_classes))
    if name == "melanoma_cnn":
        for pad, k in ((3, 7), (2, 5), (1, 3)):
            H, W = (H + 2 * pad - k + 1) // 2, (W + 2 * pad - k + 1) // 2
        H, W = ((H - 3) // 3 + 1) // 3, ((W - 3) // 3 + 1) // 3
        out = 1 if num_classes == 2 else num_classes
        return tnn.Sequential(
            tnn.ZeroPad2d(3), tnn.Conv2d(3, 32, 7), tnn.BatchNorm2d(32), tnn.ReLU(),
            tnn.MaxPool2d(2),
            tnn.ZeroPad2d(2), tnn.Conv2d(32, 64, 5), tnn.BatchNorm2d(64), tnn.ReLU(),
            tnn.MaxPool2d(2),
            tnn.ZeroPad2d(1), tnn.Conv2d(64, 128, 3), tnn.BatchNorm2d(128), tnn.ReLU(),
            tnn.MaxPool2d(2),
            tnn.Conv2d(128, 128, 3, stride=3), tnn.BatchNorm2d(128), tnn.ReLU(),
            tnn.MaxPool2d(3, 3), tnn.Flatten(),
            tnn.Linear(128 * H * W, 512), tnn.ReLU(), tnn.Linear(512, 32), tnn.ReLU(),
            tnn.Linear(32, out))
    raise ValueError(f"no PyTorch version of {name!r}")


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
    """(tracemalloc peak, peak RSS above the start) of one step, in bytes."""
    tracemalloc.start()
    tracemalloc.reset_peak()
    engine.step()
    _, traced_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    with RssSampler() as sampler:
        engine.step()
    return traced_peak, sampler.peak - sampler.start


def bench_model(name, args, torch):
    """Time both engines alternately; returns a dict of results."""
    model, x, target, ours = make_tinylesion(name, args.batch_size, args.device)
    engines = [ours]
    if torch is not None:
        engines.append(make_torch(torch, model, x, target, args.device))
    for engine in engines:
        for _ in range(args.warmup):
            engine.step()
        engine.sync()
    times = {e.label: [] for e in engines}
    rss_after = []
    for i in range(args.steps):
        # alternate which engine goes first, so neither always runs on a warm cache
        for engine in (engines if i % 2 == 0 else engines[::-1]):
            times[engine.label].append(engine.timed_step())
            if engine is ours:
                rss_after.append(rss())
    traced, rss_peak = memory_of_step(ours)
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
    if "PyTorch" in r:
        print(f"  ratio tinylesion / PyTorch: {r['tinylesion'] / r['PyTorch']:.2f}x")
    growth = (r["rss_after"][-1] - r["rss_after"][0]) / MB
    print(f"  tinylesion step memory: NumPy peak (tracemalloc) {r['traced_peak'] / MB:.0f} MB, "
          f"RSS peak above start {r['rss_peak'] / MB:.0f} MB")
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
    print("| model | input (WxH) | batch | tinylesion img/s | PyTorch img/s | ratio | "
          "step peak memory (NumPy / RSS) | RSS growth over steps |")
    print("|---|---|---|---|---|---|---|---|")
    for r in results:
        W, H = r["size"]
        theirs = r.get("PyTorch")
        ratio = f"{r['tinylesion'] / theirs:.2f}x" if theirs else "n/a"
        growth = (r["rss_after"][-1] - r["rss_after"][0]) / MB
        print(f"| {r['model']} | {W}x{H} | {r['batch']} | {r['tinylesion']:.1f} | "
              f"{f'{theirs:.1f}' if theirs else 'n/a'} | {ratio} | "
              f"{r['traced_peak'] / MB:.0f} / {r['rss_peak'] / MB:.0f} MB | "
              f"{growth:+.1f} MB over {len(r['rss_after'])} steps |")


def profile(name, args):
    """cProfile of `args.steps` tinylesion steps after the warm-up."""
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
