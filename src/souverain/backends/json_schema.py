"""Which JSON schemas the local engine can enforce, and small rewrites so it can.

llama.cpp turns a schema into a grammar, but its converter silently ignores some
keywords (numeric bounds among them), which would let non-conforming output through.
We fail closed instead: a keyword the grammar cannot enforce is a 400 that names it.
Integer ranges small enough to list are rewritten as an `enum`, which it can enforce.
"""

from __future__ import annotations

from typing import Any

from ..errors import InvalidRequest
from .schema_limits import check_schema_limits

PARAM = "response_format.json_schema"
MAX_ENUMERATED_RANGE = 300
UNENFORCEABLE = (
    "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf",
    "uniqueItems", "contains", "minContains", "maxContains", "minProperties", "maxProperties",
    "patternProperties", "propertyNames", "not", "if", "then", "else",
    "dependentRequired", "dependentSchemas", "unevaluatedProperties", "unevaluatedItems",
)  # fmt: skip
INTEGER_BOUNDS = ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum")


def enforceable_schema(schema: Any) -> Any:
    """A copy of `schema` the grammar converter enforces fully and cheaply, or
    InvalidRequest whose `param` names the keyword (schema_limits.py lists the bounds)."""
    check_schema_limits(schema, f"{PARAM}.schema")  # first: it bounds the walk below
    return _enforceable(schema, f"{PARAM}.schema")


def _enforceable(schema: Any, path: str) -> Any:
    if isinstance(schema, list):
        return [_enforceable(item, f"{path}.{i}") for i, item in enumerate(schema)]
    if not isinstance(schema, dict):
        return schema
    schema = _enumerate_small_integer_range(schema, path)
    for keyword in UNENFORCEABLE:
        if keyword in schema:
            raise InvalidRequest(
                f"response_format: the local engine cannot enforce `{keyword}` "
                f"(at {path}); remove it or use an engine that supports it",
                param=f"{path}.{keyword}",
            )
    return {key: _enforceable(value, f"{path}.{key}") for key, value in schema.items()}


def _enumerate_small_integer_range(schema: dict[str, Any], path: str) -> dict[str, Any]:
    if schema.get("type") != "integer" or not any(k in schema for k in INTEGER_BOUNDS):
        return schema
    low = _bound(schema, "minimum", "exclusiveMinimum", +1)
    high = _bound(schema, "maximum", "exclusiveMaximum", -1)
    if low is None or high is None or high - low + 1 > MAX_ENUMERATED_RANGE or high < low:
        return schema  # left for the unenforceable check to name
    step = schema.get("multipleOf", 1)
    if not isinstance(step, int) or step < 1:
        return schema
    rest = {k: v for k, v in schema.items() if k not in (*INTEGER_BOUNDS, "multipleOf")}
    return {**rest, "enum": [n for n in range(low, high + 1) if n % step == 0]}


def _bound(schema: dict[str, Any], inclusive: str, exclusive: str, nudge: int) -> int | None:
    if isinstance(schema.get(inclusive), int):
        return int(schema[inclusive])
    if isinstance(schema.get(exclusive), int):
        return int(schema[exclusive]) + nudge
    return None
