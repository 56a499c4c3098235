"""The bounds on schemas and patterns the local engine turns into grammars (no model)."""

from __future__ import annotations

from typing import Any

import pytest

from souverain.backends.json_schema import enforceable_schema
from souverain.backends.pattern_limits import MAX_REPETITION, PatternRefused, check_pattern
from souverain.backends.schema_limits import MAX_ENUM, MAX_PROPERTIES, MAX_SCHEMA_VALUES
from souverain.errors import InvalidRequest

ROOT = "response_format.json_schema.schema"


def refused(schema: Any) -> str:
    with pytest.raises(InvalidRequest) as caught:
        enforceable_schema(schema)
    assert caught.value.param is not None
    return caught.value.param


@pytest.mark.parametrize(
    ("schema", "param"),
    [
        ({"type": "string", "maxLength": MAX_REPETITION + 1}, f"{ROOT}.maxLength"),
        ({"type": "string", "minLength": 10**12}, f"{ROOT}.minLength"),
        ({"type": "string", "maxLength": -1}, f"{ROOT}.maxLength"),
        ({"type": "string", "maxLength": True}, f"{ROOT}.maxLength"),
        ({"type": "string", "maxLength": "9"}, f"{ROOT}.maxLength"),
        ({"type": "string", "minLength": 5, "maxLength": 2}, f"{ROOT}.minLength"),
        ({"type": "array", "maxItems": 1001}, f"{ROOT}.maxItems"),
        ({"type": "array", "minItems": 3, "maxItems": 1}, f"{ROOT}.minItems"),
        ({"items": {"items": {"type": "string", "maxLength": 5000}}},
         f"{ROOT}.items.items.maxLength"),
        ({"type": "string", "pattern": 7}, f"{ROOT}.pattern"),
        ({"enum": []}, f"{ROOT}.enum"),
        ({"enum": list(range(MAX_ENUM + 1))}, f"{ROOT}.enum"),
        ({"oneOf": []}, f"{ROOT}.oneOf"),
        ({"type": []}, f"{ROOT}.type"),
        ({"properties": {f"p{i}": {} for i in range(MAX_PROPERTIES + 1)}},
         f"{ROOT}.properties"),
        ({"$ref": "https://example.org/schema.json"}, f"{ROOT}.$ref"),
        ({"const": {"a": ["x\x00"]}}, f"{ROOT}.const"),
        ({"enum": ["ok", "n\x00"]}, f"{ROOT}.enum"),
        ({"properties": {"a\x00": {}}}, f"{ROOT}.properties"),
        ({"properties": {"a": {"$ref": "#/nowhere"}}}, f"{ROOT}.properties.a.$ref"),
        ({"$defs": {"a": {"$ref": "#/$defs/b"}, "b": {"$ref": "#/$defs/a"}},
          "$ref": "#/$defs/a"}, f"{ROOT}.$ref.$ref.$ref"),
        # ten arrays of 1000 strings of 1000 characters: each bound met, their sum not
        ({"properties": {f"p{i}": {"type": "array", "maxItems": 1000,
                                   "items": {"type": "string", "maxLength": 1000}}
                         for i in range(10)}}, None),
    ],
)  # fmt: skip
def test_each_bound_is_a_400_naming_its_keyword(schema: dict[str, Any], param: str | None) -> None:
    named = refused(schema)
    if param is not None:
        assert named == param
    else:
        assert named.startswith(ROOT)


def test_lengths_beside_a_pattern_or_format_are_checked_after_generation() -> None:
    """They were a 400 (the grammar follows the pattern and ignores lengths); now the
    grammar's schema leaves them out and the answer is checked against them."""
    pattern = {"type": "string", "pattern": "^[0-9]{4,8}$", "maxLength": 6}
    assert enforceable_schema(pattern) == {"type": "string", "pattern": "^[0-9]{4,8}$"}
    date = {"type": "string", "format": "date", "minLength": 4}
    assert enforceable_schema(date) == {"type": "string", "format": "date"}
    # the bounds on the lengths themselves still hold
    assert refused({**pattern, "maxLength": MAX_REPETITION + 1}) == f"{ROOT}.maxLength"


def test_nested_alternatives_multiply_and_side_by_side_add() -> None:
    def nest(depth: int, ways: int) -> dict[str, Any]:
        schema: dict[str, Any] = {"type": "string"}
        for _ in range(depth):
            schema = {"anyOf": [{"type": "array", "items": schema} for _ in range(ways)]}
        return schema

    enforceable_schema(nest(5, 2))  # 32 branches: the bound
    assert refused(nest(6, 2)) == f"{ROOT}.anyOf"
    enforceable_schema({"anyOf": [{"type": "string"}] * 32})
    assert refused({"anyOf": [{"type": "string"}] * 33}) == f"{ROOT}.anyOf"
    # Optional fields (pydantic's anyOf [X, null]) nest linearly, not exponentially.
    optional: dict[str, Any] = {"type": "string"}
    for _ in range(12):
        optional = {"anyOf": [{"type": "object", "properties": {"x": optional}}, {"type": "null"}]}  # fmt: skip
    enforceable_schema(optional)


def test_huge_and_deep_documents_are_refused_without_recursing() -> None:
    deep: Any = {"type": "string"}
    for _ in range(100_000):
        deep = {"items": deep}
    assert refused(deep) == ROOT
    wide = {"type": "object", "default": list(range(MAX_SCHEMA_VALUES))}
    assert refused(wide) == ROOT


@pytest.mark.parametrize(
    "pattern",
    [
        "^[a-z]{1,1000}$",
        "^[A-Z]{2}[0-9]{2}([A-Z0-9]{4}){2,7}$",  # a fixed count inside a repetition
        "^(a|ab){0,1000}$",
        "^([a-z]{1,3})?$",  # a variable part, repeated at most once
        "^\\+?[0-9 ]{6,20}$",
        "^(https?|ftp)://[^ ]+$",
        "^[\\x00-\\x7f]$",  # NUL in a range is fine: the rest matches
        "^[^\\x01-\\x7f]$",
        "^[^]$",
    ],
)
def test_patterns_within_the_bounds(pattern: str) -> None:
    check_pattern(pattern)


@pytest.mark.parametrize(
    ("pattern", "why"),
    [
        ("^a{1001}$", "more than 1000"),
        ("^a{1,99999999999999999999}$", "more than 1000"),
        ("^a{5,2}$", "below its minimum"),
        ("^(a?){300}$", "empty string"),
        ("^(a|){3,9}$", "empty string"),
        ("^(a*)*$", "empty string"),
        ("^(a+)+$", "variable number"),
        ("^(a{1,10}){5}$", "variable number"),
        ("^((((((((((((((((((a))))))))))))))))))$", "deeper"),
        ("abc", "start with ^"),
        ("^(?=a)a$", "(?"),
        ("^*a$", "repeats nothing"),
        ("^(a$", "unbalanced"),
        ("^a)$", "unbalanced"),
        ("^[a$", "unbalanced"),
        ("^a{2$", "unbalanced"),
        ("^a{x}$", "cannot read"),
        ("^" + "a" * 600 + "$", "longer than"),
        ("^x[b-a]$", "matches no character"),
        ("^[]$", "matches no character"),
        ("^[^\\x01-\\U0010FFFF]$", "matches no character"),
        ("^[^\\x01-\\uFFFD]$", "matches no character"),
        ("^[\\x00]$", "matches no character"),
        ("^[\\ud800-\\udfff]$", "matches no character"),
        ("^a\\u0000$", "NUL"),
    ],
)
def test_patterns_past_the_bounds(pattern: str, why: str) -> None:
    with pytest.raises(PatternRefused, match=None) as caught:
        check_pattern(pattern)
    assert why in str(caught.value)
