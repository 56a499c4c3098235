"""Bounds on the JSON schemas the local engine turns into a llama.cpp grammar.

A schema is client input that becomes native work: llama-cpp-python converts it to a
grammar, llama.cpp parses that grammar and then matches it at every sampled token. Past
certain sizes the parse fails (and a failed grammar used to crash the process), the
conversion eats memory, or matching takes minutes per token inside a native call that
cannot be interrupted. Every bound below is checked, before any of that work, on the
schema as sent; a schema past one is a 400 whose `param` names the keyword.

Bounds (each a constant below):
- minLength, maxLength, minItems, maxItems: 0 to 1000, min <= max (llama.cpp parses
  at most 1000 nested optionals); all repetition counts together: 8000 (grammar size).
- `pattern`: see pattern_limits.py (ambiguous regexes make matching explode).
- properties per object: 100 (optional properties grow the grammar with their square).
- enum: 1 to 256 values (each is a branch matched at every character).
- anyOf/oneOf branches alive at once: 32, added side by side and multiplied through
  nesting (nested alternatives multiply the parses llama.cpp matches per token).
- nesting through subschemas and $ref: 32 levels; recursive $ref is refused.
- the schema document: 4096 values, 64 levels of JSON (so the walk stays cheap).
"""

from __future__ import annotations

from typing import Any

from ..errors import InvalidRequest
from .pattern_limits import MAX_REPETITION, PatternRefused, check_pattern

MAX_TOTAL_REPETITION = 8000
MAX_PROPERTIES = 100
MAX_ENUM = 256
MAX_ALTERNATIVES = 32
MAX_NESTING = 32
MAX_SCHEMA_VALUES = 4096
MAX_JSON_DEPTH = 64
MAX_REFS = 64

COUNTS = (("minLength", "maxLength"), ("minItems", "maxItems"))
SCHEMA_MAPS = ("properties", "$defs", "definitions", "patternProperties", "dependentSchemas")
SCHEMA_LISTS = ("anyOf", "oneOf", "allOf", "prefixItems")
SCHEMA_ONE = ("additionalProperties", "not", "if", "then", "else", "contains", "propertyNames")


def check_schema_limits(schema: Any, param: str) -> None:
    """InvalidRequest naming the first keyword past a bound; `param` prefixes the path
    (`response_format.json_schema.schema`)."""
    _check_document_size(schema, param)
    total = 0
    refs = 0
    for node, path in _subschemas(schema, param):
        total += _check_keywords(node, path)
        if total > MAX_TOTAL_REPETITION:
            raise _refused(
                path, "maxLength", f"the schema's repetition counts add up to more than "
                f"{MAX_TOTAL_REPETITION}",
            )  # fmt: skip
        if "$ref" in node:
            refs += 1
            if refs > MAX_REFS:
                raise _refused(path, "$ref", f"the schema has more than {MAX_REFS} $ref")
    _Ambiguity(schema, param).check()


def _refused(path: str, keyword: str, why: str) -> InvalidRequest:
    return InvalidRequest(
        f"response_format: the local engine cannot enforce `{keyword}` at {path}: {why}",
        param=f"{path}.{keyword}",
    )


def _check_document_size(schema: Any, param: str) -> None:
    """Iterative, so that a deep document cannot exhaust the stack while being measured."""
    seen = 0
    stack: list[tuple[Any, int]] = [(schema, 1)]
    while stack:
        value, depth = stack.pop()
        seen += 1
        if seen > MAX_SCHEMA_VALUES:
            raise InvalidRequest(
                f"response_format: the schema has more than {MAX_SCHEMA_VALUES} values; "
                "the local engine bounds schemas to keep their grammar small",
                param=param,
            )
        if depth > MAX_JSON_DEPTH:
            raise InvalidRequest(
                f"response_format: the schema nests deeper than {MAX_JSON_DEPTH} levels",
                param=param,
            )
        if isinstance(value, dict):
            stack.extend((child, depth + 1) for child in value.values())
        elif isinstance(value, list):
            stack.extend((child, depth + 1) for child in value)


def _subschemas(schema: Any, param: str) -> list[tuple[dict[str, Any], str]]:
    """Every subschema of the document (not following $ref), with its path."""
    found: list[tuple[dict[str, Any], str]] = []
    stack: list[tuple[Any, str]] = [(schema, param)]
    while stack:
        node, path = stack.pop()
        if not isinstance(node, dict):
            continue
        found.append((node, path))
        stack.extend(_children(node, path))
    return found


def _children(node: dict[str, Any], path: str, definitions: bool = True) -> list[tuple[Any, str]]:
    """The node's direct subschemas; `definitions=False` leaves out $defs, which only
    matter where a $ref reaches them."""
    children: list[tuple[Any, str]] = []
    for keyword in SCHEMA_MAPS if definitions else SCHEMA_MAPS[:1] + SCHEMA_MAPS[3:]:
        if isinstance(node.get(keyword), dict):
            children += [(v, f"{path}.{keyword}.{k}") for k, v in node[keyword].items()]
    for keyword in SCHEMA_LISTS:
        if isinstance(node.get(keyword), list):
            children += [(v, f"{path}.{keyword}.{i}") for i, v in enumerate(node[keyword])]
    items = node.get("items")
    if isinstance(items, list):
        children += [(v, f"{path}.items.{i}") for i, v in enumerate(items)]
    elif isinstance(items, dict):
        children.append((items, f"{path}.items"))
    children += [(node[k], f"{path}.{k}") for k in SCHEMA_ONE if isinstance(node.get(k), dict)]
    return children


def _check_keywords(node: dict[str, Any], path: str) -> int:
    """The node's repetition weight, after checking each bounded keyword."""
    weight = 0
    for low_key, high_key in COUNTS:
        low = _count(node, low_key, path)
        high = _count(node, high_key, path)
        if low is not None and high is not None and low > high:
            raise _refused(path, low_key, f"{low_key} {low} is above {high_key} {high}")
        weight += max(low or 0, high or 0)
    pattern = node.get("pattern")
    if pattern is not None:
        if not isinstance(pattern, str):
            raise _refused(path, "pattern", "it must be a string")
        try:
            weight += check_pattern(pattern)
        except PatternRefused as exc:
            raise _refused(path, "pattern", f"the pattern {exc}") from None
    _check_sizes(node, path)
    return weight


def _count(node: dict[str, Any], keyword: str, path: str) -> int | None:
    value = node.get(keyword)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise _refused(path, keyword, "it must be a non-negative integer")
    if value > MAX_REPETITION:
        raise _refused(path, keyword, f"{value} is above the local engine's {MAX_REPETITION}")
    return value


def _check_sizes(node: dict[str, Any], path: str) -> None:
    properties = node.get("properties")
    if properties is not None and (
        not isinstance(properties, dict) or len(properties) > MAX_PROPERTIES
    ):
        raise _refused(path, "properties", f"at most {MAX_PROPERTIES} properties, as an object")
    if isinstance(properties, dict) and any("\x00" in name for name in properties):
        raise _refused(path, "properties", NUL_WHY)
    for keyword in ("enum", "const"):
        if keyword in node and _holds_nul(node[keyword]):
            raise _refused(path, keyword, NUL_WHY)
    enum = node.get("enum")
    if enum is not None and (not isinstance(enum, list) or not 1 <= len(enum) <= MAX_ENUM):
        raise _refused(path, "enum", f"it must list 1 to {MAX_ENUM} values")
    for keyword in ("anyOf", "oneOf", "allOf", "prefixItems"):
        value = node.get(keyword)
        if value is not None and (not isinstance(value, list) or not value):
            raise _refused(path, keyword, "it must be a non-empty list")
    kind = node.get("type")
    if isinstance(kind, list) and (not kind or not all(isinstance(t, str) for t in kind)):
        raise _refused(path, "type", "a list of types must name at least one")
    ref = node.get("$ref")
    if ref is not None and (not isinstance(ref, str) or not ref.startswith("#/")):
        raise _refused(path, "$ref", "only references inside the schema (#/...) are followed")


NUL_WHY = "it holds a NUL character, which llama.cpp's grammar can never match"


def _holds_nul(value: Any) -> bool:
    """Whether a string anywhere in `value` (keys included) holds NUL: as a literal of the
    grammar it would be a dead end, and llama.cpp aborts the process at a dead end."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str) and "\x00" in item:
            return True
        if isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False


class _Ambiguity:
    """How many alternatives the grammar may keep alive at once, following $ref.

    Alternatives side by side add up; alternatives nested inside alternatives multiply
    (each outer branch carries its own copy of the inner ones), which is what made
    a 16-level schema take minutes per token. Recursion through $ref is refused: its
    nesting, and so the cost of matching it, has no bound.
    """

    def __init__(self, root: Any, param: str) -> None:
        self.root = root
        self.param = param
        self.memo: dict[int, tuple[int, int]] = {}  # id(node) -> (width, nesting)

    def check(self) -> None:
        width, nesting = self._measure(self.root, self.param)
        if width > MAX_ALTERNATIVES:
            raise _refused(
                self.param, "anyOf", f"its alternatives nest into {width} branches matched "
                f"at once; the local engine allows {MAX_ALTERNATIVES}",
            )  # fmt: skip
        if nesting > MAX_NESTING:
            raise _refused(self.param, "$ref", f"subschemas nest deeper than {MAX_NESTING}")

    def _measure(self, start: Any, start_path: str) -> tuple[int, int]:
        """Post-order over subschemas with an explicit stack (no recursion to exhaust)."""
        in_progress: set[int] = set()
        stack: list[tuple[Any, str, bool]] = [(start, start_path, False)]
        while stack:
            node, path, expanded = stack.pop()
            if not isinstance(node, dict) or id(node) in self.memo:
                continue
            links = self._links(node, path)
            if expanded:
                in_progress.discard(id(node))
                self.memo[id(node)] = self._combine(node, links)
                continue
            if id(node) in in_progress:
                raise _refused(path, "$ref", "recursive references have no bound")
            in_progress.add(id(node))
            stack.append((node, path, True))
            for child, child_path in links:
                if isinstance(child, dict) and id(child) in in_progress:
                    raise _refused(path, "$ref", "recursive references have no bound")
                stack.append((child, child_path, False))
        return self.memo.get(id(start), (1, 1))

    def _links(self, node: dict[str, Any], path: str) -> list[tuple[Any, str]]:
        links = _children(node, path, definitions=False)
        ref = node.get("$ref")
        if isinstance(ref, str):
            links.append((self._resolve(ref, path), f"{path}.$ref"))
        return links

    def _resolve(self, ref: str, path: str) -> Any:
        target = self.root
        for part in ref[2:].split("/"):
            if not isinstance(target, dict) or part not in target:
                raise _refused(path, "$ref", f"{ref} does not point into the schema")
            target = target[part]
        if not isinstance(target, dict):
            raise _refused(path, "$ref", f"{ref} does not point to a schema")
        return target

    def _combine(self, node: dict[str, Any], links: list[tuple[Any, str]]) -> tuple[int, int]:
        measured = [self.memo.get(id(c), (1, 1)) for c, _ in links if isinstance(c, dict)]
        nesting = 1 + max((n for _, n in measured), default=0)
        alternatives = [self.memo.get(id(c), (1, 1))[0] for c in _alternatives(node)]
        if isinstance(node.get("type"), list):
            alternatives.append(len(node["type"]))
        width = max([sum(alternatives) if alternatives else 1, *(w for w, _ in measured)])
        return width, nesting


def _alternatives(node: dict[str, Any]) -> list[Any]:
    return [c for k in ("anyOf", "oneOf") if isinstance(node.get(k), list) for c in node[k]]
