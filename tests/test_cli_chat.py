"""`souverain chat` driven as a person's shell would: the real command in a subprocess, its
stdin piped, against real `souverain serve` processes.

The embedded server (SmolLM2) shows two streamed turns, errors and Ctrl-C. A second
gateway routes a model to the recording upstream (a named fake that answers with the
last user message) to show exactly what each turn sends: the history, the system
message, the limits, and what `/reset` and `/exit` do. Agent mode runs on a third,
whose model is the conversation tests' tool-using fake (tests/conversation_upstream.py),
with a real document library (embedded e5) and a real MCP server (tests/mcp_server.py):
a library search with its sources, and an approval asked at the terminal.
"""

from __future__ import annotations

import os
import selectors
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from souverain.cli_chat import default_url

from . import mcp_server
from .conftest import Server, free_port, start_server, stop_server
from .conversation_upstream import AgentUpstream
from .recording_upstream import RecordingUpstream

pytestmark = pytest.mark.model
LOCAL = "smollm2-135m-instruct"
E5 = {"id": "multilingual-e5-small", "type": "embeddings", "max_context_length": 512,
      "deployments": [{"name": "embedded-e5", "engine": "local"}]}  # fmt: skip
TRAVEL = "Die Erstattung der Reisekosten erfolgt binnen 30 Tagen nach Einreichung der Belege."


# `python -m souverain chat`, with Ctrl-C delivered as at a terminal: a test run started in
# the background (`cmd &` in a script) inherits SIGINT ignored, and Python then leaves it so.
CHAT = (
    "import runpy, signal, sys; signal.signal(signal.SIGINT, signal.default_int_handler); "
    "sys.argv = ['souverain', *sys.argv[1:]]; runpy.run_module('souverain', run_name='__main__')"
)


def chat(server: Server | None, *args: str, key: str | None = None) -> subprocess.Popen[bytes]:
    command = [sys.executable, "-c", CHAT, "chat", *args]
    if server is not None:
        command += ["--url", server.url]
    env = {k: v for k, v in os.environ.items() if not k.startswith("SOUVERAIN_")}
    if key or server:
        env["SOUVERAIN_API_KEY"] = key or (server.key if server else "")
    return subprocess.Popen(
        command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env
    )


def run(process: subprocess.Popen[bytes], lines: str, timeout: float = 600) -> tuple[int, str, str]:
    out, err = process.communicate(lines.encode(), timeout=timeout)
    return process.returncode, out.decode(), err.decode()


def reads(process: subprocess.Popen[bytes], timeout: float = 600) -> Iterator[tuple[float, bytes]]:
    """(time, bytes) of each read of the process's stdout, as they arrive, until EOF."""
    assert process.stdout is not None
    selector = selectors.DefaultSelector()
    selector.register(process.stdout, selectors.EVENT_READ)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not selector.select(timeout=1):
            continue
        chunk = os.read(process.stdout.fileno(), 65536)
        if not chunk:
            return
        yield time.monotonic(), chunk
    raise AssertionError("chat still writing after the timeout")


@pytest.fixture(scope="module")
def echo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, RecordingUpstream]]:
    recorder = RecordingUpstream().start()
    config = {"models": [{"id": "echo", "deployments": [recorder.deployment()]}]}
    server = start_server(tmp_path_factory.mktemp("chat-echo"), config)
    try:
        yield server, recorder
    finally:
        stop_server(server)
        recorder.stop()


def test_two_turns_stream_from_the_embedded_model(embedded: Server) -> None:
    process = chat(embedded, "--max-tokens", "24", "--temperature", "0")  # its first chat model
    assert process.stdin is not None
    process.stdin.write(b"Count from one to ten, in words.\nNow name three colours.\n")
    process.stdin.close()
    arrived = list(reads(process))
    assert process.wait(timeout=60) == 0
    assert process.stderr is not None
    err = process.stderr.read().decode()
    out = b"".join(chunk for _, chunk in arrived).decode()
    assert "error" not in err.lower() and "Traceback" not in err, err
    assert out.strip() and out.count("\n") >= 2, out  # two answers, each ends its line
    # Streamed: the answers came in many writes over time, not in one block per turn.
    assert len(arrived) >= 4, arrived
    assert arrived[-1][0] - arrived[0][0] > 0.2


def test_a_refused_key_is_a_clear_message_and_exit_1(embedded: Server) -> None:
    code, out, err = run(chat(embedded, key="sk-sv-" + "x" * 40), "Hello\n", timeout=60)
    assert code == 1 and out == ""
    assert "the server refused the API key (401)" in err and "Traceback" not in err


@pytest.mark.parametrize(
    ("args", "message", "status"),
    [
        (["--model", "no-such-model"], "no model 'no-such-model' on", 1),
        (["--model", LOCAL, "--agent", "x"], "give --agent or --model, not both", 2),
    ],
)
def test_startup_errors(embedded: Server, args: list[str], message: str, status: int) -> None:
    code, out, err = run(chat(embedded, *args), "Hello\n", timeout=60)
    assert code == status and out == "" and message in err, err
    assert "Traceback" not in err


def test_no_server_and_no_key(embedded: Server) -> None:
    dead = Server(url=f"http://127.0.0.1:{free_port()}", key="k", process=embedded.process,
                  log=embedded.log)  # fmt: skip
    code, _, err = run(chat(dead), "Hello\n", timeout=60)
    assert code == 1 and f"cannot reach {dead.url}" in err and "Traceback" not in err
    code, _, err = run(chat(None, "--url", embedded.url), "Hello\n", timeout=60)
    assert code == 1 and "no API key: pass --key or set SOUVERAIN_API_KEY" in err


def test_each_turn_sends_the_history(echo: tuple[Server, RecordingUpstream]) -> None:
    server, recorder = echo
    recorder.received.clear()
    lines = "Bonjour\n/help\n\nEncore une fois\n/reset\nTrois\n/exit\nnever sent\n"
    code, out, err = run(chat(server, "--system", "Be brief.", "--max-tokens", "50"), lines)
    assert (code, out) == (0, "Bonjour\nEncore une fois\nTrois\n"), err
    assert "/reset  start a new conversation" in err and "(new conversation)" in err
    sent = [body["messages"] for body in recorder.received]
    system = {"role": "system", "content": "Be brief."}
    assert sent == [
        [system, {"role": "user", "content": "Bonjour"}],
        [
            system,
            {"role": "user", "content": "Bonjour"},
            {"role": "assistant", "content": "Bonjour"},
            {"role": "user", "content": "Encore une fois"},
        ],
        [system, {"role": "user", "content": "Trois"}],
    ]
    assert all(body["stream"] is True and body["max_tokens"] == 50 for body in recorder.received)


def test_a_failed_turn_is_printed_and_the_chat_goes_on(
    echo: tuple[Server, RecordingUpstream],
) -> None:
    server, _ = echo
    secret = "AKIA" + "IOSFODNN7EXAMPLE"  # an AWS key id: restricted, refused upstream
    code, out, err = run(chat(server), f"my key is {secret}\nStill there?\n")
    assert out == "Still there?\n", err
    assert code == 1  # one turn failed
    assert "error: 403:" in err and "Traceback" not in err


def test_ctrl_c_stops_an_answer_then_leaves_at_the_prompt(embedded: Server) -> None:
    process = chat(embedded, "--max-tokens", "400", "--temperature", "0")
    assert process.stdin is not None and process.stderr is not None
    process.stdin.write(b"Write a long story about a lighthouse keeper.\n")
    process.stdin.flush()
    first = next(reads(process))  # the answer started
    assert first[1]
    process.send_signal(signal.SIGINT)  # stops the answer, not the chat
    told = b""
    watchdog = threading.Timer(300, process.kill)  # a chat that ignores it fails, not hangs
    watchdog.start()
    try:
        while b"[stopped]" not in told:  # back at the prompt
            line = process.stderr.readline()
            assert line, told
            told += line
    finally:
        watchdog.cancel()
    process.send_signal(signal.SIGINT)  # at the prompt: leaves
    assert process.wait(timeout=60) == 130
    err = (told + process.stderr.read()).decode()
    assert "Traceback" not in err, err


# ---- agent mode ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def agents(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A gateway whose `cloud` model is the tool-using fake, with the agents Librarian (a
    document library) and Clerk (an MCP connector's `add`, approval required)."""
    upstream = AgentUpstream().start()
    mcp = mcp_server.start()
    config = {"models": [{"id": "cloud", "deployments": [upstream.deployment()]}, E5]}
    server = start_server(tmp_path_factory.mktemp("chat-agents"), config)
    try:
        http = server.client()
        library = http.post("/v1/libraries", json={"name": "handbook"}).json()
        files = {"file": ("travel.md", TRAVEL.encode(), "text/markdown")}
        document = http.post(f"/v1/libraries/{library['id']}/documents", files=files).json()
        status = f"/v1/libraries/{library['id']}/documents/{document['id']}/status"
        for _ in range(1800):
            if http.get(status).json()["process_status"] == "done":
                break
            time.sleep(0.1)
        connector = {"name": "crm", "url": mcp.mcp_url}
        assert http.post("/admin/v1/connectors", json=connector).status_code in (200, 201)
        tools = {
            "Librarian": [{"type": "document_library", "library_ids": [library["id"]]}],
            "Clerk": [{"type": "connector", "connector_id": "crm", "tool_configuration":
                       {"include": ["add"], "requires_confirmation": ["add"]}}],
        }  # fmt: skip
        for name, agent_tools in tools.items():
            made = http.post(
                "/v1/agents", json={"model": "cloud", "name": name, "tools": agent_tools}
            )
            assert made.status_code in (200, 201), made.text
        yield server
    finally:
        stop_server(server)
        mcp.stop()
        upstream.stop()


def conversations(server: Server) -> list[dict[str, object]]:
    found = httpx.get(
        server.v1 + "/conversations", headers={"Authorization": f"Bearer {server.key}"}
    )
    assert found.status_code == 200, found.text
    data = found.json()
    return list(data if isinstance(data, list) else data["data"])


def test_an_agent_searches_its_library_and_cites_it(agents: Server) -> None:
    before = len(conversations(agents))
    lines = 'use:search_library {"query": "Reisekosten"}\nBonjour\n'
    code, out, err = run(chat(agents, "--agent", "Librarian"), lines)
    assert code == 0, err
    first_answer, after = out.split("Sources:\n", 1)
    assert first_answer.startswith("result: Passages found (cite them by number, like [1]):")
    assert "binnen 30 Tagen" in first_answer
    assert after.startswith("  [1] travel.md (library 'handbook')\n"), out
    second_answer = after.split("\n")[1]  # the line after the one source
    assert second_answer.strip(), out
    # The second line was appended to the same conversation: one conversation in all.
    assert "[running tool search_library]" in err
    assert len(conversations(agents)) == before + 1


def test_an_approval_is_asked_at_the_terminal(agents: Server) -> None:
    lines = 'use:add {"a": 2, "b": 3}\ny\nuse:add {"a": 5, "b": 5}\nno\n'
    code, out, err = run(chat(agents, "--agent", "Clerk"), lines)
    assert code == 0, err
    assert 'The agent wants to run add with {"a": 2, "b": 3}. Allow? [y/N]' in err
    assert err.count("[allowed]") == 1 and err.count("[denied]") == 1
    assert out.startswith("result: 5\n"), out
    assert out.count("result:") == 2  # the denial came back to the model as the result


def test_an_unknown_agent_is_a_clear_error(agents: Server) -> None:
    code, out, err = run(chat(agents, "--agent", "Nobody"), "Hello\n", timeout=60)
    assert code == 1 and out == "" and "no agent named or numbered 'Nobody'" in err


def test_the_default_url_is_where_serve_listens(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in [name for name in os.environ if name.startswith("SOUVERAIN_")]:
        monkeypatch.delenv(name)
    assert default_url(None) == "http://127.0.0.1:8000"
    config = tmp_path / "souverain.yaml"
    config.write_text("server:\n  host: 0.0.0.0\n  port: 9123\n")
    assert default_url(str(config)) == "http://127.0.0.1:9123"
    monkeypatch.setenv("SOUVERAIN_SERVER__PORT", "9124")
    assert default_url(str(config)) == "http://127.0.0.1:9124"
    config.write_text("server:\n  host: '::1'\n")
    monkeypatch.delenv("SOUVERAIN_SERVER__PORT")
    assert default_url(str(config)) == "http://[::1]:8000"
    config.write_text("server: {port: not-a-port}\n")  # a bad file: the usual default
    assert default_url(str(config)) == "http://127.0.0.1:8000"
