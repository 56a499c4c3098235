"""A client's JSON schema rewritten into one llama.cpp's grammar converter can follow.

The converter enforces types, properties (closed: no extra keys), `required`, `enum`,
`const`, `anyOf`/`oneOf`, `$ref`, `items`/`prefixItems` with `minItems`/`maxItems`,
`minLength`/`maxLength`, a subset of `pattern`, and the formats date, time, date-time and
uuid. It silently ignores the rest. So the schema is rewritten before conversion:
- numeric bounds become grammar rules (numeric_grammar.py) through a placeholder constant
  that grammar.py replaces; a small integer range with `multipleOf` becomes an `enum`;
- `format: email` becomes a pattern of plain addresses (a subset of valid ones);
- every other keyword the converter would ignore is left out of the grammar's schema.
The grammar thus produces a superset at worst, never less than conforming output for what
it enforces; the answer is then checked against the client's own schema
(conformance.py), retried or refused (structured.py). Nothing non-conforming goes out.
"""

from __future__ import annotations

import math
import secrets
from typing import Any

from .conformance import check_schema
from .schema_limits import SCHEMA_LISTS, SCHEMA_MAPS, SCHEMA_ONE, check_schema_limits

PARAM = "response_format.json_schema"
MAX_ENUMERATED_RANGE = 300  # with a multipleOf
MAX_LISTED_RANGE = 16  # without: a range rule matches faster than a long list
# Left out of the grammar's schema: checked after generation only.
CHECKED_AFTER = (
    "multipleOf", "uniqueItems", "contains", "minContains", "maxContains", "minProperties",
    "maxProperties", "patternProperties", "propertyNames", "not", "if", "then", "else",
    "dependentRequired", "dependentSchemas", "unevaluatedProperties", "unevaluatedItems",
)  # fmt: skip
BOUNDS = ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum")
FIXED_FORMATS = ("date", "time", "date-time", *(f"uuid{n}" for n in ("", 1, 2, 3, 4, 5)))
# A plain address (no dots in the local part, one-label domain under a TLD): every string
# it allows passes the `email` check of conformance.py.
EMAIL_PATTERN = "^[a-z0-9_+-]{1,32}@[a-z0-9]{1,32}[.][a-z]{2,8}$"
# Escaped punctuation that the converter copies as is and GBNF does not know (GBNF knows
# `\\`, `\"`, `\[`, `\]`; the converter itself unescapes `()|{}*+?`).
REHEXED = frozenset(".^$/-,:;!@#%&=<>~'_`")
# Marks a bounded number for grammar.py; random per process so no client const equals it.
RANGE_MARKER = f"souverain-range-{secrets.token_hex(8)}"


def enforceable_schema(schema: Any) -> Any:
    """The grammar's version of `schema`, or InvalidRequest (a 400 naming the keyword)
    when the schema is past a bound of schema_limits.py or is not a valid schema."""
    root = f"{PARAM}.schema"
    check_schema_limits(schema, root)  # first: it bounds the walk below
    if isinstance(schema, dict):
        check_schema(schema, root)
    return _relaxed(schema)


def range_placeholder(kind: str, low: float | None, high: float | None) -> dict[str, Any]:
    text = "" if low is None else repr(low), "" if high is None else repr(high)
    return {"const": f"{RANGE_MARKER}/{kind}/{text[0]}/{text[1]}"}


def _relaxed(node: Any) -> Any:
    """Walks schema positions only (a property named `minimum` is not a keyword); the
    depth is bounded by check_schema_limits."""
    if not isinstance(node, dict):
        return node
    node = _bounded_number(node)
    node = _email(node)
    kept = {key: value for key, value in node.items() if key not in CHECKED_AFTER}
    if isinstance(kept.get("pattern"), str):
        kept["pattern"] = grammar_pattern(kept["pattern"])
    if "pattern" in kept or kept.get("format") in FIXED_FORMATS:
        # the converter follows the pattern or format and ignores lengths: checked after
        kept = {key: value for key, value in kept.items() if key not in ("minLength", "maxLength")}
    for keyword in SCHEMA_MAPS:
        if isinstance(kept.get(keyword), dict):
            kept[keyword] = {name: _relaxed(sub) for name, sub in kept[keyword].items()}
    for keyword in (*SCHEMA_LISTS, "items"):
        if isinstance(kept.get(keyword), list):
            kept[keyword] = [_relaxed(sub) for sub in kept[keyword]]
    for keyword in (*SCHEMA_ONE, "items"):
        if isinstance(kept.get(keyword), dict):
            kept[keyword] = _relaxed(kept[keyword])
    return kept


def _bounded_number(node: dict[str, Any]) -> dict[str, Any]:
    if not any(key in node for key in BOUNDS):
        return node
    kind = node.get("type")
    rest = {key: value for key, value in node.items() if key not in BOUNDS}
    if kind not in ("integer", "number") or any(k in node for k in ("enum", "const")):
        return rest  # a union of types, or fixed values: checked after generation
    low = _bound(node, "minimum", "exclusiveMinimum", max)
    high = _bound(node, "maximum", "exclusiveMaximum", min)
    if low is not None and high is not None and low > high:
        return rest  # no value fits: the check after generation says so
    if kind == "integer":
        low = None if low is None else math.ceil(low)
        high = None if high is None else math.floor(high)
        if node.get("exclusiveMinimum") == low:
            low = None if low is None else low + 1
        if node.get("exclusiveMaximum") == high:
            high = None if high is None else high - 1
        listed = _enumerated(low, high, node.get("multipleOf", 1))
        if listed is not None:
            rest.pop("multipleOf", None)
            return {**rest, "enum": listed}
    others = {key: value for key, value in rest.items() if key not in ("type", "multipleOf")}
    return {**others, **range_placeholder(kind, low, high)}


def _bound(node: dict[str, Any], inclusive: str, exclusive: str, tighter: Any) -> Any:
    """The tighter of the inclusive and exclusive bound (exclusive is checked after)."""
    found = [node[key] for key in (inclusive, exclusive) if key in node]
    values = [v for v in found if isinstance(v, int | float) and math.isfinite(v)]
    return tighter(values) if values else None


def _enumerated(low: int | None, high: int | None, step: Any) -> list[int] | None:
    """The values of a range as a list, when the list is the better grammar: a few values,
    or a `multipleOf` (which only a list makes exact); else None, for a range rule."""
    if low is None or high is None or high < low or high - low + 1 > MAX_ENUMERATED_RANGE:
        return None
    if isinstance(step, bool) or not isinstance(step, int) or step < 1:
        return None
    if step == 1 and high - low + 1 > MAX_LISTED_RANGE:
        return None
    listed = [n for n in range(low, high + 1) if n % step == 0]
    return listed or None


def grammar_pattern(pattern: str) -> str:
    """`pattern` with escaped punctuation spelled so the converter and GBNF read it:
    the converter copies `\\.` (and `\\-`, `\\/`, ...) into the grammar as is, where GBNF
    knows no such escape and the whole grammar fails. `\\xHH` means the same to both."""
    out: list[str] = []
    index, in_class = 0, False
    while index < len(pattern):
        char = pattern[index]
        follower = pattern[index + 1] if index + 1 < len(pattern) else ""
        if char == "\\" and follower in REHEXED:
            hexed = f"\\x{ord(follower):02X}"
            out.append(hexed if in_class else f"[{hexed}]")
            index += 2
            continue
        if char == "\\" and follower:
            out.append(char + follower)
            index += 2
            continue
        in_class = (in_class or char == "[") and not (in_class and char == "]")
        out.append(char)
        index += 1
    return "".join(out)


def _email(node: dict[str, Any]) -> dict[str, Any]:
    if node.get("format") != "email" or "pattern" in node or node.get("type") != "string":
        return node
    return {**node, "pattern": EMAIL_PATTERN}
