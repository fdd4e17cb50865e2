"""PyTorch's results for tests/test_pytorch_habits_torchops.py: norms, cumsum, cumprod, prod,
logsumexp, index_select, index_add, scatter, einsum, unique, bincount, nonzero, roll,
repeat_interleave, masked_select, count_nonzero, argwhere, diagonals and triangles, cosine
similarity and distance, the ELU, SELU, CELU, PReLU, Softplus, LogSigmoid, Mish and Softsign
activations, the GroupNorm and Embedding layers and the smooth L1, Huber, KL divergence, margin
ranking, triplet and cosine embedding losses, written to tests/fixtures/torchops_reference.npz.

    /work/venv-torch/bin/python bench/torchops_fixtures.py [--out PATH]   # needs PyTorch

Each case is one call written once for both libraries (tinylesion's API is torch's): the tests
load CASES from this file and run the same lambda with tinylesion. Inputs are stored with the
outputs and the gradients of the floating-point inputs (for a fixed output gradient gy).
"""
import os
import sys

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_OUT = os.path.join(ROOT, "tests", "fixtures", "torchops_reference.npz")
INF = float("inf")


def _rows_with_zeros_and_ties(shape, seed):
    """Random values with a zero row and tied magnitudes, the norms' hard cases."""
    x = np.random.default_rng(seed).standard_normal(shape)
    x[0, 0] = 0.0
    x[1, 1] = np.abs(x[1, 1]).max()
    x[1, 1].flat[1] = -x[1, 1].flat[0]
    return x


def _with_zeros(shape, seed):
    x = np.random.default_rng(seed).uniform(0.5, 1.5, shape) * np.sign(
        np.random.default_rng(seed + 1).standard_normal(shape))
    x[0, 1] = 0.0              # one zero in row 0
    x[1, 0] = x[1, 2] = 0.0    # two in row 1
    return x


def _index(values):
    return np.asarray(values, dtype=np.int64)


def _gaussian(shape, seed):
    return np.random.default_rng(seed).standard_normal(shape)


X345 = _rows_with_zeros_and_ties((3, 4, 5), 0)
A = _gaussian((4, 3), 1)
G345 = _gaussian((3, 4, 5), 51)   # full rank: the singular vectors' signs do not matter
SCATTER_ROWS = _index([[1, 0, 1], [1, 1, 1], [0, 0, 1], [1, 0, 0]])
# (name, the call on (torch, torch.nn.functional, *inputs), inputs as float64 or int64 arrays)
CASES = [
    ("norm/default", lambda t, F, x: t.norm(x), [X345]),
    ("norm/method_p1_dim1", lambda t, F, x: x.norm(p=1, dim=1), [X345]),
    ("norm/inf_keepdim", lambda t, F, x: t.norm(x, p=INF, dim=(0, 2), keepdim=True), [X345]),
    ("norm/p3", lambda t, F, x: t.norm(x, 3, -1), [X345]),
    ("norm/p0.5", lambda t, F, x: x.norm(0.5, dim=2), [X345]),
    ("norm/fro_dims", lambda t, F, x: t.norm(x, "fro", dim=(1, 2)), [X345]),
    ("norm/p2_dim", lambda t, F, x: x.norm(2, 2), [X345]),
    ("vector_norm/default", lambda t, F, x: t.linalg.vector_norm(x), [X345]),
    ("vector_norm/neg_inf", lambda t, F, x: t.linalg.vector_norm(x, -INF, dim=1), [X345]),
    ("vector_norm/zero", lambda t, F, x: t.linalg.vector_norm(x, 0, dim=(0, 1)), [X345]),
    ("vector_norm/inf", lambda t, F, x: t.linalg.vector_norm(x, INF, dim=-1), [X345]),
    ("linalg_norm/default", lambda t, F, x: t.linalg.norm(x), [X345]),
    ("linalg_norm/dim", lambda t, F, x: t.linalg.norm(x, dim=2, keepdim=True), [X345]),
    ("linalg_norm/matrix_1", lambda t, F, a: t.linalg.norm(a, 1), [A]),
    ("linalg_norm/matrix_inf", lambda t, F, a: t.linalg.norm(a, INF), [A]),
    ("linalg_norm/matrix_-1", lambda t, F, a: t.linalg.norm(a, -1), [A]),
    ("linalg_norm/matrix_-inf", lambda t, F, a: t.linalg.norm(a, -INF), [A]),
    ("linalg_norm/fro", lambda t, F, a: t.linalg.norm(a, "fro"), [A]),
    ("linalg_norm/vector_3", lambda t, F, x: t.linalg.norm(x, 3, dim=1), [X345]),
    ("matrix_norm/batch", lambda t, F, x: t.linalg.matrix_norm(x, 1, dim=(2, 0)), [X345]),
    ("linalg_norm/nuc", lambda t, F, a: t.linalg.norm(a, "nuc"), [A]),
    ("linalg_norm/2", lambda t, F, a: t.linalg.norm(a, 2), [A]),
    ("matrix_norm/-2_keepdim", lambda t, F, x: t.linalg.matrix_norm(x, -2, dim=(2, 0),
                                                                      keepdim=True), [G345]),
    ("norm/nuc", lambda t, F, a: t.norm(a, p="nuc"), [A]),
    ("norm/nuc_dims", lambda t, F, x: x.norm("nuc", dim=(0, 2)), [G345]),
    ("svdvals/batch", lambda t, F, x: t.linalg.svdvals(x), [G345]),
    ("normalize/default", lambda t, F, x: F.normalize(x), [X345]),
    ("normalize/p1_last", lambda t, F, x: F.normalize(x, p=1, dim=-1), [X345]),
    ("normalize/eps", lambda t, F, x: F.normalize(x * 1e-3, dim=0, eps=1e-2), [X345]),
    ("cumsum/dim1", lambda t, F, x: t.cumsum(x, 1), [X345]),
    ("cumsum/method_last", lambda t, F, x: x.cumsum(dim=-1), [X345]),
    ("cumsum/int", lambda t, F, i: t.cumsum(i, 0), [_index([3, -1, 4, 1, 5])]),
    ("cumsum/dtype", lambda t, F, x: t.cumsum(x, 0, dtype=t.float64), [X345]),
    ("cumprod/with_zeros", lambda t, F, x: t.cumprod(x, 1), [_with_zeros((3, 4), 2)]),
    ("cumprod/method_dim0", lambda t, F, x: x.cumprod(dim=0), [_with_zeros((3, 4), 2)]),
    ("cumprod/int", lambda t, F, i: t.cumprod(i, 0), [_index([3, -1, 4, 0, 5])]),
    ("prod/all", lambda t, F, x: t.prod(x[2]), [_with_zeros((3, 4), 2)]),
    ("prod/dim1", lambda t, F, x: t.prod(x, 1), [_with_zeros((3, 4), 2)]),
    ("prod/dim0_keepdim", lambda t, F, x: x.prod(0, keepdim=True), [_with_zeros((3, 4), 2)]),
    ("prod/with_zeros_all", lambda t, F, x: x[0].prod(), [_with_zeros((3, 4), 2)]),
    ("prod/int", lambda t, F, i: t.prod(i), [_index([2, 3, -4])]),
    ("index_select/dim0", lambda t, F, x, i: t.index_select(x, 0, i),
     [_gaussian((4, 3), 3), _index([2, 0, 2, 3])]),
    ("index_select/dim1", lambda t, F, x, i: x.index_select(1, i),
     [_gaussian((2, 5, 3), 4), _index([4, 1, 1])]),
    ("scatter/src", lambda t, F, x, s, i: x.scatter(1, i, s),
     [_gaussian((3, 5), 5), _gaussian((3, 2), 6), _index([[4, 0], [1, 2], [3, 0]])]),
    ("scatter/dim0", lambda t, F, x, s, i: t.scatter(x, 0, i, s),
     [_gaussian((3, 4), 7), _gaussian((2, 4), 8), _index([[2, 1, 0, 2], [0, 0, 1, 1]])]),
    ("scatter/value", lambda t, F, x, i: x.scatter(1, i, 2.5),
     [_gaussian((3, 5), 9), _index([[4, 0], [1, 2], [3, 0]])]),
    ("scatter/one_hot", lambda t, F, i: t.zeros(4, 5, device=i.device).scatter_(
        1, i.unsqueeze(1), 1.0),
     [_index([3, 0, 4, 3])]),
    ("scatter_add/repeats", lambda t, F, x, s, i: x.scatter_add(1, i, s),
     [_gaussian((3, 5), 10), _gaussian((3, 4), 11),
      _index([[4, 4, 0, 4], [1, 2, 1, 1], [3, 0, 0, 3]])]),
    ("scatter_add/function", lambda t, F, x, s, i: t.scatter_add(x, 0, i, s),
     [_gaussian((2, 3), 12), _gaussian((4, 3), 13), SCATTER_ROWS]),
    ("scatter_add_/in_place", lambda t, F, x, s, i: x.clone().scatter_add_(0, i, s),
     [_gaussian((2, 3), 12), _gaussian((4, 3), 13), SCATTER_ROWS]),
    ("einsum/matmul", lambda t, F, a, b: t.einsum("ij,jk->ik", a, b),
     [_gaussian((3, 4), 14), _gaussian((4, 2), 15)]),
    ("einsum/batch", lambda t, F, a, b: t.einsum("bij,bjk->bik", a, b),
     [_gaussian((2, 3, 4), 16), _gaussian((2, 4, 5), 17)]),
    ("einsum/diagonal", lambda t, F, a: t.einsum("ii->i", a), [_gaussian((4, 4), 18)]),
    ("einsum/trace", lambda t, F, a: t.einsum("ii", a), [_gaussian((4, 4), 18)]),
    ("einsum/sum", lambda t, F, a: t.einsum("ij->", a), [_gaussian((3, 4), 19)]),
    ("einsum/rows", lambda t, F, a: t.einsum("ij->i", a), [_gaussian((3, 4), 19)]),
    ("einsum/outer", lambda t, F, a, b: t.einsum("i,j->ij", a, b),
     [_gaussian(3, 20), _gaussian(4, 21)]),
    ("einsum/ellipsis", lambda t, F, a, b: t.einsum("...ij,...jk", a, b),
     [_gaussian((2, 3, 3, 4), 22), _gaussian((3, 4, 2), 23)]),
    ("einsum/bilinear", lambda t, F, x, w, y: t.einsum("bn,anm,bm->ba", x, w, y),
     [_gaussian((2, 3), 24), _gaussian((5, 3, 4), 25), _gaussian((2, 4), 26)]),
    ("einsum/list", lambda t, F, a, b: t.einsum("ij,ij->i", [a, b]),
     [_gaussian((3, 4), 27), _gaussian((3, 4), 28)]),
    ("einsum/permute", lambda t, F, a: t.einsum("ijk->kji", a), [_gaussian((2, 3, 4), 29)]),
    ("einsum/implicit", lambda t, F, a, b: t.einsum("ba,ac", a, b),
     [_gaussian((2, 3), 30), _gaussian((3, 4), 31)]),
    ("einsum/sublist", lambda t, F, a, b: t.einsum(a, [0, 1], b, [1, 2], [0, 2]),
     [_gaussian((3, 4), 14), _gaussian((4, 2), 15)]),
    ("einsum/repeated_operand", lambda t, F, a: t.einsum("ij,ij->", a, a),
     [_gaussian((3, 4), 32)]),
    ("einsum/broadcast_batch", lambda t, F, a, b: t.einsum("bij,bjk->ik", a, b),
     [_gaussian((1, 3, 4), 52), _gaussian((5, 4, 2), 53)]),
    ("einsum/ellipsis_broadcast", lambda t, F, a, b: t.einsum("...ij,...jk->...ik", a, b),
     [_gaussian((2, 1, 3, 4), 54), _gaussian((5, 4, 2), 55)]),
    ("einsum/diagonal_3d", lambda t, F, a: t.einsum("iij->j", a), [_gaussian((3, 3, 2), 56)]),
    ("einsum/two_traces", lambda t, F, a, b: t.einsum("ii,jj->ij", a, b),
     [_gaussian((3, 3), 57), _gaussian((2, 2), 58)]),
    ("unique/sorted", lambda t, F, i: t.unique(i), [_index([[3, 1, 3], [0, 1, 7]])]),
    ("unique/inverse_counts", lambda t, F, i: t.unique(i, return_inverse=True,
                                                       return_counts=True),
     [_index([[3, 1, 3], [0, 1, 7]])]),
    ("unique/dim0", lambda t, F, i: t.unique(i, dim=0, return_inverse=True, return_counts=True),
     [_index([[3, 1], [0, 2], [3, 1], [0, 1]])]),
    ("unique/dim1", lambda t, F, i: i.unique(dim=1, return_counts=True),
     [_index([[3, 1, 3], [0, 2, 0]])]),
    ("unique/float", lambda t, F, x: t.unique(x.detach().round()), [_gaussian(12, 33) * 2]),
    ("bincount/plain", lambda t, F, i: t.bincount(i), [_index([0, 4, 4, 1, 0, 4])]),
    ("bincount/minlength", lambda t, F, i: i.bincount(minlength=8), [_index([0, 4, 4, 1])]),
    ("bincount/weights", lambda t, F, i, w: t.bincount(i, weights=w.detach()),
     [_index([0, 4, 4, 1]), _gaussian(4, 34)]),
    ("bincount/int_weights", lambda t, F, i, w: t.bincount(i, w),
     [_index([0, 4, 4, 1]), _index([1, 2, 3, 4])]),
    ("nonzero/matrix", lambda t, F, x: t.nonzero(x.round()), [_gaussian((3, 4), 35)]),
    ("nonzero/tuple", lambda t, F, x: x.round().nonzero(as_tuple=True), [_gaussian((3, 4), 35)]),
    ("nonzero/bool", lambda t, F, i: t.nonzero(i > 2), [_index([[3, 1], [5, 0], [9, 2]])]),
    ("logsumexp/dim1", lambda t, F, x: t.logsumexp(x * 30, 1), [X345]),
    ("logsumexp/dims_keepdim", lambda t, F, x: x.logsumexp((0, 2), keepdim=True), [X345]),
    ("logsumexp/int", lambda t, F, i: t.logsumexp(i, 0), [_index([1, 2, 40])]),
    ("index_add/dim0", lambda t, F, x, s, i: t.index_add(x, 0, i, s),
     [_gaussian((4, 3), 59), _gaussian((5, 3), 60), _index([3, 0, 3, 1, 3])]),
    ("index_add/alpha", lambda t, F, x, s, i: x.index_add(1, i, s, alpha=-0.5),
     [_gaussian((2, 4, 3), 61), _gaussian((2, 2, 3), 62), _index([2, 2])]),
    ("index_add_/in_place", lambda t, F, x, s, i: (x * 1).index_add_(0, i, s),
     [_gaussian((4, 3), 59), _gaussian((5, 3), 60), _index([3, 0, 3, 1, 3])]),
    ("diagonal/offset", lambda t, F, x: t.diagonal(x, 1, 1, 2), [X345]),
    ("diagonal/negative", lambda t, F, x: x.diagonal(-1, 2, 0), [X345]),
    ("diagonal/default", lambda t, F, a: a.diagonal(), [A]),
    ("diag/vector", lambda t, F, v: t.diag(v, 1), [_gaussian(3, 63)]),
    ("diag/vector_below", lambda t, F, v: t.diag(v, -2), [_gaussian(3, 63)]),
    ("diag/matrix", lambda t, F, a: a.diag(-1), [A]),
    ("trace/matrix", lambda t, F, a: t.trace(a), [A]),
    ("tril/default", lambda t, F, x: t.tril(x), [X345]),
    ("triu/offset", lambda t, F, x: x.triu(1), [X345]),
    ("tril/negative", lambda t, F, a: a.tril(-1), [A]),
    ("outer/vectors", lambda t, F, a, b: t.outer(a, b), [_gaussian(3, 64), _gaussian(4, 65)]),
    ("cosine_similarity/default", lambda t, F, a, b: F.cosine_similarity(a, b),
     [X345, _gaussian((3, 4, 5), 66)]),
    ("cosine_similarity/broadcast", lambda t, F, a, b: F.cosine_similarity(a, b, dim=-1),
     [X345, _gaussian((4, 5), 67)]),
    # (values only: where a norm is clamped to eps, PyTorch's gradient is not the derivative)
    ("cosine_similarity/eps", lambda t, F, a, b: F.cosine_similarity(a.detach() * 1e-9,
                                                                      b.detach(), eps=1e-7),
     [A, _gaussian((4, 3), 68)]),
    ("pairwise_distance/default", lambda t, F, a, b: F.pairwise_distance(a, b),
     [A, _gaussian((4, 3), 68)]),
    ("pairwise_distance/p1_keepdim", lambda t, F, a, b: F.pairwise_distance(a, b, 1,
                                                                             keepdim=True),
     [X345, _gaussian((3, 4, 5), 66)]),
    ("CosineSimilarity/module", lambda t, F, a, b: t.nn.CosineSimilarity(dim=2)(a, b),
     [X345, _gaussian((3, 4, 5), 66)]),
    ("PairwiseDistance/module", lambda t, F, a, b: t.nn.PairwiseDistance(p=3.0)(a, b),
     [A, _gaussian((4, 3), 68)]),
    ("smooth_l1_loss/default", lambda t, F, x, y: F.smooth_l1_loss(x, y), [A * 2, A * 0]),
    ("smooth_l1_loss/beta_none", lambda t, F, x, y: t.nn.SmoothL1Loss(reduction="none",
                                                                      beta=0.5)(x, y),
     [X345, _gaussian((3, 4, 5), 71)]),
    ("smooth_l1_loss/beta0_sum", lambda t, F, x, y: F.smooth_l1_loss(x, y, reduction="sum",
                                                                     beta=0.0),
     [A, _gaussian((4, 3), 72)]),
    ("huber_loss/default", lambda t, F, x, y: F.huber_loss(x, y),
     [X345 * 2, _gaussian((3, 4, 5), 73)]),
    ("huber_loss/delta_sum", lambda t, F, x, y: t.nn.HuberLoss("sum", delta=0.3)(x, y),
     [A, _gaussian((4, 3), 74)]),
    # (zero targets held constant: PyTorch's gradient for a target of 0 is NaN)
    ("kl_div/batchmean", lambda t, F, x, y: F.kl_div(
        F.log_softmax(x, 1), F.softmax(y, 1).detach() * (y > -1), reduction="batchmean"),
     [A, _gaussian((4, 3), 75)]),
    ("kl_div/log_target", lambda t, F, x, y: t.nn.KLDivLoss(reduction="sum", log_target=True)(
        F.log_softmax(x, 1), F.log_softmax(y, 1)), [A, _gaussian((4, 3), 76)]),
    ("kl_div/none", lambda t, F, x, y: F.kl_div(x, y.abs(), reduction="none"),
     [A, _gaussian((4, 3), 77)]),
    ("margin_ranking_loss/default", lambda t, F, a, b: F.margin_ranking_loss(
        a, b, t.tensor([1.0, -1.0, 1.0, -1.0], dtype=a.dtype, device=a.device), margin=0.2),
     [_gaussian(4, 78), _gaussian(4, 79)]),
    ("triplet_margin_loss/default", lambda t, F, a, p, n: F.triplet_margin_loss(a, p, n),
     [_gaussian((5, 3), 80), _gaussian((5, 3), 81), _gaussian((5, 3), 82)]),
    ("triplet_margin_loss/swap_p1", lambda t, F, a, p, n: t.nn.TripletMarginLoss(
        margin=0.5, p=1, swap=True, reduction="none")(a, p, n),
     [_gaussian((5, 3), 80), _gaussian((5, 3), 81), _gaussian((5, 3), 82)]),
    ("cosine_embedding_loss/default", lambda t, F, a, b: t.nn.CosineEmbeddingLoss(margin=0.1)(
        a, b, t.tensor([1, -1, -1, 1], device=a.device)), [A, _gaussian((4, 3), 83)]),
    ("roll/flat", lambda t, F, x: t.roll(x, 7), [X345]),
    ("roll/dims", lambda t, F, x: x.roll((1, -2), (0, 2)), [X345]),
    ("roll/negative_big", lambda t, F, a: a.roll(-5, 1), [A]),
    ("repeat_interleave/flat", lambda t, F, a: t.repeat_interleave(a, 2), [A]),
    ("repeat_interleave/counts", lambda t, F, a, c: a.repeat_interleave(c, dim=0),
     [A, _index([1, 0, 3, 2])]),
    ("repeat_interleave/only_counts", lambda t, F, c: t.repeat_interleave(c),
     [_index([2, 0, 1, 3])]),
    ("masked_select/broadcast", lambda t, F, x: t.masked_select(x, x.detach()[0] > 0), [X345]),
    ("masked_select/method", lambda t, F, a: a.masked_select(a.detach() < 0.5), [A]),
    ("count_nonzero/dims", lambda t, F, x: t.count_nonzero(x.detach().round(), dim=(0, 2)),
     [X345]),
    ("argwhere/matrix", lambda t, F, a: t.argwhere(a.detach() > 0), [A]),
    ("elu/default", lambda t, F, x: F.elu(x), [X345 * 3]),
    ("elu/alpha", lambda t, F, x: F.elu(x, alpha=0.5), [X345 * 3]),
    ("elu/module", lambda t, F, x: t.nn.ELU(alpha=2.0)(x), [X345 * 3]),
    ("selu/default", lambda t, F, x: F.selu(x), [X345 * 3]),
    ("celu/alpha", lambda t, F, x: F.celu(x, alpha=0.5), [X345 * 3]),
    ("celu/module", lambda t, F, x: t.nn.CELU(2.0)(x), [X345 * 3]),
    ("selu/module", lambda t, F, x: t.nn.SELU()(x), [X345]),
    ("softplus/default", lambda t, F, x: F.softplus(x), [X345 * 12]),
    ("softplus/beta", lambda t, F, x: t.nn.Softplus(beta=2, threshold=5)(x), [X345 * 4]),
    ("logsigmoid/default", lambda t, F, x: F.logsigmoid(x), [X345 * 20]),
    ("logsigmoid/module", lambda t, F, x: t.nn.LogSigmoid()(x), [X345]),
    ("mish/default", lambda t, F, x: F.mish(x), [X345 * 8]),
    ("mish/module", lambda t, F, x: t.nn.Mish()(x), [X345]),
    ("softsign/default", lambda t, F, x: F.softsign(x), [X345 * 3]),
    ("softsign/module", lambda t, F, x: t.nn.Softsign()(x), [X345]),
    ("prelu/one", lambda t, F, x, w: F.prelu(x, w), [X345, np.array([0.25])]),
    ("prelu/channels", lambda t, F, x, w: F.prelu(x, w), [X345, _gaussian(4, 36)]),
    ("prelu/2d", lambda t, F, x, w: F.prelu(x, w), [_gaussian((5, 3), 37), _gaussian(3, 38)]),
    ("group_norm/affine", lambda t, F, x, w, b: F.group_norm(x, 2, w, b),
     [_gaussian((2, 4, 3, 3), 39) * 2 + 1, _gaussian(4, 40), _gaussian(4, 41)]),
    ("group_norm/plain", lambda t, F, x: F.group_norm(x, 3, eps=1e-3),
     [_gaussian((2, 6, 5), 42)]),
    ("group_norm/one_group", lambda t, F, x, w, b: F.group_norm(x, 1, w, b),
     [_gaussian((3, 4, 2), 43), _gaussian(4, 44), _gaussian(4, 45)]),
    ("group_norm/per_channel", lambda t, F, x, w: F.group_norm(x, 4, w),
     [_gaussian((2, 4, 2, 3), 46), _gaussian(4, 47)]),
    ("embedding/plain", lambda t, F, i, w: F.embedding(i, w),
     [_index([[1, 5, 1], [0, 2, 1]]), _gaussian((6, 4), 48)]),
    ("embedding/padding", lambda t, F, i, w: F.embedding(i, w, padding_idx=1),
     [_index([[1, 5, 1], [0, 2, 1]]), _gaussian((6, 4), 48)]),
    ("embedding/padding_last", lambda t, F, i, w: F.embedding(i, w, padding_idx=-1),
     [_index([3, 5, 5, 0]), _gaussian((6, 2), 49)]),
    ("embedding/max_norm", lambda t, F, i, w: F.embedding(i, w, max_norm=1.5),
     [_index([[1, 5, 1], [0, 2, 1]]), _gaussian((6, 4), 69)]),
    ("embedding/max_norm_p1", lambda t, F, i, w: t.nn.Embedding.from_pretrained(
        w.detach(), max_norm=2.0, norm_type=1.0)(i), [_index([4, 2, 2]), _gaussian((6, 3), 70)]),
    ("embedding/scale_grad", lambda t, F, i, w: F.embedding(i, w, scale_grad_by_freq=True),
     [_index([[1, 5, 1], [0, 1, 1]]), _gaussian((6, 4), 50)]),
]


def as_inputs(t, arrays, dtype):
    """The case's inputs as tensors of library t: floats in dtype requiring a gradient,
    integers as they are."""
    out = []
    for a in arrays:
        if a.dtype.kind == "f":
            out.append(t.tensor(a.astype(dtype), requires_grad=True))
        else:
            out.append(t.tensor(a))
    return out


def outputs(result):
    """A case's result as a tuple of tensors."""
    return tuple(result) if isinstance(result, (tuple, list)) else (result,)


def output_grads(shapes, case_number):
    """The fixed gradients gy (float64) of a case's outputs, given their shapes."""
    rng = np.random.default_rng(1000 + case_number)
    return [rng.standard_normal(tuple(shape)) for shape in shapes]


def run_torch(torch, put, cases=None):
    """Store PyTorch's outputs and gradients of each case (default: CASES)."""
    F = torch.nn.functional
    for n, (name, call, arrays) in enumerate(CASES if cases is None else cases):
        for dtype in (np.float64, np.float32):
            key = f"{name}/{np.dtype(dtype).name}"
            tensors = as_inputs(torch, arrays, dtype)
            result = call(torch, F, *tensors)
            results = outputs(result)
            total = 0
            for i, (r, gy) in enumerate(zip(results, output_grads([r.shape for r in results],
                                                                   n))):
                put(f"{key}/out{i}", r.detach().numpy())
                if r.requires_grad:
                    total = total + (r * torch.tensor(gy.astype(dtype))).sum()
            if not isinstance(total, int):
                total.backward()
            for i, t in enumerate(tensors):
                if t.grad is not None:
                    put(f"{key}/grad{i}", t.grad.numpy())


def main(argv=None):
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from habits_fixtures import write_fixture
    return write_fixture((run_torch,), __doc__.splitlines()[0], DEFAULT_OUT,
                         "bench/torchops_fixtures.py", argv)


if __name__ == "__main__":
    sys.exit(main())
