"""Connect numba.cuda's simulator to the stand-in CuPy (only under NUMBA_ENABLE_CUDASIM=1).

The simulator has no `external_stream`; here it returns a simulator stream that remembers
the pointer it was made from. A kernel launched with a CuPy array must be given the stream
of the current CuPy stream's pointer (as our launch code does with external_stream), and no
host (NumPy) array: on a GPU, numba would copy a host array to the device and back around the
launch, a hidden transfer both ways. The simulator then runs the kernel on NumPy views of the
device arrays, in place, as a real launch writes device memory through the CUDA array
interface.

Blocks run their threads one after another in the calling thread rather than as one Python
thread each (kernels that call syncthreads keep the simulator's threads): CUDA promises no
order between the threads of a kernel without barriers, so this is one valid schedule, and it
is faster; so is an attribute of an array inside a kernel (the simulator lists dir(array) at
each `x.shape`: here the names are listed once per type). The per-kernel simulator tests (tests/kernels/cudasim_*.py) keep
the simulator's own threads.
"""
import os
import threading

import numpy as np

launches = {"count": 0}


def _install():
    from numba import cuda
    from numba.cuda.simulator import kernel as sim_kernel

    import cupy

    if getattr(sim_kernel.FakeCUDAKernel, "_fake_cupy", False):
        return

    def external_stream(ptr):
        stream = cuda.stream()
        stream.cupy_ptr = int(ptr)
        return stream

    cuda.external_stream = external_stream

    original_getitem = sim_kernel.FakeCUDAKernel.__getitem__
    original_call = sim_kernel.FakeCUDAKernel.__call__

    def getitem(self, configuration):
        launcher = original_getitem(self, configuration)
        launcher._launch_stream = configuration[2] if len(configuration) > 2 else None
        return launcher

    def call(self, *args):
        if self._device:
            return original_call(self, *args)
        stream = getattr(self, "_launch_stream", None)
        self._launch_stream = None
        device = [a for a in args if isinstance(a, cupy.ndarray)]
        if not device:
            return original_call(self, *args)
        host = [a for a in args if isinstance(a, np.ndarray) and not isinstance(a, cupy.ndarray)]
        name = getattr(self.fn, "__name__", "kernel")
        if host:
            raise TypeError(f"kernel {name}: launched with CuPy arrays and {len(host)} host "
                            f"array(s) {[(h.dtype, h.shape) for h in host]}; numba would copy "
                            "them to the device and back")
        current = cupy.cuda.get_current_stream()
        if stream is None or getattr(stream, "cupy_ptr", None) != current.ptr:
            raise RuntimeError(f"kernel {name}: launched on CuPy arrays without the current "
                               f"CuPy stream (ptr {current.ptr:#x}); got {stream!r}")
        cupy._check_reads(device, f"kernel {name}")
        launches["count"] += 1
        result = original_call(self, *[a.view(np.ndarray) if isinstance(a, cupy.ndarray)
                                       else a for a in args])
        cupy._mark_written(device)
        return result

    original_run = sim_kernel.BlockManager.run

    def run_block(self, grid_point, *args):
        if "syncthreads" in self._f.__code__.co_names:
            return original_run(self, grid_point, *args)
        me = threading.current_thread()
        bx, by, _ = self._block_dim
        me.blockIdx = sim_kernel.Dim3(*grid_point)
        try:
            for point in np.ndindex(*self._block_dim):
                me.threadIdx = sim_kernel.Dim3(*point)
                me.thread_id = point[0] + bx * (point[1] + by * point[2])
                self._f(*args)
        finally:
            del me.blockIdx, me.threadIdx, me.thread_id

    sim_kernel.BlockManager.run = run_block

    from numba.cuda.simulator.cudadrv import devicearray
    names = {}
    original_getattr = devicearray.FakeWithinKernelCUDAArray.__getattr__

    def getattr_(self, attrname):
        ary = self._item._ary
        known = names.get(type(ary))
        if known is None:
            known = names[type(ary)] = frozenset(dir(ary))
        if attrname in known:
            value = getattr(ary, attrname)
            if isinstance(value, devicearray.FakeCUDAArray):
                return devicearray.FakeWithinKernelCUDAArray(value)
            return value
        return original_getattr(self, attrname)

    devicearray.FakeWithinKernelCUDAArray.__getattr__ = getattr_
    sim_kernel.FakeCUDAKernel.__getitem__ = getitem
    sim_kernel.FakeCUDAKernel.__call__ = call
    sim_kernel.FakeCUDAKernel._fake_cupy = True


if os.environ.get("NUMBA_ENABLE_CUDASIM", "0") not in ("", "0"):
    _install()
