"""ASGI layers around every route: NUL and body size limits, request metrics, audit coverage."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..audit import coverage
from ..audit.log import AuditLog
from ..errors import AuditUnavailable, InvalidRequest, PayloadTooLarge
from ..observability.metrics import Metrics
from .http import error_response

# A route's own body limit: the bytes, and the error that names the setting.
RouteLimit = tuple[int, Callable[[], PayloadTooLarge]]
KNOWN_ROUTES = (
    "/v1/chat/completions",
    "/v1/fim/completions",
    "/v1/completions",
    "/v1/responses",
    "/v1/embeddings",
    "/v1/ocr",
    "/v1/models",
    "/healthz",
    "/readyz",
    "/metrics",
)


class RefuseNul:
    """400 for a path or query string that carries U+0000 (`%00`): no id, name or search
    term contains one, and PostgreSQL text cannot hold it (a 500 from the driver)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and ("\x00" in scope["path"] or b"%00" in scope["query_string"]):
            error = InvalidRequest("the path or query string contains a NUL character (%00)")
            await error_response(error)(scope, receive, send)
            return
        await self.app(scope, receive, send)


class BodyLimit:
    """413 for bodies over the limit, whether or not they declare a Content-Length.
    `routes` gives some (method, path) pairs a limit of their own and the error that
    names it (file uploads: files.max_file_bytes)."""

    def __init__(
        self,
        app: ASGIApp,
        max_bytes: int,
        routes: Mapping[tuple[str, str], RouteLimit] | None = None,
    ) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.routes = dict(routes or {})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        own = self.routes.get((scope["method"], scope["path"]))
        limit = own[0] if own else self.max_bytes
        too_large = (
            own[1]() if own else PayloadTooLarge(f"the request body is larger than {limit} bytes")
        )
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > limit):
            await error_response(too_large)(scope, receive, send)
            return
        received = 0

        async def limited() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise too_large
            return message

        await self.app(scope, limited, send)


log = logging.getLogger("souverain.audit")
MAX_ERROR_BODY = 64 * 1024  # error bodies are small JSON objects; past this, not parsed


class AuditCoverage:
    """A leaf for each request of an authenticated caller that ends in an error without
    one (audit/coverage.py), durable before the error response goes out."""

    def __init__(self, app: ASGIApp, audit: AuditLog | None) -> None:
        self.app = app
        self.audit = audit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        audit = self.audit
        if scope["type"] != "http" or audit is None:
            await self.app(scope, receive, send)
            return
        record = coverage.begin()
        held: list[Message] = []  # an error response, held until its leaf is written
        started = False

        async def covering(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                if message["status"] >= 400 and record.ctx is not None:
                    held.append(message)
                    return
            if not held:
                await send(message)
                return
            held.append(message)
            if message["type"] == "http.response.body" and not message.get("more_body"):
                await self._release(record, scope, held, send)

        try:
            await self.app(scope, receive, covering)
        except Exception:
            if not started:  # the 500 is rendered outside; its leaf is written here
                await self._write(record, scope, 500, {"type": "internal_error"})
            raise

    async def _release(
        self, record: coverage.RequestAudit, scope: Scope, held: list[Message], send: Send
    ) -> None:
        status = held[0]["status"]
        body = b"".join(m.get("body", b"") for m in held[1:])
        if await self._write(record, scope, status, _error_of(body)):
            for message in held:
                await send(message)
            return
        refused = AuditUnavailable("the audit log could not record this refusal")
        payload = orjson.dumps(refused.body())
        await send({"type": "http.response.start", "status": refused.status_code,
                    "headers": [(b"content-type", b"application/json"),
                                (b"content-length", str(len(payload)).encode())]})  # fmt: skip
        await send({"type": "http.response.body", "body": payload})

    async def _write(
        self, record: coverage.RequestAudit, scope: Scope, status: int, error: dict[str, str]
    ) -> bool:
        """Append the missing leaf, if any; False when the log could not take it."""
        assert self.audit is not None
        leaf = coverage.leaf_for_failure(
            record,
            outcome=error.get("type") or "error",
            code=error.get("code"),
            status=status,
            method=scope["method"],
            path=scope["path"],
        )
        if leaf is None:
            return True
        try:
            await self.audit.append(leaf)
        except AuditUnavailable:
            log.error("no leaf for a refused %s %s", scope["method"], scope["path"])
            return False
        return True


def _error_of(body: bytes) -> dict[str, str]:
    """`type` and `code` of an error body in OpenAI's shape (errors.py), as far as known."""
    try:
        error = orjson.loads(body).get("error") if len(body) <= MAX_ERROR_BODY else None
    except (orjson.JSONDecodeError, AttributeError):
        error = None
    if not isinstance(error, dict):
        return {}
    return {k: error[k] for k in ("type", "code") if isinstance(error.get(k), str)}


class RequestMetrics:
    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def recording(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, recording)
        finally:
            route = route_label(scope["path"])
            self.metrics.http_requests.labels(route, scope["method"], str(status)).inc()
            self.metrics.http_latency.labels(route).observe(time.perf_counter() - started)


def route_label(path: str) -> str:
    if path in KNOWN_ROUTES:
        return path
    if path.startswith("/v1/models/"):
        return "/v1/models/{id}"
    if path.startswith("/v1/libraries"):
        return "/v1/libraries"
    if path.startswith("/v1/responses/"):
        return "/v1/responses/{id}"
    if path == "/v1/files" or path.startswith("/v1/files/"):
        return "/v1/files"
    if path.startswith("/admin/"):
        return "/admin"
    return "other"
