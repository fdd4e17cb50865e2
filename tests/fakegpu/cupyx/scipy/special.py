"""cupyx.scipy.special of the stand-in: erf on device arrays (SciPy's, on the wrapped data)."""
from scipy import special as _special

import cupy


def erf(x):
    """The error function of a device array; host arrays are refused as CuPy refuses them."""
    return cupy._call(_special.erf, "erf", (x,), {})
