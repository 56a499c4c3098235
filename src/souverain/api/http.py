"""Reading requests and writing JSON: the helpers every route shares."""

from __future__ import annotations

import re
from datetime import date
from typing import Any, TypeVar

import orjson
from pydantic import BaseModel, ValidationError
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ..errors import InvalidRequest, MethodNotAllowed, SouverainError
from ..jsonsafe import MAX_JSON_DEPTH, JsonTooDeep, check_depth
from ..state import AppState

SchemaT = TypeVar("SchemaT", bound=BaseModel)

# The largest integer a query parameter may carry unless a route says otherwise: ids,
# sequence numbers and sizes are 32-bit columns in PostgreSQL, and a larger value is an
# overflow in the database driver, not an empty answer.
MAX_QUERY_INT = 2**31 - 1
# Pages a listing may ask for: page x page size stays far below any overflow.
MAX_PAGE_NUMBER = 1_000_000
# Days a query may name: the report reads an end day as inclusive (it adds a day), so the
# last representable day is out; before 1970 nothing was recorded.
EARLIEST_DAY, LATEST_DAY = date(1970, 1, 1), date(9999, 12, 30)
_DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
# Unix timestamps a query may name (seconds; up to the year 9999).
LATEST_TIMESTAMP = 253_402_300_799.0


def app_state(request: Request) -> AppState:
    state: AppState = request.app.state.souverain
    return state


def dumps(data: Any) -> bytes:
    return orjson.dumps(data, option=orjson.OPT_SERIALIZE_NUMPY)


class JSON(Response):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return dumps(content)


def error_response(error: SouverainError) -> JSON:
    return JSON(error.body(), status_code=error.status_code, headers=error.headers())


def method_not_allowed(request: Request) -> JSON:
    """405 with `Allow` listing what the path serves (RFC 9110 requires it). Several
    `Route`s can share a path (GET and POST on /admin/v1/tenants), so all are read:
    Starlette's own header names only the first route that matched the path. A path that
    is a route of its own (/v1/libraries/search) is that resource, not also an id in a
    pattern (/v1/libraries/{library_id})."""
    path = request.url.path
    matching = [
        route
        for route in request.app.routes
        if isinstance(route, Route) and route.methods and route.path_regex.match(path)
    ]
    literal = [route for route in matching if route.path == path]
    allowed = {method for route in literal or matching for method in route.methods or ()}
    error = MethodNotAllowed(f"method {request.method} is not allowed on {path}")
    response = error_response(error)
    response.headers["Allow"] = ", ".join(sorted(allowed))
    return response


async def parse_body(request: Request, schema: type[SchemaT]) -> SchemaT:
    raw = await request.body()
    if not raw.strip():
        raise InvalidRequest("the request body is empty; send a JSON object")
    data = parse_json_body(raw)
    if not isinstance(data, dict):
        raise InvalidRequest("the request body must be a JSON object")
    _check_messages_length(request, data.get("messages"))
    try:
        return schema.model_validate(data)
    except ValidationError as exc:
        raise validation_error(exc) from None


def _check_messages_length(request: Request, messages: Any) -> None:
    """400 for a `messages` array longer than `server.max_messages`, before validation and
    the DLP walk spend seconds on it; worded as OpenAI words it."""
    if not isinstance(messages, list):
        return
    limit = app_state(request).settings.server.max_messages
    if len(messages) > limit:
        raise InvalidRequest(
            f"Invalid 'messages': array too long. Expected an array with maximum length "
            f"{limit}, but got an array with length {len(messages)} instead.",
            param="messages",
            code="array_above_max_length",
        )


def parse_json_body(raw: bytes) -> Any:
    """A request body parsed as JSON, nested at most `MAX_JSON_DEPTH` deep.

    orjson stops at 1,024 levels on its own (a JSONDecodeError); what is below that but
    deeper than any API payload is refused here, before validation, the DLP, copies and
    the audit log walk it recursively. The body size is bounded earlier, by `BodyLimit`.
    """
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        if "depth limit" in str(exc):  # orjson stops at 1,024 levels
            raise JsonTooDeep(MAX_JSON_DEPTH) from None
        raise InvalidRequest(f"the request body is not valid JSON: {exc}") from None
    check_depth(data)
    if b"\\u0000" in raw:  # JSON spells U+0000 only this way: a cheap test first
        _refuse_nul(data)
    return data


def _refuse_nul(value: Any) -> None:
    """400 for U+0000 in any string or key: PostgreSQL text cannot store it (names,
    descriptions, audit columns), and no API field needs it."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if "\x00" in item:
                raise InvalidRequest("the request contains a NUL character (\\u0000)")
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)


def validation_error(exc: ValidationError) -> InvalidRequest:
    errors = exc.errors(include_url=False)
    first = errors[0]
    param = ".".join(str(part) for part in first["loc"]) or None
    message = f"{param}: {first['msg']}" if param else str(first["msg"])
    if len(errors) > 1:
        message += f" (and {len(errors) - 1} more problem{'s' if len(errors) > 2 else ''})"
    return InvalidRequest(message, param=param)


# ---- query strings: the one place their values are read --------------------------------


def query_int(
    request: Request,
    name: str,
    default: int | None = None,
    *,
    minimum: int = 0,
    maximum: int = MAX_QUERY_INT,
) -> int:
    """`?name=` as an integer in [minimum, maximum]; 400 when malformed or out of range.

    Absent or empty: `default`, or a 400 saying the parameter is required when there is
    no default.
    """
    value = query_optional_int(request, name, minimum=minimum, maximum=maximum)
    if value is not None:
        return value
    if default is None:
        raise InvalidRequest(f"query parameter {name} is required", param=name)
    return default


def query_optional_int(
    request: Request, name: str, *, minimum: int = 0, maximum: int = MAX_QUERY_INT
) -> int | None:
    """`?name=` as an integer in [minimum, maximum], or None when absent or empty.

    Only ASCII digits (and a leading minus where negatives are allowed) are read: `int()`
    would also take `1_000`, spaces and other scripts' digits, and fail on some of those
    that `str.isdigit` accepts (`²`).
    """
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return None
    digits = raw[1:] if raw.startswith("-") and minimum < 0 else raw
    if not (digits.isascii() and digits.isdigit()) or len(digits) > 19:
        raise InvalidRequest(f"{name} must be an integer, got {raw[:40]!r}", param=name)
    value = int(raw)
    if not minimum <= value <= maximum:
        raise InvalidRequest(f"{name} must be between {minimum} and {maximum}", param=name)
    return value


def query_timestamp(request: Request, name: str) -> float | None:
    """`?name=` as a Unix timestamp in seconds (fractions allowed), or None when absent."""
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return None
    try:
        value = float(raw) if len(raw) <= 40 and raw.isascii() else float("nan")
    except ValueError:
        value = float("nan")
    if not 0 <= value <= LATEST_TIMESTAMP:  # NaN and infinities fail this too
        raise InvalidRequest(f"{name} must be a Unix timestamp in seconds", param=name)
    return value


def query_date(request: Request, name: str) -> date | None:
    """`?name=YYYY-MM-DD` as a day between 1970 and 9999, or None when absent."""
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return None
    try:
        # Only YYYY-MM-DD: fromisoformat also reads 20261130 and week dates (2026-W48).
        value = date.fromisoformat(raw) if _DAY.fullmatch(raw) else None
    except ValueError:
        value = None
    if value is None or not EARLIEST_DAY <= value <= LATEST_DAY:
        raise InvalidRequest(
            f"{name} must be a day like 2026-11-29, from {EARLIEST_DAY} to {LATEST_DAY}",
            param=name,
        )
    return value
