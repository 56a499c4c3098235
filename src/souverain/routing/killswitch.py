"""The kill switch: cut a deployment, an operator or a whole jurisdiction off, now.

Cuts live in the database (they survive restarts; `provider_cut_events` records who did
what and when). With Redis configured, a cut is announced to every gateway replica and
the call returns only once each replica that heard it has applied it, so that no
replica routes to a cut provider after `cut` returns.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import Engine, delete, select

from ..backends.base import Backend
from ..store.redis_channel import Subscription
from ..store.tables import provider_cut_events, provider_cuts

CutKind = Literal["deployment", "operator", "jurisdiction"]
CHANNEL = "souverain:provider-cuts"
ACK_TIMEOUT_S = 2.0
POLL_WITHOUT_REDIS_S = 1.0
log = logging.getLogger("souverain.killswitch")


@dataclass(frozen=True, slots=True)
class Cut:
    kind: CutKind
    value: str
    actor: str
    at: float

    def matches(self, backend: Backend) -> bool:
        if self.kind == "deployment":
            return backend.name == self.value
        if self.kind == "operator":
            return backend.facts.operator.lower() == self.value.lower()
        return backend.facts.jurisdiction.lower() == self.value.lower()

    def as_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "value": self.value, "actor": self.actor, "at": self.at}


class KillSwitch:
    def __init__(self, database: Engine, redis_url: str | None = None) -> None:
        self._database = database
        self._redis_url = redis_url
        self._redis: Any = None
        self._subscription: Subscription | None = None
        self._poller: asyncio.Task[None] | None = None
        self.cuts: list[Cut] = []

    def blocking(self, backend: Backend) -> Cut | None:
        return next((cut for cut in self.cuts if cut.matches(backend)), None)

    async def start(self) -> None:
        await asyncio.to_thread(self._reload)
        if self._redis_url:
            import redis.asyncio as redis

            self._redis = redis.from_url(self._redis_url)
            self._subscription = Subscription(self._redis, CHANNEL, self._heard, self._channel)
            await self._subscription.start()

    async def close(self) -> None:
        if self._subscription is not None:
            await self._subscription.close()
        await self._stop_polling()
        if self._redis is not None:
            await self._redis.aclose()

    async def cut(self, kind: CutKind, value: str, actor: str) -> Cut:
        cut = Cut(kind=kind, value=value, actor=actor, at=time.time())
        await asyncio.to_thread(self._write, "cut", cut)
        await self._apply_everywhere()
        return cut

    async def restore(self, kind: CutKind, value: str, actor: str) -> bool:
        existed = any(c.kind == kind and c.value == value for c in self.cuts)
        await asyncio.to_thread(self._write, "restore", Cut(kind, value, actor, time.time()))
        await self._apply_everywhere()
        return existed

    # ---- storage and propagation --------------------------------------------------------

    def _write(self, action: str, cut: Cut) -> None:
        with self._database.begin() as conn:
            where = (provider_cuts.c.kind == cut.kind) & (provider_cuts.c.value == cut.value)
            conn.execute(delete(provider_cuts).where(where))
            if action == "cut":
                conn.execute(provider_cuts.insert().values(**cut.as_dict()))
            conn.execute(provider_cut_events.insert().values(action=action, **cut.as_dict()))

    def _reload(self) -> None:
        with self._database.connect() as conn:
            rows = conn.execute(select(provider_cuts)).all()
        self.cuts = [Cut(kind=r.kind, value=r.value, actor=r.actor, at=r.at) for r in rows]

    async def _apply_everywhere(self) -> None:
        await asyncio.to_thread(self._reload)  # here first: this replica never lags
        if self._redis is None:
            return
        nonce = secrets.token_hex(8)
        try:
            listeners = int(await self._redis.publish(CHANNEL, nonce))
        except Exception as exc:  # stored already; replicas cut off from Redis poll the DB
            log.warning("provider cut stored but not announced (Redis: %s)", exc)
            return
        ack_key = f"{CHANNEL}:ack:{nonce}"
        deadline = time.monotonic() + ACK_TIMEOUT_S
        while time.monotonic() < deadline:
            if int(await self._redis.get(ack_key) or 0) >= listeners:
                return
            await asyncio.sleep(0.005)
        log.warning(
            "provider cut: %s replica(s) did not confirm within %ss", listeners, ACK_TIMEOUT_S
        )

    async def _heard(self, data: bytes) -> None:
        try:
            await asyncio.to_thread(self._reload)
        finally:
            ack_key = f"{CHANNEL}:ack:{data.decode()}"
            await self._redis.incr(ack_key)
            await self._redis.expire(ack_key, 60)

    async def _channel(self, up: bool) -> None:
        """Without the channel a replica could miss a cut: read the database every
        second until it is back, and once more when it is (what was missed meanwhile)."""
        if up:
            await self._stop_polling()
            await asyncio.to_thread(self._reload)
        elif self._poller is None:
            self._poller = asyncio.create_task(self._poll())

    async def _poll(self) -> None:
        while True:
            with contextlib.suppress(Exception):
                await asyncio.to_thread(self._reload)
            await asyncio.sleep(POLL_WITHOUT_REDIS_S)

    async def _stop_polling(self) -> None:
        if self._poller is not None:
            self._poller.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._poller
            self._poller = None
