"""Sharded-optimizer runs for tests/test_distributed_sharded.py: `mpirun -n N python
tests/mpi/run_sharded.py MODE OUT`. Every mode trains two copies of one model in the same
job, one with the gradients allreduced and every rank updating every weight, one with the
optimizer sharded (DistributedOptimizer(shard=True)), and rank 0 writes both to OUT (.npz).

  optimizers  each optimizer of tinylesion.optim (two parameter groups with their own learning
              rates, weight decay, a frozen parameter, a layer only rank 0 uses, a layer no
              rank reaches, a class-weighted loss over the global batch; buckets small enough
              that parameters straddle them): weights and state_dict after each step, a layer
              frozen at step 2 and thawed at step 3
  clip        Adam with clip_grad_norm_ between synchronize() and step()
  loss        fit's step: backward of each rank's summed loss, synchronize(loss=(weight, value,
              count)), on the allreduced, sharded and overlapped paths, against
              distributed.global_loss (its own reduction, then the gradients')
  resume      state_dicts crossing between the two: the unsharded state loaded into a new
              sharded optimizer (and back) part way, then more steps
  habits      SGD steps with the gradients in the buckets (gradient_buckets.py): two
              backward() calls before a step, zero_grad(set_to_none=False), a .grad the user
              assigns; the weights after each step, how many gradients backward wrote into
              the buckets, and the step the assigned gradient made
"""
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

import tinylesion as tl  # noqa: E402
from tinylesion import backend, distributed, nn, optim  # noqa: E402
from tinylesion.nn import functional as F  # noqa: E402
from tinylesion.tensor import Tensor  # noqa: E402

CLASSES = 3
BUCKET = 64   # bytes: 16 float32 per bucket, so most parameters straddle buckets

OPTIMIZERS = {
    "sgd": lambda groups: optim.SGD(groups, lr=0.1, momentum=0.9, nesterov=True,
                                    weight_decay=1e-3),
    "sgd_plain": lambda groups: optim.SGD(groups, lr=0.1, dampening=0.0),
    "adam": lambda groups: optim.Adam(groups, lr=1e-2, weight_decay=1e-3),
    "adam_array": lambda groups: optim.Adam(groups, lr=1e-2, fused=False, maximize=True),
    "amsgrad": lambda groups: optim.Adam(groups, lr=1e-2, amsgrad=True),
    "adamw": lambda groups: optim.AdamW(groups, lr=1e-2, weight_decay=0.1),
    "nadam": lambda groups: optim.NAdam(groups, lr=1e-2, weight_decay=1e-3),
    "rmsprop": lambda groups: optim.RMSprop(groups, lr=1e-2, momentum=0.5, centered=True),
    "adadelta": lambda groups: optim.Adadelta(groups, lr=1.0, weight_decay=1e-3),
    "adagrad": lambda groups: optim.Adagrad(groups, lr=0.1, lr_decay=0.01,
                                            initial_accumulator_value=0.1),
}


class Net(nn.Module):
    """A trunk, a head, a layer only rank 0 uses and one no rank reaches."""

    def __init__(self):
        super().__init__()
        self.trunk = nn.Sequential(nn.Conv2d(3, 5, 3, padding=1), nn.ReLU(), nn.Flatten())
        self.head = nn.Linear(5 * 4 * 4, CLASSES)
        self.extra = nn.Linear(5 * 4 * 4, CLASSES)
        self.unused = nn.Linear(7, 3)
        self.frozen = nn.Linear(5 * 4 * 4, CLASSES)
        self.frozen.weight.requires_grad = False

    def forward(self, x, rank):
        h = self.trunk(x)
        out = self.head(h) + self.frozen(h)
        return out + self.extra(h) if rank == 0 else out


def models(world, seed=0):
    """Two copies of one Net with rank 0's weights."""
    tl.manual_seed(seed + world.rank)
    a = Net()
    distributed.broadcast_parameters(a.state_dict())
    b = Net()
    b.load_state_dict({k: v.copy() for k, v in a.state_dict().items()})
    return a, b


def groups(model):
    return [{"params": list(model.trunk.parameters()) + list(model.unused.parameters())},
            {"params": list(model.head.parameters()) + list(model.extra.parameters())
             + list(model.frozen.parameters()), "lr": 0.03}]


def batch(world, step):
    rng = np.random.default_rng(100 * step + world.rank)
    x = rng.standard_normal((6, 3, 4, 4)).astype(np.float32)
    y = rng.choice(CLASSES, size=6, p=[0.6, 0.3, 0.1]).astype(np.int64)
    return Tensor(x), y


def train_step(model, opt, world, step, clip=None):
    weights = np.array([0.5, 1.0, 3.0], np.float32)
    x, y = batch(world, step)
    local = F.cross_entropy(model(x, world.rank), y, weight=Tensor(weights), reduction="sum")
    loss = distributed.global_mean(local, float(weights[y].sum()))
    opt.zero_grad()
    loss.backward()
    norm = None
    if clip is not None:
        opt.synchronize()
        norm = opt.clip_grad_norm_(clip)
    opt.step()
    return norm


def flat_state(sd, prefix):
    """A state_dict's arrays and numbers as npz entries."""
    out = {}
    for k, entry in sd["state"].items():
        for name, value in entry.items():
            out[f"{prefix} state {k} {name}"] = np.array(backend.to_numpy(np.asarray(value)))
    for i, g in enumerate(sd["param_groups"]):
        out[f"{prefix} group {i} params"] = np.array(g["params"])
    return out


def weights(model, prefix):
    return {f"{prefix} {k}": backend.to_numpy(v).copy() for k, v in model.state_dict().items()}


def mode_optimizers(out):
    world = distributed.init()
    record = {}
    for name, make in OPTIMIZERS.items():
        a, b = models(world)
        plain = distributed.DistributedOptimizer(make(groups(a)), bucket_bytes=BUCKET)
        sharded = distributed.DistributedOptimizer(make(groups(b)), bucket_bytes=BUCKET,
                                                   shard=True)
        assert sharded.sharded is not None
        for s in range(4):
            for model in (a, b):   # a layer frozen for step 2 only: a new layout, twice
                model.head.weight.requires_grad = s != 2
            train_step(a, plain, world, s)
            train_step(b, sharded, world, s)
            record.update(weights(a, f"{name} {s} plain"))
            record.update(weights(b, f"{name} {s} sharded"))
            record.update(flat_state(plain.state_dict(), f"{name} {s} plain"))
            record.update(flat_state(sharded.state_dict(), f"{name} {s} sharded"))
        record[f"{name} sharded bytes"] = sharded.bytes_sent
        record[f"{name} plain bytes"] = plain.bytes_sent
        pieces = sum(pc.b - pc.a for pc in sharded.sharded.own)
        record[f"{name} own elements"] = world.sum(pieces)[0]
        record[f"{name} trainable elements"] = sum(
            p.array.size for p in b.parameters() if p.requires_grad)
    if world.is_main:
        np.savez(out, **record)


def mode_clip(out):
    world = distributed.init()
    a, b = models(world, seed=5)
    plain = distributed.DistributedOptimizer(optim.Adam(groups(a), lr=1e-2), bucket_bytes=BUCKET)
    sharded = distributed.DistributedOptimizer(optim.Adam(groups(b), lr=1e-2),
                                               bucket_bytes=BUCKET, shard=True)
    record = {}
    for s in range(3):
        for norm_type, limit in ((2.0, 0.05), (float("inf"), 0.01)):
            record[f"{s} {norm_type} plain norm"] = train_step(a, plain, world, s, limit)
            record[f"{s} {norm_type} sharded norm"] = train_step(b, sharded, world, s, limit)
        record.update(weights(a, f"{s} plain"))
        record.update(weights(b, f"{s} sharded"))
    if world.is_main:
        np.savez(out, **record)


def mode_resume(out):
    """plain: 4 steps unsharded. crossed: 2 steps sharded, its state_dict loaded into a new
    unsharded optimizer for step 3, whose state_dict goes into a new sharded one for step 4."""
    world = distributed.init()
    a, b = models(world, seed=9)
    plain = distributed.DistributedOptimizer(optim.Adam(groups(a), lr=1e-2), bucket_bytes=BUCKET)
    opt = distributed.DistributedOptimizer(optim.Adam(groups(b), lr=1e-2), bucket_bytes=BUCKET,
                                           shard=True)
    for s in range(4):
        train_step(a, plain, world, s)
        if s == 2:
            sd = opt.state_dict()
            opt = distributed.DistributedOptimizer(optim.Adam(groups(b), lr=1e-2),
                                                   bucket_bytes=BUCKET)
            opt.load_state_dict(sd)
        if s == 3:
            sd = opt.state_dict()
            inner = optim.Adam(groups(b), lr=1e-2)
            inner.load_state_dict(sd)   # a resumed run: the state is there before the wrap
            opt = distributed.DistributedOptimizer(inner, bucket_bytes=1 << 20, shard=True)
        train_step(b, opt, world, s)
    record = {**weights(a, "plain"), **weights(b, "crossed")}
    if world.is_main:
        np.savez(out, **record)


def mode_loss(out):
    world = distributed.init()
    record = {}
    class_weights = np.array([0.5, 1.0, 3.0], np.float32)
    for path in ("global_loss", "allreduce", "sharded", "overlap"):
        a, _ = models(world, seed=4)
        opt = distributed.DistributedOptimizer(optim.Adam(groups(a), lr=1e-2),
                                               bucket_bytes=BUCKET, shard=path == "sharded",
                                               overlap=path == "overlap")
        for s in range(3):
            x, y = batch(world, s)
            local = F.cross_entropy(a(x, world.rank), y, weight=Tensor(class_weights),
                                    reduction="sum")
            opt.zero_grad()
            if path == "global_loss":
                loss, value, count = distributed.global_loss(local, float(class_weights[y].sum()),
                                                             len(y))
                loss.backward()
            else:
                local.backward()
                value, count = opt.synchronize(loss=(float(class_weights[y].sum()),
                                                     float(local.item()), len(y)))
            opt.step()
            record[f"{path} {s} value"] = value
            record[f"{path} {s} count"] = count
            record.update(weights(a, f"{path} {s}"))
    if world.is_main:
        np.savez(out, **record)


def mode_habits(out):
    world = distributed.init()
    a, b = models(world, seed=2)
    plain = distributed.DistributedOptimizer(optim.SGD(a.parameters(), lr=0.1))
    sharded = distributed.DistributedOptimizer(optim.SGD(b.parameters(), lr=0.1), shard=True)
    record = {}
    for model, opt, name in ((a, plain, "plain"), (b, sharded, "sharded")):
        in_buckets = []
        for s in range(4):
            opt.zero_grad(set_to_none=s != 2)
            for k in range(2 if s == 1 else 1):   # step 1: gradients of two batches added
                x, y = batch(world, 10 * s + k)
                F.cross_entropy(model(x, world.rank), y).backward()
            in_buckets.append(sum(getattr(p, "_grad_view", None) is not None
                                  and p.grad is not None and p.grad.array is p._grad_view
                                  for p in model.parameters()))
            before = model.head.bias.array.copy()
            if s == 3:   # the user's own gradient, 1 on rank 0 and 2 on rank 1
                model.head.bias.grad = Tensor(np.full(CLASSES, world.rank + 1.0, np.float32))
            opt.step()
            record[f"{name} {s} bias step"] = model.head.bias.array - before
            record.update(weights(model, f"{name} {s}"))
        record[f"{name} in buckets"] = np.array(in_buckets)
    if world.is_main:
        np.savez(out, **record)


if __name__ == "__main__":
    mode, out = sys.argv[1:3]
    globals()[f"mode_{mode}"](out)
