"""Revocations reach every gateway replica at once, through Redis.

When a key is revoked (or a role, a team or a limit changes), the replica that made the
change publishes a message; every replica, itself included, empties its key cache on
receipt. Without Redis there is one process and `KeyStore.invalidate` is enough.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from .keys import KeyStore

CHANNEL = "souverain:identity-changed"
log = logging.getLogger("souverain.identity")


class CacheInvalidation:
    def __init__(self, keys: KeyStore, redis_url: str) -> None:
        self._keys = keys
        self._redis_url = redis_url
        self._redis: Any = None
        self._listener: asyncio.Task[None] | None = None

    async def start(self) -> None:
        import redis.asyncio as redis

        self._redis = redis.from_url(self._redis_url)
        pubsub = self._redis.pubsub()
        await pubsub.subscribe(CHANNEL)
        self._listener = asyncio.create_task(self._listen(pubsub))
        self._keys.broadcast = self._publish

    async def close(self) -> None:
        self._keys.broadcast = None
        if self._listener is not None:
            self._listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._listener
        if self._redis is not None:
            await self._redis.aclose()

    async def _publish(self) -> None:
        try:
            await self._redis.publish(CHANNEL, b"1")
        except Exception as exc:  # the change is made; replicas' caches expire on their own
            log.warning("could not announce an identity change (%s)", exc)

    async def _listen(self, pubsub: Any) -> None:
        while True:
            try:
                async for message in pubsub.listen():
                    if message.get("type") == "message":
                        self._keys.forget()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # Redis went away: forget everything, then resubscribe
                self._keys.forget()
                log.warning("identity invalidation channel lost (%s); retrying", exc)
                await asyncio.sleep(1.0)
                with contextlib.suppress(Exception):
                    await pubsub.subscribe(CHANNEL)
