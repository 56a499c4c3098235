"""What the embedded model's context costs: n_ctx 4,096 (the old default) against the
context SmolLM2-135M was trained for (the GGUF's `llama.context_length`, the new default).

For each context, a fresh `souverain serve` runs the embedded chat model alone (no
embeddings model, so that the figures are the chat engine's), and is measured:

  * RSS once ready (the model loaded, its KV cache allocated);
  * a coding agent's first request, shaped like Mistral Vibe's (a long system prompt and
    10 tools, ~4,700 prompt tokens): accepted or refused, prompt tokens, seconds;
  * peak RSS (VmHWM) after that request, and RSS after it.

Run:  .venv/bin/python bench/embedded_context.py [--no-request] [--timeout 1800]
(--no-request: memory once loaded only; the long prompt takes minutes on a busy machine)
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import httpx

from souverain_server import served

KEY = "sk-sv-benchbench" + "c" * 30
MODEL = "smollm2-135m-instruct"
RULES = 143  # lines of system prompt: with the tools, ~4,700 prompt tokens


def trained_context() -> int:
    from llama_cpp import Llama

    from souverain.backends.local_llama import embedded_gguf_path

    llama = Llama(model_path=str(embedded_gguf_path()), n_ctx=256, verbose=False, vocab_only=True)
    return int(llama.metadata["llama.context_length"])


def agent_request() -> dict[str, Any]:
    """A system prompt of coding rules and 10 tools, like a coding agent's first turn."""
    rules = "\n".join(
        f"{n}. Read the files before you change them; keep each change small and tested."
        for n in range(1, RULES)
    )
    text = {"type": "string", "description": "A path or a text."}
    names = ["bash", "read_file", "write_file", "search_replace", "grep", "list_dir", "todo",
             "ask_user", "web_fetch", "task"]  # fmt: skip
    tools = [
        {"type": "function", "function": {
            "name": name, "description": f"The {name} tool. " + "Use it with care. " * 20,
            "parameters": {"type": "object", "properties": {"target": text, "content": text},
                           "required": ["target"]}}}
        for name in names
    ]  # fmt: skip
    return {
        "model": MODEL,
        "messages": [
            {"role": "system", "content": f"You are a coding agent in a repository.\n{rules}"},
            {"role": "user", "content": "List the files in the current directory."},
        ],
        "tools": tools,
        "max_tokens": 16,
        "temperature": 0,
        "seed": 1,
    }


def memory(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM of `pid`, in MiB."""
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            fields[key] = int(value.split()[0]) // 1024
    return fields


def measure(n_ctx: int | None, *, request: bool, timeout: float) -> dict[str, Any]:
    deployment: dict[str, Any] = {"engine": "local", "workers": 1}
    if n_ctx is not None:
        deployment["n_ctx"] = n_ctx
    config = {"models": [{"id": MODEL, "type": "chat", "deployments": [deployment]}]}
    with served(config, key=KEY, kill=True) as (url, server):
        time.sleep(1)  # let start-up garbage settle
        ready = memory(server.pid)
        headers = {"Authorization": f"Bearer {KEY}"}
        with httpx.Client(base_url=url, headers=headers, timeout=timeout) as client:
            context = client.get(f"/v1/models/{MODEL}").json().get("max_context_length")
            result: dict[str, Any] = {"n_ctx": context, "rss_ready": ready["VmRSS"]}
            if request:
                started = time.perf_counter()
                response = client.post("/v1/chat/completions", json=agent_request())
                body = response.json()
                result |= {
                    "seconds": time.perf_counter() - started,
                    "status": response.status_code,
                    "prompt_tokens": (body.get("usage") or {}).get("prompt_tokens"),
                    "error": (body.get("error") or {}).get("code"),
                }
        after = memory(server.pid)
        return result | {"rss_after": after["VmRSS"], "peak": after["VmHWM"]}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--no-request", action="store_true")
    parser.add_argument("--timeout", type=float, default=1800)
    args = parser.parse_args()
    options = {"request": not args.no_request, "timeout": args.timeout}
    trained = trained_context()
    runs = [
        ("n_ctx 4096 (old default)", measure(4096, **options)),
        ("trained (new default)", measure(None, **options)),
    ]
    print(f"SmolLM2-135M-Instruct Q4_1, GGUF llama.context_length = {trained}")
    header = ["", *[name for name, _ in runs]]
    rows = [
        ("context (tokens)", "n_ctx"),
        ("RSS ready (MiB)", "rss_ready"),
        ("agent request: HTTP status", "status"),
        ("agent request: error code", "error"),
        ("agent request: prompt tokens", "prompt_tokens"),
        ("agent request: seconds", "seconds"),
        ("RSS after (MiB)", "rss_after"),
        ("peak RSS (MiB)", "peak"),
    ]
    width = max(len(label) for label, _ in rows) + 2
    print("".join(h.ljust(width if i == 0 else 26) for i, h in enumerate(header)))
    for label, key in rows:
        cells = [_cell(run.get(key)) for _, run in runs]
        print(label.ljust(width) + "".join(cell.ljust(26) for cell in cells))
    print(json.dumps({name: run for name, run in runs}))


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.1f}"
    return "-" if value is None else str(value)


if __name__ == "__main__":
    main()
