"""The floating-point operations of a model per image: its convolutions and linear layers.

A multiply-add counts as two operations. The forward count comes from one forward pass of a
single image, which gives every layer's output size; a training step counts as three forward
passes (the backward pass computes the input and the weight gradients, each costing about a
forward), the usual convention for effective training rates.
"""
import math

TRAINING_PASSES = 3  # forward, input gradient, weight gradient


def conv2d_flops(in_channels, out_channels, kernel_size, groups, out_height, out_width):
    """Operations of one convolution's forward for one image, as a direct convolution counts
    them (Winograd and other fast algorithms do fewer: the effective rate counts these)."""
    kh, kw = kernel_size
    per_output = 2 * (in_channels // groups) * kh * kw
    return per_output * out_channels * out_height * out_width


def linear_flops(in_features, out_features, rows=1):
    """Operations of one linear layer's forward for `rows` input rows."""
    return 2 * in_features * out_features * rows


def forward_flops(model, image_size):
    """Forward operations per image of a tinylesion model at `image_size` (width, height):
    the sum over its Conv2d and Linear layers, found by running one image through it."""
    import numpy as np
    import tinylesion as tl
    from tinylesion import nn

    W, H = image_size
    counted = {}
    originals = {cls: cls.forward for cls in (nn.Conv2d, nn.Linear)}

    def counting(cls):
        forward = originals[cls]

        def wrapped(module, x):
            out = forward(module, x)
            if isinstance(module, nn.Conv2d):
                _, _, oh, ow = out.shape
                ops = conv2d_flops(module.in_channels, module.out_channels, module.kernel_size,
                                   module.groups, oh, ow)
            else:
                ops = linear_flops(module.in_features, module.out_features,
                                   math.prod(out.shape[:-1]))
            counted[id(module)] = counted.get(id(module), 0) + ops
            return out
        return wrapped

    was_training = model.training
    try:
        for cls in originals:
            cls.forward = counting(cls)
        model.eval()
        with tl.no_grad():
            model(tl.Tensor(np.zeros((1, 3, H, W), np.float32)))
    finally:
        for cls, forward in originals.items():
            cls.forward = forward
        model.train(was_training)
    layers = [m for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    unseen = [type(m).__name__ for m in layers if id(m) not in counted]
    if unseen:
        raise RuntimeError(f"{len(unseen)} layer(s) ({', '.join(sorted(set(unseen)))}) did not "
                           "run through Conv2d.forward / Linear.forward: cannot count them")
    return sum(counted.values())
