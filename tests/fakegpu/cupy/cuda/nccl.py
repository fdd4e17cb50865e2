"""cupy.cuda.nccl of the stand-in: NCCL between the processes of an MPI job, for tests only.

The calls take device pointers, as CuPy's do; the stand-in's device memory is host memory, so
the reduction runs through mpi4py on the memory behind each pointer. It checks what NCCL would
refuse or what would silently go wrong on a GPU: ranks with different unique ids or a wrong
rank count, an operation other than those defined, a stream that is not the caller's current
stream. `calls` counts the collective calls of this process.
"""
import ctypes
import os

import numpy as np

from . import get_current_stream

NCCL_INT8, NCCL_UINT8, NCCL_INT32, NCCL_UINT32 = 0, 1, 2, 3
NCCL_INT64, NCCL_UINT64, NCCL_FLOAT16, NCCL_FLOAT32, NCCL_FLOAT64 = 4, 5, 6, 7, 8
NCCL_SUM, NCCL_PROD, NCCL_MAX, NCCL_MIN = 0, 1, 2, 3

_DTYPES = {NCCL_INT8: np.int8, NCCL_UINT8: np.uint8, NCCL_INT32: np.int32,
           NCCL_UINT32: np.uint32, NCCL_INT64: np.int64, NCCL_UINT64: np.uint64,
           NCCL_FLOAT16: np.float16, NCCL_FLOAT32: np.float32, NCCL_FLOAT64: np.float64}

calls = {"allReduce": 0, "bcast": 0, "reduceScatter": 0, "allGather": 0}


class NcclError(RuntimeError):
    """An NCCL call failed."""


def get_unique_id():
    """128 random bytes as a tuple of ints, as CuPy returns the id."""
    return tuple(os.urandom(128))


def _view(ptr, count, datatype):
    dtype = np.dtype(_DTYPES[datatype])
    raw = (ctypes.c_byte * (count * dtype.itemsize)).from_address(ptr)
    return np.ctypeslib.as_array(raw).view(dtype)


class NcclCommunicator:
    """NcclCommunicator(ndev, commId, rank): one process's member of an ndev-rank clique."""

    def __init__(self, ndev, commId, rank):
        from mpi4py import MPI
        self._mpi = MPI
        world = MPI.COMM_WORLD
        if (ndev, rank) != (world.Get_size(), world.Get_rank()):
            raise NcclError(f"ncclInvalidUsage: ndev {ndev}, rank {rank} in a job of "
                            f"{world.Get_size()} processes (this is rank {world.Get_rank()})")
        ids = world.allgather(tuple(commId))
        if any(i != ids[0] for i in ids):
            raise NcclError("ncclInvalidUsage: the ranks gave different unique ids")
        self._comm = world.Dup()
        self._rank = rank

    def _check(self, datatype, stream):
        if datatype not in _DTYPES:
            raise NcclError(f"ncclInvalidArgument: datatype {datatype}")
        if stream != get_current_stream().ptr:
            raise NcclError(f"the collective was queued on stream {stream:#x}, not the "
                            f"current stream {get_current_stream().ptr:#x}")

    def allReduce(self, sendbuf, recvbuf, count, datatype, op, stream):
        self._check(datatype, stream)
        if op != NCCL_SUM:
            raise NcclError(f"the stand-in reduces with NCCL_SUM only, got op {op}")
        recv = _view(recvbuf, count, datatype)
        send = self._mpi.IN_PLACE if sendbuf == recvbuf else _view(sendbuf, count, datatype)
        self._comm.Allreduce(send, recv, op=self._mpi.SUM)
        calls["allReduce"] += 1

    def reduceScatter(self, sendbuf, recvbuf, recvcount, datatype, op, stream):
        self._check(datatype, stream)
        if op != NCCL_SUM:
            raise NcclError(f"the stand-in reduces with NCCL_SUM only, got op {op}")
        size = self._comm.Get_size()
        send = _view(sendbuf, recvcount * size, datatype)
        recv = _view(recvbuf, recvcount, datatype)
        self._comm.Reduce_scatter_block(send.copy(), recv, op=self._mpi.SUM)
        calls["reduceScatter"] += 1

    def allGather(self, sendbuf, recvbuf, sendcount, datatype, stream):
        self._check(datatype, stream)
        size = self._comm.Get_size()
        recv = _view(recvbuf, sendcount * size, datatype)
        itemsize = recv.itemsize
        if sendbuf == recvbuf + self._rank * sendcount * itemsize:
            send = self._mpi.IN_PLACE
        else:
            send = _view(sendbuf, sendcount, datatype).copy()
        self._comm.Allgather(send, recv)
        calls["allGather"] += 1

    def bcast(self, buff, count, datatype, root, stream):
        self._check(datatype, stream)
        self._comm.Bcast(_view(buff, count, datatype), root=root)
        calls["bcast"] += 1

    def rank_id(self):
        return self._rank

    def destroy(self):
        self._comm.Free()
