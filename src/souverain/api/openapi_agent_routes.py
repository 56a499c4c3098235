"""The Agents API's lines of the OpenAPI table (`/v1/agents...`, api/agents.py), and the
shapes it answers; merged into api/openapi_routes.py, whose docstring says how to add a
line. The answers are Mistral's `Agent` and `AgentAliasResponse` (docs/agents.md)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, RootModel

from ..protocol.agents import ALIAS_PATTERN, MAX_ALIAS, AgentCreate, AgentUpdate
from .openapi_spec import PAGE, Operation, Param, op
from .openapi_spec import int_param as _int
from .openapi_spec import text_param as _text


class AgentObject(BaseModel):
    """Mistral's `Agent`, plus Souverain's `limits`."""

    model_config = ConfigDict(extra="allow")

    object: Literal["agent"]
    id: str
    name: str
    model: str
    version: int
    versions: list[int]
    tools: list[dict[str, Any]]
    completion_args: dict[str, Any]
    deployment_chat: bool
    source: str
    created_at: str
    updated_at: str
    limits: dict[str, Any]


class AgentArray(RootModel[list[AgentObject]]):
    """A bare JSON array of agents (Mistral's page-numbered listings)."""


class AgentPage(BaseModel):
    model_config = ConfigDict(extra="allow")

    object: Literal["list"]
    data: list[AgentObject]
    next_page_token: str | None


class AgentAlias(BaseModel):
    model_config = ConfigDict(extra="allow")

    alias: str
    version: int
    created_at: str
    updated_at: str


class AgentAliasArray(RootModel[list[AgentAlias]]):
    """The agent's aliases, by name."""


A = "/v1/agents"
ONE = A + "/{agent_id}"
FILTERS = (
    _text("name", "Exactly this name."),
    _text("search", "Words in the name or the id."),
    _text("id", "Exactly this id."),
    _text("metadata", "A JSON object: agents whose metadata holds each of its pairs."),
    Param("deployment_chat", {"type": "boolean"}),
    Param("sources", {"type": "array", "items": {"type": "string"}}),
)
PAGE_SIZE = _int("page_size", "Items per page, at most 1000.", minimum=1, maximum=1000)
VERSION = _int("version", "A version number.", minimum=1, required=True)
ALIAS = Param(
    "alias",
    {"type": "string", "minLength": 1, "maxLength": MAX_ALIAS, "pattern": ALIAS_PATTERN},
    "1 to 64 letters, digits, _ . -; starting with a letter or digit; not a number.",
    required=True,
)
MANAGE: Literal["agents.manage"] = "agents.manage"

AGENT_OPERATIONS: dict[str, Operation] = {
    f"GET {A}": op(
        "List agents (page-numbered)",
        "models.use",
        tag="agents",
        ok=AgentArray,
        query=(PAGE, PAGE_SIZE, *FILTERS),
    ),
    f"POST {A}": op(
        "Create an agent",
        MANAGE,
        tag="agents",
        body=AgentCreate,
        ok=AgentObject,
        errors=(404, 409),
    ),
    f"GET {A}/pages": op(
        "List agents (cursor-paged)",
        "models.use",
        tag="agents",
        ok=AgentPage,
        query=(PAGE_SIZE, _text("page_token", "From next_page_token."), *FILTERS),
    ),
    f"GET {ONE}": op(
        "An agent, at its current version or the one named",
        "models.use",
        tag="agents",
        ok=AgentObject,
        query=(_text("agent_version", "A version number or an alias."),),
    ),
    f"PATCH {ONE}": op(
        "Update an agent (a new version, made current)",
        MANAGE,
        tag="agents",
        body=AgentUpdate,
        ok=AgentObject,
        errors=(409,),
    ),
    f"DELETE {ONE}": op(
        "Delete an agent, its versions and aliases", MANAGE, tag="agents", status=204
    ),
    f"PATCH {ONE}/version": op(
        "Make a version current", MANAGE, tag="agents", ok=AgentObject, query=(VERSION,)
    ),
    f"GET {ONE}/versions": op(
        "The agent's versions, newest first",
        "models.use",
        tag="agents",
        ok=AgentArray,
        query=(PAGE, PAGE_SIZE),
    ),
    f"GET {ONE}/versions/{{version}}": op(
        "One version, by number or alias", "models.use", tag="agents", ok=AgentObject
    ),
    f"GET {ONE}/aliases": op(
        "The agent's version aliases", "models.use", tag="agents", ok=AgentAliasArray
    ),
    f"PUT {ONE}/aliases": op(
        "Create or move a version alias",
        MANAGE,
        tag="agents",
        ok=AgentAlias,
        query=(ALIAS, VERSION),
        errors=(409,),
    ),
    f"DELETE {ONE}/aliases": op(
        "Delete a version alias", MANAGE, tag="agents", status=204, query=(ALIAS,)
    ),
}
