"""Joining tensors: concatenation and stacking along a dimension."""
from ..backend import get_array_module
from ..autograd import Function


class Cat(Function):
    """The inputs end to end along `axis` (one dtype, shapes equal elsewhere); the gradient is
    gy cut back into the inputs' lengths."""

    def forward(self, *xs, axis=0):
        self.axis = axis
        self.lengths = [x.shape[axis] for x in xs]
        return get_array_module(*xs).concatenate(xs, axis=axis)

    def backward(self, gy):
        grads, start = [], 0
        for needed, n in zip(self.needs_input_grad, self.lengths):
            index = (slice(None),) * self.axis + (slice(start, start + n),)
            grads.append(gy[index] if needed else None)
            start += n
        return tuple(grads)


class Stack(Function):
    """The inputs (one shape and dtype) along a new axis; the gradient is gy's slices."""

    def forward(self, *xs, axis=0):
        self.axis = axis
        return get_array_module(*xs).stack(xs, axis=axis)

    def backward(self, gy):
        prefix = (slice(None),) * self.axis
        return tuple(gy[prefix + (i,)] if needed else None
                     for i, needed in enumerate(self.needs_input_grad))
