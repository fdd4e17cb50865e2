"""The FastAPI application: routes, request-size limit, JSON errors, and the batching workers."""
import asyncio
import contextlib
import email.parser
import email.policy
import json
import logging
import os
import time
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException

from .. import get_num_threads
from .batching import Batcher
from .runs import BadRequest, check_image, quick_to_decode

MAX_BODY = 20 * 1024 * 1024       # bytes; a larger body is answered 413
SETTINGS_VARIABLE = "TINYLESION_SERVE_SETTINGS"   # what each worker process of --workers loads
PAGE = Path(__file__).with_name("page.html")
log = logging.getLogger("tinylesion.serve")


class TooLarge(Exception):
    """A request body over the limit."""


def error(status, message):
    return JSONResponse({"error": message}, status_code=status)


async def read_body(request, limit):
    """The request body, refused (TooLarge) as soon as it is known to pass `limit` bytes."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise TooLarge(f"body of {int(declared):,} bytes is over the limit of {limit:,} bytes")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise TooLarge(f"body is over the limit of {limit:,} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def image_bytes(body, content_type):
    """The image in a request: the whole body, or the multipart/form-data field `file`.

    NOTE: the multipart body is parsed in memory with the standard library's MIME parser
    (form parsers spool large uploads to temporary files; nothing a client sends goes to disk).
    """
    if not content_type.lower().startswith("multipart/"):
        return body
    head = f"Content-Type: {content_type}\r\nMIME-Version: 1.0\r\n\r\n".encode("latin-1")
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(head + body)
    if not message.is_multipart():
        raise BadRequest("malformed multipart body (no boundary?)")
    names = []
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        names.append("(no name)" if name is None else str(name))
        if name == "file":
            data = part.get_payload(decode=True)   # None for a multipart part in the part
            if not data:
                raise BadRequest("the multipart field 'file' is empty: it must hold the bytes "
                                 "of an image file (JPEG, PNG, ...)")
            return data
    raise BadRequest(f"multipart body without a 'file' field (fields: "
                     f"{', '.join(names) or 'none'})")


def create_app(models, max_batch=32, max_wait_ms=10.0, max_body=MAX_BODY):
    """The service for {name: ServedModel}: one Batcher per model, started with the app."""
    if not models:
        raise ValueError("create_app needs at least one model")
    default = next(iter(models))
    batchers = {}

    @contextlib.asynccontextmanager
    async def lifespan(app):
        yield
        for b in batchers.values():    # finish what is queued, then end the workers
            b.stop()

    app = FastAPI(title="tinylesion", docs_url=None, redoc_url=None, openapi_url=None,
                  lifespan=lifespan)
    app.state.models, app.state.batchers = models, batchers
    for name, served in models.items():
        batchers[name] = Batcher(served.probabilities, max_batch, max_wait_ms / 1000,
                                 name=f"batcher-{name}")

    def served_model(name):
        if name not in models:
            raise HTTPException(404, f"no model {name!r}; served: {', '.join(models)}")
        return models[name]

    async def body_image(request):
        body = await read_body(request, max_body)
        return image_bytes(body, request.headers.get("content-type", ""))

    async def predict(request, name):
        served = served_model(name)
        start = time.perf_counter()
        data = await body_image(request)
        if quick_to_decode(check_image(data)):
            pixels = served.pixels(data, checked=True)
        else:
            pixels = await run_in_threadpool(served.pixels, data, True)
        probs = await asyncio.wrap_future(batchers[name].submit(pixels))
        k = int(probs.argmax())
        # a JSONResponse as it is: FastAPI's encoder would only walk the plain dict once more
        return JSONResponse({
            "class": served.class_names[k], "confidence": float(probs[k]),
            "probabilities": {c: float(p) for c, p in zip(served.class_names, probs)},
            "model": name, "time_ms": round((time.perf_counter() - start) * 1000, 3)})

    async def explain(request, name):
        served = served_model(name)
        unknown = sorted(set(request.query_params) - {"class"})
        if unknown:
            raise BadRequest(f"unknown query parameter {unknown[0]!r}; /explain takes ?class=")
        data = await body_image(request)
        png, explained = await run_in_threadpool(served.explain_png, data,
                                                 request.query_params.get("class"))
        return Response(png, media_type="image/png",
                        headers={"X-Explained-Class": explained, "X-Model": name})

    @app.post("/predict")
    async def predict_default(request: Request):
        return await predict(request, default)

    @app.post("/models/{name}/predict")
    async def predict_named(name: str, request: Request):
        return await predict(request, name)

    @app.post("/explain")
    async def explain_default(request: Request):
        return await explain(request, default)

    @app.post("/models/{name}/explain")
    async def explain_named(name: str, request: Request):
        return await explain(request, name)

    @app.get("/", response_class=HTMLResponse)
    async def page():
        return HTMLResponse(PAGE.read_text(encoding="utf-8"))

    @app.get("/health")
    async def health():
        return {"status": "ok", "models": list(models), "process": os.getpid(),
                "threads": get_num_threads(),
                "batching": {name: {"requests": b.items, "forward_passes": b.batches,
                                    "largest_batch": b.largest}
                             for name, b in batchers.items()}}

    @app.get("/models")
    async def model_list():
        return {"default": default, "models": [m.info() for m in models.values()]}

    @app.exception_handler(BadRequest)
    async def bad_request(request, exc):
        return error(400, str(exc))

    @app.exception_handler(TooLarge)
    async def too_large(request, exc):
        return error(413, str(exc))

    @app.exception_handler(HTTPException)
    async def http_error(request, exc):
        message = exc.detail
        if exc.status_code == 404 and message == "Not Found":
            message = f"no route {request.url.path}; see GET / for the page and the API"
        elif exc.status_code == 405:
            message = f"method {request.method} is not allowed on {request.url.path}"
        return JSONResponse({"error": message}, status_code=exc.status_code,
                            headers=getattr(exc, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def invalid(request, exc):
        return error(422, f"invalid request: {exc.errors()}")

    @app.exception_handler(Exception)
    async def unexpected(request, exc):
        log.error("unexpected failure on %s %s", request.method, request.url.path,
                  exc_info=exc)
        return error(500, "internal server error (the traceback is in the server's log)")

    return app


def app_from_environment():
    """The app that one of several worker processes (--workers) serves: the runs and settings
    that the command line checked, handed down in the SETTINGS_VARIABLE environment variable."""
    from .. import backend
    from .runs import load_models
    settings = json.loads(os.environ[SETTINGS_VARIABLE])
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    models = load_models(settings["weights"], backend.as_device(settings["device"]))
    return create_app(models, settings["max_batch"], settings["max_wait_ms"])
