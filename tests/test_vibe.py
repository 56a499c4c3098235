"""Mistral Vibe, unchanged, run headless (`vibe -p … --trust --auto-approve`) against a real
`souverain serve`, with each of its two backends: `generic` (its own OpenAI-style client:
`stream_options.include_usage`, adds up the usage of every chunk) and `mistral` (the mistralai
SDK inside Vibe: no include_usage, rejects a tool-call chunk without a function name).

The task needs Vibe's tools: read input.txt (an e-mail address), write answer.txt. Each run
is checked for: exit status 0, the answer file, Souverain's usage rows equal to the tokens
Vibe reports (export.json), and no 4xx/5xx in Souverain's answers to Vibe (/metrics).

Two kinds of model behind the gateway:
* `ScriptedAgent`, a named fake of the model only (an upstream that plays the agent's part
  from the conversation it is sent: call read_file, then write_file with what it read, then
  answer), behind both the `openai` and the `mistral` engines, with DLP pseudonymizing the
  address: everything Vibe and Souverain do is real, and the task must succeed every time.
* real models (the embedded SmolLM2-135M; llama.cpp's own server in an `openai`
  deployment): SmolLM2-135M is far too small to follow Vibe's ~4,700-token system prompt,
  so the answer file is not asserted there (docs/vibe.md has the measured rates, from
  bench/vibe_task.py); the protocol checks are.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from .conftest import Server, start_server, stop_server
from .vibe_runner import (
    ADDRESS,
    EXPECTED,
    VIBE,
    ScriptedAgent,
    VibeRun,
    answers_by_status,
    python_for_vibe,
    run_vibe,
    start_llama_cpp_server,
    usage_by_model,
)

pytestmark = pytest.mark.model
BACKENDS = ["generic", "mistral"]


@pytest.fixture(scope="module")
def vibe() -> Path:
    if not python_for_vibe():
        pytest.skip("Mistral Vibe needs Python >= 3.12, and this machine has none")
    assert VIBE.exists(), "a Python >= 3.12 exists but .venv-vibe does not: ./install.sh test"
    return VIBE


@pytest.fixture(scope="module")
def scripted() -> Iterator[ScriptedAgent]:
    agent = ScriptedAgent()
    agent.start()
    yield agent
    agent.stop()


@pytest.fixture(scope="module")
def gateway(scripted: ScriptedAgent, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """The scripted agent behind the `openai` and the `mistral` engines, DLP pseudonymizing."""
    cloud = scripted.deployment(operator="pseudonymize")
    mistral = {**cloud, "engine": "mistral", "base_url": scripted.url.removesuffix("/v1")}
    models = [{"id": f"scripted-{engine}", "deployments": [{**deployment, "name": engine}]}
              for engine, deployment in (("openai", cloud), ("mistral", mistral))]  # fmt: skip
    rule = {"operators": ["pseudonymize"], "actions": {"*": "pseudonymize"}}
    dlp = {"destinations": [rule], "raises": {"*": "confidential"}}
    server = start_server(tmp_path_factory.mktemp("vibe-gw"), {"models": models, "dlp": dlp})
    yield server
    stop_server(server)


def run_and_check(server: Server, tmp: Path, model: str, backend: str, **options: Any) -> VibeRun:
    """One Vibe run; Souverain's records of it must match what Vibe reports."""
    usage_before, answers_before = usage_by_model(server), answers_by_status(server)
    run = run_vibe(server, tmp, model=model, backend=backend, **options)
    assert run.export, f"Vibe wrote no export.json:\n{run.output[-3000:]}"
    answers = answers_by_status(server)
    to_vibe = {key: count - answers_before.get(key, 0) for key, count in answers.items()
               if key[1].startswith("/v1/") and count > answers_before.get(key, 0)}  # fmt: skip
    assert to_vibe, "Vibe sent Souverain nothing"
    assert all(status < 400 for _, _, status in to_vibe), to_vibe
    before = usage_before.get(model, (0, 0, 0, 0))
    after = usage_by_model(server)[model]
    requests, errors, prompt, completion = (
        now - then for now, then in zip(after, before, strict=True)
    )
    assert requests > 0 and errors == 0
    assert run.usage == (prompt, completion), (run.usage, prompt, completion)  # counted once
    return run


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("engine", ["openai", "mistral"])
def test_vibe_completes_the_task_through_each_engine(
    vibe: Path, gateway: Server, scripted: ScriptedAgent, tmp_path: Path, engine: str,
    backend: str,
) -> None:  # fmt: skip
    before = len(scripted.received)
    run = run_and_check(gateway, tmp_path, f"scripted-{engine}", backend)
    assert run.returncode == 0, run.output[-3000:]
    assert run.answer == EXPECTED  # the placeholder came back whole in write_file's arguments
    sent = json.dumps(scripted.received[before:], ensure_ascii=False)
    assert len(scripted.received) - before == 3  # read, write, answer: no retry
    assert ADDRESS not in sent and "example.fr" not in sent  # pseudonymized on the way out
    first = scripted.received[before]
    assert len(first["tools"]) >= 2 and first["stream"] is True


@pytest.fixture(scope="module")
def llama_gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """llama.cpp's own server (function-calling chat format) as an `openai` deployment."""
    process, url = start_llama_cpp_server(tmp_path_factory.mktemp("vibe-llama"))
    deployment = {"engine": "openai", "base_url": url + "/v1", "upstream_model": "smollm2"}
    config: dict[str, object] = {"models": [{"id": "llama-smollm2", "deployments": [deployment]}]}
    server = start_server(tmp_path_factory.mktemp("vibe-llama-gw"), config)
    yield server
    stop_server(server)
    process.terminate()
    process.wait(timeout=30)


@pytest.mark.parametrize("backend", BACKENDS)
def test_vibe_on_the_embedded_model(vibe: Path, embedded: Server, tmp_path: Path, backend: str) -> None:  # fmt: skip
    run = run_and_check(embedded, tmp_path, "smollm2", backend, max_turns=3)
    assert run.returncode in (0, 3), run.output[-3000:]  # 3: the turn limit, not an error
    assert run.export["error"] is None, run.export["error"]


@pytest.mark.parametrize("backend", BACKENDS)
def test_vibe_through_llama_cpp_server(
    vibe: Path, llama_gateway: Server, tmp_path: Path, backend: str
) -> None:
    run = run_and_check(llama_gateway, tmp_path, "llama-smollm2", backend, max_turns=3)
    assert run.returncode in (0, 3), run.output[-3000:]
    assert run.export["error"] is None, run.export["error"]
