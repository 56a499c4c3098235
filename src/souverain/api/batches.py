"""`/v1/batches` (OpenAI) and `/v1/batch/jobs` (Mistral): one batch mechanism, two shapes.

Both read and write the same batches (batch/service.py); each route answers in its own
API's shape. Every route checks the caller like a model call does (`models.use`) and
finds only the caller's own batches: another owner's id is a 404.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ..batch.protocol import BatchCreate, BatchJobCreate, render_mistral, render_openai
from ..batch.service import BatchOrder, BatchService
from ..context import RequestContext
from ..errors import InvalidRequest, NotFound
from ..identity.rbac import require
from .http import JSON, MAX_PAGE_NUMBER, app_state, parse_body, query_int

ENDPOINT = "batch"
MAX_ID_CHARS = 200


def batch_routes() -> list[Route]:
    one, job = "/v1/batches/{batch_id}", "/v1/batch/jobs/{job_id}"
    return [
        Route("/v1/batches", create_batch, methods=["POST"]),
        Route("/v1/batches", list_batches, methods=["GET"]),
        Route(one, get_batch, methods=["GET"]),
        Route(f"{one}/cancel", cancel_batch, methods=["POST"]),
        Route("/v1/batch/jobs", create_job, methods=["POST"]),
        Route("/v1/batch/jobs", list_jobs, methods=["GET"]),
        Route(job, get_job, methods=["GET"]),
        Route(f"{job}/cancel", cancel_job, methods=["POST"]),
    ]


async def _open(request: Request) -> tuple[BatchService, RequestContext]:
    state = app_state(request)
    ctx = await state.pipeline.open(request.headers, ENDPOINT)
    require(ctx.principal, "models.use")
    if state.batches is None:
        raise NotFound("batches are not enabled on this gateway (batch.enabled)")
    return state.batches, ctx


def _only(request: Request, *known: str) -> None:
    """A query parameter the route does not read is refused, not silently ignored."""
    for name in request.query_params:
        if name not in known:
            raise InvalidRequest(
                f"unknown query parameter {name[:100]!r} (this route reads {', '.join(known)})",
                param=name[:100],
            )


def _id(request: Request, name: str) -> str:
    value: str = request.path_params[name]
    if len(value) > MAX_ID_CHARS:
        raise NotFound(f"no batch {value[:100]!r}", code="batch_not_found")
    return value


# ---- OpenAI -----------------------------------------------------------------------------------


async def create_batch(request: Request) -> Response:
    service, ctx = await _open(request)
    body = await parse_body(request, BatchCreate)
    hours = int(body.completion_window[:-1])
    if not 1 <= hours <= service.config.max_timeout_hours:
        raise InvalidRequest(
            f"completion_window is 1h to {service.config.max_timeout_hours}h "
            "(batch.max_timeout_hours)",
            param="completion_window",
        )
    order = BatchOrder(api="openai", endpoint=body.endpoint, input_files=[body.input_file_id],
                       window_s=hours * 3600.0, completion_window=body.completion_window,
                       metadata=body.metadata,
                       output_expires_s=body.output_expires_after.seconds
                       if body.output_expires_after else None)  # fmt: skip
    return JSON(render_openai(await service.create(ctx, order)))


async def list_batches(request: Request) -> Response:
    service, ctx = await _open(request)
    _only(request, "after", "limit")
    limit = query_int(request, "limit", 20, minimum=1, maximum=100)
    after = request.query_params.get("after")
    before = None
    if after:
        cursor = await service.get(ctx, after[:MAX_ID_CHARS])
        if cursor is None:
            raise InvalidRequest(f"after: no batch {after[:100]!r}", param="after")
        before = cursor.job.created_at
    views, _ = await service.list(ctx, before=before, offset=0, limit=limit + 1)
    data = [render_openai(view) for view in views[:limit]]
    return JSON({"object": "list", "data": data, "has_more": len(views) > limit,
                 "first_id": data[0]["id"] if data else None,
                 "last_id": data[-1]["id"] if data else None})  # fmt: skip


async def get_batch(request: Request) -> Response:
    service, ctx = await _open(request)
    return JSON(render_openai(await service.require(ctx, _id(request, "batch_id"))))


async def cancel_batch(request: Request) -> Response:
    service, ctx = await _open(request)
    return JSON(render_openai(await service.cancel(ctx, _id(request, "batch_id"))))


# ---- Mistral ----------------------------------------------------------------------------------


async def create_job(request: Request) -> Response:
    service, ctx = await _open(request)
    body = await parse_body(request, BatchJobCreate)
    extra: dict[str, Any] = body.model_extra or {}
    if extra.get("requests") or extra.get("agent_id"):
        field = "requests" if extra.get("requests") else "agent_id"
        raise InvalidRequest(f"{field} is not supported here: send input_files", param=field)
    if len(body.input_files) > service.config.max_input_files:
        raise InvalidRequest(
            f"input_files holds at most {service.config.max_input_files} files "
            "(batch.max_input_files)",
            param="input_files",
        )
    if body.timeout_hours > service.config.max_timeout_hours:
        raise InvalidRequest(
            f"timeout_hours is at most {service.config.max_timeout_hours} "
            "(batch.max_timeout_hours)",
            param="timeout_hours",
        )
    order = BatchOrder(api="mistral", endpoint=body.endpoint, input_files=body.input_files,
                       window_s=body.timeout_hours * 3600.0,
                       completion_window=f"{body.timeout_hours}h", metadata=body.metadata,
                       model=body.model)  # fmt: skip
    return JSON(render_mistral(await service.create(ctx, order)))


async def list_jobs(request: Request) -> Response:
    service, ctx = await _open(request)
    # The SDK sends created_by_me=false and order_by=-created by default; a caller sees
    # only its own jobs whatever created_by_me says.
    _only(request, "page", "page_size", "created_by_me", "order_by")
    page = query_int(request, "page", 0, maximum=MAX_PAGE_NUMBER)
    size = query_int(request, "page_size", 100, minimum=1, maximum=1000)
    if request.query_params.get("created_by_me", "false") not in ("true", "false"):
        raise InvalidRequest("created_by_me is true or false", param="created_by_me")
    order = request.query_params.get("order_by", "-created")
    if order not in ("-created", "created"):
        raise InvalidRequest('order_by is "-created" or "created"', param="order_by")
    views, total = await service.list(ctx, before=None, offset=page * size, limit=size,
                                      oldest_first=order == "created")  # fmt: skip
    return JSON({"object": "list", "data": [render_mistral(v) for v in views], "total": total})


async def get_job(request: Request) -> Response:
    service, ctx = await _open(request)
    return JSON(render_mistral(await service.require(ctx, _id(request, "job_id"))))


async def cancel_job(request: Request) -> Response:
    service, ctx = await _open(request)
    return JSON(render_mistral(await service.cancel(ctx, _id(request, "job_id"))))
