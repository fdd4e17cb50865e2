"""What the tests of nn.Sequential's fused layers share: the layers run one by one, and one
training step's outputs, gradients and buffers."""
import numpy as np

import tinylesion as tl


def unfused(model, x):
    """model's layers applied one by one (no fusion)."""
    for layer in model:
        x = layer(x)
    return x


def step(run, model, x):
    """[output, input gradient, parameter gradients..., buffers...] after one backward pass of
    a weighted sum of run(x) (weights 0..6, so that every output position counts apart)."""
    model.zero_grad()
    xt = tl.tensor(x, requires_grad=True)
    y = run(xt)
    (y * tl.tensor(np.arange(y.numel(), dtype=x.dtype).reshape(y.shape) % 7)).sum().backward()
    return [y.numpy(), xt.grad.numpy()] + [p.grad.numpy() for p in model.parameters()] + \
        [np.array(b.array) for b in model.buffers()]
