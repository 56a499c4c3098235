"""A real MCP server for the tests (the official `mcp` SDK's MCPServer), started as its own
process: streamable HTTP on a loopback port, or stdio.

Tools: `get_iban` (a customer's bank account, an IBAN: what the DLP must catch before a
foreign deployment sees it), `add`, `slow` (sleeps: for timeouts), `fail` (a tool error).

Beside `/mcp`, for the address rule: `/redirect/mcp` answers 307 to `/trap` on another
host name (localhost instead of 127.0.0.1, so another origin), `/trap` counts the requests
that reach it, and `/hits` reports that count. With `--token`, `/mcp` needs
`Authorization: Bearer <token>` (a connector's secret header must arrive).

From a test: `server = start(token="..."); server.mcp_url; server.hits(); server.stop()`.
By hand: `python tests/mcp_server.py --port 8765` or `python tests/mcp_server.py --stdio`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mcp.server.mcpserver import MCPServer

IBAN = "FR76 3000 6000 0112 3456 7890 189"
SCRIPT = Path(__file__).resolve()


def build() -> MCPServer:
    server = MCPServer("souverain-test-crm")

    @server.tool()
    def get_iban(customer: str) -> str:
        """The bank account (IBAN) a customer pays from."""
        return f"Customer {customer} pays from {IBAN}."

    @server.tool()
    def add(a: int, b: int) -> int:
        """Add two integers."""
        return a + b

    @server.tool()
    async def slow(seconds: float) -> str:
        """Wait, then answer (for timeouts)."""
        await asyncio.sleep(seconds)
        return "done"

    @server.tool()
    def fail(reason: str) -> str:
        """Always fails with the reason given."""
        raise ValueError(f"refused: {reason}")

    return server


def http_app(port: int, token: str | None) -> Any:
    inner = build().streamable_http_app(host="127.0.0.1")
    hits = {"trap": 0}

    async def reply(send: Any, status: int, body: bytes, headers: list[Any]) -> None:
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            path = scope["path"]
            if path.startswith("/redirect"):
                location = f"http://localhost:{port}/trap".encode()
                return await reply(send, 307, b"", [(b"location", location)])
            if path == "/trap":
                hits["trap"] += 1
                return await reply(send, 200, b"{}", [(b"content-type", b"application/json")])
            if path == "/hits":
                body = json.dumps(hits).encode()
                return await reply(send, 200, body, [(b"content-type", b"application/json")])
            headers = dict(scope["headers"])
            if token is not None and headers.get(b"authorization") != f"Bearer {token}".encode():
                return await reply(send, 401, b"unauthorized", [])
        await inner(scope, receive, send)

    return app


@dataclass
class RunningServer:
    port: int
    process: subprocess.Popen[bytes]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def mcp_url(self) -> str:
        return self.url + "/mcp"

    @property
    def redirect_url(self) -> str:
        return self.url + "/redirect/mcp"

    def hits(self) -> int:
        with urllib.request.urlopen(self.url + "/hits", timeout=5) as response:
            return int(json.loads(response.read())["trap"])

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def stdio_command() -> list[str]:
    """The command line that runs this server over stdio (for a stdio connector)."""
    return [sys.executable, str(SCRIPT), "--stdio"]


def start(token: str | None = None, timeout: float = 30) -> RunningServer:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    args = [sys.executable, str(SCRIPT), "--port", str(port)]
    if token is not None:
        args += ["--token", token]
    process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    server = RunningServer(port, process)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError("the test MCP server exited early")
        try:
            server.hits()
            return server
        except OSError:
            time.sleep(0.05)
    server.stop()
    raise RuntimeError(f"the test MCP server did not start within {timeout} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--token")
    parser.add_argument("--stdio", action="store_true")
    options = parser.parse_args()
    if options.stdio:
        build().run("stdio")
        return
    import uvicorn

    app = http_app(options.port, options.token)
    uvicorn.run(app, host="127.0.0.1", port=options.port, log_level="warning")


if __name__ == "__main__":
    main()
