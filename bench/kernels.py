"""Kernel microbenchmarks at the seed models' layer shapes: ms, GFLOP/s, share of matmul, PyTorch.

    python bench/kernels.py [--threads 2] [--batch-size 32] [--repeat 7] [--only conv]
    python bench/kernels.py --device gpu        # CuPy kernels against the device's matmul rate
    python bench/kernels.py --threads 1 --clock cpu --only depthwise   # on a loaded machine

Every kernel is checked against PyTorch (when installed) before it is timed; Numba compiles
during that untimed first call. Each time is the median of --repeat runs, ours and PyTorch's
alternating. "% mm" is the kernel's GFLOP/s over the float32 matrix-product rate (a @ b, 2048²)
measured in the same run; "speed-up" is PyTorch's time over ours (> 1: ours is faster). It runs
on the processor's own BLAS kernel (bench/machine.py) and names that kernel in its header.
"""
import argparse
import os
import sys


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", choices=("cpu", "gpu"), default="cpu")
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--repeat", type=int, default=7, help="timed runs per kernel")
    parser.add_argument("--only", default="", help="run the rows whose name contains this")
    parser.add_argument("--no-torch", action="store_true", help="time tinylesion only")
    parser.add_argument("--clock", choices=("wall", "cpu"), default="wall",
                        help="cpu: the process's CPU time instead of wall time (with --threads 1, "
                             "a fairer comparison on a machine that other jobs load)")
    parser.add_argument("--wait-idle", type=float, default=0.0, metavar="SECONDS",
                        help="first wait up to SECONDS for the CPU to be idle (shared machines)")
    args = parser.parse_args(argv)
    for name in ("threads", "batch_size", "repeat"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    return args


ARGS = parse_args() if __name__ == "__main__" else None
if ARGS is not None:
    import machine  # noqa: E402  (bench/, the script's folder, is first on sys.path)
    machine.use_processor_blas()  # before NumPy loads OpenBLAS: the processor's own kernel
    # NOTE: thread pools read these when they start, so they are set before NumPy is imported.
    for var in ("TINYLESION_NUM_THREADS", "NUMBA_NUM_THREADS", "OMP_NUM_THREADS",
                "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(ARGS.threads)

import datetime  # noqa: E402
import platform  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import kernels  # noqa: E402
from tinylesion import backend  # noqa: E402

# (model, layer, C, F, K, stride, padding, H, W) at the models' input sizes (H x W)
CONVS = [
    ("padua4", "conv1a", 3, 32, 3, 1, 1, 75, 100), ("padua4", "conv1b", 32, 32, 3, 1, 1, 75, 100),
    ("padua4", "conv2a", 32, 64, 3, 1, 1, 37, 50), ("padua4", "conv2b", 64, 64, 3, 1, 1, 37, 50),
    ("padua4", "conv3a", 64, 128, 3, 1, 1, 18, 25),
    ("padua4", "conv3b", 128, 128, 3, 1, 1, 18, 25),
    ("padua4", "conv4a", 128, 256, 3, 1, 1, 9, 12), ("padua4", "conv4b", 256, 256, 3, 1, 1, 9, 12),
    ("baseline", "conv1", 3, 16, 3, 1, 1, 128, 128), ("baseline", "conv2", 16, 32, 3, 1, 1, 64, 64),
    ("baseline", "conv3", 32, 64, 3, 1, 1, 32, 32),
    ("melanoma", "conv1", 3, 32, 7, 1, 3, 224, 224),
    ("melanoma", "conv2", 32, 64, 5, 1, 2, 112, 112),
    ("melanoma", "conv3", 64, 128, 3, 1, 1, 56, 56),
    ("melanoma", "conv4", 128, 128, 3, 3, 0, 28, 28),
]
# (model, C, H, W, kernel): the max-pools' inputs; batch norm at melanoma_cnn's conv outputs
POOLS = [("padua4", 32, 75, 100, 2), ("padua4", 64, 37, 50, 2), ("padua4", 128, 18, 25, 2),
         ("padua4", 256, 9, 12, 2), ("baseline", 16, 128, 128, 2), ("baseline", 32, 64, 64, 2),
         ("baseline", 64, 32, 32, 2), ("melanoma", 32, 224, 224, 2),
         ("melanoma", 64, 112, 112, 2), ("melanoma", 128, 56, 56, 2), ("melanoma", 128, 9, 9, 3)]
NORMS = [("melanoma", 32, 224, 224), ("melanoma", 64, 112, 112), ("melanoma", 128, 56, 56),
         ("melanoma", 128, 9, 9)]
# (model, layer, C, K, stride, padding, H, W): depthwise 3x3 / 5x5 layers of the backbones
DEPTHWISE = [
    ("mobilenet_v2", "features.1 dw", 32, 3, 1, 1, 112, 112),
    ("mobilenet_v2", "features.2 dw", 96, 3, 2, 1, 112, 112),
    ("mobilenet_v2", "features.4 dw", 144, 3, 1, 1, 56, 56),
    ("efficientnet_b0", "features.3.0 dw", 144, 5, 2, 2, 56, 56),
]
# (model, pooling, C, H, W, kernel, stride, padding, count_include_pad)
POOL_OPTIONS = [("resnet", "max", 64, 112, 112, 3, 2, 1, True),
                ("inception_v3", "avg", 192, 35, 35, 3, 1, 1, True),
                ("densenet", "avg", 128, 56, 56, 2, 2, 0, True)]
ADAM_MODELS = [("padua4", (75, 100)), ("baseline_cnn", (128, 128)), ("melanoma_cnn", (224, 224))]


class Bench:
    """Shared state: the array module, the synchroniser, torch (or None) and its device."""

    def __init__(self, args):
        self.args = args
        self.gpu = args.device == "gpu"
        self.xp = backend.cupy_module() if self.gpu else np
        self.torch = None
        if not args.no_torch:
            try:
                import torch
                torch.set_num_threads(args.threads)
                if not self.gpu or torch.cuda.is_available():
                    self.torch = torch
            except ImportError:
                pass
        self.tdev = "cuda" if self.gpu else "cpu"
        self.rng = np.random.default_rng(0)

    def sync(self):
        if self.gpu:
            self.xp.cuda.get_current_stream().synchronize()
            if self.torch is not None:
                self.torch.cuda.synchronize()

    def array(self, shape, dtype=np.float32):
        return self.xp.asarray(self.rng.standard_normal(shape).astype(dtype))

    def tensor(self, a, grad=False):
        t = self.torch.tensor(a.get() if self.gpu else a, device=self.tdev)
        return t.requires_grad_(grad)

    def time_pair(self, ours, theirs):
        """Median seconds of ours() and theirs() (None without torch), run alternately."""
        ours()
        if theirs is not None:
            theirs()
        t_ours, t_theirs = [], []
        clock = time.process_time if self.args.clock == "cpu" else time.perf_counter
        for _ in range(self.args.repeat):
            for fn, out in ((ours, t_ours), (theirs, t_theirs)):
                if fn is None:
                    continue
                self.sync()
                start = clock()
                fn()
                self.sync()
                out.append(clock() - start)
        return statistics.median(t_ours), (statistics.median(t_theirs) if t_theirs else None)

    def matmul_rate(self):
        """GFLOP/s of a @ b on 2048² float32: the ceiling every kernel is measured against."""
        a, b = self.array((2048, 2048)), self.array((2048, 2048))
        t, _ = self.time_pair(lambda: a @ b, None)
        return 2 * 2048 ** 3 / t / 1e9


def check(name, ours, theirs, tol=1e-3):
    """Ours against PyTorch's result (relative to its largest value) before timing."""
    ours = ours.get() if hasattr(ours, "get") else np.asarray(ours)
    theirs = theirs.detach().cpu().numpy()
    err = float(np.abs(ours - theirs).max() / max(float(np.abs(theirs).max()), 1e-30))
    if not err < tol:
        raise SystemExit(f"bench: {name} differs from PyTorch (relative error {err:.2e})")


def conv_rows(B):
    N, F, torch = B.args.batch_size, None, B.torch
    if torch is not None:
        F = torch.nn.functional
    for model, layer, C, Fo, K, S, P, H, W in CONVS:
        x, Wt, b = B.array((N, C, H, W)), B.array((Fo, C, K, K)) * 0.1, B.array((Fo,))
        OH, OW = (H + 2 * P - K) // S + 1, (W + 2 * P - K) // S + 1
        gy = B.array((N, Fo, OH, OW))
        first = C == 3  # the input layer: no input gradient, in either engine
        flops = 2.0 * N * Fo * C * K * K * OH * OW
        shape = f"{model} {layer} {C}→{Fo} {K}x{K}/{S} {H}x{W}"
        fwd = lambda: kernels.conv2d_forward(x, Wt, b, S, P)  # noqa: E731

        def fwd_bwd():
            kernels.conv2d_forward(x, Wt, b, S, P)
            kernels.conv2d_backward(gy, x, Wt, S, P, need_gx=not first)

        t_fwd = t_fb = None
        if torch is not None:
            xt, Wtt, bt = B.tensor(x, grad=not first), B.tensor(Wt, True), B.tensor(b, True)
            gyt = B.tensor(gy)
            with torch.no_grad():
                check(shape, fwd(), F.conv2d(xt, Wtt, bt, S, P))

            def t_fwd():
                with torch.no_grad():
                    F.conv2d(xt, Wtt, bt, S, P)

            def t_fb():
                F.conv2d(xt, Wtt, bt, S, P).backward(gyt)
        yield "conv fwd", shape, flops, 4.0 * (x.size + Wt.size + N * Fo * OH * OW), fwd, t_fwd
        yield ("conv fwd+bwd", shape, flops * (2 if first else 3),
               4.0 * (3 * x.size + 4 * N * Fo * OH * OW), fwd_bwd, t_fb)


def pool_rows(B):
    N, torch = B.args.batch_size, B.torch
    for model, C, H, W, K in POOLS:
        x = B.array((N, C, H, W))
        y, am = kernels.maxpool2d_forward(x, K, K)
        gy = B.array(y.shape)
        shape = f"{model} {C}x{H}x{W} k{K}"
        flops = float(y.size * K * K)
        fwd = lambda: kernels.maxpool2d_forward(x, K, K)  # noqa: E731
        bwd = lambda: kernels.maxpool2d_backward(gy, am, x.shape, K, K)  # noqa: E731
        t_fwd = t_bwd = None
        if torch is not None:
            xt, gyt = B.tensor(x), B.tensor(gy)
            yt, it = torch.nn.functional.max_pool2d(xt, K, K, return_indices=True)
            check(shape, y, yt)
            aten = torch.ops.aten
            t_fwd = lambda: torch.nn.functional.max_pool2d(xt, K, K, return_indices=True)  # noqa
            t_bwd = lambda: aten.max_pool2d_with_indices_backward(  # noqa: E731
                gyt, xt, [K, K], [K, K], [0, 0], [1, 1], False, it)
        yield "maxpool fwd", shape, flops, 4.0 * (x.size + 2 * y.size), fwd, t_fwd
        yield "maxpool bwd", shape, float(y.size), 4.0 * (x.size + 2 * y.size), bwd, t_bwd


def depthwise_rows(B):
    N, torch = B.args.batch_size, B.torch
    for model, layer, C, K, S, P, H, W in DEPTHWISE:
        x, Wt, b = B.array((N, C, H, W)), B.array((C, 1, K, K)) * 0.1, B.array((C,))
        OH, OW = (H + 2 * P - K) // S + 1, (W + 2 * P - K) // S + 1
        gy = B.array((N, C, OH, OW))
        flops = 2.0 * N * C * K * K * OH * OW
        shape = f"{model} {layer} {C}ch {K}x{K}/{S} {H}x{W}"
        fwd = lambda: kernels.conv2d_forward(x, Wt, b, S, P, groups=C)  # noqa: E731

        def fwd_bwd():
            kernels.conv2d_forward(x, Wt, b, S, P, groups=C)
            kernels.conv2d_backward(gy, x, Wt, S, P, groups=C)

        t_fwd = t_fb = None
        if torch is not None:
            F = torch.nn.functional
            xt, Wtt, bt, gyt = B.tensor(x, True), B.tensor(Wt, True), B.tensor(b, True), \
                B.tensor(gy)
            with torch.no_grad():
                check(shape, fwd(), F.conv2d(xt, Wtt, bt, S, P, groups=C))

            def t_fwd():
                with torch.no_grad():
                    F.conv2d(xt, Wtt, bt, S, P, groups=C)

            def t_fb():
                F.conv2d(xt, Wtt, bt, S, P, groups=C).backward(gyt)
        nbytes = 4.0 * (x.size + N * C * OH * OW)
        yield "depthwise fwd", shape, flops, nbytes, fwd, t_fwd
        yield "depthwise fwd+bwd", shape, 3 * flops, 3 * nbytes, fwd_bwd, t_fb


def pool_option_rows(B):
    N, torch = B.args.batch_size, B.torch
    for model, kind, C, H, W, K, S, P, include in POOL_OPTIONS:
        x = B.array((N, C, H, W))
        shape = f"{model} {C}x{H}x{W} k{K}/{S} p{P}"
        if kind == "max":
            y, am = kernels.maxpool2d_forward(x, K, S, P)
            fwd = lambda: kernels.maxpool2d_forward(x, K, S, P)  # noqa: E731
        else:
            y = kernels.avgpool2d_forward(x, K, S, P, False, include)
            fwd = lambda: kernels.avgpool2d_forward(x, K, S, P, False, include)  # noqa: E731
        gy = B.array(y.shape)

        def fwd_bwd():
            if kind == "max":
                _, a = kernels.maxpool2d_forward(x, K, S, P)
                kernels.maxpool2d_backward(gy, a, x.shape, K, S, P)
            else:
                kernels.avgpool2d_forward(x, K, S, P, False, include)
                kernels.avgpool2d_backward(gy, x.shape, K, S, P, False, include)

        t_fwd = t_fb = None
        if torch is not None:
            F = torch.nn.functional
            xt, gyt = B.tensor(x, True), B.tensor(gy)
            tpool = (lambda t: F.max_pool2d(t, K, S, P)) if kind == "max" else \
                (lambda t: F.avg_pool2d(t, K, S, P, count_include_pad=include))
            with torch.no_grad():
                check(shape, y, tpool(xt))

            def t_fwd():
                with torch.no_grad():
                    tpool(xt)

            def t_fb():
                tpool(xt).backward(gyt)
        flops = float(y.size * K * K)
        nbytes = 4.0 * (x.size + y.size)
        yield f"{kind}pool fwd", shape, flops, nbytes, fwd, t_fwd
        yield f"{kind}pool fwd+bwd", shape, 2 * flops, 3 * nbytes, fwd_bwd, t_fb


def norm_rows(B):
    N, torch, eps = B.args.batch_size, B.torch, 1e-5
    for model, C, H, W in NORMS:
        x, gy = B.array((N, C, H, W)), B.array((N, C, H, W))
        gamma, beta = B.array((C,)), B.array((C,))
        y, mean, var = kernels.batchnorm_forward(x, gamma, beta, eps)
        shape = f"{model} {C}x{H}x{W}"
        fwd = lambda: kernels.batchnorm_forward(x, gamma, beta, eps)  # noqa: E731
        bwd = lambda: kernels.batchnorm_backward(gy, x, gamma, mean, var, eps)  # noqa: E731
        t_fwd = t_bwd = None
        if torch is not None:
            aten = torch.ops.aten
            xt, gyt, gt, bt = (B.tensor(a) for a in (x, gy, gamma, beta))
            yt, smean, sinvstd = aten.native_batch_norm(xt, gt, bt, None, None, True, 0.1, eps)
            check(shape, y, yt)
            t_fwd = lambda: aten.native_batch_norm(xt, gt, bt, None, None, True, 0.1, eps)  # noqa
            t_bwd = lambda: aten.native_batch_norm_backward(  # noqa: E731
                gyt, xt, gt, None, None, smean, sinvstd, True, eps, [True, True, True])
        yield "batchnorm fwd", shape, 8.0 * x.size, 4.0 * 3 * x.size, fwd, t_fwd
        yield "batchnorm bwd", shape, 12.0 * x.size, 4.0 * 5 * x.size, bwd, t_bwd


def adam_rows(B):
    from tinylesion import models
    torch = B.torch
    for name, (H, W) in ADAM_MODELS:
        shapes = [tuple(p.shape) for p in models.get_model(name, image_size=(W, H)).parameters()]
        params = [B.array(s) for s in shapes]
        grads = [B.array(s) for s in shapes]
        ms = [B.xp.zeros(s, np.float32) for s in shapes]
        vs = [B.xp.zeros(s, np.float32) for s in shapes]
        count = sum(p.size for p in params)
        step = [0]

        def ours():
            step[0] += 1
            for p, g, m, v in zip(params, grads, ms, vs):
                kernels.adam_step(p, g, m, v, 1e-3, 0.9, 0.999, 1e-8, 0.0, step[0])

        theirs = None
        if torch is not None:
            tparams = [B.tensor(p, True) for p in params]
            for tp, g in zip(tparams, grads):
                tp.grad = B.tensor(g)
            opt = torch.optim.Adam(tparams, lr=1e-3)
            theirs = opt.step
        yield ("adam step", f"{name} {count / 1e6:.2f}M params", 12.0 * count, 4.0 * 7 * count,
               ours, theirs)


def wait_idle(seconds):
    """Wait until the CPU is at least 90% idle over a second, or `seconds` have passed."""
    def sample():
        with open("/proc/stat") as f:
            v = [int(s) for s in f.readline().split()[1:]]
        return v[3] + v[4], sum(v)
    deadline = time.time() + seconds
    while time.time() < deadline:
        i0, t0 = sample()
        time.sleep(1.0)
        i1, t1 = sample()
        if (i1 - i0) >= 0.9 * (t1 - t0):
            return True
    return False


def main(args):
    try:
        B = Bench(args)
    except backend.DeviceError as exc:
        print(f"bench/kernels.py: {exc}", file=sys.stderr)
        return 2
    if args.wait_idle > 0 and not args.device == "gpu" and os.path.exists("/proc/stat"):
        if not wait_idle(args.wait_idle):
            print(f"warning: the CPU was still busy after {args.wait_idle:.0f} s", file=sys.stderr)
    rate = B.matmul_rate()
    cpu = platform.processor() or platform.machine()
    if os.path.exists("/proc/cpuinfo"):
        with open("/proc/cpuinfo") as f:
            names = [ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")]
        cpu = names[0] if names else cpu
    if B.gpu:
        cpu = B.xp.cuda.runtime.getDeviceProperties(0)["name"].decode()
    torch_name = f"PyTorch {B.torch.__version__}" if B.torch is not None else "no PyTorch"
    print(f"# kernels, {datetime.date.today()}, {cpu}, {args.device}, {args.threads} threads, "
          f"batch {args.batch_size}, median of {args.repeat} ({args.clock} clock); {torch_name}")
    blas = machine.blas_note() if not B.gpu else "CuPy's matrix product"
    print(f"float32 matmul (2048²): {rate:.1f} GFLOP/s; {blas}\n")
    print("| kernel | shape | ms | GFLOP/s | % mm | GB/s | torch ms | speed-up |")
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    for rows in (conv_rows, depthwise_rows, pool_rows, pool_option_rows, norm_rows, adam_rows):
        for kernel, shape, flops, nbytes, ours, theirs in rows(B):
            if args.only and args.only not in f"{kernel} {shape}":
                continue
            t, tt = B.time_pair(ours, theirs)
            gflops = flops / t / 1e9
            torch_cols = f"{tt * 1e3:.2f} | {tt / t:.2f}" if tt is not None else "– | –"
            print(f"| {kernel} | {shape} | {t * 1e3:.2f} | {gflops:.1f} | "
                  f"{100 * gflops / rate:.0f}% | {nbytes / t / 1e9:.1f} | {torch_cols} |",
                  flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(ARGS))
