"""Policy + routing cost per request, and how long a dead upstream interrupts traffic.

1. Stage cost (in process): classify the request, evaluate the policy over a model's
   deployments, apply the kill switch, breakers and strategy: the work the policy and
   routing stages add to every request. Compared side by side with a bare lookup of the
   model's deployment list, in the same run.
2. Failover time (real processes): a gateway with two upstream deployments (A first),
   each a Souverain relay in front of one embedded model, under a steady load of short
   requests. A is killed (SIGKILL) or frozen (SIGSTOP); we report how long requests were
   delayed and whether any failed.

Run:  .venv/bin/python bench/policy_routing.py [--iterations 200000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import yaml

from souverain.config import DeploymentConfig, ModelConfig, PolicyConfig, RoutingConfig
from souverain.context import Principal, RequestContext
from souverain.plugins import load_engine_registry
from souverain.policy.engine import PolicyEngine
from souverain.routing.killswitch import KillSwitch
from souverain.routing.models import ServedModel
from souverain.routing.router import Router
from souverain.store.database import open_database, upgrade

KEY = "sk-sv-benchroute" + "r" * 30
LOCAL = "smollm2-135m-instruct"


def stage_cost(iterations: int) -> dict[str, float]:
    registry = load_engine_registry(include_installed=False)
    model = ModelConfig(
        id="large",
        deployments=(
            DeploymentConfig(name="mistral-fr", engine="mistral", jurisdiction="FR",
                             operator="Mistral AI", retention_days=30, trains_on_data=False),
            DeploymentConfig(name="us-cloud", engine="openai", base_url="http://x/v1",
                             jurisdiction="US"),
            DeploymentConfig(name="vllm-onprem", engine="openai", base_url="http://y/v1",
                             jurisdiction="on-prem", operator="self", retention_days=0,
                             trains_on_data=False),
        ),
    )  # fmt: skip
    served = ServedModel(model, [registry.build(model, d, "bench") for d in model.deployments])
    database = open_database("sqlite://")
    upgrade(database)
    policy = PolicyEngine(PolicyConfig())
    router = Router(policy, KillSwitch(database), RoutingConfig())
    principal = Principal(key_id=1, name="bench", role="user")
    levels = ["public", "internal", "confidential"]

    def routed(i: int) -> None:
        ctx = RequestContext(endpoint="chat", principal=principal)
        ctx.classification = policy.classify(levels[i % 3], None)
        router.candidates(ctx, served)

    def bare(i: int) -> None:
        ctx = RequestContext(endpoint="chat", principal=principal)
        ctx.classification = levels[i % 3]
        list(served.backends)

    results = {}
    for name, function in (("bare", bare), ("policy+routing", routed)):
        samples = []
        for i in range(iterations):
            started = time.perf_counter_ns()
            function(i)
            samples.append(time.perf_counter_ns() - started)
        samples.sort()
        results[f"{name} p50 us"] = samples[len(samples) // 2] / 1000
        results[f"{name} p99 us"] = samples[int(len(samples) * 0.99)] / 1000
    results["added p50 us"] = results["policy+routing p50 us"] - results["bare p50 us"]
    return results


def serve(
    tmp: Path, config: dict[str, object] | None, env: dict[str, str]
) -> tuple[subprocess.Popen[bytes], str]:
    tmp.mkdir(parents=True, exist_ok=True)
    port = _free_port()
    args = [sys.executable, "-m", "souverain", "serve", "--port", str(port), "--data-dir",
            str(tmp / "data"), "--log-level", "warning"]  # fmt: skip
    if config is not None:
        (tmp / "c.yaml").write_text(yaml.safe_dump(config))
        args += ["--config", str(tmp / "c.yaml")]
    process = subprocess.Popen(args, env={**os.environ, "SOUVERAIN_ADMIN_KEY": KEY, **env},
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if httpx.get(url + "/readyz").status_code == 200:
                return process, url
        except httpx.HTTPError:
            time.sleep(0.1)
    raise SystemExit("server did not start")


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def failover(how: str, tmp: Path, upstream: str) -> dict[str, float]:
    to_upstream = {"engine": "openai", "base_url": upstream + "/v1", "upstream_model": LOCAL,
                   "api_key_env": "K"}  # fmt: skip
    relay = {"models": [{"id": LOCAL, "deployments": [to_upstream]}]}
    a, a_url = serve(tmp / f"{how}-a", relay, {"K": KEY})
    b, b_url = serve(tmp / f"{how}-b", relay, {"K": KEY})
    deployments = [{"name": n, "engine": "openai", "base_url": u + "/v1", "upstream_model": LOCAL,
                    "api_key_env": "K", "timeout_s": 2, "connect_timeout_s": 1}
                   for n, u in (("a", a_url), ("b", b_url))]  # fmt: skip
    gateway_config = {"models": [{"id": "m", "deployments": deployments}],
                      "routing": {"failure_threshold": 2, "open_seconds": 30}}  # fmt: skip
    gw, gw_url = serve(tmp / f"{how}-gw", gateway_config, {"K": KEY})
    records: list[tuple[float, float, int, str]] = []
    stop_at = time.monotonic() + 8
    body = {"model": "m", "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 1}
    try:
        async with httpx.AsyncClient(
            base_url=gw_url, timeout=30, headers={"Authorization": f"Bearer {KEY}"}
        ) as client:

            async def worker() -> None:
                while time.monotonic() < stop_at:
                    sent = time.monotonic()
                    r = await client.post("/v1/chat/completions", json=body)
                    records.append((sent, time.monotonic(), r.status_code,
                                    r.headers.get("x-souverain-deployment", "")))  # fmt: skip

            async def chaos() -> float:
                await asyncio.sleep(3)
                a.send_signal(signal.SIGKILL if how == "sigkill" else signal.SIGSTOP)
                return time.monotonic()

            *_, hit = await asyncio.gather(*(worker() for _ in range(4)), chaos())
    finally:
        for process in (gw, a, b):
            process.send_signal(signal.SIGCONT)
            process.kill()
    before = [done - sent for sent, done, _, _ in records if done < hit]
    around = [r for r in records if r[0] <= hit < r[1]]  # in flight when A died
    after_b = [
        done for sent, done, status, dep in records if sent > hit and dep == "b" and status == 200
    ]
    return {
        "requests": len(records),
        "failed": sum(1 for r in records if r[2] != 200),
        "normal latency p50 ms": statistics.median(before) * 1000,
        "worst in-flight delay ms": max((d - s for s, d, _, _ in around), default=0) * 1000,
        "first new request served by B after ms": (min(after_b) - hit) * 1000 if after_b else -1,
    }


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--iterations", type=int, default=200_000)
    args = parser.parse_args()
    cost = stage_cost(args.iterations)
    print(f"Stage cost (in process, {args.iterations} iterations):")
    for key, value in cost.items():
        print(f"  {key:<24} {value:8.2f}")
    tmp = Path(tempfile.mkdtemp(prefix="souverain-failover-"))
    upstream, upstream_url = serve(tmp / "embedded", None, {})
    try:
        results = {how: await failover(how, tmp, upstream_url) for how in ("sigkill", "sigstop")}
    finally:
        upstream.kill()
    print("\nFailover (4 clients, max_tokens 1, A killed at t=3 s; deployment timeout 2 s):")
    for how, figures in results.items():
        print(f"  {how}: " + ", ".join(f"{k} {v:.1f}" if isinstance(v, float) else f"{k} {v}"
                                       for k, v in figures.items()))  # fmt: skip
    out = Path(__file__).parent / "results" / "policy_routing.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps({"stage_cost": cost, "failover": results}, indent=2))


if __name__ == "__main__":
    asyncio.run(main())
