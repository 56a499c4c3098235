"""Embedded engine throughput: Souverain's local engine vs llama.cpp used directly.

Same GGUF (the embedded SmolLM2-135M-Instruct Q4_1), same threads, same prompts, in
one run, alternating the two so machine noise hits both alike:

  * single stream: tokens/s of one streamed request (time from sending to [DONE]);
  * 8 concurrent streams: total completion tokens / wall time for 8 at once.

llama.cpp direct = llama-cpp-python's `Llama.create_chat_completion(stream=True)` in
this process (8 "concurrent" requests run one after the other on one context, which is
what one llama.cpp context can do). Souverain = `souverain serve` in a subprocess,
called over loopback HTTP with httpx.

Run:  .venv/bin/python bench/embedded_engine.py [--rounds 5] [--max-tokens 128]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

KEY = "sk-sv-benchbench" + "b" * 30
PROMPTS = [
    "Write a detailed story about a lighthouse keeper on the coast of Brittany.",
    "Explain how bread is made, step by step, in great detail.",
    "Describe a journey by train from Paris to Vienna.",
    "Write a long letter to a friend about learning to play the piano.",
    "Describe the four seasons in a mountain village.",
    "Explain why the sky is blue, with many examples.",
    "Write a long recipe for a vegetable soup and explain each step.",
    "Describe a busy market day in an old Italian town.",
]


def direct_engine(n_threads: int, n_ctx: int):  # type: ignore[no-untyped-def]
    from llama_cpp import Llama

    from souverain.backends.local_llama import embedded_gguf_path

    return Llama(model_path=str(embedded_gguf_path()), n_ctx=n_ctx, n_threads=n_threads,
                 n_threads_batch=n_threads, verbose=False)  # fmt: skip


def direct_stream(llama, prompt: str, max_tokens: int) -> int:  # type: ignore[no-untyped-def]
    tokens = 0
    for chunk in llama.create_chat_completion(
        messages=[{"role": "user", "content": prompt}], max_tokens=max_tokens,
        temperature=0.2, top_p=0.95, stream=True,
    ):  # fmt: skip
        if chunk["choices"][0]["delta"].get("content"):
            tokens += 1
    return tokens


async def souverain_stream(client: httpx.AsyncClient, prompt: str, max_tokens: int) -> int:
    body = {
        "model": "smollm2-135m-instruct",
        "messages": [{"role": "user", "content": prompt}],
        "max_tokens": max_tokens,
        "temperature": 0.2,
        "top_p": 0.95,
        "stream": True,
    }
    usage = 0
    async with client.stream("POST", "/v1/chat/completions", json=body) as response:
        response.raise_for_status()
        async for line in response.aiter_lines():
            if line.startswith("data: {"):
                chunk = json.loads(line[6:])
                if chunk.get("usage"):
                    usage = chunk["usage"]["completion_tokens"]
    return usage


def start_souverain(data_dir: str, port: int) -> subprocess.Popen[bytes]:
    env = {**os.environ, "SOUVERAIN_ADMIN_KEY": KEY}
    process = subprocess.Popen(
        [sys.executable, "-m", "souverain", "serve", "--port", str(port), "--data-dir", data_dir,
         "--log-level", "warning"], env=env)  # fmt: skip
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/readyz").status_code == 200:
                return process
        except httpx.HTTPError:
            time.sleep(0.2)
    process.kill()
    raise SystemExit("souverain did not become ready")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--max-tokens", type=int, default=128)
    parser.add_argument("--port", type=int, default=8765)
    args = parser.parse_args()

    n_threads = os.cpu_count() or 2
    llama = direct_engine(n_threads, 4096)
    process = start_souverain(tempfile.mkdtemp(prefix="souverain-bench-"), args.port)
    results: dict[str, list[float]] = {
        k: [] for k in ("direct_1", "souverain_1", "direct_8", "souverain_8")
    }
    try:
        async with httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{args.port}",
            timeout=600,
            headers={"Authorization": f"Bearer {KEY}"},
        ) as client:
            await souverain_stream(client, PROMPTS[0], 8)  # warm up both
            direct_stream(llama, PROMPTS[0], 8)
            for round_ in range(args.rounds):
                prompt = PROMPTS[round_ % len(PROMPTS)]
                started = time.perf_counter()
                tokens = direct_stream(llama, prompt, args.max_tokens)
                results["direct_1"].append(tokens / (time.perf_counter() - started))
                started = time.perf_counter()
                tokens = await souverain_stream(client, prompt, args.max_tokens)
                results["souverain_1"].append(tokens / (time.perf_counter() - started))

                started = time.perf_counter()
                tokens = sum(direct_stream(llama, p, args.max_tokens) for p in PROMPTS)
                results["direct_8"].append(tokens / (time.perf_counter() - started))
                started = time.perf_counter()
                counts = await asyncio.gather(
                    *(souverain_stream(client, p, args.max_tokens) for p in PROMPTS)
                )
                results["souverain_8"].append(sum(counts) / (time.perf_counter() - started))
                print(
                    f"round {round_ + 1}: "
                    + ", ".join(f"{k} {v[-1]:.1f} tok/s" for k, v in results.items())
                )
    finally:
        process.terminate()
        process.wait(timeout=30)

    med = {key: statistics.median(values) for key, values in results.items()}
    print(f"\nSmolLM2-135M Q4_1, {n_threads} threads, max_tokens {args.max_tokens}, "
          f"{args.rounds} rounds, medians (tokens/s):")  # fmt: skip
    print(f"{'':24}{'llama.cpp direct':>18}{'Souverain':>12}{'ratio':>8}")
    for label, suffix in (("single stream", "1"), ("8 concurrent streams", "8")):
        d, s = med[f"direct_{suffix}"], med[f"souverain_{suffix}"]
        print(f"{label:24}{d:>18.1f}{s:>12.1f}{s / d:>8.1%}")
    out = Path(__file__).parent / "results" / "embedded_engine.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps({"medians": med, "runs": results, "threads": n_threads,
                               "max_tokens": args.max_tokens}, indent=2))  # fmt: skip


if __name__ == "__main__":
    asyncio.run(main())
