"""Grammar rules (llama.cpp GBNF) for numbers within bounds.

llama.cpp's schema converter ignores `minimum`/`maximum`: its `integer` and `number`
rules allow any value. json_schema.py marks a bounded number with a placeholder constant;
grammar.py swaps that constant's rule for one built here, which the sampler then enforces.

Integers are enforced exactly: the range is split into runs of equal digit count and each
run into digit classes, as range-to-regex generators do (`[0, 130]` becomes
`[0-9] | [1-9] [0-9] | "1" ("0" | "1" | "2") [0-9] | "130"`-like alternatives). Numbers are
enforced on their sign and integer part, with at most 6 decimals and no exponent; what
that leaves open (0.5 < x, exclusive bounds) is checked after generation.
Unbounded sides stop at 15 digits, the precision a JSON number keeps in a double.
"""

from __future__ import annotations

import math

LIMIT = 10**15 - 1
FRACTION_DIGITS = 6
ZERO = '"0"'


def integer_rule(low: int | None, high: int | None) -> str | None:
    """GBNF for the integers in [low, high] (None: unbounded), or None if there are none."""
    low = -LIMIT if low is None else max(low, -LIMIT)
    high = LIMIT if high is None else min(high, LIMIT)
    if low > high:
        return None
    branches: list[str] = []
    if high >= 0:
        branches += _digits(max(low, 0), high)
    if low < 0:
        branches += [f'"-" ({run})' for run in _digits(max(-high, 1), -low)]
    return _group(branches)


def number_rule(low: float | None, high: float | None) -> str | None:
    """GBNF for decimal numbers whose sign and integer part fit [low, high], or None."""
    if low is not None and high is not None and low > high:
        return None
    if (low is not None and low > LIMIT) or (high is not None and high < -LIMIT):
        return None
    branches: list[str] = []
    if high is None or high >= 0:
        branches += _non_negative(max(low, 0.0) if low is not None else 0.0, high)
    if low is None or low < 0:
        magnitude_low = max(-high, 0.0) if high is not None else 0.0
        branches += [f'"-" {run}' for run in _non_negative(magnitude_low, _neg(low))]
    return _group(branches)


def _neg(value: float | None) -> float | None:
    return None if value is None else -value


def _non_negative(low: float, high: float | None) -> list[str]:
    start = min(math.floor(low), LIMIT)
    if high is None or high >= LIMIT:
        return [f"{_group(_digits(start, LIMIT))} {_fraction()}"]
    if high == math.floor(high):
        top = int(high)
        # the top itself only as `top` or `top.000`: `top.5` would pass the bound
        exact = f'"{top}" ("." "0" {_optional(ZERO, FRACTION_DIGITS - 1)})?'
        if start <= top - 1:
            return [f"{_group(_digits(start, top - 1))} {_fraction()}", exact]
        return [exact]
    return [f"{_group(_digits(start, math.floor(high)))} {_fraction()}"]


def _fraction() -> str:
    return f'("." [0-9] {_optional("[0-9]", FRACTION_DIGITS - 1)})?'


def _optional(item: str, count: int) -> str:
    """Up to `count` repetitions as nested optionals (`{m,n}` is newer than some builds)."""
    text = ""
    for _ in range(count):
        text = f"({item} {text})?" if text else f"{item}?"
    return text


def _digits(low: int, high: int) -> list[str]:
    """Alternatives matching exactly the decimal numerals of [low, high], low >= 0."""
    runs: list[str] = []
    while len(str(low)) < len(str(high)):
        top = 10 ** len(str(low)) - 1
        runs += _same_length(str(low), str(top))
        low = top + 1
    return runs + _same_length(str(low), str(high))


def _same_length(low: str, high: str) -> list[str]:
    width = len(low)
    if low == high:
        return [f'"{low}"']
    if width == 1:
        return [f"[{low}-{high}]"]
    rest = width - 1
    if low[1:] == "0" * rest and high[1:] == "9" * rest:
        return [f"[{low[0]}-{high[0]}]" + " [0-9]" * rest]
    if low[0] == high[0]:
        return [f'"{low[0]}" {_group(_same_length(low[1:], high[1:]))}']
    runs = [f'"{low[0]}" {_group(_same_length(low[1:], "9" * rest))}']
    if int(high[0]) - int(low[0]) > 1:
        runs.append(f"[{int(low[0]) + 1}-{int(high[0]) - 1}]" + " [0-9]" * rest)
    runs.append(f'"{high[0]}" {_group(_same_length("0" * rest, high[1:]))}')
    return runs


def _group(branches: list[str]) -> str:
    return branches[0] if len(branches) == 1 else "(" + " | ".join(branches) + ")"
