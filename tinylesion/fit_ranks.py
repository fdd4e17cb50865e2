"""What fit does differently on one rank of several: the model and optimizer prepared for the
ranks, and the model's state and checks taken over every rank (split Linear layers too)."""
import numpy as np

from . import backend, row_parallel


class FitRanks:
    """fit's view of the ranks of a run (`world` None: one process, and every method is the
    plain one-process version). After prepare(), `split` says whether Linear layers are split
    over the ranks (row_parallel.py): their weights are then gathered whole for the state,
    and their checks summed over the ranks (collective: every rank calls the same methods)."""

    def __init__(self, world):
        self.world, self.split = world, False

    @property
    def size(self):
        return 1 if self.world is None else self.world.size

    @property
    def is_main(self):
        """True on the rank that logs and writes (rank 0, or the one process)."""
        return self.world is None or self.world.is_main

    def prepare(self, model, optimizer, train_loader, val_loader, log):
        """Data parallel: rank 0's weights, each loader's shard, large Linear layers split,
        averaged gradients (distributed.prepare_fit); returns the optimizer to step (the
        given one on one process) and `log` for this rank (silent past rank 0)."""
        if self.world is None:
            return optimizer, log
        from . import distributed
        optimizer = distributed.prepare_fit(model, optimizer, train_loader, val_loader,
                                            self.world)
        self.split = bool(row_parallel.split_layers(model))
        log = log if self.world.is_main else (lambda *args, **kwargs: None)
        log(f"distributed step: {distributed.describe_step(optimizer)}")
        return optimizer, log

    def model_state(self, model):
        """model.state_dict(), split weights gathered whole (every rank takes part)."""
        return row_parallel.whole_state_dict(model) if self.split else model.state_dict()

    def optimizer_state(self, optimizer):
        """The optimizer's state_dict() where a checkpoint needs it: on rank 0, and on every
        rank when it is collective (a sharded optimizer's state, split weights' state, are
        gathered from every rank); else None."""
        if self.is_main or getattr(optimizer, "collective_state_dict", False):
            return optimizer.state_dict()
        return None

    def count_and_non_finite(self, model, correct):
        """(the epoch's count of correct predictions summed over the ranks, the name of the
        first parameter or buffer holding NaN or inf, or None: then the count is this rank's
        and is not reduced, as every rank stops alike). With split layers each rank checks
        its columns and the flags are summed over the ranks, so that every rank names the
        same array."""
        correct, name = count_and_non_finite(model, correct,
                                             self.world if self.split else None)
        if name is None and self.world is not None:
            correct = self.world.sum(correct)[0]
        return correct, name

    def unsplit(self, model, optimizer):
        """A whole model again (split layers gathered, with their optimizer state; every
        rank), for what follows fit or a diverged run's best weights."""
        if self.split:
            row_parallel.unsplit_linear_layers(model, optimizer)


def count_and_non_finite(model, correct, world=None):
    """(the epoch's count of correct predictions as an int, the name of the first parameter
    or buffer holding NaN or inf or None), with one device-to-host copy: the count and a flag
    per floating-point array are stacked on the device and read together. With `world` (a
    model with split layers: each rank checks its columns) the flags are summed over the
    ranks, so that every rank names the same array; the count stays this rank's."""
    names, values = [], []
    for name, value in model.state_dict().items():
        if value.dtype.kind == "f":
            names.append(name)
            values.append(value)
    xp = backend.get_array_module(values[0] if values else correct)
    flags = [xp.logical_not(xp.isfinite(v).all()).astype(np.int64) for v in values]
    read = backend.to_numpy(xp.stack([xp.asarray(correct, dtype=np.int64)] + flags))
    flags = read[1:]
    if world is not None:
        flags = np.asarray(world.sum(*flags.tolist()) if len(flags) else [])
    bad = [name for name, flag in zip(names, flags) if flag]
    return int(read[0]), (bad[0] if bad else None)
