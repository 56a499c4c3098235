"""The vocabulary of the OpenAPI route table (api/openapi_routes.py): one `op(...)` per route.

`op(summary, access, tag=..., body=..., ok=..., ...)`:

- `access`, who may call it: a permission of identity/rbac.py (the roles holding it are
  written into the document), "key" (any valid key or token: access is then checked on
  the object, as for libraries), "public", or "scrape" (/metrics);
- `body`, the protocol model the handler validates with (`parse_body`), so the document
  cannot drift from what is accepted; `"multipart"` for an upload, with `form`, the model
  of the form's other fields (the same that validates them);
- `ok`, the answer's model (api/openapi_schemas.py; None with `status=204`); `status`, the
  success status; `binary=True` answers bytes, not JSON; `stream=True` adds
  `text/event-stream` (server-sent chunks), each event's `data` an `events` model as
  JSON (default ChatCompletionChunk), or `[DONE]`;
- `call=True` marks a model call (it can also answer 429, 502 and 503); `query`, its query
  parameters (`Param`); `errors`, statuses beyond the ones derived from the rest.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel

from ..identity.rbac import Permission
from .http import LATEST_TIMESTAMP, MAX_PAGE_NUMBER, MAX_QUERY_INT

Access = Permission | Literal["key", "public", "scrape"]


@dataclass(frozen=True)
class Param:
    """A query parameter: its JSON schema and whether it must be given."""

    name: str
    schema: dict[str, Any]
    description: str = ""
    required: bool = False


@dataclass(frozen=True)
class Operation:
    summary: str
    access: Access
    tag: str
    body: type[BaseModel] | Literal["multipart"] | None = None
    form: type[BaseModel] | None = None  # a multipart body's fields beside its `file`
    ok: type[BaseModel] | None = None
    status: int = 200
    stream: bool = False
    events: type[BaseModel] | None = None  # a stream event's `data`; default ChatCompletionChunk
    call: bool = False
    query: tuple[Param, ...] = ()
    errors: tuple[int, ...] = ()
    description: str = ""
    binary: bool = False  # the answer is the bytes (application/octet-stream), not JSON


def op(summary: str, access: Access, **details: Any) -> Operation:
    return Operation(summary, access, **details)


def int_param(
    name: str,
    description: str,
    *,
    minimum: int = 0,
    maximum: int = MAX_QUERY_INT,
    required: bool = False,
) -> Param:
    return Param(
        name, {"type": "integer", "minimum": minimum, "maximum": maximum}, description, required
    )


def text_param(name: str, description: str, **schema: Any) -> Param:
    return Param(name, {"type": "string", **schema}, description)


LIBRARIES_CHOICE = Param(
    "libraries",
    {"type": "string", "enum": ["keep", "delete"]},
    "What happens to the libraries created there: kept by the tenant, or deleted.",
)
# Deleting a tenant: its libraries cannot be kept (nobody would be left to own them).
TENANT_LIBRARIES_CHOICE = Param(
    "libraries",
    {"type": "string", "enum": ["delete"]},
    "What happens to the libraries created there: deleted with it (without this, a "
    "tenant that has libraries is not deleted: 409).",
)


def comma_list(name: str, description: str, choices: Iterable[str]) -> Param:
    """A comma-separated list of `choices` (spaces and empty items ignored, as the route
    reads it), stated as a pattern."""
    one = "(?:" + "|".join(re.escape(choice) for choice in choices) + ")"
    pattern = rf"^\s*(?:{one}\s*)?(?:,\s*(?:{one}\s*)?)*$"
    return Param(name, {"type": "string", "pattern": pattern}, description)


PAGE = int_param("page", "Page number, from 0.", maximum=MAX_PAGE_NUMBER)
PAGE_SIZE = int_param("page_size", "Items per page.", minimum=1)
TIMESTAMP = {"type": "number", "minimum": 0, "maximum": LATEST_TIMESTAMP}
# A UTC day, YYYY-MM-DD (api/http.py `query_date`); an empty value is the same as none.
# (The years 1970 to 9998: the server's last day is 9999-12-30.)
YEARS = "(?:19[7-9][0-9]|[2-8][0-9]{3}|9[0-8][0-9]{2}|99[0-8][0-9]|999[0-8])"
DAY = {
    "type": "string",
    "anyOf": [{"format": "date", "pattern": f"^{YEARS}-"}, {"maxLength": 0}],
}
