"""A Redis pub/sub subscription that lives as long as the app and survives Redis outages.

Replicas learn of kill-switch cuts and identity changes through Redis. Redis being down
must neither stop a gateway from starting nor leave it deaf for good: the subscription
retries with backoff, and tells its owner when it is lost and when it is back, so that
the owner can fall back to something safe meanwhile (re-read the database, stop caching).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

log = logging.getLogger("souverain.redis")
MAX_BACKOFF_S = 5.0


class Subscription:
    def __init__(
        self,
        client: Any,
        channel: str,
        on_message: Callable[[bytes], Awaitable[None]],
        on_state: Callable[[bool], Awaitable[None]],
    ) -> None:
        self._client = client
        self._channel = channel
        self._on_message = on_message
        self._on_state = on_state  # True: (re)connected, False: lost
        self._task: asyncio.Task[None] | None = None
        self.connected = False
        self._subscribed = asyncio.Event()

    async def start(self, wait_s: float = 2.0) -> None:
        """Start listening; wait a little for the first subscription, never fail."""
        self._task = asyncio.create_task(self._run())
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._subscribed.wait(), wait_s)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        backoff = 0.25
        while True:
            pubsub = self._client.pubsub()
            try:
                await pubsub.subscribe(self._channel)
                self.connected = True
                backoff = 0.25
                await self._on_state(True)
                self._subscribed.set()
                async for message in pubsub.listen():
                    if message.get("type") == "message":
                        data = message["data"]
                        await self._on_message(data if isinstance(data, bytes) else data.encode())
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if self.connected or not self._subscribed.is_set():
                    log.warning("Redis channel %s unavailable (%s); retrying", self._channel, exc)
                self.connected = False
                self._subscribed.set()  # start() stops waiting: we run degraded
                with contextlib.suppress(Exception):
                    await self._on_state(False)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, MAX_BACKOFF_S)
            finally:
                with contextlib.suppress(Exception):
                    await pubsub.aclose()
