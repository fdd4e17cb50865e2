"""cupy.cuda.runtime of the stand-in: one CUDA device."""


class CUDARuntimeError(RuntimeError):
    """A CUDA runtime call failed."""


def getDeviceCount():
    return 1


def getDevice():
    return 0


def deviceSynchronize():
    from . import Device
    Device().synchronize()
