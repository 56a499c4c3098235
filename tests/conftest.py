"""Shared servers for the suite: real `souverain serve` processes over loopback.

One embedded server (the real SmolLM2 and e5 models) is started per session and shared;
the SDK tests talk to it exactly as a user's program would.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import yaml

from .databases import database_url  # noqa: F401  (a fixture: SQLite and PostgreSQL)
from .recording_upstream import RecordingUpstream

ADMIN_KEY = "sk-sv-test0000" + "k" * 32


@dataclass
class Server:
    url: str  # http://127.0.0.1:PORT
    key: str
    process: subprocess.Popen[bytes]
    log: Path

    @property
    def v1(self) -> str:
        return self.url + "/v1"

    def client(self) -> httpx.Client:
        return httpx.Client(
            base_url=self.url, headers={"Authorization": f"Bearer {self.key}"}, timeout=120
        )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_server(
    tmp: Path, config: dict[str, object] | None = None, env: dict[str, str] | None = None,
    key: str = ADMIN_KEY, data_dir: Path | None = None,
) -> Server:  # fmt: skip
    tmp.mkdir(parents=True, exist_ok=True)
    port = free_port()
    args = [sys.executable, "-m", "souverain", "serve", "--port", str(port),
            "--data-dir", str(data_dir or tmp / "data"), "--log-level", "warning"]  # fmt: skip
    if config is not None:
        config_path = tmp / "config.yaml"
        config_path.write_text(yaml.safe_dump(config))
        args += ["--config", str(config_path)]
    log = tmp / "server.log"
    environment = {**os.environ, "SOUVERAIN_ADMIN_KEY": key, **(env or {})}
    environment.pop("SOUVERAIN_CONFIG", None)
    process = subprocess.Popen(
        args, stdout=log.open("wb"), stderr=subprocess.STDOUT, env=environment
    )
    server = Server(url=f"http://127.0.0.1:{port}", key=key, process=process, log=log)
    wait_ready(server)
    return server


def wait_ready(server: Server, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"server exited early:\n{server.log.read_text()}")
        try:
            if httpx.get(server.url + "/readyz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    stop_server(server)
    raise RuntimeError(f"server not ready after {timeout}s:\n{server.log.read_text()}")


def stop_server(server: Server) -> None:
    server.process.terminate()
    try:
        server.process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        server.process.kill()
        server.process.wait()


@pytest.fixture(scope="session")
def embedded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """`souverain serve` with no config: the embedded SmolLM2 and e5 models."""
    server = start_server(tmp_path_factory.mktemp("embedded"))
    yield server
    stop_server(server)


@pytest.fixture(scope="module")
def upstream() -> Iterator[RecordingUpstream]:
    """A recording, echoing OpenAI-compatible upstream (a named fake), one per module."""
    recorder = RecordingUpstream().start()
    yield recorder
    recorder.stop()
