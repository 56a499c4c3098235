"""Talking to a connector's MCP server with the official `mcp` SDK, and nowhere else.

Each operation opens a session, does one thing and closes it: a connector holds no
connection between calls, so any replica can serve any conversation and a server that
restarts costs nothing. The whole operation (connect, handshake, call) runs under the
connector's timeout.

The address rule: an HTTP connector reaches only the origin (scheme, host, port) it was
registered with. The HTTP client never follows redirects itself, and a hook on every
request refuses one for another origin before it is sent; a redirect answer pointing
elsewhere is named in a clear refusal. The SDK follows same-origin redirects on its own
(a trailing slash), which stay within the rule.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any, TypeVar

import anyio
import httpx2
from mcp import Client, StdioServerParameters
from mcp.client.streamable_http import streamable_http_client
from mcp_types import CallToolResult, Implementation, Tool

from ..errors import EngineError
from .store import Connector

log = logging.getLogger("souverain.connectors")
T = TypeVar("T")
MAX_OUTPUT_CHARS = 100_000  # a tool's text the model reads; the rest is cut, and said so
MAX_TOOLS = 500  # tools listed from one connector
CLIENT_INFO = Implementation(name="souverain", version="0.1.0")


class ConnectorFailed(EngineError):
    default_code = "connector_error"


class ConnectorTimeout(ConnectorFailed):
    status_code = 504
    default_code = "connector_timeout"


class ConnectorRedirectRefused(ConnectorFailed):
    default_code = "connector_redirect_refused"


class _OffOrigin(Exception):
    """Raised inside the HTTP client: a request for another origin is never sent."""


def _origin(url: httpx2.URL) -> tuple[str, str, int | None]:
    default = {"http": 80, "https": 443}.get(url.scheme)
    return url.scheme, url.host.lower(), url.port or default


class OriginGuard:
    """The one origin a connector may reach; notes a redirect that points elsewhere, and
    the status of the last failed answer (the SDK reports only that one failed)."""

    def __init__(self, url: str) -> None:
        self.allowed = _origin(httpx2.URL(url))
        self.refused: str | None = None  # where a redirect wanted to go
        self.failed_status: int | None = None

    async def on_request(self, request: httpx2.Request) -> None:
        if _origin(request.url) != self.allowed:
            self.refused = self.refused or _shown(request.url)
            raise _OffOrigin(self.refused)

    async def on_response(self, response: httpx2.Response) -> None:
        if response.is_redirect:
            location = response.headers.get("location", "")
            try:
                target = response.request.url.join(location)
            except (httpx2.InvalidURL, ValueError):
                self.refused = self.refused or "an unreadable location"
                return
            if _origin(target) != self.allowed:
                self.refused = self.refused or _shown(target)
        elif response.status_code >= 400:
            self.failed_status = response.status_code


def _shown(url: httpx2.URL) -> str:
    """A location for a message: no userinfo, query or fragment (they may carry secrets)."""
    return str(url.copy_with(userinfo=b"", query=None, fragment=None))[:300]


@asynccontextmanager
async def _session(connector: Connector, guard: OriginGuard | None) -> AsyncIterator[Client]:
    timeout = connector.timeout_s
    if connector.transport == "stdio":
        assert connector.command
        program, *args = connector.command
        params = StdioServerParameters(command=program, args=args, env=connector.env or None)
        async with Client(
            params, cache=None, read_timeout_seconds=timeout, client_info=CLIENT_INFO
        ) as client:
            yield client
        return
    assert connector.url is not None and guard is not None
    http = httpx2.AsyncClient(
        headers=connector.headers,
        timeout=httpx2.Timeout(timeout),
        follow_redirects=False,
        event_hooks={"request": [guard.on_request], "response": [guard.on_response]},
    )
    async with http:
        transport = streamable_http_client(connector.url, http_client=http)
        async with Client(
            transport, cache=None, read_timeout_seconds=timeout, client_info=CLIENT_INFO
        ) as client:
            yield client


async def _run(connector: Connector, operation: Callable[[Client], Awaitable[T]]) -> T:
    """One operation on a fresh session, under the timeout; every failure a clear error
    naming the connector, never a stack trace nor a secret."""
    guard = OriginGuard(connector.url) if connector.url is not None else None
    name = connector.name
    try:
        with anyio.fail_after(connector.timeout_s):
            async with _session(connector, guard) as client:
                return await operation(client)
    except Exception as exc:  # the SDK raises from task groups: groups, MCPError, OSError...
        if guard is not None and guard.refused is not None:
            raise ConnectorRedirectRefused(
                f"connector {name!r} redirected to another address ({guard.refused}); "
                "a connector reaches only the address it was registered with"
            ) from None
        if _is_timeout(exc):
            raise ConnectorTimeout(
                f"connector {name!r} did not answer within {connector.timeout_s:g} s"
            ) from None
        log.warning("connector %s failed: %s", connector.id, type(exc).__name__)
        reason = _reason(exc)
        if guard is not None and guard.failed_status is not None:
            reason = f"its server answered HTTP {guard.failed_status}"
        raise ConnectorFailed(f"connector {name!r} failed: {reason}") from None


def _leaves(exc: BaseException) -> list[BaseException]:
    if isinstance(exc, BaseExceptionGroup):
        return [leaf for inner in exc.exceptions for leaf in _leaves(inner)]
    return [exc]


def _is_timeout(exc: BaseException) -> bool:
    return any(isinstance(leaf, TimeoutError | httpx2.TimeoutException) for leaf in _leaves(exc))


def _reason(exc: BaseException) -> str:
    """The first readable cause, short: the server's own words, or the error's kind."""
    for leaf in _leaves(exc):
        if isinstance(leaf, httpx2.HTTPStatusError):
            return f"HTTP {leaf.response.status_code}"
        if isinstance(leaf, httpx2.ConnectError | ConnectionError):
            return "could not connect"
        if isinstance(leaf, OSError):
            return f"could not start the command ({leaf.strerror or type(leaf).__name__})"
        text = str(leaf).strip().splitlines()
        if text:
            return text[0][:300]
    return type(exc).__name__


async def list_tools(connector: Connector) -> list[Tool]:
    async def listing(client: Client) -> list[Tool]:
        tools: list[Tool] = []
        cursor: str | None = None
        while len(tools) < MAX_TOOLS:
            page = await client.list_tools(cursor=cursor)
            tools.extend(page.tools)
            cursor = page.next_cursor
            if cursor is None:
                break
        return tools[:MAX_TOOLS]

    return await _run(connector, listing)


async def call_tool(connector: Connector, name: str, arguments: dict[str, Any]) -> CallToolResult:
    async def calling(client: Client) -> CallToolResult:
        return await client.call_tool(name, arguments)

    return await _run(connector, calling)


def result_text(result: CallToolResult) -> str:
    """What the model reads: the text parts; other content named, not inlined."""
    parts: list[str] = []
    for block in result.content:
        kind = getattr(block, "type", "content")
        if kind == "text":
            parts.append(str(getattr(block, "text", "")))
        elif kind == "resource":
            resource = getattr(block, "resource", None)
            text = getattr(resource, "text", None)
            parts.append(str(text) if text is not None else "[binary resource]")
        else:
            mime = getattr(block, "mime_type", None)
            parts.append(f"[{kind}{': ' + mime if mime else ''}]")
    if not parts and result.structured_content is not None:
        parts.append(json.dumps(result.structured_content, ensure_ascii=False))
    text = "\n".join(parts)
    if len(text) > MAX_OUTPUT_CHARS:
        text = text[:MAX_OUTPUT_CHARS] + f"\n[cut: the tool returned {len(text)} characters]"
    return text
