"""A `souverain serve` for a benchmark: its own data directory, a known admin key, ready.

Shared by the benchmarks that measure one server from outside (bench/embedded_context.py,
bench/hostile_requests.py), so each says only what it measures.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import yaml


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def served(
    config: dict[str, Any], *, key: str, ready_s: float = 120.0, kill: bool = False
) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """(base URL, process) of a server on `config`, once /readyz answers. `kill`: stop it
    with SIGKILL (a prompt being evaluated is native code, and SIGTERM waits for it)."""
    with tempfile.TemporaryDirectory() as tmp:
        config_path = Path(tmp) / "config.yaml"
        config_path.write_text(yaml.safe_dump(config))
        port = free_port()
        server = subprocess.Popen(
            [sys.executable, "-m", "souverain", "serve", "--port", str(port), "--config",
             str(config_path), "--data-dir", tmp, "--log-level", "warning"],
            env={**os.environ, "SOUVERAIN_ADMIN_KEY": key},
        )  # fmt: skip
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + ready_s
            while time.monotonic() < deadline:
                try:
                    if httpx.get(url + "/readyz", timeout=2).status_code == 200:
                        break
                except httpx.HTTPError:
                    time.sleep(0.2)
            yield url, server
        finally:
            if kill:
                server.kill()
                server.wait()
            else:
                server.terminate()
                server.wait(30)
