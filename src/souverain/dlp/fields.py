"""Every string a request carries, read and replaced in one place.

Data-loss prevention reads the whole request as the client sent it: every string of every
field, declared or not (unknown top-level fields, unknown message and content-part fields,
tool descriptions and schemas, response formats, `stop`, `user`, `metadata`...), and the
strings, numbers and keys inside free-form objects. The engines send upstream only what
their allow-lists take from the same request (backends/outbound.py), so whatever leaves was
scanned: a guard that read a list of fields while the engines forwarded the whole body is
how identifiers used to leave undetected.

Not read: the routed `model` (resolved against the catalog before this stage), and the
fields that are closed vocabularies validated by the protocol (`role`, `type`), whose
values cannot carry data. Booleans and the protocol's typed numbers (temperature, seed...)
are not text either.

Images given as `data:` URLs are opaque: no text detector can read them. They are counted
(`read`), and the DLP stage lets them go only where every finding type may go
unchanged.

Tool-call arguments, and tool results that are JSON, are read as the strings, numbers and
keys inside the JSON, not as its text: escaping hides values from the detectors (a password
followed by "\\n", a quote written "\\""), and a replacement must not break the JSON.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from pydantic import BaseModel

from ..errors import InvalidRequest
from ..jsonsafe import MAX_JSON_DEPTH, JsonTooDeep, parse_json_bounded
from ..protocol.chat import ChatCompletionRequest, ChatMessage, FunctionCall
from ..protocol.embeddings import EmbeddingRequest
from ..protocol.fim import FIMCompletionRequest
from ..protocol.text_completions import TextCompletionRequest

Request = ChatCompletionRequest | FIMCompletionRequest | EmbeddingRequest | TextCompletionRequest
Setter = Callable[[str], None]
Slot = tuple[str, Setter]

# Closed vocabularies checked by the protocol schemas: never data.
_STRUCTURAL = frozenset({"role", "type"})
MAX_DEPTH = MAX_JSON_DEPTH  # deeper objects are refused: no legitimate request nests this far


def read_texts(request: Request) -> list[str]:
    return read(request)[0]


def read(request: Request) -> tuple[list[str], int]:
    """The texts of the request, and how many values no detector can read (images as
    `data:` URLs), from one walk."""
    walker = _Walker().walk(request)
    return [text for text, _ in walker.slots], walker.opaque


def with_texts(request: Request, texts: list[str]) -> Request:
    """A copy of `request` with its texts replaced, in the order `read_texts` gave them."""
    copy = request.model_copy(deep=True)
    slots = _slots(copy)
    assert len(slots) == len(texts)
    for (_, setter), text in zip(slots, texts, strict=True):
        setter(text)
    return copy


def _slots(request: Request) -> list[Slot]:
    """(text, function that replaces it) for every text of the request, in order."""
    return _Walker().walk(request).slots


class _Walker:
    def __init__(self) -> None:
        self.slots: list[Slot] = []
        self.opaque = 0

    def walk(self, request: Request) -> _Walker:
        self._model(request, depth=0, top=True)
        return self

    # ---- pydantic models: declared fields by type, undeclared ones as free-form ----------

    def _model(self, model: BaseModel, *, depth: int, top: bool = False) -> None:
        _deep(depth)
        for name in type(model).model_fields:
            if name in _STRUCTURAL or (top and name == "model"):
                continue
            value = getattr(model, name)
            if isinstance(model, FunctionCall) and name == "arguments":
                self._arguments(model)
            elif isinstance(model, ChatMessage) and name == "content" and model.role == "tool":
                self._tool_result(model)
            elif isinstance(value, str):
                self._text(value, _setattr(model, name))
            elif isinstance(value, BaseModel | list | dict):
                self._value(value, depth=depth + 1)
        extra = model.model_extra or {}
        for name, value in list(extra.items()):
            self._free(extra, name, value, depth=depth + 1)
            self._key(extra, name)

    def _value(self, value: Any, *, depth: int) -> None:
        """A declared field's list, dict or model (strings in lists and dicts are data)."""
        _deep(depth)
        if isinstance(value, BaseModel):
            self._model(value, depth=depth)
        elif isinstance(value, list):
            for index, item in enumerate(value):
                if isinstance(item, BaseModel):
                    self._model(item, depth=depth + 1)
                else:
                    self._free(value, index, item, depth=depth + 1)
        elif isinstance(value, dict):
            for name in list(value):
                self._free(value, name, value[name], depth=depth + 1)
                self._key(value, name)

    def _text(self, text: str, setter: Setter) -> None:
        if _is_data_url(text):
            self.opaque += 1
        else:
            self.slots.append((text, setter))

    # ---- free-form values: strings, numbers and keys -------------------------------------

    def _free(self, container: Any, key: Any, value: Any, *, depth: int) -> None:
        _deep(depth)
        if isinstance(value, BaseModel):
            self._model(value, depth=depth)
        elif isinstance(value, dict):
            for name in list(value):
                self._free(value, name, value[name], depth=depth + 1)
                self._key(value, name)
        elif isinstance(value, list):
            for index, item in enumerate(value):
                self._free(value, index, item, depth=depth + 1)
        elif isinstance(value, str):
            self._text(value, _setitem(container, key, value))
        elif isinstance(value, int | float) and not isinstance(value, bool):
            text = json.dumps(value)  # a replaced number becomes a string (a placeholder)
            self.slots.append((text, _setitem(container, key, text)))

    def _key(self, mapping: dict[str, Any], name: str) -> None:
        """A key's slot comes after its value's, so the value is set under the old key
        first; keys are renamed in place, so setters holding the dict still see it."""
        self.slots.append((name, _rename(mapping, name)))

    # ---- JSON inside strings: tool-call arguments and tool results -----------------------

    def _arguments(self, function: FunctionCall) -> None:
        arguments, set_arguments = function.arguments, _setattr(function, "arguments")
        if not isinstance(arguments, str):  # Mistral may send an object: keep it one
            self._value(arguments, depth=1)
            return
        self._json_text(arguments, set_arguments)

    def _tool_result(self, message: ChatMessage) -> None:
        if isinstance(message.content, str):
            self._json_text(message.content, _setattr(message, "content"))
        elif message.content is not None:
            self._value(message.content, depth=1)

    def _json_text(self, text: str, write: Setter) -> None:
        parsed = _json_container(text)
        if parsed is None:  # not JSON: scanned as plain text
            self._text(text, write)
            return
        holder = [parsed]
        start = len(self.slots)
        self._free(holder, 0, parsed, depth=1)
        # Each leaf's setter changes the parsed object in place; rewrite the text after it.
        for index in range(start, len(self.slots)):
            original, setter = self.slots[index]
            self.slots[index] = (
                original,
                _then(setter, original, lambda: write(_dumps(holder[0]))),
            )


def _deep(depth: int) -> None:
    if depth > MAX_DEPTH:
        raise InvalidRequest(f"the request nests objects deeper than {MAX_DEPTH} levels")


def _is_data_url(text: str) -> bool:
    return text[:5].lower() == "data:" and ";base64," in text[:200].lower()


def _json_container(text: str) -> Any:
    """The parsed object or array, or None for anything else (plain text, a bare value).
    JSON nested too deep is refused (`JsonTooDeep`, a 400), never read as plain text."""
    if not text.lstrip().startswith(("{", "[")):
        return None
    try:
        return parse_json_bounded(text, MAX_DEPTH)
    except JsonTooDeep:
        raise
    except ValueError:
        return None


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


def _then(setter: Setter, original: str, changed: Callable[[], None]) -> Setter:
    def set_and_rewrite(value: str) -> None:
        if value != original:
            setter(value)
            changed()

    return set_and_rewrite


def _setitem(container: Any, key: Any, old: str) -> Setter:
    def set_value(value: str) -> None:
        if value != old:
            container[key] = value

    return set_value


def _rename(mapping: dict[str, Any], old: str) -> Setter:
    def set_key(new: str) -> None:
        if new != old:
            items = [(new if key == old else key, value) for key, value in mapping.items()]
            mapping.clear()
            mapping.update(items)

    return set_key


def _setattr(target: Any, name: str) -> Setter:
    return lambda value: setattr(target, name, value)
