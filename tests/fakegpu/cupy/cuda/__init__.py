"""cupy.cuda of the stand-in: one device, streams, events, and a check of stream ordering.

Every array remembers the stream and position at which it was last written. An operation on
another stream that reads it must first have waited for that position (Stream.wait_event on an
event recorded after the write, or a host synchronisation); otherwise StreamOrderError is
raised. CUDA's legacy default stream orders blocking streams implicitly, never non-blocking
ones, so a copy made on a Stream(non_blocking=True) is usable elsewhere only after an event.
"""
import itertools
import threading

from . import memory, runtime  # noqa: F401

_ptrs = itertools.count(0x7F0000001000, 0x100)
_local = threading.local()
_host_done = {}  # stream -> last position the host waited for (synchronize)
_lock = threading.Lock()


class StreamOrderError(RuntimeError):
    """An array was read on one stream before the stream that wrote it was waited for."""


class Stream:
    """A CUDA stream: `with stream:` makes it this thread's current stream."""

    def __init__(self, null=False, non_blocking=False, ptr=None):
        self.null = bool(null)
        self.non_blocking = bool(non_blocking)
        self.ptr = 0 if null else next(_ptrs)
        self.position = 0   # operations queued so far
        self.waited = {}    # other stream -> position it is known to be past

    def __enter__(self):
        _stack().append(self)
        return self

    def __exit__(self, *exc):
        _stack().pop()

    def use(self):
        """Make this the current stream (without a `with` block)."""
        _stack()[:] = [self]
        return self

    def record(self, event=None):
        event = Event() if event is None else event
        event.record(self)
        return event

    def wait_event(self, event):
        if event.stream is not None:
            with _lock:
                self.waited[event.stream] = max(self.waited.get(event.stream, 0),
                                                event.position)

    def synchronize(self):
        with _lock:
            _host_done[self] = max(_host_done.get(self, 0), self.position)

    @property
    def done(self):
        return True

    def __repr__(self):
        return f"<fake Stream ptr={self.ptr:#x}{' null' if self.null else ''}>"


Stream.null = Stream(null=True)


class ExternalStream(Stream):
    """A stream made elsewhere (CuPy's ExternalStream)."""

    def __init__(self, ptr):
        super().__init__()
        self.ptr = ptr


def _stack():
    stack = getattr(_local, "stack", None)
    if stack is None:
        stack = _local.stack = []
    return stack


def get_current_stream():
    """This thread's current stream (the null stream unless a `with stream:` is active)."""
    stack = _stack()
    return stack[-1] if stack else Stream.null


class Event:
    """A CUDA event: marks a position in a stream."""

    def __init__(self, block=False, disable_timing=False, interprocess=False):
        self.stream = None
        self.position = 0

    def record(self, stream=None):
        stream = get_current_stream() if stream is None else stream
        self.stream, self.position = stream, stream.position

    def synchronize(self):
        if self.stream is not None:
            with _lock:
                _host_done[self.stream] = max(_host_done.get(self.stream, 0), self.position)

    @property
    def done(self):
        return True


def _implicitly_ordered(a, b):
    """The legacy null stream and blocking streams are ordered with each other."""
    return (a.null and not b.non_blocking) or (b.null and not a.non_blocking)


def check_read(array_stream, array_position, reader, what="an array"):
    """Raise StreamOrderError unless `reader` may read what `array_stream` wrote by then."""
    if array_stream is None or array_stream is reader or array_position == 0:
        return
    if _implicitly_ordered(array_stream, reader):
        return
    if reader.waited.get(array_stream, 0) >= array_position:
        return
    if _host_done.get(array_stream, 0) >= array_position:
        return
    raise StreamOrderError(
        f"{what} written on {array_stream!r} at position {array_position} is read on "
        f"{reader!r}, which never waited for it (record an Event on the writing stream and "
        f"wait_event it on the reading one)")


def advance(stream):
    """Queue one operation on `stream`; its position after it."""
    with _lock:
        stream.position += 1
        return stream.position


class Device:
    """CUDA device `device` (only 0 exists)."""

    def __init__(self, device=None):
        self.id = 0 if device is None else int(device)
        if self.id != 0:
            raise runtime.CUDARuntimeError(f"cudaErrorInvalidDevice: device {self.id}")

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        pass

    def use(self):
        pass

    def synchronize(self):
        with _lock:
            for s in list(_host_done) + [get_current_stream(), Stream.null]:
                _host_done[s] = max(_host_done.get(s, 0), s.position)

    def __repr__(self):
        return f"<CUDA Device {self.id}>"


def is_available():
    return True
