"""`/v1/agents`: Mistral's Agents API, so `client.beta.agents.*` works unchanged.

Agents are tenant-wide: any key of the tenant lists, reads and (through conversations)
uses them; creating, updating, switching versions, aliasing and deleting need
`agents.manage` (identity/rbac.py: owner, admin, developer) and leave an admin leaf in the
audit log before the change. Another tenant's agent is 404, never 403. Key scopes name
this surface `agents`. What an agent may hold is checked by protocol/agents.py and here
(its model must be one the author may use; its handoffs agents of the same tenant).
"""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ..agents.registry import (
    MAX_AGENTS_PER_TENANT,
    AgentRegistry,
    AgentVersion,
    Alias,
    agent_json,
    new_agent_id,
)
from ..audit.leaves import admin_leaf
from ..connectors.service import connector_service
from ..context import RequestContext
from ..errors import Conflict, InvalidRequest, NotFound, UnsupportedByModel
from ..identity.rbac import require
from ..protocol.agents import (
    MAX_ID,
    AgentCreate,
    AgentUpdate,
    check_alias,
    check_tools,
    iso,
    limits_of,
)
from ..state import AppState
from .agent_listing import cursor, listed, page_token
from .http import JSON, MAX_PAGE_NUMBER, app_state, parse_body, query_int

ENDPOINT = "agents"
MAX_PAGE_SIZE = 1000
GUARDRAILS_MAX_BYTES = 16 * 1024


class Agents:
    """One request's view of the registry: the caller, its tenant, the checks."""

    def __init__(self, state: AppState, ctx: RequestContext) -> None:
        self.state = state
        self.ctx = ctx
        self.tenant = ctx.principal.tenant
        self.registry = AgentRegistry(state.database)

    @classmethod
    async def open(cls, request: Request, *, manage: bool = False) -> Agents:
        state = app_state(request)
        ctx = await state.pipeline.open(request.headers, ENDPOINT)
        require(ctx.principal, "agents.manage" if manage else "models.use")
        return cls(state, ctx)

    async def run(self, method: Any, *args: Any, **kwargs: Any) -> Any:
        return await asyncio.to_thread(method, *args, **kwargs)

    async def render(self, agent: AgentVersion) -> dict[str, Any]:
        return agent_json(agent, await self.run(self.registry.version_numbers, agent.id))

    async def render_all(self, found: list[AgentVersion]) -> list[dict[str, Any]]:
        numbers = await self.run(self.registry.versions_of, [agent.id for agent in found])
        return [agent_json(agent, numbers[agent.id]) for agent in found]

    async def found(self, agent_id: str, version: int | str | None = None) -> AgentVersion:
        agent: AgentVersion | None = await self.run(
            self.registry.resolve, self.tenant, agent_id, version
        )
        if agent is None:
            if version is not None and await self.run(self.registry.resolve, self.tenant, agent_id):
                raise NotFound(
                    f"agent {agent_id[:80]!r} has no version {str(version)[:80]!r}", param="version"
                )
            raise missing(agent_id)
        return agent

    async def record(self, action: str, target: dict[str, Any]) -> None:
        """The admin leaf, durable before the change: what cannot be logged is not done."""
        if self.state.pipeline.audit is not None:
            await self.state.pipeline.audit.append(admin_leaf(self.ctx, action, target))

    # ---- checks on what an agent holds ---------------------------------------------------

    def check_model(self, name: str) -> None:
        """404 for a model the author may not see (as chat answers), 400 for one that does
        not chat."""
        model = self.state.pipeline.visible_model(self.ctx, name)
        if not model.capabilities().completion_chat:
            raise UnsupportedByModel(
                f"model {model.id!r} does not serve chat completions", param="model"
            )

    async def check_handoffs(self, handoffs: list[str], own_id: str) -> list[str]:
        unique = list(dict.fromkeys(handoffs))
        for index, target in enumerate(unique):
            where = f"handoffs[{index}]"
            if not 1 <= len(target) <= MAX_ID:
                raise InvalidRequest(f"{where} must be an agent id", param=where)
            if target == own_id:
                raise InvalidRequest(f"{where}: an agent cannot hand off to itself", param=where)
            if await self.run(self.registry.resolve, self.tenant, target) is None:
                raise InvalidRequest(
                    f"{where}: no agent {target[:80]!r} was found in this tenant", param=where
                )
        return unique

    async def check_connectors(self, tools: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Each connector an agent names must be registered in its tenant (by name or id;
        its tools are listed only when a conversation binds it)."""
        for index, tool in enumerate(tools):
            if tool["type"] != "connector":
                continue
            ref = tool["connector_id"]
            store = connector_service(self.state).store
            if await self.run(store.get, self.tenant, ref) is None:
                where = f"tools[{index}].connector_id"
                raise InvalidRequest(
                    f"{where}: no connector {ref!r} is registered in this tenant "
                    "(a tenant admin registers it: /admin/v1/connectors)",
                    param=where,
                )
        return tools

    async def checked(self, given: AgentCreate | AgentUpdate, own_id: str) -> dict[str, Any]:
        """The fields given, checked and normalized (only those the body sets)."""
        fields = given.model_fields_set
        out: dict[str, Any] = {}
        if given.model is not None:
            self.check_model(given.model)
            out["model"] = given.model
        if given.name is not None:
            out["name"] = given.name
        for name in ("instructions", "description", "version_message"):
            if name in fields:
                out[name] = getattr(given, name)
        if "tools" in fields:
            out["tools"] = await self.check_connectors(check_tools(given.tools or []))
        if "completion_args" in fields:
            args = given.completion_args
            out["completion_args"] = {} if args is None else args.model_dump(exclude_none=True)
        if "guardrails" in fields:
            out["guardrails"] = _guardrails(given.guardrails)
        if "handoffs" in fields:
            out["handoffs"] = await self.check_handoffs(given.handoffs or [], own_id)
        if "metadata" in fields:
            out["metadata"] = given.metadata
        if isinstance(given, AgentUpdate) and given.deployment_chat is not None:
            out["deployment_chat"] = given.deployment_chat
        souverain = (given.metadata or {}).get("souverain")
        if given.limits is not None or souverain is not None or isinstance(given, AgentCreate):
            out["limits"] = limits_of(given.limits, given.metadata)
        return out


def _guardrails(value: list[dict[str, Any]] | None) -> list[dict[str, Any]] | None:
    """Kept as given (the conversation runtime decides how each applies), bounded."""
    if value is not None and len(orjson.dumps(value)) > GUARDRAILS_MAX_BYTES:
        raise InvalidRequest(
            f"guardrails are larger than {GUARDRAILS_MAX_BYTES} bytes as JSON", param="guardrails"
        )
    return value


def missing(agent_id: str) -> NotFound:
    return NotFound(f"no agent {agent_id[:80]!r} was found", param="agent_id")


# ---- routes --------------------------------------------------------------------------------


async def create_agent(request: Request) -> Response:
    agents = await Agents.open(request, manage=True)
    body = await parse_body(request, AgentCreate)
    agent_id = new_agent_id()
    fields = await agents.checked(body, agent_id)
    if await agents.run(agents.registry.count, agents.tenant) >= MAX_AGENTS_PER_TENANT:
        raise Conflict(
            f"this tenant has {MAX_AGENTS_PER_TENANT} agents, the most it may keep",
            code="too_many_agents",
        )
    await agents.record("agent.create", {"agent_id": agent_id, "name": body.name[:200]})
    principal = agents.ctx.principal
    agent = await agents.run(
        agents.registry.create,
        agents.tenant,
        principal.tenant_id,
        principal.label,
        agent_id,
        fields,
    )
    return JSON(await agents.render(agent))


async def update_agent(request: Request) -> Response:
    agents = await Agents.open(request, manage=True)
    agent_id = request.path_params["agent_id"]
    body = await parse_body(request, AgentUpdate)
    await agents.found(agent_id)
    patch = await agents.checked(body, agent_id)
    await agents.record("agent.update", {"agent_id": agent_id, "fields": sorted(patch)})

    def change(current: AgentVersion) -> dict[str, Any]:
        return {**current.body(), **patch}

    agent = await agents.run(
        agents.registry.update, agents.tenant, agent_id, agents.ctx.principal.label, change
    )
    if agent is None:
        raise missing(agent_id)
    return JSON(await agents.render(agent))


async def switch_version(request: Request) -> Response:
    agents = await Agents.open(request, manage=True)
    agent_id = request.path_params["agent_id"]
    version = query_int(request, "version", minimum=1)
    await agents.found(agent_id, version)
    await agents.record("agent.version", {"agent_id": agent_id, "version": version})
    agent = await agents.run(agents.registry.switch, agents.tenant, agent_id, version)
    if agent is None:
        raise missing(agent_id)
    return JSON(await agents.render(agent))


async def delete_agent(request: Request) -> Response:
    agents = await Agents.open(request, manage=True)
    agent_id = request.path_params["agent_id"]
    await agents.found(agent_id)
    await agents.record("agent.delete", {"agent_id": agent_id})
    if not await agents.run(agents.registry.delete, agents.tenant, agent_id):
        raise missing(agent_id)
    return Response(status_code=204)


async def get_agent(request: Request) -> Response:
    agents = await Agents.open(request)
    version = request.query_params.get("agent_version") or None
    agent = await agents.found(request.path_params["agent_id"], version)
    return JSON(await agents.render(agent))


async def get_version(request: Request) -> Response:
    agents = await Agents.open(request)
    agent = await agents.found(request.path_params["agent_id"], request.path_params["version"])
    return JSON(await agents.render(agent))


async def list_versions(request: Request) -> Response:
    agents = await Agents.open(request)
    agent_id = request.path_params["agent_id"]
    page, size = _page(request, default_size=20)
    found = await agents.run(agents.registry.versions, agents.tenant, agent_id, page * size, size)
    if found is None:
        raise missing(agent_id)
    numbers = await agents.run(agents.registry.version_numbers, agent_id)
    return JSON([agent_json(agent, numbers) for agent in found])


async def list_agents(request: Request) -> Response:
    """Mistral's deprecated page-numbered listing: a bare JSON array."""
    agents = await Agents.open(request)
    page, size = _page(request, default_size=20)
    found = await listed(agents.registry, agents.tenant, request, page * size, size)
    return JSON(await agents.render_all(found))


async def list_agent_pages(request: Request) -> Response:
    """The cursor-paged listing: `{object: list, data, next_page_token}`."""
    agents = await Agents.open(request)
    size = query_int(request, "page_size", 20, minimum=1, maximum=MAX_PAGE_SIZE)
    offset = cursor(request.query_params.get("page_token"))
    found = await listed(agents.registry, agents.tenant, request, offset, size + 1)
    data = await agents.render_all(found[:size])
    token = page_token(offset + size) if len(found) > size else None
    return JSON({"object": "list", "data": data, "next_page_token": token})


async def set_alias(request: Request) -> Response:
    agents = await Agents.open(request, manage=True)
    agent_id = request.path_params["agent_id"]
    alias = check_alias(request.query_params.get("alias", ""))
    version = query_int(request, "version", minimum=1)
    await agents.found(agent_id, version)
    await agents.record("agent.alias", {"agent_id": agent_id, "alias": alias, "version": version})
    made = await agents.run(agents.registry.set_alias, agents.tenant, agent_id, alias, version)
    if made is None:
        raise missing(agent_id)
    return JSON(_alias_json(made))


async def list_aliases(request: Request) -> Response:
    agents = await Agents.open(request)
    agent_id = request.path_params["agent_id"]
    found = await agents.run(agents.registry.aliases, agents.tenant, agent_id)
    if found is None:
        raise missing(agent_id)
    return JSON([_alias_json(alias) for alias in found])


async def delete_alias(request: Request) -> Response:
    agents = await Agents.open(request, manage=True)
    agent_id = request.path_params["agent_id"]
    alias = check_alias(request.query_params.get("alias", ""))
    await agents.found(agent_id)
    await agents.record("agent.alias.delete", {"agent_id": agent_id, "alias": alias})
    gone = await agents.run(agents.registry.delete_alias, agents.tenant, agent_id, alias)
    if gone is None:
        raise missing(agent_id)
    if not gone:
        raise NotFound(f"agent {agent_id[:80]!r} has no alias {alias!r}", param="alias")
    return Response(status_code=204)


def _alias_json(alias: Alias) -> dict[str, Any]:
    return {
        "alias": alias.alias,
        "version": alias.version,
        "created_at": iso(alias.created_at),
        "updated_at": iso(alias.updated_at),
    }


# ---- listing filters and pages ---------------------------------------------------------------


def _page(request: Request, default_size: int) -> tuple[int, int]:
    page = query_int(request, "page", 0, maximum=MAX_PAGE_NUMBER)
    size = query_int(request, "page_size", default_size, minimum=1, maximum=MAX_PAGE_SIZE)
    return page, size


def agent_routes() -> list[Route]:
    base = "/v1/agents"
    one = base + "/{agent_id}"
    return [
        Route(base, list_agents, methods=["GET"]),
        Route(base, create_agent, methods=["POST"]),
        Route(f"{base}/pages", list_agent_pages, methods=["GET"]),
        Route(one, get_agent, methods=["GET"]),
        Route(one, update_agent, methods=["PATCH"]),
        Route(one, delete_agent, methods=["DELETE"]),
        Route(f"{one}/version", switch_version, methods=["PATCH"]),
        Route(f"{one}/versions", list_versions, methods=["GET"]),
        Route(f"{one}/versions/{{version}}", get_version, methods=["GET"]),
        Route(f"{one}/aliases", list_aliases, methods=["GET"]),
        Route(f"{one}/aliases", set_alias, methods=["PUT"]),
        Route(f"{one}/aliases", delete_alias, methods=["DELETE"]),
    ]
