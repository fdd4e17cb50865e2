"""Shared-memory window sums for tests/test_distributed_shared.py: `mpirun -n N python
tests/mpi/run_shared.py MODE OUT [...]`. Rank 0 writes OUT (.npz).

  exact      arrays of many sizes and two dtypes summed in shared windows and by MPI's
             Allreduce: both results from every rank, and the rank-order sum of the inputs
  machines   as exact, with the ranks cut into "machines" of 2 (node communicators split by
             rank // 2): the hierarchical sum (node sums, leaders' allreduce, node copies)
  nowindow   the window allocation fails on rank 1 only: every rank falls back together
  steps      SGD steps of a small net through DistributedOptimizer with the buckets in
             shared windows or not (1 or 0), the optimizer sharded or not (1 or 0), buckets
             of BYTES (1024: several; more: one, the single-synchronisation path), the loss's
             weight, value and count reduced with the gradients (1) or not (0): the weights
             and gradients after each step
  fail       rank 1 raises while rank 0 waits in a shared-window sum (must end in seconds)
  failsingle the same while rank 0 waits for rank 1's signal (the single-synchronisation sum)
"""
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

import tinylesion as tl  # noqa: E402
from tinylesion import distributed, nn, optim  # noqa: E402
from tinylesion.tensor import Tensor  # noqa: E402

SIZES = (1, 7, 16, 17, 33, 1000, 150_529)


def inputs(rank, size, dtype):
    """This rank's array: values of very different magnitudes (so that the order of the
    summation shows in the last bits)."""
    rng = np.random.default_rng([rank, size])
    return (rng.standard_normal(size) * 10.0 ** rng.integers(-6, 6, size)).astype(dtype)


def gather(world, array):
    return np.stack(world.comm.allgather(array))


def sums(world, node=None):
    record = {}
    for dtype in (np.float32, np.float64):
        for size in SIZES:
            shared = world.shared_zeros(size, dtype, node=node)
            assert shared is not None and world._shared.window_of(shared) is not None
            shared[...] = inputs(world.rank, size, dtype)
            plain = inputs(world.rank, size, dtype)
            world.allreduce_(shared)
            world.allreduce_(plain)
            key = f"{np.dtype(dtype).name} {size}"
            record[f"shared {key}"] = gather(world, shared)
            record[f"plain {key}"] = gather(world, plain)
            record[f"inputs {key}"] = gather(world, inputs(world.rank, size, dtype))
    # a message that is a prefix of a window (as the first bucket's gradients and counts)
    shared = world.shared_zeros(1000, np.float32, node=node)
    shared[...] = inputs(world.rank, 1000, np.float32)
    world.allreduce_(shared[:600])
    record["prefix"] = gather(world, shared)
    record["prefix inputs"] = gather(world, inputs(world.rank, 1000, np.float32))
    return record


def mode_exact(out):
    world = distributed.init("cpu")
    record = sums(world)
    record["hierarchical"] = world._shared.hierarchical
    if world.is_main:
        np.savez(out, **record)


def mode_machines(out):
    world = distributed.init("cpu")
    node = world.comm.Split(world.rank // 2, key=world.rank)
    record = sums(world, node=node)
    record["hierarchical"] = world._shared.hierarchical
    if world.is_main:
        np.savez(out, **record)


def mode_nowindow(out):
    from tinylesion import shared_window
    world = distributed.init("cpu")
    if world.rank == 1:   # the collective allocation done, this rank's part of it failed
        from mpi4py import MPI
        allocate = shared_window.allocate_window

        def refuse(*args, **kwargs):
            allocate(*args, **kwargs)
            raise MPI.Exception(MPI.ERR_NO_MEM)
        shared_window.allocate_window = refuse
    first = world.shared_zeros(10, np.float32)
    again = world.shared_zeros(10, np.float32)
    array = np.full(10, world.rank + 1.0, np.float32)
    world.allreduce_(array)
    if world.is_main:
        np.savez(out, first_none=first is None, again_none=again is None, sum=array)


def in_window(world, array):
    return bool(world._shared) and world._shared.window_of(array) is not None


def mode_steps(out, steps, shared, shard=0, bucket_bytes=1024, totals=0):
    world = distributed.init("cpu")
    tl.manual_seed(0)
    model = nn.Sequential(nn.Linear(40, 16), nn.ReLU(), nn.Linear(16, 3))
    distributed.broadcast_parameters(model.state_dict())
    opt = distributed.DistributedOptimizer(optim.SGD(model.parameters(), lr=0.1, momentum=0.9),
                                           bucket_bytes=bucket_bytes, overlap=False,
                                           shared_memory=bool(shared), shard=bool(shard))
    rng = np.random.default_rng(world.rank)
    if shard:
        buffers = [c.grads for c in opt.sharded.chunks]
    else:
        buffers = [b.flat for b in opt.buckets.buckets]
    record = {"in_windows": sum(in_window(world, b) for b in buffers),
              "buckets": len(buffers), "described": distributed.describe_step(opt),
              "single_sync": not shard and opt.buckets.single_sync}
    written, weights = [], np.array([0.5, 1.0, 3.0], np.float32)
    for s in range(steps):
        x = Tensor(rng.standard_normal((8, 40)).astype(np.float32))
        y = rng.integers(0, 3, 8 + world.rank)[:8]   # (the ranks' draws differ)
        opt.zero_grad()
        if totals:   # as fit: the summed loss backward, its numbers with the gradients
            local = nn.functional.cross_entropy(model(x), y, weight=Tensor(weights),
                                                reduction="sum")
            local.backward()
            written.append([p.grad.array.ctypes.data for p in model.parameters()])
            value, count = opt.synchronize(loss=(float(weights[y].sum()), local.item(), len(y)))
            record[f"step {s} loss"] = np.array([value, count])
        else:
            nn.functional.cross_entropy(model(x), y).backward()
            written.append([p.grad.array.ctypes.data for p in model.parameters()])
        opt.step()
        if not shard and opt.buckets.single_sync:   # .grad: views of the private sum
            assert all(np.shares_memory(p.grad.array, opt.buckets.out.flat)
                       for p in model.parameters())
        if shard and s == 0:
            record["scratch_in_windows"] = sum(in_window(world, b)
                                               for b in opt.sharded.scratch.values())
        for i, p in enumerate(model.parameters()):
            record[f"step {s} weight {i}"] = p.array.copy()
            record[f"step {s} grad {i}"] = p.grad.array.copy()
    record["written"] = np.array(written)   # where backward wrote each gradient, each step
    if world.is_main:
        np.savez(out, **record)


def mode_fail(out):
    world = distributed.init("cpu")
    shared = world.shared_zeros(100, np.float32)
    if world.rank == 1:
        time.sleep(0.5)
        raise ValueError("rank 1 broke on purpose")
    world.allreduce_(shared)  # rank 1 never joins: without the abort, a hang in the barrier
    print("rank 0 was never expected to get here", flush=True)


def mode_failsingle(out):
    world = distributed.init("cpu")
    model = nn.Linear(4, 2)
    opt = distributed.DistributedOptimizer(optim.SGD(model.parameters(), lr=0.1),
                                           overlap=False)
    assert opt.buckets.single_sync
    model(Tensor(np.ones((2, 4), np.float32))).sum().backward()
    if world.rank == 1:
        time.sleep(0.5)
        raise ValueError("rank 1 broke on purpose")
    opt.step()   # rank 1 never signals: without the abort, a wait for ever
    print("rank 0 was never expected to get here", flush=True)


if __name__ == "__main__":
    mode, out, *rest = sys.argv[1:]
    globals()[f"mode_{mode}"](out, *[int(a) for a in rest])
