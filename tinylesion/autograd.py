"""The Function base class and reverse-mode backward() through the graph of Functions."""
from . import inference_cache as _inference_cache
from .errors import as_input_error
from .tensor import Tensor, is_grad_enabled, no_grad


class Function:
    """One differentiable operation: `forward` on arrays, `backward` from gy to the inputs.

    `apply` takes tensors (None for an absent optional input, such as a bias) and keyword
    constants; it records the graph only when grad mode is on and some input requires a
    gradient; `needs_input_grad[i]` tells `backward` which gradients anybody needs.
    """

    def forward(self, *arrays, **kwargs):
        raise NotImplementedError

    def backward(self, gy):
        raise NotImplementedError

    @classmethod
    def apply(cls, *inputs, **kwargs):
        """Run the op on tensors and return the output tensor."""
        fn = cls()
        fn.needs_input_grad = tuple(t is not None and t.requires_grad for t in inputs)
        try:
            y = fn.forward(*(None if t is None else t.array for t in inputs), **kwargs)
        except ValueError as exc:   # shape mismatches: RuntimeError too, as PyTorch's
            raise as_input_error(exc) from None
        out = Tensor._wrap(y)
        if is_grad_enabled() and any(fn.needs_input_grad):
            out.requires_grad = True
            out._ctx = fn
            # NOTE: the graph holds leaves and the nodes of op outputs, never an output's
            # array (see tensor._GraphNode): what backward needs, each op saved itself.
            fn.inputs = tuple(t if t is None or t._node is None else t._node for t in inputs)
            for t in inputs:   # every input: an op may keep any of them for its backward
                if t is not None:
                    t._used = True
        return out


class _Freed:
    """What a tensor's _ctx becomes once backward has used and freed its graph."""
    inputs = ()


def _topological_order(root):
    """The graph nodes under `root` (a tensor's _GraphNode), each after all of its inputs.

    Iterative depth-first search: a 10,000-op chain does not reach the recursion limit.
    """
    order, visited = [], set()
    stack = [(root, False)]
    while stack:
        node, expanded = stack.pop()
        if expanded:
            order.append(node)
            continue
        if id(node) in visited:
            continue
        visited.add(id(node))
        stack.append((node, True))
        for parent in node._ctx.inputs:
            if parent is not None and parent._ctx is not None and id(parent) not in visited:
                stack.append((parent, False))
    return order


def _accumulate_leaf(tensor, g, handed_out):
    """Add g to tensor.grad (gradients accumulate until zeroed, as in PyTorch). A leaf with
    a `_grad_view` (its slice of a data-parallel gradient bucket: gradient_buckets.py) gets
    its gradient written there, and later ones added there in place."""
    view = getattr(tensor, "_grad_view", None)
    if (view is not None and type(view) is type(g) and view.shape == g.shape
            and view.dtype == g.dtype):
        if tensor.grad is None:
            view[...] = g
            tensor.grad = Tensor._wrap(view)
            return
        if tensor.grad.array is view:
            view += g
            return
    if tensor.grad is None:
        # NOTE: an op may return one array as the gradient of two inputs (x + y), or a
        # read-only broadcast view; the optimizer updates .grad in place, so each leaf
        # must own its writable array.
        flags = g.flags
        if (id(g) in handed_out or not flags.owndata or not flags.c_contiguous
                or not getattr(flags, "writeable", True)):
            g = g.copy()
        handed_out.add(id(g))
        tensor.grad = Tensor._wrap(g)
    else:
        tensor.grad.array = tensor.grad.array + g


def _leaf_edges(order):
    """{id(leaf): the number of recorded uses of it still to run backward} for the leaves with
    hooks (empty when none has any): when a count reaches 0, the leaf's gradient of this
    backward() is complete."""
    edges = {}
    for node in order:
        fn = node._ctx
        for parent, needed in zip(fn.inputs, fn.needs_input_grad):
            if needed and parent._ctx is None and (parent._post_accumulate_hooks
                                                   or parent._grad_hooks):
                edges[id(parent)] = edges.get(id(parent), 0) + 1
    return edges


def _run_post_accumulate_hooks(leaf):
    with no_grad():
        for hook in list(leaf._post_accumulate_hooks.values()):
            hook(leaf)


def _run_grad_hooks(hooks, g):
    """g after each of Tensor.register_hook's hooks (a returned tensor replaces it)."""
    with no_grad():
        for hook in list(hooks.values()):
            result = hook(Tensor._wrap(g))
            if result is None:
                continue
            if not isinstance(result, Tensor):
                raise TypeError(f"a gradient hook must return None or a Tensor, not "
                                f"{type(result).__name__}")
            if result.shape != g.shape:
                raise RuntimeError(f"a gradient hook changed the gradient's shape from "
                                   f"{g.shape} to {result.shape}")
            g = result.array if result.dtype == g.dtype else result.array.astype(g.dtype)
    return g


def _leaf_edges_done(fn, edges, finish):
    """Count down the uses by `fn` of hooked leaves; finish(leaf) for those now complete."""
    for parent, needed in zip(fn.inputs, fn.needs_input_grad):
        key = id(parent) if needed and parent is not None else None
        if key in edges:
            edges[key] -= 1
            if edges[key] == 0:
                del edges[key]
                finish(parent)


def _backward(root, gy, retain_graph=False):
    # (a backward pass precedes a weight update, even one written straight into p.data)
    _inference_cache.weights_changed()
    if root._ctx is None:               # a leaf: its gradient is gy itself
        if root._grad_hooks:
            gy = _run_grad_hooks(root._grad_hooks, gy)
        _accumulate_leaf(root, gy, {id(gy)})
        if root._post_accumulate_hooks:
            _run_post_accumulate_hooks(root)
        return
    if isinstance(root._ctx, _Freed):
        raise RuntimeError("backward() through a graph that was already freed: "
                           "run the forward pass again before a second backward(), or "
                           "pass retain_graph=True to the first")
    start = root._node
    grads = {id(start): gy}
    handed_out = {id(gy)}
    order = _topological_order(start)
    edges = _leaf_edges(order) if Tensor._hooks_registered else {}
    reached = set()   # hooked leaves that received a gradient in this backward()
    pending = {}      # {id(leaf): its gradient so far} for leaves with gradient hooks

    def finish(leaf):   # all of a hooked leaf's uses have run backward
        g = pending.pop(id(leaf), None)
        if g is not None:
            _accumulate_leaf(leaf, _run_grad_hooks(leaf._grad_hooks, g), handed_out)
        if id(leaf) in reached and leaf._post_accumulate_hooks:
            _run_post_accumulate_hooks(leaf)   # (not for a leaf that got no gradient)

    for node in reversed(order):
        fn = node._ctx
        if isinstance(fn, _Freed):
            raise RuntimeError("backward() through a graph that was already freed: "
                               "run the forward pass again before a second backward()")
        g_out = grads.pop(id(node), None)
        if g_out is None:  # no path from the root carries a gradient here
            if edges:
                _leaf_edges_done(fn, edges, finish)
            continue
        if node._grad_hooks:
            g_out = _run_grad_hooks(node._grad_hooks, g_out)
        kept = node.tensor()
        if kept is not None and kept._retain_grad:
            _accumulate_leaf(kept, g_out, handed_out)
        g_inputs = fn.backward(g_out)
        if not isinstance(g_inputs, tuple):
            g_inputs = (g_inputs,)
        for parent, needed, g in zip(fn.inputs, fn.needs_input_grad, g_inputs):
            if not needed or g is None:
                continue
            if g.dtype != parent.dtype:
                g = g.astype(parent.dtype)
            if parent._ctx is None:
                if parent._grad_hooks and id(parent) in edges:
                    key = id(parent)   # the hooks see the sum over all its uses, once
                    pending[key] = g if key not in pending else pending[key] + g
                else:
                    _accumulate_leaf(parent, g, handed_out)
                if edges:
                    reached.add(id(parent))
            elif id(parent) in grads:
                grads[id(parent)] = grads[id(parent)] + g
            else:
                grads[id(parent)] = g
        if edges:
            _leaf_edges_done(fn, edges, finish)
        if retain_graph:
            continue
        for parent in fn.inputs:   # their saved copies go with the graph: free to change
            if parent is not None:
                parent._used = False
        node._ctx = _Freed()   # free the graph: saved arrays go with the Function
