"""`/admin/v1/connectors`: a tenant's MCP connectors, registered by its admins.

Every route needs `connectors.manage` (owner, admin) and a key allowed the `connectors`
endpoints; a stdio connector runs a command on the gateway host, so only the platform
owner registers one. Another tenant's connector answers 404, like one that does not
exist. Create and delete write their audit leaf first: what cannot be recorded is not
done. Headers and environment values are never returned (docs/connectors.md).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ..audit.leaves import admin_leaf
from ..connectors.schemas import ConnectorCreate
from ..connectors.service import ConnectorService, connector_service
from ..connectors.store import Connector
from ..context import RequestContext
from ..errors import NotFound, PermissionDenied
from ..identity.rbac import require, tenant_scope
from .http import JSON, app_state, parse_body

ENDPOINT = "connectors"


@dataclass(frozen=True, slots=True)
class _Call:
    ctx: RequestContext
    service: ConnectorService
    scope: str | None  # the caller's tenant; None for the platform owner (every tenant)

    async def record(self, request: Request, action: str, target: dict[str, Any]) -> None:
        audit = app_state(request).audit
        if audit is not None:
            await audit.append(admin_leaf(self.ctx, action, target))

    async def find(self, request: Request, *, secrets: bool = False) -> Connector:
        ref = request.path_params["connector_id"]
        get = self.service.store.get
        found = await asyncio.to_thread(lambda: get(self.scope, ref, secrets=secrets))
        if found is None:
            raise NotFound(f"no such connector {ref[:64]!r}")
        return found


async def _call(request: Request) -> _Call:
    state = app_state(request)
    ctx = await state.pipeline.open(request.headers, ENDPOINT)
    require(ctx.principal, "connectors.manage")
    return _Call(ctx, connector_service(state), tenant_scope(ctx.principal))


async def create_connector(request: Request) -> Response:
    call = await _call(request)
    body = await parse_body(request, ConnectorCreate)
    principal = call.ctx.principal
    if body.transport == "stdio" and principal.role != "owner":
        raise PermissionDenied(
            "only the platform owner registers a stdio connector: it runs a command on "
            "the gateway host",
            code="forbidden",
        )
    tenant, tenant_id = principal.tenant, principal.tenant_id
    if body.tenant is not None and body.tenant != tenant:
        if call.scope is not None:
            raise PermissionDenied("only the platform owner acts in other tenants")
        directory = app_state(request).directory
        tenant, tenant_id = body.tenant, await asyncio.to_thread(directory.tenant_id, body.tenant)
    target = {"name": body.name, "tenant": tenant, "transport": body.transport}
    await call.record(request, "connector.create", target)
    connector = await asyncio.to_thread(
        call.service.store.create, tenant, tenant_id, body, principal.label
    )
    return JSON(connector.public(), status_code=201)


async def list_connectors(request: Request) -> Response:
    call = await _call(request)
    found = await asyncio.to_thread(call.service.store.list, call.scope)
    return JSON({"object": "list", "data": [connector.public() for connector in found]})


async def get_connector(request: Request) -> Response:
    call = await _call(request)
    return JSON((await call.find(request)).public())


async def delete_connector(request: Request) -> Response:
    call = await _call(request)
    connector = await call.find(request)
    target = {"id": connector.id, "name": connector.name, "tenant": connector.tenant}
    await call.record(request, "connector.delete", target)
    await asyncio.to_thread(call.service.store.delete, call.scope, connector.id)
    call.service.forget(connector.id)
    return JSON({"object": "connector", "id": connector.id, "deleted": True})


async def list_connector_tools(request: Request) -> Response:
    """The server's tools, asked live (and the binder's cache refreshed)."""
    call = await _call(request)
    connector = await call.find(request, secrets=True)
    tools = await call.service.tools(connector, fresh=True)
    data = [
        {"name": tool.name, "description": tool.description, "input_schema": tool.input_schema}
        for tool in tools
    ]
    return JSON({"object": "list", "connector": connector.name, "data": data})


def connector_routes() -> list[Route]:
    """`/admin/v1/connectors` (docs/connectors.md)."""
    base = "/admin/v1/connectors"
    one = base + "/{connector_id}"
    return [
        Route(base, create_connector, methods=["POST"]),
        Route(base, list_connectors, methods=["GET"]),
        Route(one, get_connector, methods=["GET"]),
        Route(one, delete_connector, methods=["DELETE"]),
        Route(one + "/tools", list_connector_tools, methods=["GET"]),
    ]
