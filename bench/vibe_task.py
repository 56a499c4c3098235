"""How often Mistral Vibe, run headless against Souverain, completes the file task.

The task (tests/vibe_runner.py): read input.txt (an e-mail address), write answer.txt with
"To: <address>". For each upstream and each Vibe backend (`generic`, `mistral`), `--runs`
runs; each is counted a success when Vibe exits 0 and answer.txt is right. Also counted:
runs where Souverain answered Vibe with a 4xx/5xx, and runs where Souverain's usage rows
differ from the tokens Vibe reports.

Upstreams behind the gateway:
  scripted   a fake model that plays the agent's part (tests/vibe_runner.py ScriptedAgent),
             `openai` engine, DLP pseudonymizing the address;
  embedded   the embedded SmolLM2-135M (local engine, its trained 8,192-token context);
  llama      llama.cpp's own server (chatml-function-calling) as an `openai` deployment.

Run:  .venv/bin/python bench/vibe_task.py --upstream scripted --runs 5 [--lean] [--max-turns 6]
Needs .venv-vibe (./install.sh test, with a Python >= 3.12). Results: bench/results/vibe_task.json
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.conftest import Server, start_server, stop_server  # noqa: E402
from tests.vibe_runner import (  # noqa: E402
    TIMED_OUT,
    ScriptedAgent,
    llama_cpp_deployment,
    observed_run,
    start_llama_cpp_server,
)

RESULTS = ROOT / "bench" / "results" / "vibe_task.json"


@contextmanager
def gateway(upstream: str, tmp: Path) -> Iterator[tuple[Server, str]]:
    """A running gateway for `upstream`, and the model name Vibe should ask for."""
    if upstream == "embedded":
        server = start_server(tmp / "gw")
        try:
            yield server, "smollm2"
        finally:
            stop_server(server)
        return
    if upstream == "scripted":
        agent = ScriptedAgent()
        agent.start()
        deployment = agent.deployment(operator="pseudonymize")
        rule = {"operators": ["pseudonymize"], "actions": {"*": "pseudonymize"}}
        config: dict[str, object] = {
            "models": [{"id": "scripted", "deployments": [{**deployment, "name": "scripted"}]}],
            "dlp": {"destinations": [rule], "raises": {"*": "confidential"}},
        }
        server = start_server(tmp / "gw", config)
        try:
            yield server, "scripted"
        finally:
            stop_server(server)
            agent.stop()
        return
    process, url = start_llama_cpp_server(tmp)
    models = [{"id": "llama", "deployments": [llama_cpp_deployment(url)]}]
    # No breaker or retry: one refusal from llama.cpp must show as itself, not as "down".
    routing = {"failure_threshold": 1000, "retries": 0}
    server = start_server(tmp / "gw", {"models": models, "routing": routing})
    try:
        yield server, "llama"
    finally:
        stop_server(server)
        process.terminate()
        process.wait(timeout=30)


def one_run(server: Server, model: str, backend: str, tmp: Path, **options: Any) -> dict[str, Any]:
    started = time.monotonic()
    run, seen = observed_run(server, tmp, model=model, backend=backend, **options)
    error = (run.export.get("error") or {}).get("message")
    return {
        "backend": backend, "succeeded": run.succeeded, "returncode": run.returncode,
        "outcome": run.export.get("outcome"), "answer": run.answer, "error": error,
        "vibe_usage": list(run.usage),
        "souverain_usage": [seen.prompt_tokens, seen.completion_tokens],
        # None when Vibe was stopped: it wrote no count to compare
        "usage_matches": None if run.returncode == TIMED_OUT
        else list(run.usage) == [seen.prompt_tokens, seen.completion_tokens],
        "refused": {f"{m} {r} {s}": n for (m, r, s), n in seen.refused.items()},
        "model_calls": seen.requests, "calls": [list(call) for call in seen.calls],
        "seconds": round(time.monotonic() - started, 1),
    }  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--upstream", choices=["scripted", "embedded", "llama"], required=True)
    parser.add_argument("--backend", choices=["generic", "mistral"], action="append")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--max-turns", type=int, default=6)
    parser.add_argument("--lean", action="store_true", help="Vibe's short prompt (LEAN_AGENT)")
    parser.add_argument("--timeout", type=float, default=900, help="seconds per Vibe run")
    args = parser.parse_args()
    backends = args.backend or ["generic", "mistral"]
    key = f"{args.upstream}{'-lean' if args.lean else ''}-{'+'.join(backends)}"
    runs: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="vibe-bench-") as folder:
        tmp = Path(folder)
        with gateway(args.upstream, tmp) as (server, model):
            for backend in backends:
                for index in range(args.runs):
                    result = one_run(server, model, backend, tmp / f"{backend}-{index}",
                                     max_turns=args.max_turns, lean=args.lean,
                                     timeout=args.timeout)  # fmt: skip
                    runs.append(result)
                    print(json.dumps(result, ensure_ascii=False), flush=True)
                    save(key, runs)  # after each run: a long series stopped early keeps its runs
    for backend in backends:
        mine = [run for run in runs if run["backend"] == backend]
        print(f"{args.upstream} {backend}{' lean' if args.lean else ''}: "
              f"{sum(r['succeeded'] for r in mine)}/{len(mine)} succeeded, "
              f"{sum(bool(r['refused']) for r in mine)} with a 4xx/5xx, "
              f"{sum(r['usage_matches'] is False for r in mine)} usage mismatched")  # fmt: skip


def save(key: str, runs: list[dict[str, Any]]) -> None:
    previous = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    previous[key] = {"command": " ".join(sys.argv[1:]), "runs": runs}
    RESULTS.write_text(json.dumps(previous, indent=1, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main()
