"""Every piece of text a request would send to a model, read and replaced in one place.

Chat: message contents (strings and text parts), tool-call arguments, tool results.
FIM: prompt and suffix. Embeddings: each input string. Whatever path a text takes to a
deployment, it is listed here, so no field slips past data-loss prevention.

Tool-call arguments, and tool results that are JSON, are read as the strings, numbers and
keys inside the JSON, not as its text: escaping hides values from the detectors (a password
followed by "\\n", a quote written "\\""), and a replacement must not break the JSON.
"""

from __future__ import annotations

import json
from typing import Any

from ..protocol.chat import ChatCompletionRequest
from ..protocol.embeddings import EmbeddingRequest
from ..protocol.fim import FIMCompletionRequest

Request = ChatCompletionRequest | FIMCompletionRequest | EmbeddingRequest


def read_texts(request: Request) -> list[str]:
    return [text for text, _ in _slots(request)]


def with_texts(request: Request, texts: list[str]) -> Request:
    """A copy of `request` with its texts replaced, in the order `read_texts` gave them."""
    copy = request.model_copy(deep=True)
    slots = _slots(copy)
    assert len(slots) == len(texts)
    for (_, setter), text in zip(slots, texts, strict=True):
        setter(text)
    return copy


def _slots(request: Request) -> list[tuple[str, Any]]:
    """(text, function that replaces it) for every text of the request, in order."""
    slots: list[tuple[str, Any]] = []
    if isinstance(request, ChatCompletionRequest):
        for message in request.messages:
            if isinstance(message.content, str):
                content = _setattr(message, "content")
                parsed = _json_container(message.content) if message.role == "tool" else None
                if parsed is None:
                    slots.append((message.content, content))
                else:
                    slots += _json_slots(parsed, lambda v, set_=content: set_(_dumps(v)))
            elif isinstance(message.content, list):
                for part in message.content:
                    if part.text is not None:
                        slots.append((part.text, _setattr(part, "text")))
            for call in message.tool_calls or ():
                slots += _argument_slots(call.function)
    elif isinstance(request, FIMCompletionRequest):
        slots.append((request.prompt, _setattr(request, "prompt")))
        if request.suffix is not None:
            slots.append((request.suffix, _setattr(request, "suffix")))
    elif isinstance(request.input, str):
        slots.append((request.input, _setattr(request, "input")))
    else:
        items = request.input
        for index, item in enumerate(items):
            if isinstance(item, str):
                slots.append((item, _setitem(items, index)))
    return slots


def _argument_slots(function: Any) -> list[tuple[str, Any]]:
    arguments, set_arguments = function.arguments, _setattr(function, "arguments")
    if not isinstance(arguments, str):  # Mistral may send an object: keep it one
        return _json_slots(arguments, set_arguments)
    parsed = _json_container(arguments)
    if parsed is None:  # not JSON: scanned as plain text
        return [(arguments, set_arguments)]
    return _json_slots(parsed, lambda value: set_arguments(_dumps(value)))


def _json_container(text: str) -> Any:
    """The parsed object or array, or None for anything else (plain text, a bare value)."""
    if not text.lstrip().startswith(("{", "[")):
        return None
    try:
        return json.loads(text)
    except ValueError:
        return None


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


def _json_slots(root: Any, write: Any) -> list[tuple[str, Any]]:
    """A slot per string, number and key inside `root`; each change rewrites the whole.

    A number that must be replaced becomes a string (a placeholder is not a number). A key's
    slot comes after its value's, so that the value is set under the old key first; keys are
    renamed in place, so setters holding the dict still see it.
    """
    slots: list[tuple[str, Any]] = []
    holder = [root]

    def leaf(container: Any, key: Any, value: Any) -> None:
        if isinstance(value, dict):
            for name in list(value):
                leaf(value, name, value[name])
                slots.append((name, _rename(value, name, lambda: write(holder[0]))))
        elif isinstance(value, list):
            for index, item in enumerate(value):
                leaf(value, index, item)
        elif isinstance(value, str) or (
            isinstance(value, int | float) and not isinstance(value, bool)
        ):
            text = value if isinstance(value, str) else json.dumps(value)
            slots.append((text, _replace(container, key, text, lambda: write(holder[0]))))

    leaf(holder, 0, root)
    return slots


def _replace(container: Any, key: Any, old: str, changed: Any) -> Any:
    def set_value(value: str) -> None:
        if value != old:
            container[key] = value
            changed()

    return set_value


def _rename(mapping: dict[str, Any], old: str, changed: Any) -> Any:
    def set_key(new: str) -> None:
        if new != old:
            items = [(new if key == old else key, value) for key, value in mapping.items()]
            mapping.clear()
            mapping.update(items)
            changed()

    return set_key


def _setattr(target: Any, name: str) -> Any:
    return lambda value: setattr(target, name, value)


def _setitem(target: list[Any], index: int) -> Any:
    def set_item(value: str) -> None:
        target[index] = value

    return set_item
