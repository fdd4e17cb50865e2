"""Shards of each epoch's order for data-parallel ranks: the batches of one process, split."""
import os
import warnings

import numpy as np

# The variables MPI launchers set in each process: (world size, rank), Open MPI then MPICH/PMI.
_LAUNCH_VARS = (("OMPI_COMM_WORLD_SIZE", "OMPI_COMM_WORLD_RANK"), ("PMI_SIZE", "PMI_RANK"),
                ("PMIX_SIZE", "PMIX_RANK"))


def launch_world():
    """(world size, rank) as the MPI launcher set them in the environment; (1, 0) without one."""
    for size_var, rank_var in _LAUNCH_VARS:
        size, rank = os.environ.get(size_var), os.environ.get(rank_var)
        if size is not None and rank is not None:
            try:
                return int(size), int(rank)
            except ValueError:
                continue
    return 1, 0


def _check_world(num_replicas, rank, who):
    for name, value, low in (("num_replicas", num_replicas, 1), ("rank", rank, 0)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
            raise ValueError(f"{who}: {name} must be an integer >= {low}, got {value!r}")
    if rank >= num_replicas:
        raise ValueError(f"{who}: rank {rank} is not below num_replicas {num_replicas}")


class ShardSampler:
    """Rank `rank`'s shard of an epoch order: the positions rank, rank + N, rank + 2N, ...

    `base` gives the whole epoch's order as one process would serve it: a sampler with
    `indices(epoch)` (e.g. OversampleSampler), an int n for a permutation of range(n) drawn
    from default_rng([seed, epoch]) (the Loader's shuffle), or an int with shuffle=False for
    range(n). With per-rank batch B, batch b of every rank holds positions b·N·B .. (b+1)·N·B − 1
    of that order between them: the N ranks together see the batches of one process with batch
    N·B. `positions(epoch)` are the served positions in the whole order, from which the Loader
    draws each sample's augmentation, so augmentation does not depend on N either.

    NOTE: with batch_size given, a last global batch with fewer samples than ranks is left out
    (a warning says so): some rank would have no batch there while the others wait for it in
    the gradient allreduce. Any other last batch is split over the ranks (sizes differ by <= 1).
    """

    def __init__(self, base, num_replicas, rank, shuffle=True, seed=0, batch_size=None):
        _check_world(num_replicas, rank, "ShardSampler")
        self.base, self.num_replicas, self.rank = base, int(num_replicas), int(rank)
        self.shuffle, self.seed = bool(shuffle), int(seed)
        self.batch_size = None if batch_size is None else int(batch_size)
        self._warned = False

    def _total(self):
        return len(self.base) if hasattr(self.base, "indices") else int(self.base)

    def _used(self, n):
        """How many positions of the whole order are served (see the NOTE above)."""
        if self.batch_size is None:
            return n
        rest = n % (self.num_replicas * self.batch_size)
        return n - rest if 0 < rest < self.num_replicas else n

    def global_order(self, epoch):
        """The whole epoch's order (the same on every rank and for any number of ranks)."""
        if hasattr(self.base, "indices"):
            return np.asarray(self.base.indices(epoch), dtype=np.int64)
        n = int(self.base)
        if self.shuffle:
            return np.random.default_rng([self.seed, epoch]).permutation(n).astype(np.int64)
        return np.arange(n, dtype=np.int64)

    def positions(self, epoch):
        """This rank's positions in the whole order (int64)."""
        n = self._total()
        used = self._used(n)
        if used < n and not self._warned:
            self._warned = True
            warnings.warn(f"ShardSampler: the last {n - used} sample(s) of each epoch are left "
                          f"out: fewer than the {self.num_replicas} ranks", stacklevel=2)
        return np.arange(self.rank, used, self.num_replicas, dtype=np.int64)

    def indices(self, epoch):
        """This rank's dataset indices of one epoch, in the order it serves them."""
        return self.global_order(epoch)[self.positions(epoch)]

    def __len__(self):
        return len(range(self.rank, self._used(self._total()), self.num_replicas))


class DistributedSampler:
    """PyTorch's DistributedSampler(dataset, num_replicas, rank, shuffle, seed, drop_last).

    Iterating gives this rank's dataset indices of the epoch set by set_epoch(epoch): the
    positions rank, rank + N, ... of an order that is the same for any N (a permutation from
    default_rng([seed, epoch]) with shuffle, as the Loader's, else range(len(dataset))). As in
    PyTorch every rank gets the same count: without drop_last the order is padded with its own
    first samples up to a multiple of N (a few samples are then seen twice), with drop_last
    its tail is cut to a multiple. num_replicas and rank default to the MPI launcher's.
    Also usable as a Loader's sampler (`indices(epoch)`).
    """

    def __init__(self, dataset, num_replicas=None, rank=None, shuffle=True, seed=0,
                 drop_last=False):
        size, own = launch_world()
        num_replicas = size if num_replicas is None else num_replicas
        rank = own if rank is None else rank
        _check_world(num_replicas, rank, "DistributedSampler")
        self.dataset, self.num_replicas, self.rank = dataset, int(num_replicas), int(rank)
        self.shuffle, self.seed, self.drop_last = bool(shuffle), int(seed), bool(drop_last)
        self.epoch = 0
        n = len(dataset)
        self.num_samples = n // self.num_replicas if self.drop_last \
            else -(-n // self.num_replicas)
        self.total_size = self.num_samples * self.num_replicas

    def set_epoch(self, epoch):
        """Use `epoch`'s order from the next iteration on."""
        self.epoch = int(epoch)

    def indices(self, epoch):
        """This rank's dataset indices of `epoch` (int64)."""
        n = len(self.dataset)
        order = np.random.default_rng([self.seed, int(epoch)]).permutation(n) if self.shuffle \
            else np.arange(n)
        if self.total_size > n:  # NOTE: pad by repeating the order (more than once if N > n)
            order = np.resize(order, self.total_size)
        order = order[:self.total_size]
        return order[self.rank::self.num_replicas].astype(np.int64)

    def __iter__(self):
        return iter(self.indices(self.epoch).tolist())

    def __len__(self):
        return self.num_samples
