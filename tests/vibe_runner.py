"""Run Mistral Vibe (Mistral's coding agent, PyPI `mistral-vibe`) headless against Souverain.

Vibe needs Python >= 3.12 and lives in its own venv, `.venv-vibe`, which `./install.sh test`
makes (tests/vibe/install.sh) when such a Python exists. Each run gets a fresh `VIBE_HOME`
and `HOME` with a config that points one provider at the gateway, and a fresh working
directory; Vibe writes `export.json` (its outcome and the tokens it counted) to `--output-dir`.
Used by tests/test_vibe.py and bench/vibe_task.py, with the upstreams they put behind
the gateway: llama.cpp's own server, and `ScriptedAgent`, a fake of the model only.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from aiohttp import web

from souverain.backends.local_llama import embedded_gguf_path

from .conftest import Server, free_port
from .processes import answers
from .recording_upstream import RecordingUpstream, _stream

ROOT = Path(__file__).resolve().parent.parent
VIBE = ROOT / ".venv-vibe" / "bin" / "vibe"
KEY_VARIABLE = "SOUVERAIN_API_KEY"
TIMED_OUT = -9  # VibeRun.returncode of a run stopped by run_vibe's timeout

# The task: it needs Vibe's tools (read a file, write one) and has one right answer.
ADDRESS = "marie.curie@example.fr"
PROMPT = (
    "Use your tools. Read the file input.txt: it holds one e-mail address. "
    "Then write a file answer.txt whose only line is 'To: ' followed by that address."
)
EXPECTED = f"To: {ADDRESS}"


def python_for_vibe() -> str:
    """The Python >= 3.12 that tests/vibe/install.sh would use, or "" when there is none."""
    found = subprocess.run(
        ["bash", str(ROOT / "tests" / "vibe" / "install.sh"), "--find"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return found.stdout.strip()


def vibe_config(server: Server, model: str, backend: str) -> str:
    """`$VIBE_HOME/config.toml`: one provider, the gateway; nothing that calls elsewhere.

    `enable_connectors = false`: otherwise Vibe's `mistral` backend first asks
    `GET /v1/connectors/bootstrap` (Mistral's connectors, which Souverain does not serve:
    a 404, which Vibe tolerates). Telemetry, update checks and experiments would call
    Mistral's own hosts, out of reach here. No `max_context_length`: Vibe 3.0.3 refuses a
    model whose window is under 13,334 tokens (too small to compact in), SmolLM2's 8,192
    included; unset, it assumes a default window.
    """
    return f"""\
active_model = "souverain"
enable_connectors = false
enable_telemetry = false
enable_update_checks = false
enable_auto_update = false
enable_notifications = false

[experiments]
enable = false

[session_logging]
generate_titles = false

[[providers]]
name = "souverain"
api_base = "{server.v1}"
api_key_env_var = "{KEY_VARIABLE}"
backend = "{backend}"

[[models]]
name = "{model}"
provider = "souverain"
alias = "souverain"
"""


@dataclass
class VibeRun:
    returncode: int
    output: str  # stdout and stderr
    export: dict[str, Any]  # export.json: outcome, usage, …
    workdir: Path

    @property
    def usage(self) -> tuple[int, int]:
        counted = self.export.get("usage") or {}
        return int(counted.get("input_tokens", 0)), int(counted.get("output_tokens", 0))

    @property
    def answer(self) -> str | None:
        path = self.workdir / "answer.txt"
        return path.read_text().strip() if path.exists() else None

    @property
    def succeeded(self) -> bool:
        return self.returncode == 0 and self.answer == EXPECTED


# A custom agent (`$VIBE_HOME/agents/lean-tools.toml`, run with `--agent lean-tools`) for
# small contexts, using only Vibe's own settings: a one-line system prompt of our own
# (`$VIBE_HOME/prompts/lean-task.md`), no background processes, subagents, project context
# or commit signature. As Souverain's local engine renders it, its first request is 4,876
# SmolLM2 tokens (a 1,903-token system prompt, seven tools) where the default agent's is
# 8,786 (4,766 of system prompt, ten tools), which does not fit SmolLM2's 8,192. Vibe
# 3.0.3's harness keeps its core tools whatever `enabled_tools` says, and its plugin
# skills (`vibe:*`) whatever `disabled_skills` says.
LEAN_PROMPT = "You are a coding agent. Use the tools to read and write files. Be brief.\n"
LEAN_AGENT = """\
display_name = "Lean tools"
description = "Short system prompt, fewer tools"
safety = "yolo"
system_prompt_id = "lean-task"
enabled_tools = ["read_file", "write_file"]
bypass_tool_permissions = true
enable_background_processes = false
enable_subagents = false
include_project_context = false
include_commit_signature = false
"""


def run_vibe(
    server: Server, tmp: Path, *, model: str, backend: str,
    max_turns: int = 6, lean: bool = False, timeout: float = 900,
) -> VibeRun:  # fmt: skip
    """One headless run of the task in a fresh directory under `tmp` (`lean`: LEAN_AGENT)."""
    home, workdir, export = tmp / "home", tmp / "work", tmp / "export"
    for folder in (home / "agents", home / "prompts", workdir):
        folder.mkdir(parents=True)
    (home / "prompts" / "lean-task.md").write_text(LEAN_PROMPT)
    (home / "config.toml").write_text(vibe_config(server, model, backend))
    (home / "agents" / "lean-tools.toml").write_text(LEAN_AGENT)
    (workdir / "input.txt").write_text(ADDRESS + "\n")
    command = [str(VIBE), "-p", PROMPT, "--trust", "--auto-approve", "--workdir", str(workdir),
               "--max-turns", str(max_turns), "--output-dir", str(export)]  # fmt: skip
    if lean:
        command += ["--agent", "lean-tools"]
    environment = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(home),
                   "VIBE_HOME": str(home), KEY_VARIABLE: server.key, "LANG": "C.UTF-8"}  # fmt: skip
    try:
        done = subprocess.run(
            command, cwd=workdir, env=environment, capture_output=True, text=True, timeout=timeout
        )
    except subprocess.TimeoutExpired:  # Vibe killed: the run counts as failed, not as a crash
        return VibeRun(TIMED_OUT, f"timed out after {timeout:.0f} s", {}, workdir)
    exported = export / "export.json"
    result = json.loads(exported.read_text()) if exported.exists() else {}
    return VibeRun(done.returncode, done.stdout + done.stderr, result, workdir)


@dataclass
class Observed:
    """One run as Souverain saw it, from its usage rows and /metrics."""

    answers: dict[tuple[str, str, int], float]  # (method, route, status) -> count, on /v1/
    requests: int  # usage rows (model calls) of the model
    errors: int
    prompt_tokens: int
    completion_tokens: int
    calls: list[tuple[int, int, int]]  # per model call (audit log): status, prompt, completion

    @property
    def refused(self) -> dict[tuple[str, str, int], float]:
        return {key: count for key, count in self.answers.items() if key[2] >= 400}


def observed_run(
    server: Server, tmp: Path, *, model: str, backend: str, **options: Any
) -> tuple[VibeRun, Observed]:
    """`run_vibe`, and what Souverain recorded meanwhile (nothing else may use `model`)."""
    usage_before, answers_before = usage_by_model(server), answers_by_status(server)
    audited = len(audit_leaves(server))
    run = run_vibe(server, tmp, model=model, backend=backend, **options)
    answers = {
        key: count - answers_before.get(key, 0)
        for key, count in answers_by_status(server).items()
        if key[1].startswith("/v1/") and count > answers_before.get(key, 0)
    }
    before = usage_before.get(model, (0, 0, 0, 0))
    after = usage_by_model(server).get(model, (0, 0, 0, 0))
    requests, errors, prompt, completion = (
        now - then for now, then in zip(after, before, strict=True)
    )
    calls = [
        (int(leaf.get("status") or 0), *_tokens(leaf))
        for leaf in audit_leaves(server)[audited:]
        if leaf.get("kind") == "request" and leaf.get("model") == model
    ]
    return run, Observed(answers, requests, errors, prompt, completion, calls)


def audit_leaves(server: Server) -> list[dict[str, Any]]:
    """Every audit leaf so far (these gateways record a few hundred at most)."""
    leaves: list[dict[str, Any]] = []
    with server.client() as client:
        while True:
            page = client.get("/admin/v1/audit/leaves", params={"after": len(leaves)})
            page.raise_for_status()
            data = page.json()["data"]
            leaves += [entry["leaf"] for entry in data]
            if not data:
                return leaves


def _tokens(leaf: dict[str, Any]) -> tuple[int, int]:
    tokens = leaf.get("tokens") or {}
    return int(tokens.get("prompt") or 0), int(tokens.get("completion") or 0)


def usage_by_model(server: Server) -> dict[str, tuple[int, ...]]:
    """Souverain's usage rows, summed per model: (requests, errors, prompt, completion)."""
    with server.client() as client:
        response = client.get("/admin/v1/usage", params={"group_by": "model"})
    response.raise_for_status()
    fields = ("requests", "errors", "prompt_tokens", "completion_tokens")
    return {row["model"]: tuple(row[field] for field in fields) for row in response.json()["data"]}


_REQUESTS = re.compile(r"^souverain_http_requests_total\{([^}]*)\} (\S+)$", re.M)
_LABEL = re.compile(r'(\w+)="([^"]*)"')


def answers_by_status(server: Server) -> dict[tuple[str, str, int], float]:
    """Souverain's HTTP answers so far, from /metrics: (method, route, status) -> count."""
    text = httpx.get(server.url + "/metrics", timeout=30).text
    answers = {}
    for labels, count in _REQUESTS.findall(text):
        label = dict(_LABEL.findall(labels))
        answers[label["method"], label["route"], int(label["status"])] = float(count)
    return answers


def start_llama_cpp_server(folder: Path) -> tuple[subprocess.Popen[bytes], str]:
    """llama.cpp's own OpenAI-compatible server on the embedded GGUF, with the chat format
    that turns `tools` into calls; its URL (without /v1) once it answers."""
    port = free_port()
    log = folder / "llama-server.log"
    process = subprocess.Popen(
        [sys.executable, "-m", "llama_cpp.server", "--model", str(embedded_gguf_path()),
         "--model_alias", "smollm2", "--host", "127.0.0.1", "--port", str(port),
         "--n_ctx", "8192", "--n_threads", "2", "--chat_format", "chatml-function-calling"],
        stdout=log.open("wb"), stderr=subprocess.STDOUT,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    if answers(process, url + "/v1/models", interval=0.2):
        return process, url
    process.kill()
    raise RuntimeError(log.read_text())


def llama_cpp_deployment(url: str) -> dict[str, Any]:
    """The `openai` deployment for `start_llama_cpp_server`'s server, with its facts declared.

    Without them Souverain assumes the worst of a remote deployment (foreign, keeps the
    data, trains on it), and Vibe's every request is `internal`: its system prompt carries
    an e-mail address (`Co-Authored-By: Mistral Vibe <vibe@mistral.ai>`). The default
    policy sends internal data nowhere that trains on it, so each request got a 403,
    which Vibe shows as "Invalid API key" (it takes any 401 or 403 for a refused key).
    """
    return {"engine": "openai", "base_url": url + "/v1", "upstream_model": "smollm2",
            "operator": "llama.cpp on this machine", "jurisdiction": "on-prem",
            "retention_days": 0, "trains_on_data": False}  # fmt: skip


class ScriptedAgent(RecordingUpstream):
    """A fake model that plays the agent's part: its next move read from the conversation.

    No tool result yet: call read_file(input.txt). After read_file's result: call
    write_file(answer.txt, "To: " + what was read). After that: answer in text. Tool calls
    are streamed as OpenAI servers do (a head, then argument fragments without name or id);
    usage grows with the conversation, so a sum that counts a call twice shows.
    """

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        self.received.append(body)
        messages = body["messages"]
        usage = {"prompt_tokens": len(json.dumps(messages)) // 4, "completion_tokens": 9}
        usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
        move = _next_move(messages)
        pieces: list[dict[str, Any]]
        if isinstance(move, str):
            pieces = [{"delta": {"role": "assistant", "content": move}}]
            return await _stream(request, "chat.completion.chunk", pieces, {"delta": {}}, usage)
        name, arguments = move
        text = json.dumps(arguments, ensure_ascii=False)
        head: dict[str, Any] = {"index": 0, "id": f"call_{len(messages)}", "type": "function",
                "function": {"name": name, "arguments": ""}}  # fmt: skip
        pieces = [{"delta": {"role": "assistant", "tool_calls": [head]}}]
        pieces += [
            {"delta": {"tool_calls": [{"index": 0, "function": {"arguments": text[i : i + 4]}}]}}
            for i in range(0, len(text), 4)
        ]
        return await _stream(request, "chat.completion.chunk", pieces, {"delta": {}}, usage,
                             finish="tool_calls")  # fmt: skip


def _next_move(messages: list[dict[str, Any]]) -> str | tuple[str, dict[str, str]]:
    results = [m for m in messages if m["role"] == "tool"]
    if not results:
        return "read_file", {"path": "input.txt"}
    if len(results) == 1:
        content = results[0]["content"]
        with suppress(ValueError, KeyError, TypeError):  # Vibe's result: JSON, text in "content"
            content = json.loads(content)["content"]
        return "write_file", {"path": "answer.txt", "content": f"To: {str(content).strip()}\n"}
    return "answer.txt is written."
