"""Listing agents: the filters the mistralai SDK sends, and the opaque page cursor.

`GET /v1/agents` pages by number, `GET /v1/agents/pages` by `next_page_token` (an offset,
encoded: opaque to clients, checked when it comes back).
"""

from __future__ import annotations

import asyncio
import base64
from typing import Any

import orjson
from starlette.requests import Request

from ..agents.registry import AgentRegistry, AgentVersion
from ..errors import InvalidRequest
from ..protocol.agents import MAX_ID
from ..protocol.common import METADATA_MAX_BYTES

# mistralai 3.7.0 sends `metadata` it was not given as this JSON string (its "unset"
# sentinel, serialized): read as no filter.
SDK_UNSET = '"~?~unset~?~sentinel~?~"'


async def listed(
    registry: AgentRegistry, tenant: str, request: Request, offset: int, limit: int
) -> list[AgentVersion]:
    """The tenant's agents at their current version that match the query's filters."""
    params = request.query_params
    wanted = _metadata_filter(params.get("metadata"))
    chat = params.get("deployment_chat")
    if chat not in (None, "", "true", "false"):
        raise InvalidRequest("deployment_chat must be true or false", param="deployment_chat")
    sources = params.getlist("sources")
    if sources and "api" not in sources:
        return []  # every agent here was made through the API

    def keep(agent: AgentVersion) -> bool:
        if chat and agent.deployment_chat != (chat == "true"):
            return False
        return all(agent.metadata.get(key) == value for key, value in wanted.items())

    return await asyncio.to_thread(
        registry.listing,
        tenant,
        offset=offset,
        limit=limit,
        name=_text(params.get("name"), "name"),
        agent_id=_text(params.get("id"), "id"),
        search=_text(params.get("search"), "search"),
        keep=keep if wanted or chat else None,
    )


def _text(value: str | None, name: str) -> str | None:
    if not value:
        return None
    if len(value) > MAX_ID:
        raise InvalidRequest(f"{name} is longer than {MAX_ID} characters", param=name)
    return value


def _metadata_filter(raw: str | None) -> dict[str, Any]:
    """`?metadata=` is JSON (the SDK serializes it so): agents whose metadata holds each
    key with that value."""
    if not raw or raw == SDK_UNSET:
        return {}
    try:
        value = orjson.loads(raw) if len(raw) <= METADATA_MAX_BYTES else None
    except orjson.JSONDecodeError:
        value = None
    if not isinstance(value, dict):
        raise InvalidRequest("metadata must be a JSON object", param="metadata")
    return value


def page_token(offset: int) -> str:
    return base64.urlsafe_b64encode(f"o:{offset}".encode()).decode().rstrip("=")


def cursor(token: str | None) -> int:
    if not token:
        return 0
    try:
        text = base64.urlsafe_b64decode(token[:40] + "=" * (-len(token[:40]) % 4)).decode()
    except (ValueError, UnicodeDecodeError):  # binascii.Error, or a token that is not ASCII
        text = ""
    digits = text[2:]
    if not text.startswith("o:") or not digits.isdigit() or len(digits) > 9:
        raise InvalidRequest("page_token is not one this server gave", param="page_token")
    return int(digits)
