"""`GET /v1/models` and `GET /v1/models/{model_id}`."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from ..protocol.models import render_model_list
from .http import JSON, app_state


async def list_models(request: Request) -> Response:
    state = app_state(request)
    await state.pipeline.open(request.headers, "models")
    return JSON(render_model_list([model.describe() for model in state.catalog.models]))


async def get_model(request: Request) -> Response:
    state = app_state(request)
    await state.pipeline.open(request.headers, "models")
    return JSON(state.catalog.get(request.path_params["model_id"]).describe())
