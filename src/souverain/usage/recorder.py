"""Usage rows, written in batches off the request path.

A request only appends a dict to a list; a background task writes the batch every
`flush_s` in a worker thread. Budgets start from these rows (`spent`), so the rows not
yet written are counted too.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, func, select

from ..context import RequestContext
from ..identity.keys import key_family
from ..quotas.limits import Scope
from ..store.tables import usage

log = logging.getLogger("souverain.usage")


class UsageRecorder:
    def __init__(self, engine: Engine, *, flush_s: float = 0.25) -> None:
        self._engine = engine
        self._flush_s = flush_s
        self._pending: list[dict[str, Any]] = []
        self._task: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()

    def record(self, ctx: RequestContext, cost: float) -> None:
        principal = ctx.principal
        now = time.time()
        self._pending.append(
            {
                "at": now,
                "day": datetime.fromtimestamp(now, UTC).strftime("%Y-%m-%d"),
                "tenant": principal.tenant,
                "tenant_id": principal.tenant_id,
                "team": principal.team,
                "team_id": principal.team_id,
                "user_id": principal.user_id,
                "key_id": principal.key_id,
                "principal": principal.label,
                "endpoint": ctx.endpoint,
                "model": ctx.model,
                "deployment": ctx.deployment,
                "prompt_tokens": ctx.usage.prompt_tokens if ctx.usage else 0,
                "completion_tokens": ctx.usage.completion_tokens if ctx.usage else 0,
                "cost": cost,
                "latency_ms": round(ctx.elapsed() * 1000, 3),
                "status": ctx.status,
                "outcome": ctx.outcome,
            }
        )

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def flush(self) -> None:
        async with self._lock:
            batch, self._pending = self._pending, []
            if not batch:
                return
            try:
                await asyncio.to_thread(self._write, batch)
            except Exception:
                self._pending[:0] = batch  # keep them for the next try
                raise

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self.flush()

    def spent(self, scope: Scope, since: float) -> tuple[int, float]:
        """Tokens and cost recorded for `scope` since `since` (written or pending)."""
        column = _SCOPE_COLUMNS[scope.kind]
        with self._engine.connect() as conn:
            # A key's own limits also cover the keys minted from it (identity/minting.py).
            ids = key_family(conn, int(scope.id)) if scope.kind == "key" else {int(scope.id)}
            query = select(
                func.coalesce(func.sum(usage.c.prompt_tokens + usage.c.completion_tokens), 0),
                func.coalesce(func.sum(usage.c.cost), 0.0),
            ).where(usage.c[column].in_(ids) & (usage.c.at >= since))
            tokens, cost = conn.execute(query).one()
        for row in list(self._pending):
            if row[column] in ids and row["at"] >= since:
                tokens += row["prompt_tokens"] + row["completion_tokens"]
                cost += row["cost"]
        return int(tokens), float(cost)

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._flush_s)
            try:
                await self.flush()
            except Exception as exc:  # the database is down: keep the rows, say so, retry
                log.warning("could not write %d usage rows: %s", len(self._pending), exc)

    def _write(self, batch: list[dict[str, Any]]) -> None:
        with self._engine.begin() as conn:
            conn.execute(usage.insert(), batch)


_SCOPE_COLUMNS = {"key": "key_id", "user": "user_id", "team": "team_id", "tenant": "tenant_id"}
