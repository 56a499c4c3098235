"""Identity + quota cost per request, and whether a key lookup leaks which prefixes exist.

In process, no HTTP. A key that belongs to a user, a team and a tenant, each of the four
with every limit set (rpm, tpm, concurrency, token and cost budgets; high enough never
to refuse), as the pipeline sees it:

  (a) `Authenticator.authenticate` with the key already in the cache (the normal case);
  (b) (a) + `QuotaGuard.check` + `QuotaGuard.settle`, quotas in this process's memory;
  (c) (a) + check + settle with the Redis store (the local server, 127.0.0.1:6379).

Then the cold path, `KeyStore.lookup` (database query + HMAC + comparison), for keys
that must be refused: an unknown prefix against a known prefix with a wrong secret,
interleaved in random order, many times each. Reported: medians, their difference with
a bootstrap 95 % interval, and a Mann-Whitney U test (normal approximation).

Run:  .venv/bin/python bench/auth_quota.py [--iterations 20000] [--lookups 4000]
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import platform
import random
import secrets
import sqlite3
import string
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path

import numpy as np
import redis
import redis.asyncio

from souverain.config import DeploymentConfig, ModelConfig, PricingConfig, QuotasConfig
from souverain.context import RequestContext
from souverain.identity.authenticate import Authenticator
from souverain.identity.directory import Directory
from souverain.identity.keys import PREFIX_LENGTH, KeyStore
from souverain.pipeline import ModelCall
from souverain.plugins import load_engine_registry
from souverain.protocol.chat import ChatCompletionRequest
from souverain.protocol.common import Usage
from souverain.quotas import MemoryQuotaStore, QuotaStore, RedisQuotaStore, Scope
from souverain.quotas.guard import QuotaGuard
from souverain.routing.models import ServedModel
from souverain.store.database import open_database, upgrade
from souverain.usage.recorder import UsageRecorder

REDIS_URL = "redis://127.0.0.1:6379/0"
HIGH = {"rpm": 10**9, "tpm": 10**12, "max_concurrency": 10**6, "budget_tokens": 10**15,
        "budget_cost": 10.0**12, "budget_period": "month"}  # fmt: skip
_ALPHABET = string.ascii_letters + string.digits


def random_key() -> str:
    return "sk-sv-" + "".join(secrets.choice(_ALPHABET) for _ in range(40))


def percentile(samples: list[int], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))] / 1000  # µs


def setup(folder: Path, extra_keys: int) -> tuple[KeyStore, Authenticator, UsageRecorder, str]:
    folder.mkdir(parents=True)
    database = open_database(f"sqlite:///{folder / 'souverain.db'}")
    upgrade(database)
    keys = KeyStore(database, secrets.token_bytes(32))
    directory = Directory(database)
    tenant = directory.create_tenant("bench", HIGH)
    team = directory.create_team(tenant["id"], "platform", HIGH)
    user = directory.create_user(tenant["id"], "user", "ada", "developer", HIGH)
    directory.add_member(team["id"], user["id"], None)
    _, key = keys.create(name="bench-key", role="developer", tenant_id=tenant["id"],
                         user_id=user["id"], team_id=team["id"], limits=HIGH)  # fmt: skip
    for i in range(extra_keys):  # a realistic table for the prefix index
        keys.create(name=f"other-{i}", role="user", tenant_id=tenant["id"])
    return keys, Authenticator(keys, database), UsageRecorder(database), key


def model_call() -> ModelCall:
    config = ModelConfig(
        id="bench",
        deployments=(
            DeploymentConfig(name="d", engine="openai", base_url="http://127.0.0.1:9/v1"),
        ),
        pricing=PricingConfig(prompt_per_million=0.5, completion_per_million=1.5),
    )
    backend = load_engine_registry(include_installed=False).build(
        config, config.deployments[0], "b"
    )
    request = ChatCompletionRequest.model_validate(
        {"model": "bench", "max_tokens": 256,
         "messages": [{"role": "user", "content": "Résume ce paragraphe en trois phrases. " * 8}]}
    )  # fmt: skip
    return ModelCall(kind="chat", model=ServedModel(config, [backend]), request=request)


async def timed(step: Callable[[], Awaitable[None]], iterations: int) -> dict[str, float]:
    for _ in range(min(2000, iterations // 5)):  # warm caches, budgets and scripts
        await step()
    samples = []
    for _ in range(iterations):
        started = time.perf_counter_ns()
        await step()
        samples.append(time.perf_counter_ns() - started)
    return {"p50": percentile(samples, 0.5), "p95": percentile(samples, 0.95),
            "p99": percentile(samples, 0.99)}  # fmt: skip


async def hot_path(iterations: int, folder: Path) -> dict[str, dict[str, float]]:
    keys, authenticator, recorder, key = setup(folder, extra_keys=0)
    header = f"Bearer {key}"
    call = model_call()
    assert call.model.config.pricing is not None
    cost = call.model.config.pricing.cost(10, 5)

    async def spent(scope: Scope, since: float) -> tuple[int, float]:
        return await asyncio.to_thread(recorder.spent, scope, since)

    async def authenticate() -> None:
        await authenticator.authenticate(header)

    def with_quotas(store: QuotaStore) -> Callable[[], Awaitable[None]]:
        guard = QuotaGuard(store, QuotasConfig())

        async def step() -> None:
            principal = await authenticator.authenticate(header)
            ctx = RequestContext(endpoint="chat", principal=principal)
            await guard.check(ctx, call)
            ctx.usage = Usage(prompt_tokens=10, completion_tokens=5)
            await guard.settle(ctx, cost)

        return step

    await authenticator.authenticate(header)  # the key is now cached
    principal = keys.cached(key)
    assert principal is not None and len(principal.quotas) == 4, "key, user, team, tenant"
    results = {"(a) authenticate, warm cache": await timed(authenticate, iterations)}
    memory = MemoryQuotaStore(spent)
    results["(b) + quotas, memory store"] = await timed(with_quotas(memory), iterations)
    prefix = f"bench:{uuid.uuid4().hex[:8]}:"
    store = RedisQuotaStore(REDIS_URL, spent, prefix=prefix)
    ping = redis.asyncio.Redis.from_url(REDIS_URL)

    async def round_trip() -> None:
        await ping.ping()

    try:
        results["Redis PING (one round trip)"] = await timed(round_trip, iterations)
        results["(c) + quotas, Redis store"] = await timed(with_quotas(store), iterations)
    finally:
        await store.aclose()
        await ping.aclose()
        client = redis.Redis.from_url(REDIS_URL)
        stale = list(client.scan_iter(prefix + "*"))
        if stale:
            client.delete(*stale)
        client.close()
    return results


def cold_lookups(lookups: int, folder: Path) -> dict[str, float]:
    """Unknown prefix vs known prefix + wrong secret, interleaved at random."""
    keys, _, _, _ = setup(folder, extra_keys=300)
    known = [row["prefix"] for row in keys.describe(tenant_id=None)]
    assert all(len(prefix) == PREFIX_LENGTH for prefix in known)
    order = ["unknown"] * lookups + ["wrong-secret"] * lookups
    random.shuffle(order)
    samples: dict[str, list[int]] = {"unknown": [], "wrong-secret": []}
    for kind in order:
        if kind == "unknown":
            candidate = random_key()
        else:
            candidate = random.choice(known) + random_key()[PREFIX_LENGTH:]
        started = time.perf_counter_ns()
        found = keys.lookup(candidate)
        samples[kind].append(time.perf_counter_ns() - started)
        assert found is None
    unknown = np.array(samples["unknown"], dtype=float) / 1000
    wrong = np.array(samples["wrong-secret"], dtype=float) / 1000
    low, high = bootstrap_median_difference(wrong, unknown)
    z, p = mann_whitney(wrong, unknown)
    return {
        "unknown prefix p50 us": float(np.median(unknown)),
        "wrong secret p50 us": float(np.median(wrong)),
        "difference p50 us (wrong - unknown)": float(np.median(wrong) - np.median(unknown)),
        "bootstrap 95% low": low,
        "bootstrap 95% high": high,
        "Mann-Whitney z": z,
        "Mann-Whitney p (two-sided)": p,
        "P(wrong-secret slower than unknown)": probability_of_superiority(wrong, unknown),
    }


def bootstrap_median_difference(
    a: np.ndarray, b: np.ndarray, resamples: int = 2000
) -> tuple[float, float]:
    rng = np.random.default_rng(7)
    diffs = np.median(rng.choice(a, (resamples, a.size)), axis=1) - np.median(
        rng.choice(b, (resamples, b.size)), axis=1
    )
    low, high = np.percentile(diffs, [2.5, 97.5])
    return float(low), float(high)


def _u_statistic(a: np.ndarray, b: np.ndarray) -> float:
    both = np.concatenate([a, b])
    order = both.argsort(kind="mergesort")
    ranks = np.empty(both.size)
    ranks[order] = np.arange(1, both.size + 1)
    _, inverse, counts = np.unique(both, return_inverse=True, return_counts=True)
    sums = np.bincount(inverse, weights=ranks)
    ranks = (sums / counts)[inverse]  # ties get their mean rank
    return float(ranks[: a.size].sum() - a.size * (a.size + 1) / 2)


def mann_whitney(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    u = _u_statistic(a, b)
    n1, n2 = a.size, b.size
    z = (u - n1 * n2 / 2) / math.sqrt(n1 * n2 * (n1 + n2 + 1) / 12)
    return z, math.erfc(abs(z) / math.sqrt(2))


def probability_of_superiority(a: np.ndarray, b: np.ndarray) -> float:
    """P(a sample of a > a sample of b): 0.5 when indistinguishable."""
    return _u_statistic(a, b) / (a.size * b.size)


def conditions() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    redis_version = redis.Redis.from_url(REDIS_URL).info("server")["redis_version"]
    return (
        f"{cpu}, {os.cpu_count()} cores, load average {load}; Python "
        f"{platform.python_version()}, SQLite {sqlite3.sqlite_version}, Redis {redis_version}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=20_000)
    parser.add_argument("--lookups", type=int, default=4_000)
    args = parser.parse_args()
    print(time.strftime("run of %Y-%m-%d %H:%M UTC", time.gmtime()))
    print(conditions())
    with tempfile.TemporaryDirectory() as tmp:
        hot = asyncio.run(hot_path(args.iterations, Path(tmp) / "hot"))
        print(f"\nper request, {args.iterations} iterations   p50 µs   p95 µs   p99 µs")
        for name, figures in hot.items():
            print(f"  {name:<32} {figures['p50']:8.1f} {figures['p95']:8.1f} {figures['p99']:8.1f}")
        target = hot["(b) + quotas, memory store"]["p50"] < 300
        verdict = "met" if target else "NOT met"
        print(f"  target: warm auth + quota < 300 µs p50 (memory store): {verdict}")
        cold = cold_lookups(args.lookups, Path(tmp) / "cold")
    print(f"\ncold lookup of a refused key, {args.lookups} of each, interleaved")
    for name, value in cold.items():
        print(f"  {name:<40} {value:10.4g}")


if __name__ == "__main__":
    main()
