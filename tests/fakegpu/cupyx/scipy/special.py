"""cupyx.scipy.special of the stand-in: erf, erfc and erfinv on device arrays (SciPy's, on
the wrapped data)."""
from scipy import special as _special

import cupy


def erf(x):
    """The error function of a device array; host arrays are refused as CuPy refuses them."""
    return cupy._call(_special.erf, "erf", (x,), {})


def erfc(x):
    """The complementary error function of a device array."""
    return cupy._call(_special.erfc, "erfc", (x,), {})


def erfinv(x):
    """The inverse error function of a device array."""
    return cupy._call(_special.erfinv, "erfinv", (x,), {})
