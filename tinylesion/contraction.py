"""torch.einsum: Einstein summation in the equation form ('bij,bjk->bik'), the list form and
the sublist form (einsum(a, [0, 1], b, [1, 2], [0, 2])); differentiable."""
import string

from .errors import InputError
from .index_functions import require_alike
from .ops.einsum import Einsum, explicit_subscripts
from .tensor import Tensor


def _letters(sublist, name):
    """A sublist of ints 0..51 (and Ellipsis) as subscripts."""
    out = []
    for item in sublist:
        if item is Ellipsis:
            out.append("...")
        elif isinstance(item, int) and not isinstance(item, bool) and 0 <= item < 52:
            out.append(string.ascii_letters[item])
        else:
            raise ValueError(f"einsum(): {name} must hold ints in [0, 52) and Ellipsis, "
                             f"not {item!r}")
    return "".join(out)


def _from_sublists(args):
    """(equation, operands) from einsum(op0, sublist0, op1, sublist1, ..., [output])."""
    pairs, output = list(args), None
    if len(pairs) % 2:
        output = _letters(pairs.pop(), "the output sublist")
    operands = pairs[0::2]
    terms = [_letters(s, f"sublist {i}") for i, s in enumerate(pairs[1::2])]
    return ",".join(terms) + ("" if output is None else "->" + output), operands


def einsum(*args):
    """Einstein summation: einsum('ij,jk->ik', a, b), einsum('ij,jk', [a, b]) or the sublist
    form; '...' broadcasts, the output may be implicit (the letters used once, sorted), a
    letter repeated within an operand takes its diagonal. Operands share one dtype and
    device, as in PyTorch."""
    if not args:
        raise TypeError("einsum() needs an equation and operands")
    if isinstance(args[0], str):
        equation, operands = args[0], list(args[1:])
        if len(operands) == 1 and isinstance(operands[0], (list, tuple)):
            operands = list(operands[0])
    else:
        equation, operands = _from_sublists(args)
    for i, t in enumerate(operands):
        if not isinstance(t, Tensor):
            raise TypeError(f"einsum(): operand {i} is a {type(t).__name__}, not a Tensor")
    if not operands:
        raise ValueError("einsum() needs at least one operand")
    for i, t in enumerate(operands):
        require_alike(operands[0], t, "einsum", f"operand {i}")
    subscripts, output = explicit_subscripts(equation, [t.shape for t in operands])
    sizes = {}
    for i, (term, t) in enumerate(zip(subscripts, operands)):
        for c, n in zip(term, t.shape):
            if sizes.get(c, n) not in (n, 1) and n != 1:
                raise InputError(f"einsum(): subscript {c!r} has size {n} in operand {i} "
                                 f"but {sizes[c]} elsewhere (only size 1 broadcasts)")
            sizes[c] = max(sizes.get(c, 1), n)
    return Einsum.apply(*operands, subscripts=tuple(subscripts), output=output)
