"""The batch lane: interactive traffic first, batches take the capacity left over.

Before a batch line enters the pipeline, it waits here until two things are true for
its model, in this replica:

- no interactive call is in flight or queued on the model's deployments. The engines
  report their depth (`Backend.queue_depth`, the local engine's calls in flight), and
  this replica's own batch lines are subtracted from it;
- fewer than `batch.lane_concurrency` batch lines, of all batches, are running on
  that model, and, when all its deployments run in this process, fewer than their
  workers: a line admitted past them would wait in the engine's queue, which is first
  come first served, and a person arriving then would wait for it too.

Someone who sends a request while a batch runs therefore waits for at most the lines
already started (on the embedded engine, one worker: the rest of one line), never for
the batch's queue. Engines that do not report a depth (remote ones: 0) are gated only by
the share. While interactive calls keep arriving, a batch waits, until its window
expires. That is what "only the capacity left over" means.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from ..errors import NotFound
from ..routing.models import ModelCatalog, ServedModel

PAUSE_S = 0.05  # how often a waiting line looks again


def engine_slots(model: ServedModel) -> int | None:
    """Calls the model's engines run at once when all of them run in this process (their
    workers); None when one is remote: how many calls it runs at once is not known here."""
    kinds = {backend.kind for backend in model.backends}
    if kinds != {"local"}:
        return None
    return sum(backend.deployment.workers for backend in model.backends)


class BatchLane:
    def __init__(self, catalog: ModelCatalog, share: int) -> None:
        self.catalog = catalog
        self.share = share
        self._slots: dict[str, asyncio.Semaphore] = {}
        self._running: Counter[str] = Counter()  # this replica's batch lines, by model

    def interactive(self, model: ServedModel) -> int:
        """Calls on the model's deployments that are not this replica's batch lines."""
        depth = sum(backend.queue_depth() for backend in model.backends)
        return max(0, depth - self._running[model.id])

    @asynccontextmanager
    async def admitted(
        self, name: object, stop: asyncio.Event | None = None
    ) -> AsyncIterator[None]:
        """Wait for the line's turn (or for `stop`); a model that does not exist is not
        gated here: the pipeline refuses it, in the line's answer."""
        try:
            model = self.catalog.get(name) if isinstance(name, str) else None
        except NotFound:
            model = None
        if model is None:
            yield
            return
        slots = self._slots.get(model.id)
        if slots is None:
            share = min(self.share, engine_slots(model) or self.share)
            slots = self._slots[model.id] = asyncio.Semaphore(share)
        async with slots:
            # The engines expose a depth, not an event to wait on: it is polled.
            while self.interactive(model) > 0 and not (stop is not None and stop.is_set()):  # noqa: ASYNC110
                await asyncio.sleep(PAUSE_S)
            self._running[model.id] += 1
            try:
                yield
            finally:
                self._running[model.id] -= 1
