#!/usr/bin/env python3
"""A minimal, fast, OpenAI-compatible upstream for gateway-overhead benchmarks.

Stdlib only (uses uvloop if it happens to be importable). A raw asyncio
HTTP/1.1 server with keep-alive that answers:

  POST /v1/chat/completions   non-streamed JSON, or (``"stream": true``) SSE:
                              a role chunk, 5 content chunks, a final chunk with
                              finish_reason "stop" and usage, then ``data: [DONE]``
  GET  /v1/models             the one configured model (plus any model asked for)
  GET  /health, /healthz      200 {"status":"ok"}

A non-streamed request that offers tools, and whose last message is not a tool's
result, is answered with a call of its first tool (arguments "{}"): an agent's step
calls it, and the step after answers (bench/conversation_steps.py).

No artificial delay: every response is built from pre-encoded fragments and
written with a single ``transport.write``. Bodies are parsed with ``json.loads``
only to read ``model`` and ``stream``. Streamed responses use
``Transfer-Encoding: chunked`` (one HTTP chunk per SSE frame) so the
connection stays reusable.

Usage:  python bench/fast_upstream.py --port 18001 [--host 127.0.0.1] [--model bench-model]
Binds 127.0.0.1 by default. Prints "READY <port>" on stdout once listening.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import signal
import sys
import time

CONTENT_PIECES = ["Hello", " from", " the", " fast", " upstream."]
USAGE = {
    "prompt_tokens": 8,
    "completion_tokens": len(CONTENT_PIECES),
    "total_tokens": 8 + len(CONTENT_PIECES),
}
MAX_HEADER = 64 * 1024
MAX_BODY = 8 * 1024 * 1024

_ids = itertools.count(1)


def _http_response(status: str, body: bytes, ctype: bytes, keep_alive: bool) -> bytes:
    return b"".join(
        (
            b"HTTP/1.1 ",
            status.encode(),
            b"\r\n",
            b"content-type: ",
            ctype,
            b"\r\n",
            b"content-length: ",
            str(len(body)).encode(),
            b"\r\n",
            b"connection: keep-alive\r\n" if keep_alive else b"connection: close\r\n",
            b"\r\n",
            body,
        )
    )


def _chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


def completion_body(model: str) -> bytes:
    return json.dumps(
        {
            "id": f"chatcmpl-{next(_ids)}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": model,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": "".join(CONTENT_PIECES)},
                    "finish_reason": "stop",
                }
            ],
            "usage": USAGE,
        },
        separators=(",", ":"),
    ).encode()


def tool_call_body(model: str, name: str) -> bytes:
    """A call of the tool `name` with no arguments (for agent-step benchmarks)."""
    call = {"id": f"call{next(_ids):05d}", "type": "function",
            "function": {"name": name, "arguments": "{}"}}  # fmt: skip
    message = {"role": "assistant", "content": "", "tool_calls": [call]}
    choice = {"index": 0, "message": message, "finish_reason": "tool_calls"}
    return json.dumps(
        {"id": f"chatcmpl-{next(_ids)}", "object": "chat.completion", "created": int(time.time()),
         "model": model, "choices": [choice], "usage": USAGE},
        separators=(",", ":"),
    ).encode()  # fmt: skip


def tool_to_call(req: dict) -> str | None:
    """The first offered tool, when the request offers tools and its last message is not
    a tool's result: an agent's step calls it, the step after reads its result."""
    tools, messages = req.get("tools") or [], req.get("messages") or []
    if not tools or req.get("tool_choice") == "none" or req.get("stream"):
        return None
    if messages and isinstance(messages[-1], dict) and messages[-1].get("role") == "tool":
        return None
    name = (tools[0].get("function") or {}).get("name") if isinstance(tools[0], dict) else None
    return str(name) if name else None


def stream_frames(model: str) -> list[bytes]:
    base = {
        "id": f"chatcmpl-{next(_ids)}",
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": model,
    }
    frames = []

    def frame(delta: dict, finish: str | None = None, usage: dict | None = None) -> bytes:
        obj = dict(base, choices=[{"index": 0, "delta": delta, "finish_reason": finish}])
        if usage is not None:
            obj["usage"] = usage
        return b"data: " + json.dumps(obj, separators=(",", ":")).encode() + b"\n\n"

    frames.append(frame({"role": "assistant", "content": ""}))
    for piece in CONTENT_PIECES:
        frames.append(frame({"content": piece}))
    frames.append(frame({}, "stop", USAGE))
    frames.append(b"data: [DONE]\n\n")
    return frames


def stream_response(model: str, keep_alive: bool) -> bytes:
    head = (
        b"HTTP/1.1 200 OK\r\n"
        b"content-type: text/event-stream\r\n"
        b"cache-control: no-cache\r\n"
        b"transfer-encoding: chunked\r\n"
        + (b"connection: keep-alive\r\n" if keep_alive else b"connection: close\r\n")
        + b"\r\n"
    )
    return head + b"".join(_chunk(f) for f in stream_frames(model)) + b"0\r\n\r\n"


class UpstreamProtocol(asyncio.Protocol):
    model = "bench-model"

    def __init__(self) -> None:
        self.buf = bytearray()
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport) -> None:  # type: ignore[override]
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.buf += data
        # Handle every complete (possibly pipelined) request in the buffer.
        while self.transport is not None and not self.transport.is_closing():
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                if len(self.buf) > MAX_HEADER:
                    self._fail("431 Request Header Fields Too Large")
                return
            head = bytes(self.buf[:end]).decode("latin-1")
            lines = head.split("\r\n")
            try:
                method, target, version = lines[0].split(" ", 2)
            except ValueError:
                self._fail("400 Bad Request")
                return
            headers = {}
            for line in lines[1:]:
                k, _, v = line.partition(":")
                headers[k.strip().lower()] = v.strip()
            body_start = end + 4
            if "chunked" in headers.get("transfer-encoding", "").lower():
                parsed = self._dechunk(body_start)
                if parsed is None:
                    return  # need more data
                body, consumed_to = parsed
            else:
                try:
                    n = int(headers.get("content-length", "0") or 0)
                except ValueError:
                    self._fail("400 Bad Request")
                    return
                if n > MAX_BODY:
                    self._fail("413 Content Too Large")
                    return
                if len(self.buf) - body_start < n:
                    return  # need more data
                body = bytes(self.buf[body_start : body_start + n])
                consumed_to = body_start + n
            del self.buf[:consumed_to]
            conn = headers.get("connection", "").lower()
            keep_alive = (conn != "close") if version == "HTTP/1.1" else (conn == "keep-alive")
            self.transport.write(self._handle(method, target.split("?", 1)[0], body, keep_alive))
            if not keep_alive:
                self.transport.close()
                return

    def _dechunk(self, pos: int) -> tuple[bytes, int] | None:
        out = bytearray()
        buf = self.buf
        while True:
            eol = buf.find(b"\r\n", pos)
            if eol < 0:
                return None
            size = int(bytes(buf[pos:eol]).split(b";")[0] or b"0", 16)
            pos = eol + 2
            if size == 0:
                # skip (empty) trailer section
                end = buf.find(b"\r\n", pos)
                if end < 0:
                    return None
                return bytes(out), end + 2
            if len(buf) < pos + size + 2:
                return None
            out += buf[pos : pos + size]
            pos += size + 2

    def _fail(self, status: str) -> None:
        if self.transport is not None:
            self.transport.write(_http_response(status, b"", b"text/plain", False))
            self.transport.close()

    def _handle(self, method: str, path: str, body: bytes, keep_alive: bool) -> bytes:
        if method == "POST" and path in ("/v1/chat/completions", "/chat/completions"):
            try:
                req = json.loads(body or b"{}")
            except ValueError:
                return _http_response(
                    "400 Bad Request",
                    b'{"error":{"message":"invalid JSON"}}',
                    b"application/json",
                    keep_alive,
                )
            model = (req.get("model") or self.model) if isinstance(req, dict) else self.model
            if isinstance(req, dict) and req.get("stream"):
                return stream_response(str(model), keep_alive)
            name = tool_to_call(req) if isinstance(req, dict) else None
            if name is not None:
                return _http_response(
                    "200 OK", tool_call_body(str(model), name), b"application/json", keep_alive
                )
            return _http_response(
                "200 OK", completion_body(str(model)), b"application/json", keep_alive
            )
        if method == "GET" and path in ("/v1/models", "/models"):
            data = {
                "object": "list",
                "data": [
                    {"id": self.model, "object": "model", "created": 0, "owned_by": "fast-upstream"}
                ],
            }
            return _http_response(
                "200 OK", json.dumps(data).encode(), b"application/json", keep_alive
            )
        if method == "GET" and path in ("/health", "/healthz", "/"):
            return _http_response("200 OK", b'{"status":"ok"}', b"application/json", keep_alive)
        return _http_response(
            "404 Not Found", b'{"error":{"message":"not found"}}', b"application/json", keep_alive
        )


async def serve(host: str, port: int, model: str) -> None:
    UpstreamProtocol.model = model
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        UpstreamProtocol, host, port, backlog=2048, reuse_address=True
    )
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    print(f"READY {port} loop={type(loop).__module__.split('.')[0]}", flush=True)
    async with server:
        await stop.wait()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=18001)
    ap.add_argument("--model", default="bench-model")
    ap.add_argument(
        "--no-uvloop",
        action="store_true",
        help="use the stdlib asyncio loop even if uvloop is installed",
    )
    args = ap.parse_args()
    if not args.no_uvloop:
        try:
            import uvloop  # type: ignore

            uvloop.install()
        except ImportError:
            pass
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(args.host, args.port, args.model))
    sys.exit(0)


if __name__ == "__main__":
    main()
