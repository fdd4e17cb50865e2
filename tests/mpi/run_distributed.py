"""Data-parallel runs for tests/test_distributed.py: `mpirun -n N python tests/mpi/run_distributed.py
MODE OUT [...]`, or plain `python` for the one-process reference. Rank 0 writes OUT (.npz).

  train    SGD epochs of a small conv net with batch norm (SyncBatchNorm on several ranks),
           a shuffled, augmented, sharded Loader and a class-weighted loss over the global
           batch: the final weights, the weights at the start (after the broadcast), the first
           step's averaged gradients, and those of per-rank weighted means (the wrong loss)
  adam     Adam steps: the averaged gradients and the weights after each step
  syncbn   SyncBatchNorm on this rank's slice of one global batch: outputs, gradients, stats
  gpu      SGD steps on "gpu" (with tests/fakegpu first on PYTHONPATH and the CUDA simulator:
           the stand-in CuPy and its stand-in NCCL), or the same steps on "cpu"; with "shard",
           the optimizer sharded (NCCL reduce-scatter and allgather)
  uneven   SGD steps where a layer is used on rank 0 only, with SyncBatchNorm reducing during
           backward: each parameter in its own bucket, the gradients after each step
  fail     rank 1 raises while rank 0 waits in an allreduce (must end in seconds: an abort)
  exit     rank 1 leaves through SystemExit(3) inside abort_on_failure
"""
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

import tinylesion as tl  # noqa: E402
from tinylesion import backend, distributed, nn, optim  # noqa: E402
from tinylesion.data import Augment, Loader  # noqa: E402
from tinylesion.nn import functional as F  # noqa: E402
from tinylesion.tensor import Tensor  # noqa: E402

IMAGE = 8
CLASSES = 3


class ArrayImages:
    """An in-memory dataset of uint8 (H, W, 3) images, as the Loader reads datasets."""

    def __init__(self, images, targets):
        self.images, self.targets = images, targets
        self.image_size = (images.shape[2], images.shape[1])

    def __len__(self):
        return len(self.images)

    def load(self, index):
        return self.images[index]


def dataset(n, seed=0):
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, (n, IMAGE, IMAGE, 3), dtype=np.uint8)
    # unbalanced classes, so that class weights matter and shards differ in their weight sums
    targets = rng.choice(CLASSES, size=n, p=[0.6, 0.3, 0.1]).astype(np.int64)
    return ArrayImages(images, targets)


def small_net(sync):
    """Conv, batch norm, ReLU, pooling, linear; no dropout (the draws would differ per rank)."""
    model = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(),
                          nn.MaxPool2d(2), nn.Flatten(), nn.Linear(4 * (IMAGE // 2) ** 2,
                                                                  CLASSES))
    return nn.SyncBatchNorm.convert_sync_batchnorm(model) if sync else model


def weighted_loss(logits, y, weights, world, naive=False):
    """The class-weighted mean over the global batch (or, naive, per-rank weighted means)."""
    if naive or world.size == 1:
        return F.cross_entropy(logits, y, weight=Tensor(weights))
    local = F.cross_entropy(logits, y, weight=Tensor(weights), reduction="sum")
    return distributed.global_mean(local, weights[y].sum())


def written_into_buckets(model):
    """How many parameters backward() gave a gradient that is their view of a gradient bucket
    (gradient_buckets.py), not an array of its own."""
    return sum(getattr(p, "_grad_view", None) is not None and p.grad is not None
               and p.grad.array is p._grad_view for p in model.parameters())


def setup(device="cpu"):
    world = distributed.init(device)
    tl.manual_seed(100 + world.rank)  # different initial weights on each rank...
    return world


def mode_train(out, batch, epochs, naive=False, lr=0.1):
    world = setup()
    model = small_net(sync=world.size > 1)
    distributed.broadcast_parameters(model.state_dict())  # ...until rank 0's are broadcast
    start = {k: v.copy() for k, v in model.state_dict().items()}
    opt = distributed.DistributedOptimizer(optim.SGD(model.parameters(), lr=lr))
    ds = dataset(88)
    weights = np.array([0.5, 1.0, 3.0], np.float32)
    augment = Augment(rotation_range=30, horizontal_flip=True, width_shift_range=0.1)
    loader = Loader(ds, batch_size=batch, num_workers=1, augment=augment,
                    sampler=distributed.shard(len(ds), shuffle=True, seed=7, batch_size=batch))
    losses, first_grads, in_buckets = [], None, []
    for epoch in range(epochs):
        loader.set_epoch(epoch)
        for images, y in loader:
            x = Tensor(images.astype(np.float32) / 255)
            if first_grads is None:
                # first the wrong loss (a mean of per-rank weighted means) from the same
                # weights, to show the comparison can tell them apart; every run does it
                opt.zero_grad()
                weighted_loss(model(x), y, weights, world, naive=True).backward()
                opt.synchronize()
                first_grads = {f"naive {i}": p.grad.array.copy()
                               for i, p in enumerate(model.parameters())}
            loss = weighted_loss(model(x), y, weights, world, naive)
            opt.zero_grad()
            loss.backward()
            in_buckets.append(written_into_buckets(model))
            if "grad 0" not in first_grads:
                opt.synchronize()
                first_grads.update({f"grad {i}": p.grad.array.copy()
                                    for i, p in enumerate(model.parameters())})
                opt.optimizer.step()
            else:
                opt.step()
            losses.append(loss.item())
    if world.is_main:
        np.savez(out, **{f"start {k}": v for k, v in start.items()},
                 **{f"end {k}": backend.to_numpy(v) for k, v in model.state_dict().items()},
                 **first_grads, bytes_sent=opt.bytes_sent, steps=len(losses), size=world.size,
                 in_buckets=np.array(in_buckets))


def mode_adam(out, batch, steps):
    world = setup()
    model = small_net(sync=world.size > 1)
    distributed.broadcast_parameters(model.state_dict())
    opt = distributed.DistributedOptimizer(optim.Adam(model.parameters(), lr=1e-2))
    ds = dataset(batch * world.size * steps, seed=3)
    loader = Loader(ds, batch_size=batch, num_workers=0,
                    sampler=distributed.shard(len(ds), shuffle=True, seed=1, batch_size=batch))
    record = {}
    for s, (images, y) in enumerate(loader):
        loss = F.cross_entropy(model(Tensor(images.astype(np.float32) / 255)), y)
        opt.zero_grad()
        loss.backward()
        opt.synchronize()
        for i, p in enumerate(model.parameters()):
            record[f"step {s} grad {i}"] = p.grad.array.copy()
        opt.optimizer.step()
        for k, v in model.state_dict().items():
            record[f"step {s} {k}"] = v.copy()
    if world.is_main:
        np.savez(out, **record)


def mode_syncbn(out):
    world = setup()
    rng = np.random.default_rng(5)
    x = rng.standard_normal((12, 3, 5, 4)).astype(np.float32) * 3 + 1
    r = rng.standard_normal(x.shape).astype(np.float32)
    part = np.arange(world.rank, len(x), world.size)  # a shard, as ShardSampler's
    bn = nn.SyncBatchNorm(3, momentum=0.3)
    bn.weight.array[...] = [1.5, -0.5, 2.0]
    bn.bias.array[...] = [0.1, 0.2, -0.3]
    xt = Tensor(x[part], requires_grad=True)
    y = bn(xt)
    (y * Tensor(r[part])).sum().backward()
    gw = world.allreduce_(bn.weight.grad.array.copy())
    gb = world.allreduce_(bn.bias.grad.array.copy())
    y_all = world.gather_shards(y.array)
    gx_all = world.gather_shards(xt.grad.array)
    if world.is_main:
        np.savez(out, y=y_all, gx=gx_all, gw=gw, gb=gb, running_mean=bn.running_mean.array,
                 running_var=bn.running_var.array)


def mode_gpu(out, batch, steps, device="cpu", shard=False):
    world = setup(device)
    image = 6  # the simulator runs every CUDA thread as a Python thread: keep it tiny
    model = nn.Sequential(nn.Conv2d(3, 2, 3, padding=1), nn.BatchNorm2d(2), nn.ReLU(),
                          nn.Flatten(), nn.Linear(2 * image * image, CLASSES))
    if world.size > 1:
        model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
    model.to(device)
    distributed.broadcast_parameters(model.state_dict())
    opt = distributed.DistributedOptimizer(optim.SGD(model.parameters(), lr=0.1, momentum=0.9),
                                           shard=shard)
    rng = np.random.default_rng(11)
    total = batch * world.size
    x = rng.standard_normal((total * steps, 3, image, image)).astype(np.float32)
    y = rng.choice(CLASSES, size=total * steps, p=[0.6, 0.3, 0.1]).astype(np.int64)
    weights = np.array([0.5, 1.0, 3.0], np.float32)
    dev = backend.as_device(device)
    wd = backend.to_device(weights, dev)
    in_buckets = []
    for s in range(steps):
        rows = np.arange(s * total + world.rank, (s + 1) * total, world.size)
        xd, yd = backend.to_device(x[rows], dev), backend.to_device(y[rows], dev)
        local = F.cross_entropy(model(Tensor(xd)), yd, weight=Tensor(wd), reduction="sum")
        loss = distributed.global_mean(local, float(weights[y[rows]].sum()))
        opt.zero_grad()
        loss.backward()
        in_buckets.append(written_into_buckets(model))
        opt.step()
    state = {k: backend.to_numpy(v) for k, v in model.state_dict().items()}
    kinds = sorted({type(v).__module__ for v in model.state_dict().values()})
    nccl = sys.modules.get("cupy.cuda.nccl")
    # every rank: a sharded optimizer gathers its state from all of them
    state_kinds = np.array(sorted({type(v).__module__ for e in opt.state_dict()["state"].values()
                                   for v in e.values()}))
    if world.is_main:
        np.savez(out, **state, kinds=np.array(kinds),
                 nccl=world.nccl is not None,
                 side_stream=getattr(world, "_side_stream", None) is not None,
                 allreduces=0 if nccl is None else nccl.calls["allReduce"],
                 reduce_scatters=0 if nccl is None else nccl.calls["reduceScatter"],
                 allgathers=0 if nccl is None else nccl.calls["allGather"],
                 state_kinds=state_kinds, in_buckets=np.array(in_buckets),
                 bcasts=0 if nccl is None else nccl.calls["bcast"])


def mode_uneven(out, steps):
    """Rank 0 reaches the `extra` layer's buckets (started first, in reverse order) during
    backward, rank 1 only at step(); SyncBatchNorm's allreduce comes in between on both."""
    world = setup()
    trunk = nn.Sequential(nn.Linear(5, 4), nn.SyncBatchNorm(4))
    head, extra = nn.Linear(4, 3), nn.Linear(4, 3)
    params = list(trunk.parameters()) + list(head.parameters()) + list(extra.parameters())
    for module in (trunk, head, extra):
        distributed.broadcast_parameters(module.state_dict())
    opt = distributed.DistributedOptimizer(optim.SGD(params, lr=0.1), bucket_bytes=1)
    rng = np.random.default_rng(20 + world.rank)
    record = {}
    for s in range(steps):
        x = Tensor(rng.standard_normal((6, 5)).astype(np.float32))
        h = trunk(x)
        out_ = head(h) + extra(h) if world.rank == 0 else head(h)
        opt.zero_grad()
        (out_ * out_).sum().backward()
        opt.step()
        for i, p in enumerate(params):
            record[f"step {s} grad {i}"] = p.grad.array.copy()
            record[f"step {s} weight {i}"] = p.array.copy()
    if world.is_main:
        np.savez(out, **record)


def mode_fail(out):
    world = setup()
    if world.rank == 1:
        time.sleep(0.5)
        raise ValueError("rank 1 broke on purpose")
    world.allreduce_(np.ones(4))  # rank 1 never joins: without the abort, a hang
    print("rank 0 was never expected to get here", flush=True)


def mode_exit(out):
    world = setup()
    with distributed.abort_on_failure():
        if world.rank == 1:
            print("error: a one-line error on rank 1", file=sys.stderr)
            raise SystemExit(3)
        world.allreduce_(np.ones(4))


if __name__ == "__main__":
    mode, out, *rest = sys.argv[1:]
    args = [int(a) for a in rest if a.lstrip("-").isdigit()]
    kwargs = {"naive": True} if "naive" in rest else {}
    kwargs.update({"device": a for a in rest if a in ("cpu", "gpu")})
    kwargs.update({"shard": True for a in rest if a == "shard"})
    globals()[f"mode_{mode}"](out, *args, **kwargs)
