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
            self.pos = end + 1
        elif char == "\\":
            self.pos += 2
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
