"""The HTTP server under `souverain serve`: uvicorn, with limits on slow and idle clients.

uvicorn closes a keep-alive connection that stays idle after a response, but it has no
deadline for a request's headers: a client that connects and sends nothing, or sends its
headers one byte at a time (slowloris), holds its connection, a file descriptor and
memory for as long as it likes, and enough of them exhaust the process. So each
connection here gets:

- a header deadline: from the moment it opens, and again from the end of each response,
  the complete headers of the next request must arrive within `header_timeout_s`, or the
  connection is closed. Bytes trickling in do not extend it.
- a header size cap: more than `max_header_bytes` without the end of the headers closes it
  (uvicorn's h11 parser has this limit, httptools has none). After a response given
  before the request's body was all read, what follows is that body, which the parser
  skips, so only the deadline applies then.
- a body deadline: a request's body must be all in `body_timeout_s` after its headers,
  or the request ends with a 408 (`BodyDeadline`, an ASGI layer: it only waits while the
  application is reading the body, so flow control never counts against the client).
- a connection cap: past `max_connections`, a new connection evicts the connection that
  has waited longest for headers (idle keep-alive or slow), so that idle sockets can never
  lock out a client that sends its request at once. When every connection has a request
  in progress, the new one gets a 503 and is closed.

The guard is a subclass of uvicorn's own protocol (httptools when installed, else h11),
hooked where a connection opens, receives bytes, finishes a response and closes.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from uvicorn.protocols.http.h11_impl import H11Protocol

from .errors import EngineOverloaded, RequestTimeout

if TYPE_CHECKING:
    from starlette.types import ASGIApp, Message, Receive, Scope, Send

    from .server_config import ServerConfig

    _UvicornHttp = H11Protocol  # the attributes the guard uses exist on both protocols
else:
    _UvicornHttp = object


@dataclass(frozen=True, slots=True)
class ConnectionLimits:
    header_timeout_s: float
    max_header_bytes: int
    max_connections: int


def _refusal() -> bytes:
    error = EngineOverloaded("too many connections to this gateway; retry shortly", retry_after=1)
    body = json.dumps(error.body()).encode()
    return (
        b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\n"
        b"retry-after: 1\r\nconnection: close\r\ncontent-length: %d\r\n\r\n%s" % (len(body), body)
    )


class _HeaderGuard(_UvicornHttp):
    limits: ClassVar[ConnectionLimits]
    # Connections waiting for a request's headers, oldest first (a dict keeps the order).
    waiting: ClassVar[dict[_HeaderGuard, None]]

    _deadline: asyncio.TimerHandle | None = None
    _cycle_when_armed: Any = None  # uvicorn replaces `cycle` once a request's headers are in
    _header_bytes = 0
    _counting = True  # whether bytes received count as header bytes

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if len(self.connections) > self.limits.max_connections and not self._evict_idle():
            transport.write(_refusal())
            transport.close()
            return
        self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self._deadline is None:
            return
        if self.cycle is not self._cycle_when_armed:  # the headers are complete
            self._disarm()
            return
        if self._counting:
            self._header_bytes += len(data)
            if self._header_bytes > self.limits.max_header_bytes:
                self._close()

    def on_response_complete(self) -> None:
        # Answered before the request's body was all in (a 401 or 413, say): the bytes that
        # follow are the rest of that body, which the parser skips, not headers to count.
        body_pending = self.cycle is not None and self.cycle.more_body
        super().on_response_complete()
        # The next request's headers are due; unless a pipelined request already started.
        if not self.transport.is_closing() and (self.cycle is None or self.cycle.response_complete):
            self._arm(count_bytes=not body_pending)

    def _arm(self, count_bytes: bool = True) -> None:
        self._disarm()
        self._header_bytes = 0
        self._counting = count_bytes
        self._cycle_when_armed = self.cycle
        self._deadline = self.loop.call_later(self.limits.header_timeout_s, self._close)
        self.waiting[self] = None

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None
        self.waiting.pop(self, None)

    def _close(self) -> None:
        self._disarm()
        if not self.transport.is_closing():
            self.transport.close()

    def _evict_idle(self) -> bool:
        """Close the connection that has waited longest for headers; False if none waits."""
        for other in self.waiting:
            if other is not self:
                other._close()
                return True
        return False


class BodyDeadline:
    """408 for a request whose body is not all in `seconds` after the application starts
    reading it. Once the body is complete, `receive` is left alone (it then waits for a
    disconnect, as long as a streamed response lasts)."""

    def __init__(self, app: ASGIApp, seconds: float) -> None:
        self.app = app
        self.seconds = seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        loop = asyncio.get_running_loop()
        deadline: float | None = None
        body_done = False

        async def timed() -> Message:
            nonlocal deadline, body_done
            if body_done:
                return await receive()
            if deadline is None:
                deadline = loop.time() + self.seconds
            try:
                message = await asyncio.wait_for(receive(), max(0.0, deadline - loop.time()))
            except TimeoutError:
                raise RequestTimeout(
                    f"the request body was not received within {self.seconds:g} s"
                ) from None
            if message["type"] != "http.request" or not message.get("more_body", False):
                body_done = True
            return message

        await self.app(scope, timed, send)


def guarded_protocol(limits: ConnectionLimits) -> type[asyncio.Protocol]:
    """uvicorn's HTTP/1.1 protocol with the guard, sharing one waiting list per server."""
    base: type[asyncio.Protocol]
    try:
        from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

        base = HttpToolsProtocol
    except ImportError:  # httptools is optional in uvicorn; h11 is always there
        base = H11Protocol
    return type("GuardedHttpProtocol", (_HeaderGuard, base), {"limits": limits, "waiting": {}})


def serve(app: ASGIApp, server: ServerConfig, log_level: str) -> None:
    """Run `app` on `server.host:server.port` until SIGINT/SIGTERM."""
    import uvicorn

    limits = ConnectionLimits(
        header_timeout_s=server.header_timeout_s,
        max_header_bytes=server.max_header_bytes,
        max_connections=server.max_connections,
    )
    uvicorn.run(
        BodyDeadline(app, server.body_timeout_s),
        host=server.host,
        port=server.port,
        log_level=log_level,
        access_log=False,
        timeout_graceful_shutdown=5,
        http=guarded_protocol(limits),
        timeout_keep_alive=server.keep_alive_timeout_s,
        h11_max_incomplete_event_size=server.max_header_bytes,
        # Not uvicorn's `limit_concurrency`: it counts idle connections too and answers
        # 503 to every new request once they reach it, so idle sockets would lock
        # everyone out. The guard's cap evicts them instead.
    )
