"""Which `pattern` regexes the local engine turns into a grammar, and which it refuses.

llama.cpp matches a grammar by keeping every partial parse alive at once ("stacks").
A regex whose repetitions can match in many ways multiplies those stacks at every
character, and one sampled token then costs seconds to hours of native code that
cannot be interrupted. Three shapes do it: a repetition of something that can match
nothing (`(a?){300}`), a repetition inside a repetition (`(a{1,10}){1,100}`), and
counts beyond what llama.cpp parses (`{1,1001}` crashed the process). So a pattern is
accepted only with "star height one": a repeated part holds no variable repetition of
its own (a fixed count, `([0-9]{4}-)+`, is fine), never matches the empty string, and no
count exceeds MAX_REPETITION. Alternatives inside a repetition stay allowed.
"""

from __future__ import annotations

from dataclasses import dataclass

MAX_REPETITION = 1000  # llama.cpp refuses (and we crashed on) more nested optionals
MAX_PATTERN_LENGTH = 512
MAX_GROUP_DEPTH = 16


class PatternRefused(ValueError):
    """Why the pattern cannot be enforced safely, in words for the client."""


@dataclass(slots=True)
class _Item:
    nullable: bool  # can match the empty string
    varies: bool  # holds a repetition whose count is not fixed
    weight: int  # how many grammar elements its expansion costs, roughly


@dataclass(slots=True)
class _Summary:
    weight: int  # the sum of repetition counts: the grammar's size follows it


def check_pattern(pattern: str) -> int:
    """The pattern's repetition weight, or PatternRefused saying what is wrong."""
    if len(pattern) > MAX_PATTERN_LENGTH:
        raise PatternRefused(f"is longer than {MAX_PATTERN_LENGTH} characters")
    if not (pattern.startswith("^") and pattern.endswith("$")) or len(pattern) < 2:
        raise PatternRefused("must start with ^ and end with $ for the local engine")
    parser = _Parser(pattern[1:-1])
    item = parser.alternation(depth=0)
    if parser.pos != len(parser.text):
        raise PatternRefused(f"has an unbalanced ')' at {parser.pos + 1}")
    return item.weight


class _Parser:
    """A recursive-descent reading of the regex subset llama-cpp-python converts.

    Recursion is bounded by MAX_GROUP_DEPTH, so the parser itself cannot be driven deep.
    """

    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0

    def alternation(self, depth: int) -> _Item:
        branches = [self.sequence(depth)]
        while self._peek() == "|":
            self.pos += 1
            branches.append(self.sequence(depth))
        return _Item(
            nullable=any(b.nullable for b in branches),
            varies=any(b.varies for b in branches),
            weight=sum(b.weight for b in branches),
        )

    def sequence(self, depth: int) -> _Item:
        nullable, varies, weight = True, False, 0
        while (char := self._peek()) is not None and char not in "|)":
            item = self._quantified(self._atom(depth))
            nullable = nullable and item.nullable
            varies = varies or item.varies
            weight += item.weight
        return _Item(nullable=nullable, varies=varies, weight=weight)

    def _atom(self, depth: int) -> _Item:
        char = self.text[self.pos]
        if char == "(":
            if depth + 1 > MAX_GROUP_DEPTH:
                raise PatternRefused(f"nests groups deeper than {MAX_GROUP_DEPTH}")
            self.pos += 1
            if self._peek() == "?":
                raise PatternRefused("uses (?...) groups, which the local engine cannot enforce")
            inner = self.alternation(depth + 1)
            if self._peek() != ")":
                raise PatternRefused("has an unbalanced '('")
            self.pos += 1
            return inner
        if char in "*+?{":
            raise PatternRefused(f"repeats nothing at {self.pos + 1}")
        if char == "[":
            end = self.pos + 1
            while end < len(self.text) and self.text[end] != "]":
                end += 2 if self.text[end] == "\\" else 1
            if end >= len(self.text):
                raise PatternRefused("has an unbalanced '['")
            if _class_is_empty(self.text[self.pos + 1 : end]):
                # llama.cpp would let the model into it and then abort the process
                raise PatternRefused(f"has a class that matches no character at {self.pos + 1}")
            self.pos = end + 1
        elif char == "\\":
            code, self.pos = _class_char(self.text, self.pos)
            if code == 0:
                raise PatternRefused("holds a NUL character, which no output can match")
        else:
            self.pos += 1
        return _Item(nullable=False, varies=False, weight=1)

    def _quantified(self, item: _Item) -> _Item:
        while (char := self._peek()) is not None and char in "*+?{":
            low, high = self._quantifier(char)
            if item.nullable:
                raise PatternRefused(
                    "repeats a part that can match the empty string; the local engine's "
                    "grammar would try every way to match it"
                )
            if item.varies and (high is None or high > 1):
                raise PatternRefused(
                    "repeats a part that itself repeats a variable number of times; "
                    "write it with one level of repetition"
                )
            count = high if high is not None else max(low, 1)
            item = _Item(
                nullable=low == 0,
                varies=item.varies or low != high,
                weight=item.weight * max(count, 1),
            )
        return item

    def _quantifier(self, char: str) -> tuple[int, int | None]:
        if char != "{":
            self.pos += 1
            return {"*": (0, None), "+": (1, None), "?": (0, 1)}[char]
        end = self.text.find("}", self.pos)
        if end < 0:
            raise PatternRefused("has an unbalanced '{'")
        body = self.text[self.pos + 1 : end]
        self.pos = end + 1
        parts = [part.strip() for part in body.split(",")]
        if len(parts) > 2 or not all(part.isdigit() or part == "" for part in parts):
            raise PatternRefused(f"has a quantifier {{{body}}} the local engine cannot read")
        if len(parts[0]) > 6 or (len(parts) == 2 and len(parts[1]) > 6):
            raise PatternRefused(f"repeats more than {MAX_REPETITION} times")
        low = int(parts[0] or 0)
        high = low if len(parts) == 1 else (int(parts[1]) if parts[1] else None)
        if max(low, high or 0) > MAX_REPETITION:
            raise PatternRefused(f"repeats more than {MAX_REPETITION} times")
        if high is not None and high < low:
            raise PatternRefused(f"has a quantifier {{{body}}} whose maximum is below its minimum")
        return low, high

    def _peek(self) -> str | None:
        return self.text[self.pos] if self.pos < len(self.text) else None


ESCAPES = {"t": 9, "n": 10, "r": 13}
HEX_DIGITS = {"x": 2, "u": 4, "U": 8}
LAST_OPEN_IN_NEGATED = 0xFFFD
SURROGATES = (0xD800, 0xDFFF)  # no UTF-8 text holds them: a class of only these is empty


def _class_is_empty(body: str) -> bool:
    """Whether `[body]` matches no character, read as llama.cpp reads a GBNF class
    (the converter copies it verbatim): `[b-a]`, `[^\\x01-\\U0010FFFF]`, `[]`, NUL
    or surrogates only."""
    negated = body.startswith("^")
    if negated:
        body = body[1:]
    ranges: list[tuple[int, int]] = []
    index = 0
    while index < len(body):
        low, index = _class_char(body, index)
        high = low
        if index + 1 < len(body) and body[index] == "-":
            high, index = _class_char(body, index + 1)
        low = max(low, 1)  # NUL: llama.cpp's grammar never matches it
        if low <= high:
            ranges.append((low, high))
    if not negated:
        return all(SURROGATES[0] <= low and high <= SURROGATES[1] for low, high in ranges)
    ranges.append(SURROGATES)
    covered = 1  # NUL is never matched
    for low, high in sorted(ranges):
        if low > covered:
            break
        covered = max(covered, high + 1)
    # llama.cpp was seen to abort on a negated class that left open only U+10FFFF: one
    # must leave open a character of the basic plane to count as matching something.
    return covered > LAST_OPEN_IN_NEGATED


def _class_char(body: str, index: int) -> tuple[int, int]:
    """One character of a class and the index after it (escapes as GBNF reads them)."""
    if body[index] != "\\" or index + 1 >= len(body):
        return ord(body[index]), index + 1
    kind = body[index + 1]
    digits = HEX_DIGITS.get(kind)
    if digits is None:
        return ESCAPES.get(kind, ord(kind)), index + 2
    text = body[index + 2 : index + 2 + digits]
    try:
        return int(text, 16), index + 2 + digits
    except ValueError:  # llama.cpp refuses the grammar; the parse check answers it
        return 0, index + 2
