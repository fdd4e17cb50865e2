"""More of torch's Tensor methods, each the torch function of the same name (order statistics,
running functions, special functions, layout, scatter_reduce, inverse and det)."""


class MoreTensorMethods:
    """Methods of Tensor by torch's names, delegating to the torch-level functions."""

    # ---- order statistics (order_statistics.py) and summaries (summary_functions.py) ------
    def median(self, dim=None, keepdim=False):
        """The lower median (of all entries, or (values, indices) along dim)."""
        from .order_statistics import median
        return median(self, dim, keepdim)

    def nanmedian(self, dim=None, keepdim=False):
        """median ignoring NaN."""
        from .order_statistics import nanmedian
        return nanmedian(self, dim, keepdim)

    def quantile(self, q, dim=None, keepdim=False, *, interpolation="linear"):
        """The q-th quantiles."""
        from .order_statistics import quantile
        return quantile(self, q, dim, keepdim, interpolation=interpolation)

    def nanquantile(self, q, dim=None, keepdim=False, *, interpolation="linear"):
        """The q-th quantiles ignoring NaN."""
        from .order_statistics import nanquantile
        return nanquantile(self, q, dim, keepdim, interpolation=interpolation)

    def kthvalue(self, k, dim=-1, keepdim=False):
        """(values, indices) of the k-th smallest entries along dim."""
        from .order_statistics import kthvalue
        return kthvalue(self, k, dim, keepdim)

    def mode(self, dim=-1, keepdim=False):
        """(values, indices) of the most frequent entries along dim."""
        from .order_statistics import mode
        return mode(self, dim, keepdim)

    def aminmax(self, *, dim=None, keepdim=False):
        """(min, max) over dim."""
        from .summary_functions import aminmax
        return aminmax(self, dim=dim, keepdim=keepdim)

    def histc(self, bins=100, min=0, max=0):
        """A histogram of the values."""
        from .summary_functions import histc
        return histc(self, bins, min, max)

    # ---- running functions (running_functions.py) ------------------------------------------
    def cummax(self, dim):
        """(values, indices) of the running maximum along dim."""
        from .running_functions import cummax
        return cummax(self, dim)

    def cummin(self, dim):
        """(values, indices) of the running minimum along dim."""
        from .running_functions import cummin
        return cummin(self, dim)

    def logcumsumexp(self, dim):
        """log of the running sum of exp along dim."""
        from .running_functions import logcumsumexp
        return logcumsumexp(self, dim)

    def diff(self, n=1, dim=-1, prepend=None, append=None):
        """The n-th forward difference along dim."""
        from .running_functions import diff
        return diff(self, n, dim, prepend, append)

    # ---- element-wise (elementwise_functions.py) --------------------------------------------
    def erf(self):
        from .elementwise_functions import erf
        return erf(self)

    def erfc(self):
        from .elementwise_functions import erfc
        return erfc(self)

    def erfinv(self):
        from .elementwise_functions import erfinv
        return erfinv(self)

    def logit(self, eps=None):
        from .elementwise_functions import logit
        return logit(self, eps)

    def atan2(self, other):
        from .elementwise_functions import atan2
        return atan2(self, other)

    arctan2 = atan2

    def hypot(self, other):
        from .elementwise_functions import hypot
        return hypot(self, other)

    def lerp(self, end, weight):
        from .elementwise_functions import lerp
        return lerp(self, end, weight)

    def isclose(self, other, rtol=1e-05, atol=1e-08, equal_nan=False):
        from .elementwise_functions import isclose
        return isclose(self, other, rtol, atol, equal_nan)

    # ---- layout (layout_functions.py) -------------------------------------------------------
    def movedim(self, source, destination):
        from .layout_functions import movedim
        return movedim(self, source, destination)

    moveaxis = movedim

    def swapaxes(self, axis0, axis1):
        from .layout_functions import swapaxes
        return swapaxes(self, axis0, axis1)

    swapdims = swapaxes

    def tile(self, *dims):
        from .layout_functions import tile
        return tile(self, dims[0] if len(dims) == 1 and not isinstance(dims[0], int)
                    else dims)

    def rot90(self, k=1, dims=(0, 1)):
        from .layout_functions import rot90
        return rot90(self, k, dims)

    def kron(self, other):
        from .layout_functions import kron
        return kron(self, other)

    def broadcast_to(self, size):
        from .layout_functions import broadcast_to
        return broadcast_to(self, size)

    def take_along_dim(self, indices, dim=None):
        from .layout_functions import take_along_dim
        return take_along_dim(self, indices, dim)

    def scatter_reduce(self, dim, index, src, reduce, *, include_self=True):
        """src combined into a copy at index along dim by reduce."""
        from .scatter_reduce import scatter_reduce
        return scatter_reduce(self, dim, index, src, reduce, include_self=include_self)

    # ---- matrices (linalg_solve.py) ---------------------------------------------------------
    def inverse(self):
        from .linalg_solve import inv
        return inv(self)

    def det(self):
        from .linalg_solve import det
        return det(self)
