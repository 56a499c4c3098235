"""Optional active health checks: deployments with `health_check_s` are probed in the
background, so a dead engine's breaker opens before a user request finds out."""

from __future__ import annotations

import asyncio
import contextlib

from ..backends.base import Backend
from ..errors import SouverainError
from .router import Router


class HealthChecker:
    def __init__(self, router: Router, backends: list[Backend]) -> None:
        self._router = router
        self._backends = [b for b in backends if b.deployment.health_check_s]
        self._tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        self._tasks = [asyncio.create_task(self._watch(b)) for b in self._backends]

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _watch(self, backend: Backend) -> None:
        interval = backend.deployment.health_check_s or 10.0
        health = self._router.health(backend)
        while True:
            try:
                await asyncio.wait_for(backend.probe(), timeout=max(interval, 1.0))
            except (SouverainError, TimeoutError):
                health.probed(ok=False)
            else:
                health.probed(ok=True)
            await asyncio.sleep(interval)
