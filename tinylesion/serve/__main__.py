"""python -m tinylesion.serve --weights RUN_DIR [RUN_DIR ...]: the checks, then uvicorn."""
import inspect
import json
import logging
import os
import socket
import sys
from pathlib import Path

from ..flags import DEVICE, OneLineParser, folder_path, int_at_least

THREADS_VARIABLE = "TINYLESION_NUM_THREADS"


def parse_args(argv=None):
    parser = OneLineParser(
        prog="python -m tinylesion.serve",
        description="Serve trained runs over HTTP: a web page, /predict, /explain, /models.")
    parser.add_argument("--weights", required=True, nargs="+", action="extend",
                        metavar="RUN_DIR", type=folder_path,
                        help="one or more run folders (run.json, weights.npz); the flag may "
                             "be given again to add more")
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to listen on (default 127.0.0.1: this machine only)")
    parser.add_argument("--port", default=8000, type=int_at_least(0),
                        help="port (default 8000; 0 picks a free one)")
    parser.add_argument("--device", default="cpu", type=DEVICE, help="cpu, gpu or auto")
    parser.add_argument("--max-batch", default=32, type=int_at_least(1),
                        help="most images in one forward pass (default 32)")
    parser.add_argument("--max-wait-ms", default=10.0, type=float,
                        help="longest wait for a batch to fill, in ms (default 10)")
    parser.add_argument("--workers", default=1, type=int_at_least(1),
                        help="server processes answering on the port, each with its own copy of "
                             "the models and its own batching (default 1)")
    args = parser.parse_args(argv)
    if args.port > 65535:
        parser.error(f"argument --port: must be at most 65535, got {args.port}")
    if not 0 <= args.max_wait_ms <= 10_000:
        parser.error(f"argument --max-wait-ms: must be from 0 to 10000, got {args.max_wait_ms}")
    return parser, args


def check_address(host, port):
    """None when a server could listen on (host, port) now, else a one-line reason naming the
    flag (uvicorn would only log its error after the models are loaded)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except (socket.gaierror, UnicodeError) as exc:
        return f"argument --host: cannot listen on {host!r}: {exc}"
    family, kind, proto, _, address = infos[0]
    try:
        with socket.socket(family, kind, proto) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds
            probe.bind(address)
    except OSError as exc:
        return f"argument --port: cannot listen on {host}:{port}: {exc.strerror or exc}"
    return None


def main(argv=None):
    """Check the flags and load every run (one-line errors, exit 2), then serve until stopped."""
    from .. import backend, set_num_threads
    from ..predict import PredictError
    parser, args = parse_args(argv)
    problem = check_address(args.host, args.port)
    if problem:
        parser.error(problem)
    try:
        import uvicorn
        from .app import SETTINGS_VARIABLE, create_app
        from .runs import load_models
    except ImportError as exc:
        parser.exit(2, f"error: the service needs FastAPI and uvicorn ({exc}); install them "
                       "with: pip install 'tinylesion[serve]'\n")
    if not os.environ.get(THREADS_VARIABLE, "").strip():
        # NOTE: one kernel thread per server process unless the user says otherwise. The
        # forward runs in the batching thread, and there parallel kernels cost many times
        # their single-thread CPU time (a quiet 2-core machine served 6.2 instead of 40.9
        # requests/s to one client with two threads); --workers is the way to more cores.
        os.environ[THREADS_VARIABLE] = "1"      # for --workers' processes too
        set_num_threads(1)
    try:
        device = backend.as_device(args.device)
        models = load_models(args.weights, device)
    except (PredictError, backend.DeviceError) as exc:
        parser.exit(2, f"error: {exc}\n")
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    options = dict(host=args.host, port=args.port, log_level="info", access_log=False)
    if args.workers > 1:
        # NOTE: each worker is a fresh (spawned) Python that builds its app from the import
        # string; the runs it loads are the ones checked above, named the same way.
        del models
        os.environ[SETTINGS_VARIABLE] = json.dumps({
            "weights": [str(Path(d).resolve()) for d in args.weights], "device": args.device,
            "max_batch": args.max_batch, "max_wait_ms": args.max_wait_ms})
        if "timeout_worker_healthcheck" in inspect.signature(uvicorn.Config).parameters:
            # a worker's forward pass holds the GIL for a kernel at a time: on a slow or busy
            # machine that may outlast uvicorn's 5 s before it deems the worker hung
            options["timeout_worker_healthcheck"] = 120
        uvicorn.run("tinylesion.serve.app:app_from_environment", factory=True,
                    workers=args.workers, **options)
        return 0
    app = create_app(models, args.max_batch, args.max_wait_ms)
    config = uvicorn.Config(app, **options)
    server = uvicorn.Server(config)
    try:
        server.run()
    except SystemExit:   # uvicorn exits 1 when it cannot bind; it has logged why
        pass
    return 0 if server.started else 1


if __name__ == "__main__":
    sys.exit(main())
