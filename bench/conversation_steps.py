#!/usr/bin/env python3
"""Agent steps through the gateway: what a conversation turn costs beyond the model.

    .venv/bin/python bench/conversation_steps.py [--turns 300] [--concurrency 100] [--seconds 60]

1. starts bench/fast_upstream.py (an OpenAI-compatible server answering at once) and a
   `souverain serve` in front of it (bench/souverain_server.py; default settings: DLP,
   policy, audit log, usage all on);
2. sequentially: `--turns` chat calls straight to the upstream (the model's own time on
   this machine), as many through the gateway (`/v1/chat/completions`: what any model call
   costs there, on the machine as loaded now), then as many one-step conversation turns
   (`POST /v1/conversations` with a model, then appends to the same conversation): the
   gateway's time per agent step is a turn's latency minus the upstream's, p50 and p99;
   then as many turns of two model steps (a function tool's round trip: two turns of one
   step; a handoff: one turn of two steps, the handoff run in the gateway): per step,
   (latency - 2 x upstream) / 2;
3. `--concurrency` conversations at once for `--seconds`, each appending turns in a loop:
   turns done, errors (any non-200), latency percentiles;
4. prints the figures and writes bench/results/conversation_steps.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from souverain_server import free_port, served

KEY = "sk-sv-bench" + "c" * 32
MODEL = "bench-model"
OUT = Path(__file__).resolve().parent / "results" / "conversation_steps.json"


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def sequential(url: str, upstream: str, turns: int) -> dict[str, float]:
    headers = {"Authorization": f"Bearer {KEY}"}
    async with httpx.AsyncClient(timeout=60) as client:
        direct = []
        body = {"model": MODEL, "messages": [{"role": "user", "content": "Bonjour"}]}
        for _ in range(turns):
            started = time.perf_counter()
            (await client.post(upstream + "/v1/chat/completions", json=body)).raise_for_status()
            direct.append(time.perf_counter() - started)
        chats = []
        for _ in range(turns):  # the same model call through the gateway, as a chat
            started = time.perf_counter()
            answer = await client.post(url + "/v1/chat/completions", headers=headers, json=body)
            answer.raise_for_status()
            chats.append(time.perf_counter() - started)
        first = await client.post(url + "/v1/conversations", headers=headers,
                                  json={"model": MODEL, "inputs": "Bonjour"})  # fmt: skip
        first.raise_for_status()
        path = url + "/v1/conversations/" + first.json()["conversation_id"]
        starts, appends = [], []
        for n in range(turns):
            started = time.perf_counter()
            answer = await client.post(url + "/v1/conversations", headers=headers,
                                       json={"model": MODEL, "inputs": f"Bonjour {n}"})  # fmt: skip
            answer.raise_for_status()
            starts.append(time.perf_counter() - started)
        for n in range(min(turns, 100)):  # a history that grows: 100 turns at most
            started = time.perf_counter()
            (
                await client.post(path, headers=headers, json={"inputs": f"Et {n}?"})
            ).raise_for_status()
            appends.append(time.perf_counter() - started)
        round_trips, handoffs = await multi_step(client, url, turns)
    base = statistics.median(direct)
    # Gateway time per model step of a sample: its latency minus the upstream's per step.
    per_step_rt = [(t - 2 * base) / 2 for t in round_trips]
    per_step_ho = [(t - 2 * base) / 2 for t in handoffs]
    return {
        "upstream_p50_ms": base * 1000,
        "upstream_p99_ms": pct(direct, 0.99) * 1000,
        "chat_via_gateway_p50_ms": statistics.median(chats) * 1000,
        "chat_via_gateway_p99_ms": pct(chats, 0.99) * 1000,
        "start_turn_p50_ms": statistics.median(starts) * 1000,
        "start_turn_p99_ms": pct(starts, 0.99) * 1000,
        "gateway_per_step_p50_ms": (statistics.median(starts) - base) * 1000,
        "gateway_per_step_p99_ms": (pct(starts, 0.99) - base) * 1000,
        "append_turn_p50_ms": statistics.median(appends) * 1000,
        "append_turn_p99_ms": pct(appends, 0.99) * 1000,
        "function_round_trip_p50_ms": statistics.median(round_trips) * 1000,
        "function_round_trip_gateway_per_step_p50_ms": statistics.median(per_step_rt) * 1000,
        "function_round_trip_gateway_per_step_p99_ms": pct(per_step_rt, 0.99) * 1000,
        "handoff_turn_p50_ms": statistics.median(handoffs) * 1000,
        "handoff_turn_gateway_per_step_p50_ms": statistics.median(per_step_ho) * 1000,
        "handoff_turn_gateway_per_step_p99_ms": pct(per_step_ho, 0.99) * 1000,
    }


async def multi_step(
    client: httpx.AsyncClient, url: str, turns: int
) -> tuple[list[float], list[float]]:
    """Turns of two model steps, timed whole: a function tool's round trip (the start's
    step calls the tool, the client appends its result, that append's step answers), and
    a handoff (one turn: the step that calls the handoff tool, the next agent's answer)."""
    headers = {"Authorization": f"Bearer {KEY}"}
    tool = {"type": "function", "function": {"name": "lookup", "description": "Look it up",
            "parameters": {"type": "object", "properties": {}}}}  # fmt: skip
    round_trips = []
    for n in range(turns):
        started = time.perf_counter()
        body = {"model": MODEL, "inputs": f"Cherche {n}", "tools": [tool]}
        first = await client.post(url + "/v1/conversations", headers=headers, json=body)
        first.raise_for_status()
        call = first.json()["outputs"][-1]
        assert call["type"] == "function.call", call
        result = {"type": "function.result", "tool_call_id": call["tool_call_id"], "result": "42"}
        path = url + "/v1/conversations/" + first.json()["conversation_id"]
        second = await client.post(path, headers=headers, json={"inputs": [result]})
        second.raise_for_status()
        assert second.json()["outputs"][-1]["type"] == "message.output", second.text
        round_trips.append(time.perf_counter() - started)
    made = await client.post(url + "/v1/agents", headers=headers,
                             json={"model": MODEL, "name": "Billing"})  # fmt: skip
    made.raise_for_status()
    body = {"model": MODEL, "name": "Front", "handoffs": [made.json()["id"]]}
    front = await client.post(url + "/v1/agents", headers=headers, json=body)
    front.raise_for_status()
    handoffs = []
    for n in range(turns):
        started = time.perf_counter()
        body = {"agent_id": front.json()["id"], "inputs": f"Facture {n}"}
        answer = await client.post(url + "/v1/conversations", headers=headers, json=body)
        answer.raise_for_status()
        kinds = [value["type"] for value in answer.json()["outputs"]]
        assert kinds == ["agent.handoff", "message.output"], kinds
        handoffs.append(time.perf_counter() - started)
    return round_trips, handoffs


async def concurrent(url: str, conversations: int, seconds: float) -> dict[str, float]:
    headers = {"Authorization": f"Bearer {KEY}"}
    latencies: list[float] = []
    errors: list[str] = []
    deadline = time.monotonic() + seconds
    # Idle connections are dropped before the server's keep-alive (5 s) closes them: a
    # POST sent on a connection the server is closing that instant is a ReadError that
    # says nothing about the gateway (httpx's default expiry, 5 s, raced it).
    limits = httpx.Limits(
        max_connections=conversations, max_keepalive_connections=conversations,
        keepalive_expiry=2.0,
    )  # fmt: skip

    async def one(client: httpx.AsyncClient, n: int) -> None:
        path = None
        while time.monotonic() < deadline:
            started = time.perf_counter()
            try:
                if path is None:
                    body = {"model": MODEL, "inputs": f"c{n}"}
                    answer = await client.post(
                        url + "/v1/conversations", headers=headers, json=body
                    )
                else:
                    answer = await client.post(path, headers=headers, json={"inputs": "encore"})
            except httpx.HTTPError as exc:
                errors.append(type(exc).__name__)
                continue
            if answer.status_code != 200:
                errors.append(f"{answer.status_code} {answer.text[:200]}")
                continue
            latencies.append(time.perf_counter() - started)
            if path is None:
                path = url + "/v1/conversations/" + answer.json()["conversation_id"]

    async with httpx.AsyncClient(timeout=120, limits=limits) as client:
        await asyncio.gather(*(one(client, n) for n in range(conversations)))
    return {
        "conversations": conversations,
        "seconds": seconds,
        "turns": len(latencies),
        "turns_per_s": len(latencies) / seconds,
        "errors": len(errors),
        "first_errors": errors[:5],  # type: ignore[dict-item]
        "turn_p50_ms": statistics.median(latencies) * 1000 if latencies else 0.0,
        "turn_p99_ms": pct(latencies, 0.99) * 1000 if latencies else 0.0,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--turns", type=int, default=300)
    parser.add_argument("--concurrency", type=int, default=100)
    parser.add_argument("--seconds", type=float, default=60.0)
    args = parser.parse_args()
    port = free_port()
    upstream = subprocess.Popen(
        [sys.executable, str(Path(__file__).resolve().parent / "fast_upstream.py"),
         "--port", str(port), "--model", MODEL],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert upstream.stdout is not None and upstream.stdout.readline().startswith("READY")
        base = f"http://127.0.0.1:{port}"
        deployment = {"engine": "openai", "base_url": base + "/v1", "jurisdiction": "FR",
                      "operator": "EU", "retention_days": 0, "trains_on_data": False}  # fmt: skip
        config = {"models": [{"id": MODEL, "deployments": [deployment]}]}
        with served(config, key=KEY) as (url, _):
            figures = asyncio.run(sequential(url, base, args.turns))
            figures |= {"concurrent": asyncio.run(concurrent(url, args.concurrency, args.seconds))}
    finally:
        upstream.terminate()
        upstream.wait(10)
    figures["machine"] = f"{platform.machine()}, {platform.python_version()}, shared 2-core host"
    OUT.parent.mkdir(exist_ok=True)
    OUT.write_text(json.dumps(figures, indent=2) + "\n")
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
