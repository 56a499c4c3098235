#!/usr/bin/env python3
"""Hostile requests to the embedded chat model, timed end to end over HTTP.

    .venv/bin/python bench/hostile_requests.py
    .venv/bin/python bench/hostile_requests.py --max-messages 1000000   # the cap lifted

A fresh `souverain serve` runs the embedded SmolLM2 chat model (config `server.max_messages`
as given; default 2,048, as OpenAI). Each request is sent once, and its status, error code
and wall seconds are printed:

  * 100,000 messages of "hi": refused for their number (400 `array_above_max_length`), before
    validation and the DLP walk; with the cap lifted, they are parsed, validated, scanned and
    then refused by the engine for its context (`context_length_exceeded`);
  * as many messages as the cap allows: validated, scanned, refused for the context;
  * 50 messages: answered (one token).

Each row gives the server process's CPU seconds for the request (all its threads, from
/proc: the shared machine's load inflates wall time many-fold) and the wall seconds.
Prints a Markdown table and writes bench/results/hostile_requests.json.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path
from typing import Any

import httpx

from souverain_server import served

HERE = Path(__file__).resolve().parent
KEY = "sk-sv-benchbench" + "h" * 30
MODEL = "smollm2-135m-instruct"


def cpu_seconds(pid: int) -> float:
    """User and system CPU of a process, all threads (fields 14 and 15 of /proc/pid/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def tiny(count: int) -> dict[str, Any]:
    messages = [{"role": "user", "content": "hi"}] * count
    return {"model": MODEL, "messages": messages, "max_tokens": 1}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-messages", type=int, default=2048)
    args = parser.parse_args()
    config = {
        "server": {"max_messages": args.max_messages},
        "models": [{"id": MODEL, "type": "chat", "deployments": [{"engine": "local"}]}],
    }
    capped = min(args.max_messages, 100_000)
    cases = [
        ("100,000 messages", tiny(100_000)),
        (f"{capped:,} messages (the cap)", tiny(capped)),
        ("50 messages", tiny(50)),
    ]
    rows = []
    with served(config, key=KEY, ready_s=180) as (url, server):
        headers = {"Authorization": f"Bearer {KEY}"}
        with httpx.Client(base_url=url, headers=headers, timeout=600) as client:
            client.post("/v1/chat/completions", json=tiny(1))  # warm: first-call costs
            for name, body in cases:
                raw = json.dumps(body).encode()
                time.sleep(1)  # let the server settle: its CPU counter is all it does
                cpu, started = cpu_seconds(server.pid), time.perf_counter()
                response = client.post(
                    "/v1/chat/completions",
                    content=raw,
                    headers={"Content-Type": "application/json"},
                )
                seconds = time.perf_counter() - started
                cpu = cpu_seconds(server.pid) - cpu
                error = response.json().get("error") or {}
                rows.append({"request": name, "bytes": len(raw), "status": response.status_code,
                             "code": error.get("code"), "cpu_s": round(cpu, 2),
                             "wall_s": round(seconds, 2)})  # fmt: skip
                print(rows[-1], flush=True)
    print(f"\nserver.max_messages = {args.max_messages:,}\n")
    print("| request | body bytes | status | error code | server CPU s | wall s |")
    print("|---|---|---|---|---|---|")
    for row in rows:
        print(f"| {row['request']} | {row['bytes']:,} | {row['status']} | {row['code'] or '-'} "
              f"| {row['cpu_s']:.2f} | {row['wall_s']:.2f} |")  # fmt: skip
    out = HERE / "results" / "hostile_requests.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps({"max_messages": args.max_messages, "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
