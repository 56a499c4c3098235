"""Revocations reach every gateway replica at once, through Redis.

When a key is revoked (or a role, a team or a limit changes), the replica that made the
change publishes a message; every replica, itself included, empties its key cache on
receipt. While the channel is down a replica cannot hear of changes, so it stops
caching keys until the channel is back. Without Redis there is one process and
`KeyStore.invalidate` is enough.
"""

from __future__ import annotations

import logging
from typing import Any

from ..store.redis_channel import Subscription
from .keys import KeyStore

CHANNEL = "souverain:identity-changed"
log = logging.getLogger("souverain.identity")


class CacheInvalidation:
    def __init__(self, keys: KeyStore, redis_url: str) -> None:
        self._keys = keys
        self._redis_url = redis_url
        self._redis: Any = None
        self._subscription: Subscription | None = None

    async def start(self) -> None:
        import redis.asyncio as redis

        self._redis = redis.from_url(self._redis_url)
        self._keys.caching = False  # until the channel is up
        self._subscription = Subscription(self._redis, CHANNEL, self._heard, self._channel)
        await self._subscription.start()
        self._keys.broadcast = self._publish

    async def close(self) -> None:
        self._keys.broadcast = None
        if self._subscription is not None:
            await self._subscription.close()
        if self._redis is not None:
            await self._redis.aclose()

    async def _publish(self) -> None:
        try:
            await self._redis.publish(CHANNEL, b"1")
        except Exception as exc:  # replicas without the channel do not cache: still safe
            log.warning("could not announce an identity change (%s)", exc)

    async def _heard(self, data: bytes) -> None:
        self._keys.forget()

    async def _channel(self, up: bool) -> None:
        self._keys.forget()  # whatever happened meanwhile
        self._keys.caching = up
