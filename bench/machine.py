"""What a benchmark needs to say about the machine: the processor's own BLAS kernel, which kernel
ran, and the float32 matrix-product rate every figure is compared with.

    import machine; machine.use_processor_blas()   # first, before NumPy is imported
    ...
    print(machine.blas_note(), machine.matmul_rate())

The build machines set OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE, which pin OpenBLAS to an older
(AVX2, "Haswell") kernel at about half the AVX-512 rate; a user's machine sets neither, and there
OpenBLAS picks the processor's own kernel. Benchmarks measure the user's machine, so they drop
both variables in their own processes (and the processes they start); tests and CI keep the
machine's setting.
"""
import os
import sys
import time

PINNING_VARIABLES = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")


def use_processor_blas():
    """Let OpenBLAS pick the processor's own kernel in this process and its children.

    OpenBLAS reads the variables when its library loads, so call this before NumPy, SciPy or
    PyTorch is imported; returns the variables that were dropped, as {name: value}.
    """
    loaded = [m for m in ("numpy", "scipy", "torch") if m in sys.modules]
    if loaded:
        raise RuntimeError("use_processor_blas() must run before importing "
                           + ", ".join(loaded) + " (OpenBLAS reads its settings when it loads)")
    return {name: os.environ.pop(name) for name in PINNING_VARIABLES if name in os.environ}


def blas_kernels():
    """[(library file, kernel)] of every BLAS loaded in this process (threadpoolctl)."""
    from threadpoolctl import threadpool_info
    found = []
    for info in threadpool_info():
        if info.get("user_api") == "blas":
            name = os.path.basename(info.get("filepath", "?"))
            kernel = info.get("architecture") or info.get("internal_api", "?")
            found.append((name, kernel))
    return found


def blas_note():
    """One line: the BLAS kernels that ran, and whether the pinning variables were set."""
    kernels = sorted({kernel for _, kernel in blas_kernels()}) or ["none loaded"]
    pinned = [f"{n}={os.environ[n]}" for n in PINNING_VARIABLES if n in os.environ]
    where = ("pinned by " + ", ".join(pinned)) if pinned else "the processor's own"
    return f"BLAS kernel {'/'.join(kernels)} ({where})"


def matmul_rate(n=2048, repeat=5):
    """GFLOP/s of float32 a @ b at n x n in this process: the median of `repeat` products."""
    import numpy as np
    rng = np.random.default_rng(0)
    a = rng.standard_normal((n, n), dtype=np.float32)
    b = rng.standard_normal((n, n), dtype=np.float32)
    a @ b  # warm-up: threads started, pages touched
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        a @ b
        times.append(time.perf_counter() - start)
    times.sort()
    return 2 * n ** 3 / times[len(times) // 2] / 1e9
