"""Einstein summation over any number of operands, each operand's gradient an einsum of the
output's gradient with the other operands."""
import string

from ..backend import get_array_module
from ..autograd import Function
from ._util import sum_to


def explicit_subscripts(equation, shapes):
    """(the subscripts of each operand, the output's) with '...' spelled out in letters the
    equation does not use and the implicit output ('ij,jk' → 'ik') made explicit.

    Raises ValueError naming what does not fit (operand count, ranks, '->' twice, letters).
    """
    equation = equation.replace(" ", "")
    if equation.count("->") > 1:
        raise ValueError(f"einsum(): more than one '->' in {equation!r}")
    lhs, arrow, rhs = equation.partition("->")
    terms = lhs.split(",")
    if len(terms) != len(shapes):
        raise ValueError(f"einsum(): the equation names {len(terms)} operands but "
                         f"{len(shapes)} were given")
    for term in terms + [rhs]:
        letters = term.replace("...", "")
        if term.count("...") > 1 or "." in letters or not all(c in string.ascii_letters for c in letters):
            raise ValueError(f"einsum(): subscripts must be letters (and one '...'), not "
                             f"{term!r} in {equation!r}")
    unused = [c for c in string.ascii_letters if c not in equation]
    spans = []
    for term, shape in zip(terms, shapes):
        named = len(term.replace("...", ""))
        span = len(shape) - named if "..." in term else 0
        if span < 0 or ("..." not in term and named != len(shape)):
            raise ValueError(f"einsum(): subscripts {term!r} do not fit an operand of "
                             f"{len(shape)} dimensions (shape {tuple(shape)})")
        spans.append(span)
    width = max(spans, default=0)
    ellipsis = "".join(unused[:width])
    inputs = [term.replace("...", ellipsis[width - span:]) for term, span in zip(terms, spans)]
    if arrow:
        output = rhs.replace("...", ellipsis)
    else:   # implicit: the broadcast dimensions, then the letters used once, alphabetically
        letters = "".join(inputs)
        output = ellipsis + "".join(sorted(c for c in set(letters)
                                           if letters.count(c) == 1 and c not in ellipsis))
    for c in output:
        if output.count(c) > 1 or not any(c in term for term in inputs):
            raise ValueError(f"einsum(): output subscript {c!r} appears twice or in no "
                             f"operand of {equation!r}")
    return inputs, output


def _letter_sizes(subscripts, shapes):
    """{letter: its size}, the largest where operands broadcast a size-1 dimension."""
    sizes = {}
    for term, shape in zip(subscripts, shapes):
        for c, n in zip(term, shape):
            sizes[c] = max(sizes.get(c, 1), n)
    return sizes


class Einsum(Function):
    """numpy/cupy einsum of the operands; `subscripts` and `output` are explicit (no '...')."""

    def forward(self, *operands, subscripts=(), output=""):
        xp = get_array_module(*operands)
        self.operands, self.subscripts, self.output = operands, subscripts, output
        equation = ",".join(subscripts) + "->" + output
        return xp.asarray(xp.einsum(equation, *operands, optimize=len(operands) > 1))

    def backward(self, gy):
        return tuple(self._operand_grad(gy, k) if self.needs_input_grad[k] else None
                     for k in range(len(self.operands)))

    def _operand_grad(self, gy, k):
        # NOTE: y = Σ over the letters not in the output of Π operands; so dy/dx_k is the
        # product of the others, and gx_k = einsum(gy, the others → x_k's letters). A letter
        # only x_k has (summed in x_k alone) makes the gradient constant along it (a
        # broadcast); a letter x_k repeats (a diagonal, 'ii') puts the gradient on the
        # diagonal and zero elsewhere; a size-1 dimension that was broadcast sums back.
        xp = get_array_module(gy)
        x, term = self.operands[k], self.subscripts[k]
        others = [(s, a) for i, (s, a) in enumerate(zip(self.subscripts, self.operands))
                  if i != k]
        shapes = [a.shape for a in self.operands] + [gy.shape]
        sizes = _letter_sizes(list(self.subscripts) + [self.output], shapes)
        letters = "".join(dict.fromkeys(term))   # x_k's letters, each once, in order
        known = self.output + "".join(s for s, _ in others)
        reached = "".join(c for c in letters if c in known)
        equation = ",".join([self.output] + [s for s, _ in others]) + "->" + reached
        g = xp.einsum(equation, gy, *(a for _, a in others), optimize=len(others) > 0)
        g = xp.asarray(g)   # (a letter may come out of size 1 where the others broadcast it)
        g = g.reshape([g.shape[reached.index(c)] if c in reached else 1 for c in letters])
        g = xp.broadcast_to(g, [sizes[c] for c in letters])
        if len(letters) < len(term):      # a repeated letter: write g on the diagonal
            grids = [xp.arange(sizes[c]).reshape([-1 if d == i else 1
                                                  for d in range(len(letters))])
                     for i, c in enumerate(letters)]
            full = xp.zeros([sizes[c] for c in term], dtype=gy.dtype)
            full[tuple(grids[letters.index(c)] for c in term)] = g
            g = full
        return sum_to(xp.ascontiguousarray(g), x.shape)
