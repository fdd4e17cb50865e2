"""One engine per process for bench/train_step.py: build the model from a shared weights file,
warm up, then time a step per request and sample the process's memory.

The PyTorch process imports NumPy and torch only (never tinylesion, Numba or its kernels), so
its memory figures are PyTorch's own. Both processes read the same initial weights and batch
from the file the parent wrote, so they compute the same function on the same data.
"""
import os
import sys
import threading
import time
import traceback

BENCH = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(BENCH)
BACKBONES = ("resnet50", "mobilenet_v2", "densenet121")
KEPT_BYTES = 1 << 30  # what tinylesion's memory policy asks malloc to keep


# ---- memory -------------------------------------------------------------------------------
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


def malloc_keep_freed(max_bytes=KEPT_BYTES):
    """The malloc setting tinylesion's engine applies (kernels.threads.keep_freed_memory), for
    the PyTorch process, which must not import tinylesion's kernels: glibc keeps freed blocks
    up to max_bytes for reuse."""
    import ctypes
    mallopt = ctypes.CDLL(None).mallopt
    M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3
    return bool(mallopt(M_MMAP_THRESHOLD, max_bytes)) and bool(mallopt(M_TRIM_THRESHOLD, max_bytes))


# ---- the job --------------------------------------------------------------------------------
class Job:
    """What a worker builds: engine ('tinylesion' or 'torch'), model name, classes, image
    size (W, H), whether the head is one logit (binary), batch, mode ('train' or
    'inference'), device, threads, warm-up steps, whether the process keeps freed memory
    (tinylesion: its engine's own policy, on or off; PyTorch: the same malloc setting made
    here), the weights file, and whether OpenMP's idle threads sleep
    (OMP_WAIT_POLICY=PASSIVE, as tinylesion's kernels ask for their own threads) rather than
    spin (GNU OpenMP's default, which PyTorch gets as installed)."""

    def __init__(self, engine, name, num_classes, image_size, binary, batch, mode, device,
                 threads, warmup, keep_memory, data_path, omp_passive=False):
        self.engine, self.name, self.num_classes = engine, name, num_classes
        self.binary = binary
        self.image_size, self.batch, self.mode, self.device = image_size, batch, mode, device
        self.threads, self.warmup, self.keep_memory = threads, warmup, keep_memory
        self.data_path, self.omp_passive = data_path, omp_passive


def read_data(path):
    """(state_dict of NumPy arrays, inputs, targets) from the parent's .npz file."""
    import numpy as np
    with np.load(path) as f:
        state = {k[len("state/"):]: f[k] for k in f.files if k.startswith("state/")}
        return state, f["x"], f["y"]


def is_dropout(module):
    return "Dropout" in type(module).__name__


class Engine:
    """A built engine: `step()` returns the loss (training) or the outputs' loss (inference);
    `first_step()` is a step with dropout off, so both engines' losses can be compared."""

    def __init__(self, step, modules, sync=lambda: None):
        self.step, self.modules, self.sync = step, modules, sync

    def first_step(self):
        dropouts = [m for m in self.modules() if is_dropout(m) and m.training]
        for m in dropouts:
            m.train(False)
        try:
            loss = float(self.step().item())
        finally:
            for m in dropouts:
                m.train(True)
        self.sync()
        return loss

    def timed_step(self):
        """(wall time, this process's CPU time) of one step, in seconds."""
        self.sync()
        start, cpu = time.perf_counter(), time.process_time()
        self.step()
        self.sync()
        return time.perf_counter() - start, time.process_time() - cpu


def build_tinylesion(job):
    import numpy as np
    import tinylesion as tl
    from tinylesion import models, optim
    from tinylesion.nn import functional as F

    state, x, y = read_data(job.data_path)
    model = models.get_model(job.name, num_classes=job.num_classes, image_size=job.image_size)
    model.load_state_dict(state)
    model = model.to(job.device)
    x = tl.Tensor(x, device=job.device)
    if model.binary:
        target = tl.Tensor(y.astype(np.float32).reshape(-1, 1), device=job.device)
        loss_fn = F.binary_cross_entropy_with_logits
    else:
        target = tl.Tensor(y, device=job.device)
        loss_fn = F.cross_entropy
    sync = lambda: None
    if tl.backend.as_device(job.device).name == "gpu":
        sync = tl.backend.cupy_module().cuda.Device().synchronize
    if job.mode == "inference":
        model.eval()

        def step():
            with tl.no_grad():
                return loss_fn(model(x), target)
        return Engine(step, model.modules, sync)
    model.train()
    opt = optim.Adam(model.parameters(), lr=1e-4)

    def step():
        opt.zero_grad()
        loss = loss_fn(model(x), target)
        loss.backward()
        opt.step()
        return loss
    return Engine(step, model.modules, sync)


def torch_twin(job):
    """PyTorch's network of the same name: torchvision's for the backbones, bench/torch_models'
    for the seed CNNs (whose two-class heads have one logit, as tinylesion's)."""
    if job.name in BACKBONES:
        import types
        sys.modules.setdefault("torchvision._meta_registrations",
                               types.ModuleType("torchvision._meta_registrations"))
        import torchvision.models
        return getattr(torchvision.models, job.name)(num_classes=job.num_classes)
    if BENCH not in sys.path:  # appended: bench/kernels.py must not shadow the kernels package
        sys.path.append(BENCH)
    from torch_models import torch_model
    return torch_model(job.name, job.num_classes, job.image_size)


def build_torch(job):
    import torch

    torch.set_num_threads(job.threads)
    state, x, y = read_data(job.data_path)
    model = torch_twin(job)
    model.load_state_dict({k: torch.from_numpy(v) for k, v in state.items()}, strict=True)
    dev = "cuda" if job.device == "gpu" else "cpu"
    model = model.to(dev)
    tx = torch.from_numpy(x).to(dev)
    if job.binary:
        target = torch.from_numpy(y.astype("float32").reshape(-1, 1)).to(dev)
        loss_fn = torch.nn.functional.binary_cross_entropy_with_logits
    else:
        target = torch.from_numpy(y).to(dev)
        loss_fn = torch.nn.functional.cross_entropy
    sync = torch.cuda.synchronize if dev == "cuda" else (lambda: None)
    if job.mode == "inference":
        model.eval()

        def step():
            with torch.no_grad():
                return loss_fn(model(tx), target)
        return Engine(step, model.modules, sync)
    model.train()
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)

    def step():
        opt.zero_grad()
        loss = loss_fn(model(tx), target)
        loss.backward()
        opt.step()
        return loss
    return Engine(step, model.modules, sync)


def kept_freed_bytes():
    """The largest freed block tinylesion's engine has asked malloc to keep in this process
    (kernels.threads.kept_freed_bytes), or None where the engine does not report it."""
    threads = sys.modules.get("kernels.threads")
    report = getattr(threads, "kept_freed_bytes", None)
    return report() if report else None


def memory_of_step(engine, traced):
    """(NumPy allocations' peak by tracemalloc, or None; the process's peak RSS; the engine's
    kept-memory setting, or None) over a step."""
    traced_peak = None
    if traced:
        import tracemalloc
        tracemalloc.start()
        tracemalloc.reset_peak()
        engine.step()
        _, traced_peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    with RssSampler() as sampler:
        engine.step()
    engine.sync()
    return traced_peak, sampler.peak, kept_freed_bytes()


def engine_worker(conn, job):
    """One engine in its own process: build it, warm it up (the first step's loss goes back
    to the parent with 'ready'), then time a step per request."""
    try:
        if job.engine == "tinylesion":
            sys.path.insert(0, ROOT)
            import kernels
            kernels.set_num_threads(job.threads)
            if not job.keep_memory:  # NOTE: the engine reads it at its first large op
                os.environ["TINYLESION_KEEP_FREED_MEMORY"] = "0"
            engine = build_tinylesion(job)
        else:
            if job.omp_passive:  # NOTE: GNU OpenMP reads it once, when torch loads it
                os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
            if job.keep_memory:
                malloc_keep_freed()
            engine = build_torch(job)
        first_loss = engine.first_step()
        for _ in range(job.warmup - 1):
            engine.step()
        engine.sync()
        conn.send(("ready", first_loss))
        while True:
            request = conn.recv()
            if request == "step":
                conn.send(("ok", (*engine.timed_step(), rss())))
            elif request == "memory":
                conn.send(("ok", memory_of_step(engine, job.engine == "tinylesion")))
            else:
                return
    except BaseException:
        conn.send(("error", traceback.format_exc()))


class EngineProcess:
    """The parent's handle on an `engine_worker` in a spawned process."""

    def __init__(self, label, job):
        import multiprocessing
        self.label = label
        ctx = multiprocessing.get_context("spawn")
        self.conn, child = ctx.Pipe()
        self.process = ctx.Process(target=engine_worker, args=(child, job), daemon=True)
        self.process.start()

    def ready(self):
        """Wait for the warm-up; returns the first step's loss."""
        return self._answer(self._recv())

    def ask(self, request):
        self.conn.send(request)
        return self._answer(self._recv())

    def _recv(self):
        try:
            return self.conn.recv()
        except EOFError:
            self.process.join(5)
            return ("error", f"the process ended (exit code {self.process.exitcode}; "
                             "a negative code is the signal that killed it, e.g. -9: out of "
                             "memory)")

    def _answer(self, reply):
        status, value = reply
        if status == "error":
            raise RuntimeError(f"the {self.label} process failed:\n{value}")
        return value

    def close(self):
        try:
            self.conn.send("stop")
        except OSError:
            pass
        self.process.join(10)
        if self.process.is_alive():
            self.process.terminate()
