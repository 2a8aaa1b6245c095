"""The HTTP API (FastAPI, served by uvicorn): predict, model card, health, Prometheus metrics.

    POST /v1/predict[?cam=1]   raw image body (image/png, image/jpeg, image/tiff, application/dicom)
                               -> {label, probabilities, threshold, positive, ..., cam_overlay_png?}
    GET  /v1/model             labels, input, operating point, metrics at export, versions
    GET  /healthz              200 {"status": "ready"} when the node takes work, else 503
    GET  /metrics              Prometheus text

A body is read whole before any work is admitted: at most --max-uploads at once (503 + Retry-After
beyond), each up to --max-body-bytes (413) and within --http-body-timeout (408); only then is a queue
slot reserved (503 + Retry-After when none is free), so a client that sends its body slowly, or never,
holds no slot of the work DICOM shares. A client that leaves mid-body is logged in one line. Inference
runs on the node's workers, never on the event loop. With --token-file every endpoint but /healthz
needs `Authorization: Bearer`. Connections are bounded by http_protocol.py.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import time
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any, Protocol

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from starlette.requests import ClientDisconnect

from medtk.errors import MedtkError
from medtk.serve.health import HealthReport
from medtk.serve.metrics import NodeMetrics
from medtk.serve.processor import CONTENT_TYPES
from medtk.serve.work import QueueFull

log = logging.getLogger(__name__)

RETRY_AFTER_SECONDS = "1"
CLOSE = {"Connection": "close"}  # answered before the body was read: do not drain the rest of it
CLIENT_CLOSED = 499  # counted (nginx's code) when a client leaves before its body is complete


@dataclass
class Uploads:
    """Request bodies being received: at most `limit` at once, each within `timeout` seconds."""

    limit: int
    timeout: float
    active: int = 0


class Service(Protocol):
    """What the HTTP layer needs from the node."""

    metrics: NodeMetrics
    max_body_bytes: int
    token: str | None

    @property
    def ready(self) -> bool: ...

    def model_card(self) -> dict[str, Any]: ...

    def check_health(self) -> HealthReport: ...

    def reserve(self) -> None: ...  # raises QueueFull

    def submit_predict(self, data: bytes, content_type: str, cam: bool) -> Future: ...


def create_app(service: Service, uploads: Uploads) -> FastAPI:
    app = FastAPI(title="medtk serve", docs_url=None, redoc_url=None, openapi_url=None)
    requests = service.metrics.http_requests

    def answer(endpoint: str, code: int, body: Any, headers: dict[str, str] | None = None) -> JSONResponse:
        requests.labels(endpoint, str(code)).inc()
        return JSONResponse(body, status_code=code, headers=headers)

    def refused(endpoint: str, request: Request) -> JSONResponse | None:
        if service.token is None:
            return None
        given = request.headers.get("authorization", "")
        expected = f"Bearer {service.token}"
        if hmac.compare_digest(given.encode("utf-8", "replace"), expected.encode("utf-8")):
            return None
        return answer(endpoint, 401, {"error": "missing or wrong bearer token"}, {"WWW-Authenticate": "Bearer"})

    @app.get("/healthz")
    async def healthz() -> JSONResponse:
        report = service.check_health()  # memory and one statvfs: cheap, and open to probes without a token
        return answer("/healthz", 200 if report.ready else 503, report.to_dict())

    @app.get("/metrics")
    async def metrics(request: Request) -> Response:
        if (denied := refused("/metrics", request)) is not None:
            return denied
        requests.labels("/metrics", "200").inc()
        return Response(service.metrics.render(), media_type="text/plain; version=0.0.4; charset=utf-8")

    @app.get("/v1/model")
    async def model(request: Request) -> JSONResponse:
        if (denied := refused("/v1/model", request)) is not None:
            return denied
        return answer("/v1/model", 200, service.model_card())

    @app.post("/v1/predict")
    async def predict(request: Request, cam: bool = False) -> JSONResponse:
        endpoint = "/v1/predict"
        if (denied := refused(endpoint, request)) is not None:
            return denied
        content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if content_type not in CONTENT_TYPES:
            return answer(endpoint, 415, {"error": f"Content-Type {content_type!r} is not one of {sorted(CONTENT_TYPES)}"},
                          CLOSE)
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > service.max_body_bytes:
            return answer(endpoint, 413, {"error": f"body over the limit of {service.max_body_bytes} bytes"}, CLOSE)
        if not service.ready:
            return answer(endpoint, 503, {"error": "not ready"}, {"Retry-After": RETRY_AFTER_SECONDS, **CLOSE})
        if uploads.active >= uploads.limit:
            service.metrics.errors.labels("uploads_full").inc()
            return answer(endpoint, 503, {"error": f"{uploads.limit} uploads in progress; retry later"},
                          {"Retry-After": RETRY_AFTER_SECONDS, **CLOSE})
        uploads.active += 1
        try:
            data = await asyncio.wait_for(_read_body(request, service.max_body_bytes), uploads.timeout)
        except _TooLarge:
            return answer(endpoint, 413, {"error": f"body over the limit of {service.max_body_bytes} bytes"}, CLOSE)
        except asyncio.TimeoutError:
            log.info("HTTP upload from %s not complete within %g s", _client(request), uploads.timeout)
            return answer(endpoint, 408, {"error": f"body not complete within {uploads.timeout:g} s"}, CLOSE)
        except ClientDisconnect:
            log.info("HTTP upload from %s ended by the client before its body was complete", _client(request))
            return answer(endpoint, CLIENT_CLOSED, {"error": "client closed the connection"})
        finally:
            uploads.active -= 1
        if not data:
            return answer(endpoint, 400, {"error": "empty body; send the image file as the request body"})
        try:
            service.reserve()
        except QueueFull as full:
            service.metrics.errors.labels("queue_full").inc()
            return answer(endpoint, 503, {"error": str(full)}, {"Retry-After": RETRY_AFTER_SECONDS})
        started = time.time()
        try:
            result = await asyncio.wrap_future(service.submit_predict(data, content_type, cam))
        except MedtkError as error:
            service.metrics.images.labels("http", "error").inc()
            return answer(endpoint, 400, {"error": str(error)})
        except Exception as error:
            service.metrics.errors.labels("http").inc()
            # the type and where, never the message or a traceback's text: either may quote a header value
            frame = error.__traceback__
            while frame is not None and frame.tb_next is not None:
                frame = frame.tb_next
            where = f"{frame.tb_frame.f_code.co_filename.rsplit('/', 1)[-1]}:{frame.tb_lineno}" if frame else "?"
            log.error("HTTP prediction failed (%s at %s)", type(error).__name__, where)
            return answer(endpoint, 500, {"error": f"internal error ({type(error).__name__})"})
        service.metrics.images.labels("http", "ok").inc()
        service.metrics.latency.labels("http").observe(time.time() - started)
        return answer(endpoint, 200, result)

    return app


class _TooLarge(Exception):
    pass


async def _read_body(request: Request, limit: int) -> bytes:
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise _TooLarge()
        chunks.append(chunk)
    return b"".join(chunks)


def _client(request: Request) -> str:
    return f"{request.client.host}:{request.client.port}" if request.client else "an unknown client"
