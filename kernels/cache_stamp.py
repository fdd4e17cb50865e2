"""Numba's on-disk cache for the kernels, kept fresh for the whole package: every kernel's
cached machine code is stamped with a hash of all of kernels/*.py, not only its own file.

NOTE: Numba stamps a cached function with its own source file, but a kernel compiles in the
code of what it calls from other files (the inline="always" helpers, such as
channel_sums._plane_sum inlined by relu, pool_relu and batchnorm, and any other njit callee).
With the per-file stamp an upgraded channel_sums.py would leave relu's cached copy computing
the old sums; with the package's stamp any change recompiles every kernel once."""
import functools
import hashlib
import os

from numba.core import caching

KERNELS_DIR = os.path.dirname(os.path.abspath(__file__))


@functools.lru_cache(maxsize=None)
def package_stamp():
    """sha256 over the names and contents of kernels/*.py (computed once per process)."""
    digest = hashlib.sha256()
    for name in sorted(os.listdir(KERNELS_DIR)):
        if name.endswith(".py"):
            with open(os.path.join(KERNELS_DIR, name), "rb") as f:
                digest.update(name.encode() + b"\0" + f.read() + b"\0")
    return digest.digest()


class _PackageStamped:
    """A Numba cache locator for the functions of kernels/ only, stamped with package_stamp."""

    @classmethod
    def from_function(cls, py_func, py_file):
        if os.path.dirname(os.path.abspath(py_file)) != KERNELS_DIR:
            return None
        return super().from_function(py_func, py_file)

    def get_source_stamp(self):
        return package_stamp()


# the same places Numba would choose (NUMBA_CACHE_DIR, then __pycache__, then the user's
# cache folder when __pycache__ is read-only), with the package's stamp
LOCATORS = [type(f"Package{base.__name__}", (_PackageStamped, base), {})
            for base in (caching.UserProvidedCacheLocator, caching.InTreeCacheLocator,
                         caching.UserWideCacheLocator)]


def install():
    """Put the package-stamped locators first in Numba's list (before any kernel is
    decorated); a Numba without that list keeps its own per-file stamps."""
    impl = getattr(caching, "CacheImpl", None) or getattr(caching, "_CacheImpl", None)
    classes = getattr(impl, "_locator_classes", None)
    if isinstance(classes, list) and not any(c in classes for c in LOCATORS):
        classes[:0] = LOCATORS
