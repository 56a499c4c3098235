"""`/healthz` (the process answers), `/readyz` (models loaded, store reachable), `/metrics`."""

from __future__ import annotations

import asyncio

from starlette.requests import Request
from starlette.responses import Response

from ..observability.scrape import check_scrape
from ..store.database import ping
from .http import JSON, app_state


async def healthz(request: Request) -> Response:
    return JSON({"status": "ok"})


async def readyz(request: Request) -> Response:
    state = app_state(request)
    models = {
        model.id: any(backend.ready() for backend in model.backends)
        for model in state.catalog.models
    }
    store = await asyncio.to_thread(ping, state.database)
    ready = state.started and store and all(models.values())
    body = {"status": "ready" if ready else "not ready", "store": store, "models": models}
    return JSON(body, status_code=200 if ready else 503)


async def metrics(request: Request) -> Response:
    """Prometheus text, for loopback clients and scrapers with the token (metrics:)."""
    state = app_state(request)
    client = request.client.host if request.client else None
    check_scrape(state.settings.metrics, client, request.headers.get("authorization"))
    return Response(
        state.metrics.render(),
        media_type="text/plain; version=0.0.4; charset=utf-8",
    )
