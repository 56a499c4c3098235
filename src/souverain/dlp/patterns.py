"""What a configured DLP pattern may be: one whose search stays linear in the text.

A pattern from the configuration runs on every request's text, which the client writes.
Python's `re` backtracks: `(a+)+b` takes exponential time on a run of "a", `\\w+@x`
quadratic time on a long word, and a back-reference can do worse. So a configured pattern
must have a bounded match length (each start position then reads a bounded window), no
repetition inside a repetition, and no back-reference: its search then costs at most a
constant per character of the text, the constant set by the pattern's own length.
"""

from __future__ import annotations

import re
from re import _constants as sre  # type: ignore[attr-defined]
from re import _parser as sre_parse  # type: ignore[attr-defined]
from typing import Any

MAX_MATCH = 256  # characters: longer than any identifier a pattern should describe
_REPEATS = {sre.MAX_REPEAT, sre.MIN_REPEAT, getattr(sre, "POSSESSIVE_REPEAT", sre.MAX_REPEAT)}


def pattern_problem(pattern: str) -> str | None:
    """Why `pattern` may not be a configured detector, or None if it may."""
    try:
        parsed = sre_parse.parse(pattern)
    except re.error as exc:
        return f"not a valid regular expression: {exc}"
    if parsed.getwidth()[1] > MAX_MATCH:
        return (
            f"its matches have no bound or one over {MAX_MATCH} characters (use {{m,n}} "
            "instead of * and +): a client's text could make every search read to its end"
        )
    return _walk(list(parsed), inside_repeat=False)


def _walk(items: list[tuple[Any, Any]], inside_repeat: bool) -> str | None:
    for op, value in items:
        if op is sre.GROUPREF or op is sre.GROUPREF_EXISTS:
            return "back-references can take exponential time on a client's text"
        children: list[list[tuple[Any, Any]]] = []
        repeat = op in _REPEATS
        if repeat:
            low, high, sub = value
            if inside_repeat and high > low:  # a fixed count inside ("\d{2}") adds no choice
                return "a variable repetition inside a repetition can take exponential time"
            children = [list(sub)]
        elif op is sre.SUBPATTERN:
            children = [list(value[-1])]
        elif op is sre.BRANCH:
            children = [list(branch) for branch in value[1]]
        elif op in (sre.ASSERT, sre.ASSERT_NOT):
            children = [list(value[1])]
        for child in children:
            problem = _walk(child, inside_repeat or (repeat and value[1] > 1))
            if problem:
                return problem
    return None
