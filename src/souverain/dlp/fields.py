"""Every piece of text a request would send to a model, read and replaced in one place.

Chat: message contents (strings and text parts), tool-call arguments, tool results.
FIM: prompt and suffix. Embeddings: each input string. Whatever path a text takes to a
deployment, it is listed here, so no field slips past data-loss prevention.
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
                slots.append((message.content, _setattr(message, "content")))
            elif isinstance(message.content, list):
                for part in message.content:
                    if part.text is not None:
                        slots.append((part.text, _setattr(part, "text")))
            for call in message.tool_calls or ():
                arguments = call.function.arguments
                if not isinstance(arguments, str):  # Mistral may send an object: scan it too
                    arguments = json.dumps(arguments, ensure_ascii=False)
                slots.append((arguments, _setattr(call.function, "arguments")))
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


def _setattr(target: Any, name: str) -> Any:
    return lambda value: setattr(target, name, value)


def _setitem(target: list[Any], index: int) -> Any:
    def set_item(value: str) -> None:
        target[index] = value

    return set_item
