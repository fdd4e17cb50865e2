"""bench/train_step.py --loop: the hand-written training loop of the README, both engines in one
process taking turns step by step.

The tinylesion side is written as a user writes it from the README's first example, with the
public API only: `model(x)`, `F.cross_entropy` (or the binary loss), `opt.zero_grad()`,
`loss.backward()`, `opt.step()`; no `fit()`, and no call of kernels.threads.keep_freed_memory(),
so it measures whatever memory policy the engine applies by itself.
"""
import statistics
import time

from train_step_workers import is_dropout, kept_freed_bytes, torch_twin


class _TwinSpec:
    """The fields torch_twin reads."""

    def __init__(self, name, num_classes, image_size):
        self.name, self.num_classes, self.image_size = name, num_classes, image_size


def _first_loss(step, modules):
    """The loss of a step with dropout off (so both engines' first losses are comparable)."""
    dropouts = [m for m in modules() if is_dropout(m) and m.training]
    for m in dropouts:
        m.train(False)
    try:
        return float(step().item())
    finally:
        for m in dropouts:
            m.train(True)


def run_loop(case, threads):
    """Time `case` (name, num_classes, batch, steps, warmup) in this process, the engines
    alternating; returns a dict of results (images/s per engine, first losses, step times)."""
    import numpy as np
    import torch
    import tinylesion as tl
    import tinylesion.nn.functional as F
    from tinylesion import models

    torch.set_num_threads(threads)
    tl.manual_seed(0)
    model = models.get_model(case.name, num_classes=case.num_classes)
    W, H = model.image_size
    rng = np.random.default_rng(0)
    x_np = rng.standard_normal((case.batch, 3, H, W)).astype(np.float32)
    y_np = rng.integers(0, model.num_classes, case.batch)
    if model.binary:
        y_np = y_np.astype(np.float32).reshape(-1, 1)

    # ---- tinylesion, as in the README's first example ---------------------------------------
    loss_fn = F.binary_cross_entropy_with_logits if model.binary else F.cross_entropy
    optimizer = tl.optim.Adam(model.parameters(), lr=1e-4)
    x, y = tl.Tensor(x_np), y_np
    model.train()

    def tinylesion_step():
        loss = loss_fn(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        return loss

    # ---- PyTorch, the same network with the same initial weights ----------------------------
    ref = torch_twin(_TwinSpec(case.name, model.num_classes, model.image_size))
    ref.load_state_dict({k: torch.from_numpy(tl.backend.to_numpy(v).copy())
                         for k, v in model.state_dict().items()})
    torch_loss_fn = (torch.nn.functional.binary_cross_entropy_with_logits if model.binary
                     else torch.nn.functional.cross_entropy)
    torch_opt = torch.optim.Adam(ref.parameters(), lr=1e-4)
    tx, ty = torch.from_numpy(x_np), torch.from_numpy(y_np)
    ref.train()

    def torch_step():
        loss = torch_loss_fn(ref(tx), ty)
        torch_opt.zero_grad()
        loss.backward()
        torch_opt.step()
        return loss

    steps = {"tinylesion": tinylesion_step, "PyTorch": torch_step}
    losses = {"tinylesion": _first_loss(tinylesion_step, model.modules),
              "PyTorch": _first_loss(torch_step, ref.modules)}
    for _ in range(case.warmup - 1):
        for step in steps.values():
            step()
    times = {label: [] for label in steps}
    order = list(steps)
    for i in range(case.steps):
        for label in order[i % 2:] + order[:i % 2]:  # NOTE: alternate who goes first
            start = time.perf_counter()
            steps[label]()
            times[label].append(time.perf_counter() - start)
    result = dict(model=case.name, size=model.image_size, batch=case.batch,
                  params=model.num_parameters(), times=times, losses=losses,
                  kept=kept_freed_bytes())
    for label, ts in times.items():
        result[label] = case.batch / statistics.median(ts)
    return result
