#!/usr/bin/env python3
"""Batches against the same requests sent interactively, on the embedded engine.

    .venv/bin/python bench/batch_throughput.py [--lines N] [--concurrency 1,2]
        [--big 10000] [--seconds 60] [--interval S] [--threads T]

One `souverain serve` with its defaults (SmolLM2-135M on the CPU, one engine worker;
bench/souverain_server.py), no network. Every request is a short chat call:
`max_tokens` 8, temperature 0 (so a batch line and its interactive twin give the same
answer, which is checked).

1. Throughput. N requests (`--lines`; by default as many as one-at-a-time calls answer in
   `--pass-seconds`, 60, at the speed of the warm-up calls: the machine's load sets it)
   sent interactively, a few at a time, once for each
   `--concurrency` (the best one is the baseline: what the server handles best); then the
   same requests as one batch (upload to /v1/files, POST /v1/batches, poll every 0.5 s
   until `completed`, download the output). Lines per second, end to end as a client sees
   them (the batch: from the upload to `completed`), and the ratio batch / interactive.
2. Interactive latency under a batch. One chat call at a time, one started every
   `--interval` seconds, for `--seconds`: first with the server idle, then while a
   `--big`-line batch of the same kind of requests runs (measured from its first answered
   line). The batch is then cancelled; how many of its lines were answered meanwhile is
   reported. p50 and p99 of both, and their ratio.
3. Prints a table and writes bench/results/batch_throughput.json, with the machine's load
   average before and after (other processes share the cores: each comparison runs in this
   one run, side by side).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from souverain_server import served

KEY = "sk-sv-benchbatch" + "d" * 30
MODEL = "smollm2-135m-instruct"
MAX_TOKENS = 8
POLL_S = 0.5
OUT = Path(__file__).resolve().parent / "results" / "batch_throughput.json"
ENDED = {"completed", "failed", "expired", "cancelled"}


def request_body(index: int) -> dict[str, Any]:
    return {
        "model": MODEL,
        "messages": [{"role": "user", "content": f"Give one word for the number {index}."}],
        "max_tokens": MAX_TOKENS,
        "temperature": 0,
    }


def batch_file(lines: int) -> bytes:
    return b"".join(
        json.dumps({"custom_id": f"req-{index}", "method": "POST",
                    "url": "/v1/chat/completions", "body": request_body(index)}).encode()
        + b"\n"
        for index in range(lines)
    )  # fmt: skip


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def load() -> float:
    return os.getloadavg()[0]


# ------------------------------------------------------------------ interactive calls


async def chat(client: httpx.AsyncClient, index: int) -> tuple[float, str]:
    started = time.perf_counter()
    answer = await client.post("/v1/chat/completions", json=request_body(index))
    answer.raise_for_status()
    content = answer.json()["choices"][0]["message"]["content"]
    return time.perf_counter() - started, content


async def interactive(client: httpx.AsyncClient, lines: int, concurrency: int) -> dict[str, Any]:
    """`lines` calls, `concurrency` at a time (each worker takes the next index)."""
    todo = iter(range(lines))
    contents: dict[int, str] = {}
    latencies: list[float] = []

    async def worker() -> None:
        for index in todo:
            seconds, contents[index] = await chat(client, index)
            latencies.append(seconds)

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.perf_counter() - started
    return {
        "concurrency": concurrency,
        "seconds": elapsed,
        "lines_per_s": lines / elapsed,
        "p50_ms": statistics.median(latencies) * 1000,
        "contents": contents,
    }


async def steady(client: httpx.AsyncClient, seconds: float, interval: float) -> list[float]:
    """One call at a time, one started every `interval` s (at once if the last was late)."""
    latencies: list[float] = []
    end = time.monotonic() + seconds
    index = 0
    while time.monotonic() < end:
        due = time.monotonic() + interval
        latency, _ = await chat(client, 100_000 + index)
        latencies.append(latency)
        index += 1
        await asyncio.sleep(max(0.0, due - time.monotonic()))
    return latencies


# ------------------------------------------------------------------ batches


async def submit(client: httpx.AsyncClient, lines: int) -> str:
    upload = await client.post(
        "/v1/files",
        data={"purpose": "batch"},
        files={"file": ("requests.jsonl", batch_file(lines), "application/jsonl")},
    )
    upload.raise_for_status()
    created = await client.post("/v1/batches", json={
        "input_file_id": upload.json()["id"], "endpoint": "/v1/chat/completions",
        "completion_window": "24h"})  # fmt: skip
    created.raise_for_status()
    return str(created.json()["id"])


async def batch_status(client: httpx.AsyncClient, batch_id: str) -> dict[str, Any]:
    answer = await client.get(f"/v1/batches/{batch_id}")
    answer.raise_for_status()
    return dict(answer.json())


async def batch_run(client: httpx.AsyncClient, lines: int) -> dict[str, Any]:
    started = time.perf_counter()
    batch_id = await submit(client, lines)
    first_running = None
    while True:
        batch = await batch_status(client, batch_id)
        if first_running is None and batch["status"] == "in_progress":
            first_running = time.perf_counter()
        if batch["status"] in ENDED:
            break
        await asyncio.sleep(POLL_S)
    elapsed = time.perf_counter() - started
    if batch["status"] != "completed" or not batch.get("output_file_id"):
        raise RuntimeError(f"the batch ended {batch['status']}: {batch}")
    output = await client.get(f"/v1/files/{batch['output_file_id']}/content")
    output.raise_for_status()
    contents = {}
    for text in output.text.splitlines():
        line = json.loads(text)
        body = line["response"]["body"]
        contents[int(line["custom_id"].removeprefix("req-"))] = body["choices"][0]["message"][
            "content"
        ]
    return {
        "seconds": elapsed,
        "lines_per_s": lines / elapsed,
        "running_s": elapsed - ((first_running or started) - started),
        "request_counts": batch["request_counts"],
        "contents": contents,
    }


async def under_batch(
    client: httpx.AsyncClient, big: int, seconds: float, interval: float
) -> dict[str, Any]:
    """Steady interactive calls while a `big`-line batch runs; then cancel it."""
    submitted = time.perf_counter()
    batch_id = await submit(client, big)
    while True:  # measure from the batch's first answered line: it is really running
        batch = await batch_status(client, batch_id)
        if batch["status"] in ENDED:
            raise RuntimeError(f"the big batch ended {batch['status']}: {batch}")
        if batch["request_counts"]["completed"] > 0:
            break
        await asyncio.sleep(0.2)
    running_after_s = time.perf_counter() - submitted
    done_before = batch["request_counts"]["completed"]
    latencies = await steady(client, seconds, interval)
    done_after = (await batch_status(client, batch_id))["request_counts"]["completed"]
    cancel_started = time.perf_counter()
    (await client.post(f"/v1/batches/{batch_id}/cancel")).raise_for_status()
    # The server is polled, as a client does.
    while (batch := await batch_status(client, batch_id))["status"] not in ENDED:  # noqa: ASYNC110
        await asyncio.sleep(POLL_S)
    return {
        "latencies": latencies,
        "first_line_after_s": running_after_s,
        "batch_lines_during": done_after - done_before,
        "batch_lines_total": batch["request_counts"]["completed"],
        "final_status": batch["status"],
        "cancel_s": time.perf_counter() - cancel_started,
    }


# ------------------------------------------------------------------ the run


async def run(url: str, args: argparse.Namespace) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {KEY}"}
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=600) as client:
        warm = [(await chat(client, 50_000 + index))[0] for index in range(4)]
        if not args.lines:  # about `--pass-seconds` per interactive pass at today's speed
            args.lines = max(8, min(400, round(args.pass_seconds / statistics.median(warm[1:]))))
        load_before = load()
        sweeps = []
        for concurrency in args.concurrency:
            log(f"{args.lines} interactive calls, {concurrency} at a time")
            sweeps.append(await interactive(client, args.lines, concurrency))
        log(f"the same {args.lines} requests as one batch")
        best = max(sweeps, key=lambda sweep: sweep["lines_per_s"])
        batch = await batch_run(client, args.lines)
        same = sum(batch["contents"].get(i) == best["contents"][i] for i in range(args.lines))
        # A call every `interval` s; by default twice a line's time (the idle p50 at one
        # at a time): calls that followed each other at once would leave a batch no gap.
        interval = args.interval or max(1.0, 2 * sweeps[0]["p50_ms"] / 1000)
        log(f"interactive calls every {interval:.1f} s for {args.seconds} s, idle")
        idle = await steady(client, args.seconds, interval)
        log(f"the same while a {args.big}-line batch runs")
        busy = await under_batch(client, args.big, args.seconds, interval)
        load_after = load()
    for sweep in sweeps:
        del sweep["contents"]
    del batch["contents"]
    busy_latencies = busy.pop("latencies")
    return {
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(),
                    "load_1min_before": load_before, "load_1min_after": load_after},
        "settings": {"lines": args.lines, "max_tokens": MAX_TOKENS, "big": args.big,
                     "seconds": args.seconds, "interval_s": interval, "model": MODEL,
                     "engine_threads": args.threads or "default"},
        "throughput": {
            "interactive": sweeps,
            "best_concurrency": best["concurrency"],
            "batch": batch,
            "batch_over_interactive": batch["lines_per_s"] / best["lines_per_s"],
            "same_answers": same,
        },
        "latency": {
            "idle": {"calls": len(idle), "p50_ms": statistics.median(idle) * 1000,
                     "p99_ms": pct(idle, 0.99) * 1000},
            "under_batch": {"calls": len(busy_latencies),
                            "p50_ms": statistics.median(busy_latencies) * 1000,
                            "p99_ms": pct(busy_latencies, 0.99) * 1000, **busy},
        },
    }  # fmt: skip


def report(result: dict[str, Any]) -> None:
    throughput, latency = result["throughput"], result["latency"]
    lines = result["settings"]["lines"]
    print(f"\nThroughput: {lines} chat requests (max_tokens {MAX_TOKENS}, temperature 0)")
    for sweep in throughput["interactive"]:
        print(f"  interactive, {sweep['concurrency']} at a time: {sweep['seconds']:7.1f} s "
              f"{sweep['lines_per_s']:6.2f} lines/s  (p50 {sweep['p50_ms']:.0f} ms)")  # fmt: skip
    batch = throughput["batch"]
    print(
        f"  one batch (upload to completed):  {batch['seconds']:7.1f} s "
        f"{batch['lines_per_s']:6.2f} lines/s  (running {batch['running_s']:.1f} s)"
    )
    print(
        f"  batch / best interactive ({throughput['best_concurrency']} at a time): "
        f"{throughput['batch_over_interactive']:.2f}x (target >= 0.9x); "
        f"same answers {throughput['same_answers']}/{lines}"
    )
    idle, busy = latency["idle"], latency["under_batch"]
    print(
        f"\nInteractive latency, one call every {result['settings']['interval_s']} s "
        f"for {result['settings']['seconds']} s"
    )
    print(
        f"  idle:                 p50 {idle['p50_ms']:6.0f} ms  p99 {idle['p99_ms']:6.0f} ms"
        f"  ({idle['calls']} calls)"
    )
    print(
        f"  {result['settings']['big']}-line batch running: p50 {busy['p50_ms']:6.0f} ms  "
        f"p99 {busy['p99_ms']:6.0f} ms  ({busy['calls']} calls; batch lines answered "
        f"meanwhile: {busy['batch_lines_during']}, then cancelled: {busy['final_status']} "
        f"in {busy['cancel_s']:.1f} s)"
    )
    print(
        f"  p50 ratio: {busy['p50_ms'] / idle['p50_ms']:.2f}x (target <= 1.5x), "
        f"p99 ratio: {busy['p99_ms'] / idle['p99_ms']:.2f}x"
    )
    machine = result["machine"]
    print(
        f"\n{machine['cpus']} CPUs, load average {machine['load_1min_before']:.1f} before, "
        f"{machine['load_1min_after']:.1f} after"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--lines",
        type=int,
        default=0,
        help="requests (default: about --pass-seconds of one-at-a-time calls)",
    )
    parser.add_argument("--pass-seconds", type=float, default=60.0)
    parser.add_argument("--concurrency", default="1,2",
                        help="interactive clients at once, comma-separated; the best is the baseline")  # fmt: skip  # noqa: E501
    parser.add_argument("--big", type=int, default=10_000)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument(
        "--interval",
        type=float,
        default=None,
        help="seconds between interactive calls (default: 2x the idle p50)",
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=0,
        help="the engine's threads (default: serve's, one per core)",
    )
    parser.add_argument("--output", type=Path, default=OUT)
    args = parser.parse_args()
    args.concurrency = [int(c) for c in args.concurrency.split(",")]
    config: dict[str, Any] = {}
    if args.threads:  # the embedded chat model alone, its engine on that many threads
        deployment = {"name": "embedded-smollm2", "engine": "local", "n_threads": args.threads}
        config = {"models": [{"id": MODEL, "deployments": [deployment]}]}
    with served(config, key=KEY, kill=True) as (url, _server):
        result = asyncio.run(run(url, args))
    report(result)
    result["latency"]["p50_ratio"] = (
        result["latency"]["under_batch"]["p50_ms"] / result["latency"]["idle"]["p50_ms"]
    )
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2) + "\n")
    print(f"written to {args.output}")


if __name__ == "__main__":
    main()
