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
    the sum over its Conv2d and Linear layers, found by running one image through it with
    each layer's forward wrapped to see its output size."""
    import numpy as np
    import tinylesion as tl
    from tinylesion import nn

    W, H = image_size
    counted = {}

    def counting(module):
        forward = module.forward

        def wrapped(x):
            out = forward(x)
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

    # NOTE: a forward set on the instance (as Grad-CAM sets one) also makes nn.Sequential run
    # a Conv2d and its ReLU as two ops instead of its fused one, so every layer is seen.
    layers = [m for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    was_training = model.training
    try:
        for layer in layers:
            layer.forward = counting(layer)
        model.eval()
        with tl.no_grad():
            model(tl.Tensor(np.zeros((1, 3, H, W), np.float32)))
    finally:
        for layer in layers:
            if "forward" in vars(layer):
                del layer.forward
        model.train(was_training)
    unseen = [type(m).__name__ for m in layers if id(m) not in counted]
    if unseen:
        raise RuntimeError(f"{len(unseen)} layer(s) ({', '.join(sorted(set(unseen)))}) were "
                           "not called through their forward: cannot count them")
    return sum(counted.values())
