"""One gateway replica, as its own OS process, hammering a shared rpm limit.

Run by tests/test_quotas.py: `python tests/quota_worker.py URL PREFIX RPM ATTEMPTS`.
Prints `ready`, waits for a line on stdin so that both replicas start together, then
prints how many of its ATTEMPTS reservations were accepted.
"""

from __future__ import annotations

import asyncio
import os
import sys

from souverain.errors import RateLimited
from souverain.quotas import Demand, Limits, RedisQuotaStore, Scope


async def no_spend(scope: Scope, period_start: float) -> tuple[int, float]:
    return 0, 0.0


async def main(url: str, prefix: str, rpm: int, attempts: int) -> int:
    store = RedisQuotaStore(url, no_spend, prefix=prefix)
    demands = [Demand(Scope("team", "shared"), Limits(rpm=rpm))]
    gate = asyncio.Semaphore(16)  # a replica's worth of concurrent requests

    async def attempt(i: int) -> bool:
        async with gate:
            try:
                await store.reserve(f"{os.getpid()}-{i}", demands, 1, 0.0)
            except RateLimited:
                return False
            return True

    await store.reserve("warm-up", [], 0, 0.0)  # imports and event loop are ready
    print("ready", flush=True)
    await asyncio.to_thread(sys.stdin.readline)
    accepted = sum(await asyncio.gather(*(attempt(i) for i in range(attempts))))
    await store.aclose()
    return accepted


if __name__ == "__main__":
    url, prefix, rpm, attempts = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    print(asyncio.run(main(url, prefix, rpm, attempts)), flush=True)
