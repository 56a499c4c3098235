"""Whether a JSON value conforms to a JSON schema (Draft 2020-12), with bounded cost.

The local engine's grammar enforces only part of a schema (llama.cpp's converter drops
numeric bounds, `multipleOf`, `format: email`, ...), so every structured answer and every
tool-call argument is checked here before it leaves: an empty list means it conforms.

The check is client input run against model output, so it is bounded too:
- `pattern` and `patternProperties` run on the `regex` module with a timeout per match
  and one for the whole check (Python's `re` backtracks without limit and cannot be
  interrupted); a pattern that runs out of time is reported as a violation: failing closed;
- `format` is asserted for date, time, date-time, uuid and email (jsonschema only
  annotates formats unless told otherwise, and its date-time check needs an extra package);
- remote `$ref`s are never fetched (jsonschema's `referencing` fetches nothing by
  default); only the first MAX_VIOLATIONS messages are collected.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import re
import time
from collections.abc import Iterator
from contextvars import ContextVar
from typing import Any

import regex
from jsonschema import Draft202012Validator, FormatChecker, ValidationError
from jsonschema.exceptions import SchemaError
from jsonschema.validators import extend

from ..errors import InvalidRequest

MAX_VIOLATIONS = 20
MAX_MESSAGE_CHARS = 200
MAX_PATTERN_CHARS = 1024
PATTERN_TIMEOUT_S = 0.05
CHECK_BUDGET_S = 0.5  # all the patterns of one check together
VALIDATOR_CACHE = 256

_DATE = re.compile(r"\d{4}-\d{2}-\d{2}\Z", re.ASCII)
_TIME = re.compile(r"(\d{2}):(\d{2}):(\d{2})(\.\d+)?([Zz]|[+-]\d{2}:\d{2})\Z", re.ASCII)
_UUID = re.compile(r"[0-9a-fA-F]{8}(-[0-9a-fA-F]{4}){3}-[0-9a-fA-F]{12}\Z", re.ASCII)
# RFC 5321's shape without its rarely used corners (quoted local parts, IP literals):
# what every client-side email validator accepts, and what a grammar can produce.
_EMAIL = re.compile(
    r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
    r"@[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+\Z",
    re.ASCII,
)


_deadline: ContextVar[float] = ContextVar("pattern_deadline", default=0.0)


class PatternTimeout(ValueError):
    """A pattern took longer than PATTERN_TIMEOUT_S on one string."""


def violations(schema: dict[str, Any], instance: object) -> list[str]:
    """Why `instance` does not conform to `schema` (empty: it conforms), each message
    prefixed with the JSON path of the offending value (`$.items[2].price`).

    A schema that is not a valid Draft 2020-12 schema is InvalidRequest (a 400): the
    client sent it, and no answer could be judged against it."""
    validator = _validator(_key(schema))
    found: list[str] = []
    budget = _deadline.set(time.monotonic() + CHECK_BUDGET_S)
    try:
        for error in validator.iter_errors(instance):
            message = error.message
            if len(message) > MAX_MESSAGE_CHARS:  # it quotes the value, which may be long
                message = message[: MAX_MESSAGE_CHARS - 1] + "…"
            found.append(f"{error.json_path}: {message}")
            if len(found) >= MAX_VIOLATIONS:
                break
    except RecursionError:
        found.append("$: the value nests too deeply to be checked")
    except regex.error as exc:
        raise InvalidRequest(
            f"the JSON schema has a pattern that does not compile: {exc}"
        ) from None
    finally:
        _deadline.reset(budget)
    return found


def check_schema(schema: dict[str, Any], param: str | None = None) -> None:
    """InvalidRequest (naming `param`) when `schema` is not a valid Draft 2020-12 schema."""
    try:
        _validator(_key(schema))
    except InvalidRequest as exc:
        raise InvalidRequest(exc.message, param=param) from None


def _key(schema: dict[str, Any]) -> str:
    try:
        return json.dumps(schema, sort_keys=True)
    except RecursionError:
        raise InvalidRequest("the JSON schema nests too deeply") from None
    except (TypeError, ValueError) as exc:  # only JSON reaches here; fail clearly anyway
        raise InvalidRequest(f"the JSON schema is not JSON: {exc}") from None


@functools.lru_cache(maxsize=VALIDATOR_CACHE)
def _validator(schema_text: str) -> Any:
    """One validator per distinct schema (the same schema comes with every request of a
    client, and building a validator costs more than most checks)."""
    schema = json.loads(schema_text)
    try:
        _Validator.check_schema(schema)
    except SchemaError as exc:
        where = "/".join(str(part) for part in exc.absolute_path) or "(root)"
        raise InvalidRequest(f"the JSON schema is not valid (at {where}): {exc.message}") from None
    except RecursionError:
        raise InvalidRequest("the JSON schema nests too deeply") from None
    return _Validator(schema, format_checker=FORMATS)


# ---- bounded regexes ----------------------------------------------------------------------


def _search(pattern: str, text: str) -> bool:
    if len(pattern) > MAX_PATTERN_CHARS:
        raise PatternTimeout(f"the pattern is longer than {MAX_PATTERN_CHARS} characters")
    left = _deadline.get() - time.monotonic()
    if left <= 0:
        raise PatternTimeout(f"the check's {CHECK_BUDGET_S} s for patterns ran out")
    try:
        return regex.search(pattern, text, timeout=min(PATTERN_TIMEOUT_S, left)) is not None
    except TimeoutError:
        raise PatternTimeout(
            f"the pattern could not be matched within {PATTERN_TIMEOUT_S} s"
        ) from None


def _pattern(validator: Any, pattern: str, instance: object, schema: Any) -> Iterator[Any]:
    if not validator.is_type(instance, "string"):
        return
    try:
        matched = _search(pattern, str(instance))
    except PatternTimeout as exc:
        yield ValidationError(f"the string could not be checked against {pattern!r}: {exc}")
        return
    if not matched:
        yield ValidationError(f"{_short(instance)} does not match {pattern!r}")


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:59] + "…"


def _pattern_properties(
    validator: Any, patterns: dict[str, Any], instance: object, schema: Any
) -> Iterator[Any]:
    if not validator.is_type(instance, "object"):
        return
    assert isinstance(instance, dict)
    for pattern, subschema in patterns.items():
        for name, value in instance.items():
            try:
                matched = _search(pattern, name)
            except PatternTimeout as exc:
                yield ValidationError(f"property {_short(name)} could not be checked: {exc}")
                continue
            if matched:
                yield from validator.descend(value, subschema, path=name, schema_path=pattern)


def _additional_properties(
    validator: Any, additional: Any, instance: object, schema: dict[str, Any]
) -> Iterator[Any]:
    if not validator.is_type(instance, "object"):
        return
    assert isinstance(instance, dict)
    extras = []
    for name in instance:
        if name in schema.get("properties", {}):
            continue
        try:
            if any(_search(p, name) for p in schema.get("patternProperties", {})):
                continue
        except PatternTimeout as exc:
            yield ValidationError(f"property {_short(name)} could not be checked: {exc}")
            continue
        extras.append(name)
    if validator.is_type(additional, "object"):
        for name in extras:
            yield from validator.descend(instance[name], additional, path=name)
    elif additional is False and extras:
        listed = ", ".join(repr(name) for name in extras)
        yield ValidationError(f"additional properties are not allowed ({listed} unexpected)")


def _unevaluated_properties(
    validator: Any, unevaluated: Any, instance: object, schema: dict[str, Any]
) -> Iterator[Any]:
    """jsonschema's own implementation matches patternProperties with `re`: refuse that
    combination rather than run an unbounded regex (no client library emits it)."""
    if "patternProperties" in json.dumps(schema):
        yield ValidationError(
            "unevaluatedProperties next to patternProperties is not checked by this server"
        )
        return
    yield from Draft202012Validator.VALIDATORS["unevaluatedProperties"](
        validator, unevaluated, instance, schema
    )


# jsonschema's stubs leave `extend` untyped
_Validator = extend(  # type: ignore[no-untyped-call]
    Draft202012Validator,
    validators={
        "pattern": _pattern,
        "patternProperties": _pattern_properties,
        "additionalProperties": _additional_properties,
        "unevaluatedProperties": _unevaluated_properties,
    },
)


# ---- formats --------------------------------------------------------------------------------

FORMATS = FormatChecker(formats=())


@FORMATS.checks("date", raises=ValueError)
def _is_date(value: object) -> bool:
    return not isinstance(value, str) or bool(_DATE.match(value) and dt.date.fromisoformat(value))


@FORMATS.checks("time", raises=ValueError)
def _is_time(value: object) -> bool:
    if not isinstance(value, str):
        return True
    match = _TIME.match(value)
    if match is None:
        return False
    hour, minute, second = (int(match.group(i)) for i in (1, 2, 3))
    offset = match.group(5)
    if offset not in ("Z", "z") and (int(offset[1:3]) > 23 or int(offset[4:6]) > 59):
        return False
    return hour <= 23 and minute <= 59 and second <= 60  # 60: a leap second (RFC 3339)


@FORMATS.checks("date-time", raises=ValueError)
def _is_date_time(value: object) -> bool:
    if not isinstance(value, str):
        return True
    date, separator, time = value.partition("T") if "T" in value else value.partition("t")
    return bool(separator) and _is_date(date) and _is_time(time)


@FORMATS.checks("uuid")
def _is_uuid(value: object) -> bool:
    return not isinstance(value, str) or bool(_UUID.match(value))


@FORMATS.checks("email")
def _is_email(value: object) -> bool:
    return not isinstance(value, str) or (len(value) <= 254 and bool(_EMAIL.match(value)))
