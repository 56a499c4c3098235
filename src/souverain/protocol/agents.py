"""`/v1/agents`: Mistral's Agents API (`client.beta.agents.*` of the mistralai SDK).

The request bodies mirror the SDK's `CreateAgentRequest` and `UpdateAgentRequest`; the
answer is its `Agent` (rendered by `agent_json`). Souverain adds `limits` (max_steps,
max_tool_calls, max_seconds per turn). The SDK cannot send unknown top-level fields, so
the same limits are also read from `metadata.souverain.limits`; when both are given they
must agree (docs/agents.md).

Tools are checked here, entry by entry (`check_tools`), so that a bad one is a 400 naming
its index: function tools (client-run), `document_library` and `connector` (run by the
gateway). Mistral's hosted tools (web_search, code_interpreter, image_generation...) would
send data outside the trust boundary and are refused by name.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field

from ..backends.conformance import check_schema
from ..backends.local_tools import MAX_TOOLS, TOOL_NAME
from ..errors import InvalidRequest
from ..jsonsafe import check_depth
from .common import APIModel, Metadata

MAX_NAME = 200
MAX_DESCRIPTION = 4_000
MAX_INSTRUCTIONS = 100_000  # characters; the model's context bounds it further
MAX_VERSION_MESSAGE = 1_000
MAX_HANDOFFS = 32
MAX_GUARDRAILS = 16
MAX_LIBRARIES = 32  # as on chat's document_library tool
MAX_TOOL_NAMES = 256  # names in one connector's include / exclude / requires_confirmation
MAX_ID = 200  # an agent or library id as text
MAX_CONNECTOR = 64  # a connector's name or id (connectors/store.py)
MAX_FUNCTION_BYTES = 64 * 1024  # one function tool's definition, as JSON
MAX_SCHEMA_DEPTH = 32
# A version alias: readable, never all digits (a number names a version); at most 64
# characters. Written without lookaround, so that the OpenAPI document can carry it.
ALIAS_PATTERN = r"^([A-Za-z][A-Za-z0-9_.-]*|[0-9][A-Za-z0-9_.-]*[A-Za-z_.-][A-Za-z0-9_.-]*)$"
ALIAS = re.compile(ALIAS_PATTERN)
MAX_ALIAS = 64
# Mistral's tool types that run on Mistral's own servers: not offered here.
HOSTED_TOOLS = ("web_search", "web_search_premium", "code_interpreter", "image_generation")


class Limits(BaseModel):
    """Per-turn limits (Souverain): steps, tool calls, wall time. Unset: the tenant's."""

    model_config = ConfigDict(extra="forbid")

    max_steps: int | None = Field(default=None, ge=1, le=100)
    max_tool_calls: int | None = Field(default=None, ge=0, le=200)
    max_seconds: float | None = Field(default=None, ge=1, le=3600)

    def as_dict(self) -> dict[str, int | float]:
        return {key: value for key, value in self.model_dump().items() if value is not None}


class CompletionArgs(BaseModel):
    """Mistral's white-listed completion arguments; anything else is refused (400), since
    an argument the runtime would drop silently is a setting the author believes holds."""

    model_config = ConfigDict(extra="forbid")

    stop: str | list[str] | None = None
    presence_penalty: float | None = Field(default=None, ge=-2, le=2)
    frequency_penalty: float | None = Field(default=None, ge=-2, le=2)
    temperature: float | None = Field(default=None, ge=0, le=2)
    top_p: float | None = Field(default=None, ge=0, le=1)
    max_tokens: int | None = Field(default=None, ge=1, le=1_000_000)
    random_seed: int | None = Field(default=None, ge=0, le=2**63 - 1)
    prediction: dict[str, Any] | None = None
    response_format: dict[str, Any] | None = None
    tool_choice: Literal["auto", "none", "any", "required"] | None = None
    reasoning_effort: Literal["none", "low", "medium", "high"] | None = None


class _AgentFields(APIModel):
    instructions: str | None = Field(default=None, max_length=MAX_INSTRUCTIONS)
    tools: list[dict[str, Any]] | None = Field(default=None, max_length=MAX_TOOLS)
    completion_args: CompletionArgs | None = None
    guardrails: list[dict[str, Any]] | None = Field(default=None, max_length=MAX_GUARDRAILS)
    description: str | None = Field(default=None, max_length=MAX_DESCRIPTION)
    handoffs: list[str] | None = Field(default=None, max_length=MAX_HANDOFFS)
    metadata: Metadata | None = None
    version_message: str | None = Field(default=None, max_length=MAX_VERSION_MESSAGE)
    limits: Limits | None = None  # Souverain extension (also metadata.souverain.limits)


class AgentCreate(_AgentFields):
    model: str = Field(min_length=1, max_length=MAX_NAME)
    name: str = Field(min_length=1, max_length=MAX_NAME)


class AgentUpdate(_AgentFields):
    """PATCH: the fields given replace the current version's (null clears a nullable one);
    the result is a new version, which becomes current."""

    model: str | None = Field(default=None, min_length=1, max_length=MAX_NAME)
    name: str | None = Field(default=None, min_length=1, max_length=MAX_NAME)
    deployment_chat: bool | None = None


# ---- checks that name the exact place of a fault --------------------------------------------


def check_tools(tools: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The tools as stored (normalized), or InvalidRequest naming `tools[i]...`."""
    checked: list[dict[str, Any]] = []
    names: set[str] = set()
    for index, tool in enumerate(tools):
        where = f"tools[{index}]"
        kind = tool.get("type")
        if kind == "function":
            entry = _function_tool(tool, where)
            name = entry["function"]["name"]
            if name in names:
                raise InvalidRequest(f"{where}: two function tools are named {name!r}", param=where)
            names.add(name)
        elif kind == "document_library":
            if any(entry["type"] == "document_library" for entry in checked):
                raise InvalidRequest(  # both would offer the one `search_library` tool
                    f"{where}: an agent has one document_library tool; list every library "
                    "in its library_ids",
                    param=where,
                )
            entry = _library_tool(tool, where)
        elif kind == "connector":
            entry = _connector_tool(tool, where)
        elif isinstance(kind, str) and kind in HOSTED_TOOLS:
            raise InvalidRequest(
                f"{where}: the tool type {kind!r} runs on Mistral's servers and is not offered "
                "by this gateway (nothing leaves its trust boundary); use function, "
                "document_library or connector tools",
                param=f"{where}.type",
            )
        else:
            shown = repr(kind[:40]) if isinstance(kind, str) else "missing"
            raise InvalidRequest(
                f"{where}: tool type {shown} is not supported; use function, "
                "document_library or connector",
                param=f"{where}.type",
            )
        checked.append(entry)
    return checked


def _function_tool(tool: dict[str, Any], where: str) -> dict[str, Any]:
    _only(tool, {"type", "function"}, where)
    function = tool.get("function")
    if not isinstance(function, dict):
        raise InvalidRequest(f"{where}.function must be an object", param=f"{where}.function")
    _only(function, {"name", "description", "parameters", "strict"}, f"{where}.function")
    name = function.get("name")
    if not isinstance(name, str) or not TOOL_NAME.match(name):
        raise InvalidRequest(
            f"{where}.function.name must be 1 to 64 letters, digits, _ or -",
            param=f"{where}.function.name",
        )
    description = function.get("description")
    if description is not None and not isinstance(description, str):
        raise InvalidRequest(
            f"{where}.function.description must be a string", param=f"{where}.function.description"
        )
    parameters = function.get("parameters", {"type": "object", "properties": {}})
    if not isinstance(parameters, dict):
        raise InvalidRequest(
            f"{where}.function.parameters must be a JSON schema object",
            param=f"{where}.function.parameters",
        )
    check_depth(parameters, MAX_SCHEMA_DEPTH, param=f"{where}.function.parameters")
    check_schema(parameters, param=f"{where}.function.parameters")
    strict = function.get("strict")
    if strict is not None and not isinstance(strict, bool):
        raise InvalidRequest(
            f"{where}.function.strict must be a boolean", param=f"{where}.function.strict"
        )
    entry = {"name": name, "description": description, "parameters": parameters, "strict": strict}
    out = {"type": "function", "function": {k: v for k, v in entry.items() if v is not None}}
    if len(orjson.dumps(out)) > MAX_FUNCTION_BYTES:
        raise InvalidRequest(f"{where} is larger than {MAX_FUNCTION_BYTES} bytes", param=where)
    return out


def _library_tool(tool: dict[str, Any], where: str) -> dict[str, Any]:
    _only(tool, {"type", "library_ids", "tool_configuration"}, where)
    ids = _ids(tool.get("library_ids"), f"{where}.library_ids", MAX_LIBRARIES)
    out: dict[str, Any] = {"type": "document_library", "library_ids": ids}
    if tool.get("tool_configuration") is not None:
        out["tool_configuration"] = _tool_configuration(tool["tool_configuration"], where)
    return out


def _connector_tool(tool: dict[str, Any], where: str) -> dict[str, Any]:
    if tool.get("authorization") is not None:
        raise InvalidRequest(
            f"{where}.authorization: credentials are not kept in an agent; a tenant admin "
            "sets them when registering the connector (/admin/v1/connectors)",
            param=f"{where}.authorization",
        )
    _only(tool, {"type", "connector_id", "tool_configuration", "authorization"}, where)
    connector = tool.get("connector_id")
    if not isinstance(connector, str) or not 1 <= len(connector) <= MAX_CONNECTOR:
        raise InvalidRequest(
            f"{where}.connector_id must name a connector (1 to {MAX_CONNECTOR} characters)",
            param=f"{where}.connector_id",
        )
    out: dict[str, Any] = {"type": "connector", "connector_id": connector}
    if tool.get("tool_configuration") is not None:
        out["tool_configuration"] = _tool_configuration(tool["tool_configuration"], where)
    return out


def _tool_configuration(value: Any, where: str) -> dict[str, list[str]]:
    where = f"{where}.tool_configuration"
    if not isinstance(value, dict):
        raise InvalidRequest(f"{where} must be an object", param=where)
    _only(value, {"include", "exclude", "requires_confirmation"}, where)
    out: dict[str, list[str]] = {}
    for key in ("include", "exclude", "requires_confirmation"):
        names = value.get(key)
        if names is None:
            continue
        if not isinstance(names, list) or len(names) > MAX_TOOL_NAMES:
            raise InvalidRequest(
                f"{where}.{key} must be a list of at most {MAX_TOOL_NAMES} tool names",
                param=f"{where}.{key}",
            )
        for name in names:
            if not isinstance(name, str) or not TOOL_NAME.match(name):
                raise InvalidRequest(
                    f"{where}.{key}: each tool name is 1 to 64 letters, digits, _ or -",
                    param=f"{where}.{key}",
                )
        out[key] = list(dict.fromkeys(names))
    return out


def _ids(value: Any, where: str, most: int) -> list[str]:
    if not isinstance(value, list) or not 1 <= len(value) <= most:
        raise InvalidRequest(f"{where} must list 1 to {most} ids", param=where)
    for item in value:
        if not isinstance(item, str) or not 1 <= len(item) <= MAX_ID:
            raise InvalidRequest(
                f"{where}: each id is a string of 1 to {MAX_ID} characters", param=where
            )
    return list(dict.fromkeys(value))


def _only(value: dict[str, Any], known: set[str], where: str) -> None:
    unknown = sorted(set(value) - known)
    if unknown:
        shown = ", ".join(repr(key[:40]) for key in unknown[:5])
        raise InvalidRequest(f"{where}: unknown field {shown}", param=where)


def limits_of(limits: Limits | None, metadata: dict[str, Any] | None) -> dict[str, int | float]:
    """The one set of limits: top-level `limits` or `metadata.souverain.limits`, which must
    agree when both are given."""
    from_metadata: dict[str, int | float] | None = None
    souverain = (metadata or {}).get("souverain")
    if souverain is not None:
        if not isinstance(souverain, dict) or set(souverain) - {"limits"}:
            raise InvalidRequest(
                "metadata.souverain is reserved: it may hold only limits", param="metadata"
            )
        raw = souverain.get("limits")
        if raw is not None:
            try:
                from_metadata = Limits.model_validate(raw).as_dict()
            except ValueError as exc:
                first = str(exc).splitlines()
                raise InvalidRequest(
                    f"metadata.souverain.limits: {' '.join(first[1:3]).strip()}",
                    param="metadata.souverain.limits",
                ) from None
    given = None if limits is None else limits.as_dict()
    if given is not None and from_metadata is not None and given != from_metadata:
        raise InvalidRequest(
            "limits and metadata.souverain.limits disagree: give one of them", param="limits"
        )
    return given if given is not None else (from_metadata or {})


def check_alias(alias: str) -> str:
    if len(alias) > MAX_ALIAS or not ALIAS.match(alias):
        raise InvalidRequest(
            "alias must be 1 to 64 letters, digits, _, . or - (starting with a letter or "
            "digit), and not a number (numbers name versions)",
            param="alias",
        )
    return alias


def iso(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, UTC).isoformat().replace("+00:00", "Z")
