"""Shared servers for the suite: real `souverain serve` processes over loopback.

One embedded server (the real SmolLM2 and e5 models) is started per session and shared;
the SDK tests talk to it exactly as a user's program would. So are llama.cpp's own servers
(tests/llama_server.py) and the one gateway whose `openai` deployment points at them: every
module that relays to a real upstream uses the same processes rather than starting its own.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import yaml

from . import llama_server, processes
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
    if processes.answers(server.process, server.url + "/readyz", timeout):
        return
    how = "exited early" if server.process.poll() is not None else f"not ready after {timeout}s"
    stop_server(server)
    raise RuntimeError(f"server {how}:\n{server.log.read_text()}")


def stop_server(server: Server) -> None:
    processes.stop(server.process)


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


@pytest.fixture(scope="session")
def llama_chat(tmp_path_factory: pytest.TempPathFactory) -> Iterator[llama_server.LlamaServer]:
    """llama.cpp's server for chat, text completions and tool calls, one per session."""
    log = tmp_path_factory.mktemp("llama-cpp-chat") / "server.log"
    server = llama_server.wait_ready(llama_server.start_chat(log, free_port()))
    yield server
    llama_server.stop(server)


@pytest.fixture(scope="session")
def llama_embed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[llama_server.LlamaServer]:
    """llama.cpp's server for embeddings (the same GGUF, mean-pooled), one per session."""
    log = tmp_path_factory.mktemp("llama-cpp-embed") / "server.log"
    server = llama_server.wait_ready(llama_server.start_embeddings(log, free_port()))
    yield server
    llama_server.stop(server)


@pytest.fixture(scope="session")
def llama_servers(
    llama_chat: llama_server.LlamaServer, llama_embed: llama_server.LlamaServer
) -> tuple[str, str]:
    """Both llama.cpp servers' URLs (chat, embeddings), without `/v1`."""
    return llama_chat.url, llama_embed.url


@pytest.fixture(scope="session")
def llama_gateway(
    llama_chat: llama_server.LlamaServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    """Souverain with one model, `small`, an `openai` deployment on llama.cpp's server.

    Default routing and DLP: what a plain relay to a real upstream looks like. FIM is
    declared so that the Mistral SDK's `fim` calls reach the upstream's completions.
    """
    deployment = {"engine": "openai", "base_url": llama_chat.v1, "upstream_model": "smollm2"}
    config = {"models": [{"id": "small", "deployments": [deployment],
                          "capabilities": {"completion_fim": True, "function_calling": False}}]}  # fmt: skip
    server = start_server(tmp_path_factory.mktemp("gw-llama"), config)
    yield server
    stop_server(server)


def relay_config(upstream: RecordingUpstream) -> dict[str, object]:
    """The models and DLP rules of the modules that relay to a recording upstream, together.

    * `cloud` (sent upstream as `up-model`) and `mistral-cloud`: an EU cloud that gets
      pseudonyms (test_logprobs.py, test_text_completions.py);
    * `{openai,mistral}-{pseudonymize,allow}`: each engine with DLP pseudonymizing or not,
      the operator naming the action (test_stream_shapes.py);
    * `smollm2-dlp`: the embedded model with DLP pseudonymizing even on-prem, so that the
      restorer runs in its streams (test_stream_shapes.py).

    Every detected type raises the request to confidential, which all of them may receive.
    """
    cloud = upstream.deployment()
    mistral = {**cloud, "engine": "mistral", "base_url": upstream.url.removesuffix("/v1")}
    models: list[dict[str, object]] = [
        {"id": "cloud", "deployments": [{**cloud, "upstream_model": "up-model"}]},
        {"id": "mistral-cloud", "deployments": [mistral]},
    ]
    for engine, deployment in (("openai", cloud), ("mistral", mistral)):
        for action in ("pseudonymize", "allow"):
            name = f"{engine}-{action}"
            models.append({"id": name, "deployments": [{**deployment, "name": name, "operator": action}]})  # fmt: skip
    models.append({"id": "smollm2-dlp", "deployments": [{"name": "local-dlp", "engine": "local"}]})
    destinations = [
        {"operators": ["EU Cloud"], "actions": {"*": "pseudonymize"}},
        *({"operators": [action], "actions": {"*": action}} for action in ("pseudonymize", "allow")),
        {"jurisdictions": ["on-prem"], "actions": {"*": "pseudonymize"}},
    ]  # fmt: skip
    return {
        "models": models,
        "dlp": {"destinations": destinations, "raises": {"*": "confidential"}},
    }


@pytest.fixture(scope="session")
def relay_upstream() -> Iterator[RecordingUpstream]:
    """The recording upstream (a named fake) behind `relay_gateway`."""
    recorder = RecordingUpstream().start()
    yield recorder
    recorder.stop()


@pytest.fixture(scope="session")
def relay_gateway(
    relay_upstream: RecordingUpstream, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    """One gateway for every module that relays to the recording upstream (relay_config)."""
    server = start_server(tmp_path_factory.mktemp("relay-gw"), relay_config(relay_upstream))
    yield server
    stop_server(server)
