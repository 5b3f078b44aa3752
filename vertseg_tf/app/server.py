"""The FastAPI application of `vertseg-tf app`: the page, and the JSON API it and scripts use.

Every error is a JSON object `{"error": "..."}` with a 4xx status (5xx only for a bug, still
without a traceback); see docs/app.md for the API.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from importlib import resources
from typing import Annotated

import numpy as np
from fastapi import FastAPI, File, Form, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response

from vertseg_tf import __version__
from vertseg_tf.app.session import (
    Store,
    UnknownId,
    default_window,
    parse_labels,
    parse_points,
    read_upload,
    render_window,
    segment_image,
)
from vertseg_tf.data.patches import PATCH_SIZE
from vertseg_tf.errors import DataError, VertsegError

__all__ = ["DEFAULT_MAX_UPLOAD_MB", "background_server", "create_app"]

DEFAULT_MAX_UPLOAD_MB = 64.0
_STATIC = {"index.html": "text/html", "app.js": "text/javascript", "app.css": "text/css"}
_FACINGS = ("", "left", "right")


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


def _limit_uploads(app: FastAPI, max_bytes: int) -> None:
    """Refuse a request body over `max_bytes` (413), and a body without a declared length
    (411), before it is parsed, so that no upload is ever kept or spooled beyond the limit.
    The refused body is read and dropped chunk by chunk: a client that is still sending
    then gets the answer instead of a broken connection."""

    @app.middleware("http")
    async def limit(request: Request, call_next):
        if request.method in ("POST", "PUT"):
            length = request.headers.get("content-length")
            if length is None or not length.isdigit():
                return _error(411, "the request must declare its Content-Length")
            if int(length) > max_bytes:
                async for _ in request.stream():
                    pass
                return _error(413, f"upload of {int(length) / 1e6:.1f} MB is over the limit of "
                                   f"{max_bytes / 1e6:.1f} MB (vertseg-tf app --max-upload-mb)")
        return await call_next(request)


def _errors(app: FastAPI) -> None:
    @app.exception_handler(VertsegError)
    async def bad_input(request, error):
        return _error(400, str(error))

    @app.exception_handler(UnknownId)
    async def unknown(request, error):
        return _error(404, str(error))

    @app.exception_handler(RequestValidationError)
    async def invalid(request, error):
        parts = ["{}: {}".format(".".join(str(p) for p in e["loc"][1:]) or "request", e["msg"])
                 for e in error.errors()]
        return _error(422, "; ".join(parts))

    @app.exception_handler(Exception)
    async def bug(request, error):
        # Starlette re-raises after this answer, so the traceback goes to the server's log.
        return _error(500, f"internal error ({type(error).__name__}); the traceback is in "
                           "the server's console")


def create_app(segmenter, *, locator=None, max_upload_mb: float = DEFAULT_MAX_UPLOAD_MB,
               capacity: int = 16, warm_up: bool = True) -> FastAPI:
    """The web app around a loaded model.

    Args:
        segmenter: a `vertseg_tf.deploy.Segmenter`.
        locator: optional `locator(image)` for "find": (N, 2) centres top to bottom, or a
            dict with `centers` and optional `labels` and `confidences`; None hides the
            button.
        max_upload_mb: the largest request body accepted, in MB.
        capacity: images (and results) kept in memory; older ones are forgotten.
        warm_up: run the model once now, so that the first click does not wait for the
            graph to be built (or, with TF Serving, find an unreachable server at once).

    Example:
        >>> import uvicorn  # doctest: +SKIP
        >>> uvicorn.run(create_app(Segmenter("models/vertseg/1")))  # doctest: +SKIP
    """
    if warm_up:
        segmenter.predict_patches(np.zeros((1, PATCH_SIZE, PATCH_SIZE, 1), np.float32))
    app = FastAPI(title="vertseg-tf", version=__version__, docs_url=None, redoc_url=None)
    max_bytes = int(max_upload_mb * 1e6)
    images, results = Store(capacity), Store(capacity)
    model_lock = threading.Lock()
    _limit_uploads(app, max_bytes)
    _errors(app)

    @app.get("/")
    def page():
        return _static("index.html")

    @app.get("/static/{name}")
    def static(name: str):
        if name not in _STATIC:
            raise UnknownId(f"no static file {name!r}")
        return _static(name)

    @app.get("/api/info")
    def info():
        return {"version": __version__, "model": str(segmenter.source),
                "find": locator is not None, "max_upload_bytes": max_bytes}

    @app.post("/images")
    def open_image(image: Annotated[UploadFile, File()]):
        loaded = read_upload(image.filename or "upload", image.file.read())
        images.add(loaded)
        return loaded.summary()

    @app.get("/images/{image_id}/view.png")
    def view(image_id: str, level: float | None = None, width: float | None = None):
        loaded = images.get(image_id, "image")
        default_level, default_width = default_window(loaded.image)
        png = render_window(loaded.image, default_level if level is None else level,
                            default_width if width is None else width)
        return Response(png, media_type="image/png")

    @app.post("/segment")
    def segment(
        centers: Annotated[str, Form()],
        image: Annotated[UploadFile | None, File()] = None,
        image_id: Annotated[str | None, Form()] = None,
        labels: Annotated[str | None, Form()] = None,
        first_level: Annotated[str, Form()] = "C3",
        facing: Annotated[str, Form()] = "",
        scale: Annotated[float | None, Form()] = None,
    ):
        if image is not None:
            loaded = read_upload(image.filename or "upload", image.file.read())
            images.add(loaded)
        elif image_id:
            loaded = images.get(image_id, "image")
        else:
            raise DataError("image", "send the radiograph as the 'image' file or an "
                                     "'image_id' from POST /images")
        points = parse_points(centers)
        if facing not in _FACINGS:
            raise DataError("facing", f"{facing!r} is not 'left', 'right' or empty (detect)")
        with model_lock:
            result = segment_image(segmenter, loaded, points,
                                   parse_labels(labels, len(points), first_level),
                                   facing=facing or None, scale=scale)
        results.add(result)
        return result.to_json()

    @app.post("/find")
    def find(image_id: Annotated[str, Form()]):
        if locator is None:
            return _error(404, "no locator in this installation; click the centres")
        loaded = images.get(image_id, "image")
        with model_lock:
            found = locator(loaded.image)
        return _found(image_id, found)

    @app.get("/results/{result_id}/{name}")
    def download(result_id: str, name: str):
        result = results.get(result_id, "result")
        makers = {"dataset.json": (result.dataset_json, "application/json"),
                  "measurements.csv": (result.measurements_csv, "text/csv"),
                  "overlay.png": (result.overlay_png, "image/png")}
        if name not in makers:
            raise UnknownId(f"no download {name!r}; choose one of {', '.join(makers)}")
        make, media_type = makers[name]
        stem = result.record.id
        return Response(make(), media_type=media_type, headers={
            "Content-Disposition": f'attachment; filename="{stem}_{name}"'})

    return app


def _found(image_id: str, found) -> dict:
    """The `/find` answer from a locator's (N, 2) centres, or its dict with `centers` and
    optional `labels` and `confidences`."""
    if not isinstance(found, dict):
        found = {"centers": found}
    centres = np.asarray(found["centers"], dtype=np.float64).reshape(-1, 2)
    confidences = found.get("confidences")
    return {"image_id": image_id, "centers": centres.round(2).tolist(),
            "labels": None if found.get("labels") is None else list(found["labels"]),
            "confidences": None if confidences is None else [float(c) for c in confidences]}


def _static(name: str) -> Response:
    content = resources.files("vertseg_tf.app").joinpath("static", name).read_bytes()
    return Response(content, media_type=_STATIC[name])


@contextmanager
def background_server(app, host: str = "127.0.0.1", port: int = 0) -> Iterator[str]:
    """Serve `app` with uvicorn in a background thread; yields its base URL.

    Args:
        app: the ASGI app (`create_app(...)`).
        host: the address to listen on.
        port: the port; 0 picks a free one.

    Example:
        >>> with background_server(create_app(segmenter)) as url:  # doctest: +SKIP
        ...     print(url)
        http://127.0.0.1:43517
    """
    import uvicorn

    listener = socket.socket()
    listener.bind((host, port))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [listener]}, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 30
        while not server.started:
            if time.monotonic() > deadline or not thread.is_alive():
                raise RuntimeError("the vertseg-tf app server did not start")
            time.sleep(0.02)
        yield f"http://{host}:{listener.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(10)
        listener.close()
