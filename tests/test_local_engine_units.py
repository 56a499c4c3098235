"""Pieces of the local engine that need no model: stop sequences and schema rewriting."""

from __future__ import annotations

import pytest

from souverain.backends.conformance import violations
from souverain.backends.json_schema import enforceable_schema
from souverain.backends.stop_sequences import StopScanner


def scan(pieces: list[str], stops: list[str]) -> tuple[str, bool]:
    scanner = StopScanner(stops)
    out = "".join(scanner.feed(piece) for piece in pieces) + scanner.flush()
    return out, scanner.stopped


@pytest.mark.parametrize(
    ("pieces", "stops", "expected"),
    [
        (["Hello", " wor", "ld"], [], ("Hello world", False)),
        (["one, two", ", thr", "ee"], [", three"], ("one, two", True)),
        (["a<", "|im", "_end|>b"], ["<|im_end|>"], ("a", True)),
        (["a<", "b"], ["<|im_end|>"], ("a<b", False)),  # held back, then released
        (["x", "ENDy"], ["END", "y"], ("x", True)),
    ],
)
def test_stop_scanner(pieces: list[str], stops: list[str], expected: tuple[str, bool]) -> None:
    assert scan(pieces, stops) == expected


def test_small_integer_ranges_become_enums() -> None:
    schema = {
        "type": "object",
        "properties": {"age": {"type": "integer", "minimum": 0, "maximum": 3}},
    }
    assert enforceable_schema(schema)["properties"]["age"] == {
        "type": "integer",
        "enum": [0, 1, 2, 3],
    }
    odd = {"type": "integer", "exclusiveMinimum": 0, "exclusiveMaximum": 10, "multipleOf": 3}
    assert enforceable_schema(odd) == {"type": "integer", "enum": [3, 6, 9]}


@pytest.mark.parametrize(
    ("schema", "bad"),
    [
        ({"type": "integer", "minimum": 0, "maximum": 10_000}, 10_001),
        ({"type": "number", "maximum": 1.5}, 2.5),
        ({"type": "array", "items": {"type": "string"}, "uniqueItems": True}, ["a", "a"]),
        ({"type": "object", "properties": {"a": {"not": {"type": "null"}}}}, {"a": None}),
    ],
)
def test_keywords_the_grammar_cannot_hold_are_checked_after_generation(
    schema: dict[str, object], bad: object
) -> None:
    # Once refused (400); since issue 13 item 5 the grammar relaxes them and the answer is
    # validated (backends/conformance.py), retried, or refused as output_not_conforming.
    enforceable_schema(schema)
    assert violations(schema, bad)
