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
* the embedded SmolLM2-135M, at its trained 8,192-token context: Vibe's first request does
  not fit, and what is checked is that the refusal is prompt and clear to Vibe's user
  (Vibe then tries to compact, which cannot fit either, and stops with that error).
  docs/vibe.md says what was measured with a shorter prompt (bench/vibe_task.py --lean).
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
    observed_run,
    python_for_vibe,
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
    run, seen = observed_run(server, tmp, model=model, backend=backend, **options)
    assert run.export, f"Vibe wrote no export.json:\n{run.output[-3000:]}"
    assert seen.answers, "Vibe sent Souverain nothing"
    assert not seen.refused, seen.answers
    assert seen.requests > 0 and seen.errors == 0
    counted = (seen.prompt_tokens, seen.completion_tokens)
    assert run.usage == counted, (run.usage, counted)  # each token counted once, by both
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


def assert_refused_for_its_size(server: Server, tmp: Path, model: str, backend: str) -> None:
    """Vibe's first request (~8,700 SmolLM2 tokens: a 4,742-token system prompt and ten
    tools) does not fit SmolLM2's 8,192-token context. Souverain must say so at once, in
    the error shape both of Vibe's clients read, and Vibe must show it and stop."""
    run, seen = observed_run(server, tmp, model=model, backend=backend, max_turns=3)
    assert run.returncode not in (0, 3), run.output[-3000:]
    message = (run.export.get("error") or {}).get("message") or run.output
    assert "context" in message.lower(), message  # "…continuation context cannot fit…"
    assert set(seen.answers) <= {("POST", "/v1/chat/completions", 400),
                                 ("GET", "/v1/models/{id}", 200)}, seen.answers  # fmt: skip
    assert seen.refused, seen.answers  # answered (no retry loop, no 5xx): 400 only
    assert seen.errors == seen.requests  # (a refusal this early leaves no usage row)
    assert (seen.prompt_tokens, seen.completion_tokens) == (0, 0) == run.usage


@pytest.mark.parametrize("backend", BACKENDS)
def test_vibe_on_the_embedded_model(vibe: Path, embedded: Server, tmp_path: Path, backend: str) -> None:  # fmt: skip
    assert_refused_for_its_size(embedded, tmp_path, "smollm2", backend)
