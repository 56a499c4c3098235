"""`GET /v1/models` and `GET /v1/models/{model_id}`: only the models the caller may use.

A model outside the caller's scopes is invisible: it is not listed, and fetching or
calling it answers 404 (docs/identity.md).
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from ..identity.rbac import require
from ..protocol.models import render_model_list
from .http import JSON, app_state


async def list_models(request: Request) -> Response:
    state = app_state(request)
    ctx = await state.pipeline.open(request.headers, "models")
    require(ctx.principal, "models.use")
    allowed = ctx.principal.models
    visible = [m for m in state.catalog.models if allowed is None or m.id in allowed]
    return JSON(render_model_list([model.describe() for model in visible]))


async def get_model(request: Request) -> Response:
    state = app_state(request)
    ctx = await state.pipeline.open(request.headers, "models")
    require(ctx.principal, "models.use")
    return JSON(state.pipeline.visible_model(ctx, request.path_params["model_id"]).describe())
