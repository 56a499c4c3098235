"""JSON from clients, parsed with a bound on nesting.

Parsers and everything downstream of them (validation, copies, the DLP's walk over
tool-call arguments, serialisation) recurse once per level: a body nested 100,000 deep
exhausts the interpreter's stack and the request ends in a 500. No API payload needs more
than a few dozen levels, so anything deeper is refused before it is used.

`check_depth` walks a parsed value with an explicit stack; `parse_json_bounded` is the
parser for JSON that arrives inside a string (tool-call arguments, tool results).
"""

from __future__ import annotations

import json
from typing import Any

from .errors import InvalidRequest

# The deepest JSON any route accepts: an object is one level, each object or array inside
# it one more. A chat request with a tool schema nested 25 properties deep is about 55.
MAX_JSON_DEPTH = 64


class JsonTooDeep(InvalidRequest, ValueError):
    """JSON nested deeper than allowed. A 400 wherever it is not caught; a ValueError,
    so that code that treats unparsable JSON as plain text keeps working (though it should
    refuse instead: the text would be forwarded as is)."""

    def __init__(self, max_depth: int, param: str | None = None) -> None:
        where = f"{param} is" if param else "the JSON is"
        super().__init__(f"{where} nested deeper than {max_depth} levels", param=param)


def check_depth(value: Any, max_depth: int = MAX_JSON_DEPTH, param: str | None = None) -> None:
    """Raise `JsonTooDeep` if `value` (parsed JSON) nests more than `max_depth` containers.

    Iterative, so it is safe on values that recursive code could not walk.
    """
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list | tuple):
            children = item
        else:
            continue
        if depth > max_depth:
            raise JsonTooDeep(max_depth, param)
        stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))


def parse_json_bounded(text: str | bytes, max_depth: int = MAX_JSON_DEPTH) -> Any:
    """`json.loads(text)`, refusing JSON nested deeper than `max_depth` with `JsonTooDeep`.

    Invalid JSON raises `json.JSONDecodeError` as `json.loads` does. The standard parser
    recurses once per level and stops with RecursionError at the interpreter's limit
    (about 1,000): that is turned into `JsonTooDeep` too, and shallower values are
    measured after parsing.
    """
    try:
        value = json.loads(text)
    except RecursionError:
        raise JsonTooDeep(max_depth) from None
    check_depth(value, max_depth)
    return value
