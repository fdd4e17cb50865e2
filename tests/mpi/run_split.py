"""Linear layers split over the ranks (tinylesion/row_parallel.py) for tests/test_row_parallel.py:
`mpirun -n N python tests/mpi/run_split.py MODE OUT [...]`, or plain `python` for the
one-process reference. Rank 0 writes OUT (.npz).

  grad    float64: a Linear(11 → 4) split over the ranks on rows of uneven counts (3 + rank):
          its outputs, the gradients of x, of the whole weight (gathered) and of the bias
          (summed over the ranks), and central differences of the global loss
  fit     tinylesion.train.fit (conv, then two Linear layers, both split on several ranks with
          TINYLESION_SPLIT_LINEAR=1; SGD with momentum and weight decay, a class-weighted
          loss), EPOCHS epochs at per-rank batch BATCH with a checkpoint at CKPT, evaluating a
          validation set of 33 images (16 + 1 and 16 on 2 ranks: one rank has a batch fewer);
          with "resume", the run goes on from CKPT; with "thaw", the first Linear layer is
          frozen when fit starts and thawed after the first epoch. Writes the final weights,
          the optimizer's momentum, the history and the classes of the layers after fit
  eval    evaluate_model on a split model (the eval set as above, or of SAMPLES images; on
          DEVICE, "cpu" or "gpu"): y_true and y_score, and the class-weighted loss of the
          evaluation fit runs
  decide  the layers fit's preparation splits by default at three per-rank batch sizes
  clip    SGD steps with clip_grad_norm_ (2-norm, then inf-norm) between synchronize() and
          step(), both Linear layers split, the other gradients allreduced or sharded: the norms
          and the whole weights after each step
  scale   the gradients after synchronize(loss=...) of a class-weighted loss on both Linear
          layers split, with the global weight reduced before backward
          (scale_split_gradients: divided in the split layers' backward) and without it (a
          pass after the reduction), and undone by a zero_grad() before backward; the split
          weights' gradients before synchronize(); the error of scale_split_gradients()
          followed by synchronize() without the loss; with the optimizer sharded too
  gpu     SGD steps on DEVICE ("gpu": tests/fakegpu first on PYTHONPATH and the CUDA
          simulator) with the Linear layer split on several ranks: the whole weights after
          each step, where the split weight, its gradient and its momentum live
"""
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

import tinylesion as tl  # noqa: E402
from tinylesion import backend, distributed, nn, optim, row_parallel  # noqa: E402
from tinylesion.data import Loader  # noqa: E402
from tinylesion.tensor import Tensor  # noqa: E402

IMAGE = 8
CLASSES = 3
IN, OUT = 11, 4


class ArrayImages:
    """An in-memory dataset of uint8 (H, W, 3) images, as the Loader reads datasets."""

    def __init__(self, images, targets):
        self.images, self.targets = images, targets
        self.image_size = (images.shape[2], images.shape[1])

    def __len__(self):
        return len(self.images)

    def load(self, index):
        return self.images[index]


def dataset(n, seed):
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, (n, IMAGE, IMAGE, 3), dtype=np.uint8)
    targets = rng.choice(CLASSES, size=n, p=[0.6, 0.3, 0.1]).astype(np.int64)
    return ArrayImages(images, targets)


def grad_problem(size):
    """The whole layer's weight and bias, every rank's rows and the loss's weights G."""
    rng = np.random.default_rng(3)
    W = rng.standard_normal((OUT, IN))
    b = rng.standard_normal(OUT)
    rows = [3 + r for r in range(size)]
    X = rng.standard_normal((sum(rows), IN))
    G = rng.standard_normal((sum(rows), OUT))
    return W, b, rows, X, G


def mode_grad(out):
    world = distributed.init()
    W, b, rows, X, G = grad_problem(world.size)
    first = sum(rows[:world.rank])
    mine = slice(first, first + rows[world.rank])
    layer = nn.Linear(IN, OUT).double()
    layer.load_state_dict({"weight": W, "bias": b})
    names = row_parallel.split_linear_layers(layer, world, setting=True)
    assert names == [""] and isinstance(layer, row_parallel.RowParallelLinear)
    x = Tensor(X[mine].copy(), requires_grad=True)
    g = Tensor(G[mine].copy())

    def global_loss():
        with tl.no_grad():
            return world.sum(float((layer(x) * g).sum().item()))[0]

    y = layer(x)
    (y * g).sum().backward()
    record = {"y": np.concatenate(world.comm.allgather(y.array)),
              "gx": np.concatenate(world.comm.allgather(x.grad.array)),
              "gW": row_parallel.gather_columns(world, layer.weight.grad.array, layer.bounds),
              "gb": world.allreduce_(layer.bias.grad.array.copy()),
              "weight shape": np.array(layer.weight.array.shape)}
    # central differences of the loss summed over the ranks, one element at a time (every rank
    # runs each forward: the layer is collective)
    eps = 1e-6
    lo, hi = layer.columns
    numeric_W = np.zeros((OUT, IN))
    for i in range(OUT):
        for j in range(IN):
            values = []
            for sign in (1, -1):
                if lo <= j < hi:
                    layer.weight.array[i, j - lo] += sign * eps
                values.append(global_loss())
                if lo <= j < hi:
                    layer.weight.array[i, j - lo] -= sign * eps
            numeric_W[i, j] = (values[0] - values[1]) / (2 * eps)
    numeric_x = np.zeros_like(X)
    for row in range(len(X)):
        for j in range(IN):
            values = []
            for sign in (1, -1):
                if mine.start <= row < mine.stop:
                    x.array[row - mine.start, j] += sign * eps
                values.append(global_loss())
                if mine.start <= row < mine.stop:
                    x.array[row - mine.start, j] -= sign * eps
            numeric_x[row, j] = (values[0] - values[1]) / (2 * eps)
    record.update({"numeric gW": numeric_W, "numeric gx": numeric_x})
    if world.is_main:
        np.savez(out, **record)


def make_model():
    tl.manual_seed(11)
    return nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.Flatten(),
                         nn.Linear(4 * IMAGE * IMAGE, 16), nn.ReLU(), nn.Linear(16, CLASSES))


def mode_fit(out, batch, epochs, ckpt, *flags):
    from tinylesion.train import fit
    if distributed.launched_size() > 1:
        distributed.init()
    model = make_model()
    opt = optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=1e-3)
    resume = "resume" in flags
    if "thaw" in flags:   # the first Linear frozen when fit starts, thawed after epoch 1
        model[3].weight.requires_grad_(False)

    def thaw(epoch, history):
        if "thaw" in flags and epoch == 0:
            model[3].weight.requires_grad_(True)
    train = Loader(dataset(64, 1), batch_size=batch, shuffle=True, seed=5)
    val = Loader(dataset(33, 2), batch_size=batch)
    during = []
    logged = []
    history = fit(model, opt, train, val, epochs=epochs, class_weights=np.array(
        [0.5, 1.0, 3.0], np.float32), early_stopping=0, checkpoint_path=ckpt,
        resume=bool(resume), progress=False, log=lambda *a, **k: logged.append(str(a[0])),
        on_epoch_end=lambda *args: (during.append([type(m).__name__ for m in model]),
                                    thaw(*args)))
    record = {f"end {k}": backend.to_numpy(v) for k, v in model.state_dict().items()}
    for i, p in enumerate(model.parameters()):
        state = opt.state.get(p, {})
        for name, value in state.items():
            if isinstance(value, np.ndarray):
                record[f"state {i} {name}"] = value
    record["classes"] = np.array([type(m).__name__ for m in model])
    record["classes during"] = np.array(during)
    record["log"] = np.array("\n".join(logged))
    record["history"] = np.array(json.dumps(history))
    if distributed.rank() == 0:
        np.savez(out, **record)


def mode_eval(out, batch, samples=33, device="cpu"):
    from tinylesion.train import _run_eval, evaluate_model
    world = distributed.init(device) if distributed.launched_size() > 1 else None
    model = make_model().to(device)
    if world is not None:
        distributed.broadcast_parameters(model.state_dict())
        row_parallel.split_linear_layers(model, world, setting=True)
        assert len(row_parallel.split_layers(model)) == 2
    data = dataset(samples, 2)
    y_true, y_score = evaluate_model(model, Loader(data, batch_size=batch), device)
    # the class-weighted loss over the set (a second evaluation: the same padding)
    *_, loss = _run_eval(model, Loader(data, batch_size=batch), device, None, None,
                         np.array([0.5, 1.0, 3.0], np.float32))
    kinds = sorted({type(p.array).__module__.split(".")[0] for p in model.parameters()})
    if distributed.rank() == 0:
        np.savez(out, y_true=y_true, y_score=y_score, loss=loss, kinds=np.array(kinds))


def mode_decide(out):
    """distributed.prepare_fit on a model with a 16 MB Linear(4096 → 1024) at per-rank batches
    16 and 683 (TINYLESION_SPLIT_LINEAR unset): the names of the layers it split."""
    world = distributed.init()
    record = {}
    for batch in (16, 682, 683):
        model = nn.Sequential(nn.Flatten(), nn.Linear(4096, 1024), nn.ReLU(),
                              nn.Linear(1024, CLASSES))
        opt = optim.SGD(model.parameters(), lr=0.1)
        distributed.prepare_fit(model, opt, Loader(dataset(64, 1), batch_size=batch), None,
                                world, overlap=False, shard=False)
        record[f"split at {batch}"] = np.array([n for n, _ in row_parallel.split_layers(model)]
                                               + [""])
    if world.is_main:
        np.savez(out, **record)


def mode_clip(out):
    from tinylesion.nn import functional as F
    world = distributed.init() if distributed.launched_size() > 1 else None
    size, rank = (1, 0) if world is None else (world.size, world.rank)
    record = {}
    for shard in (False, True) if world is not None else (False,):
        tl.manual_seed(8)
        model = nn.Sequential(nn.Conv2d(3, 2, 3, padding=1), nn.Flatten(), nn.Linear(32, 5),
                              nn.ReLU(), nn.Linear(5, CLASSES))
        opt = optim.SGD(model.parameters(), lr=0.1)
        if world is not None:
            assert row_parallel.split_linear_layers(model, world, opt, setting=True) == ["2", "4"]
        opt = distributed.DistributedOptimizer(opt, shard=shard)
        assert (opt.sharded is not None) == shard
        rng = np.random.default_rng(2)
        name = "one" if world is None else "sharded" if shard else "split"
        for s in range(2):
            x = rng.standard_normal((8, 3, 4, 4)).astype(np.float32)
            y = rng.integers(0, CLASSES, 8)
            for norm_type, limit in ((2.0, 0.05), (float("inf"), 0.01)):
                rows = np.arange(rank, 8, size)
                local = F.cross_entropy(model(Tensor(x[rows])), y[rows], reduction="sum")
                opt.zero_grad()
                (local * (size / 8.0)).backward()
                opt.synchronize()
                record[f"{name} {s} {norm_type} norm"] = opt.clip_grad_norm_(limit, norm_type)
                opt.step()
            state = row_parallel.whole_state_dict(model) if world is not None \
                else model.state_dict()
            record.update({f"{name} {s} {k}": np.array(v) for k, v in state.items()})
    if rank == 0:
        np.savez(out, **record)


def mode_scale(out):
    from tinylesion.nn import functional as F
    world = distributed.init()
    record = {}
    for shard in (False, True):
        tl.manual_seed(6)
        model = nn.Sequential(nn.Flatten(), nn.Linear(48, 5), nn.ReLU(), nn.Linear(5, CLASSES))
        opt = optim.SGD(model.parameters(), lr=0.1)
        assert row_parallel.split_linear_layers(model, world, opt, setting=True) == ["1", "3"]
        opt = distributed.DistributedOptimizer(opt, shard=shard)
        rng = np.random.default_rng(9)
        x = rng.standard_normal((7, 3, 4, 4)).astype(np.float32)   # 4 + 3 rows on 2 ranks
        y = rng.integers(0, CLASSES, 7)
        weights = np.array([0.5, 1.0, 3.0], np.float32)
        rows = np.arange(world.rank, 7, world.size)
        tag = "sharded " if shard else ""

        def grads():
            split = row_parallel.split_layers(model)
            found = {f"{n}.weight": row_parallel.gather_columns(world, m.weight.grad.array,
                                                                m.bounds) for n, m in split}
            if not shard:   # (sharded: .grad of the bias is this rank's own, not the average)
                found.update({f"{n}.bias": m.bias.grad.array.copy() for n, m in split})
            return found

        for how in ("after", "before", "undone"):
            local = F.cross_entropy(model(Tensor(x[rows])), y[rows], weight=Tensor(weights),
                                    reduction="sum")
            weight = float(weights[y[rows]].sum())
            opt.zero_grad()
            if how != "after":
                record[f"{tag}global weight"] = np.array(opt.scale_split_gradients(weight))
            if how == "undone":   # a zero_grad() between: the pass after the reduction again
                opt.zero_grad()
            local.backward()
            if how == "before":
                record.update({f"{tag}before sync {k}": v for k, v in grads().items()
                               if k.endswith("weight")})
            value, count = opt.synchronize(loss=(weight, float(local.item()), len(rows)))
            record.update({f"{tag}{how} {k}": v for k, v in grads().items()})
            record[f"{tag}{how} loss"] = np.array([value, count])
        opt.zero_grad()
        opt.scale_split_gradients(1.0)
        model(Tensor(x[rows])).sum().backward()
        try:
            opt.synchronize()
            record[f"{tag}error"] = np.array("")
        except ValueError as exc:
            record[f"{tag}error"] = np.array(str(exc))
        assert all(getattr(p, row_parallel.GRAD_SCALE, None) is None
                   for p in model.parameters())
    if world.is_main:
        np.savez(out, **record)


def mode_gpu(out, steps, device):
    from tinylesion.nn import functional as F
    world = distributed.init(device) if distributed.launched_size() > 1 else None
    size = 1 if world is None else world.size
    tl.manual_seed(4)
    model = nn.Sequential(nn.Conv2d(3, 2, 3, padding=1), nn.ReLU(), nn.Flatten(),
                          nn.Linear(2 * 6 * 6, CLASSES)).to(device)
    opt = optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    if world is not None:
        distributed.broadcast_parameters(model.state_dict())
        assert row_parallel.split_linear_layers(model, world, opt, setting=True) == ["3"]
        opt = distributed.DistributedOptimizer(opt)
    rng = np.random.default_rng(11)
    total = 7   # 4 + 3 rows on 2 ranks: the padded NCCL segments
    x = rng.standard_normal((total * steps, 3, 6, 6)).astype(np.float32)
    y = rng.integers(0, CLASSES, total * steps).astype(np.int64)
    dev = backend.as_device(device)
    record = {}
    rank = 0 if world is None else world.rank
    for s in range(steps):
        rows = np.arange(s * total + rank, (s + 1) * total, size)
        local = F.cross_entropy(model(Tensor(backend.to_device(x[rows], dev))),
                                backend.to_device(y[rows], dev), reduction="sum")
        opt.zero_grad()
        (local * (size / float(total))).backward()
        opt.step()
        state = row_parallel.whole_state_dict(model) if world is not None \
            else model.state_dict()
        record.update({f"{s} {k}": np.array(backend.to_numpy(v)) for k, v in state.items()})
    weight = model[3].weight
    record["kinds"] = np.array([type(a).__module__.split(".")[0] for a in (
        weight.array, weight.grad.array, opt.state[weight]["momentum_buffer"])])
    record["shape"] = np.array(weight.array.shape)
    nccl = sys.modules.get("cupy.cuda.nccl")
    record["nccl calls"] = np.array([0, 0] if nccl is None else
                                    [nccl.calls["allGather"], nccl.calls["reduceScatter"]])
    if rank == 0:
        np.savez(out, **record)


if __name__ == "__main__":
    mode, out, *rest = sys.argv[1:]
    if mode == "fit":
        mode_fit(out, int(rest[0]), int(rest[1]), rest[2], *rest[3:])   # flags: resume, thaw
    elif mode == "eval":
        mode_eval(out, *map(int, rest[:2]), *rest[2:])
    elif mode == "clip":
        mode_clip(out)
    elif mode == "gpu":
        mode_gpu(out, int(rest[0]), rest[1])
    else:
        globals()[f"mode_{mode}"](out)
