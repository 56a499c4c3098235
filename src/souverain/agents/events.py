"""The typed events of a streamed response, built from the chat deltas of one model call.

Order, as OpenAI sends it: `response.created`, `response.in_progress`, then per output
item `output_item.added`, its parts and deltas, `output_item.done`; last
`response.completed` (or `.incomplete`, or `.failed`). Every event carries a
`sequence_number` counted from 0. Text is relayed as it comes; a tool call arrives whole
(protocol/tool_call_stream.py) and goes out as one arguments delta.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..errors import RateLimited, SouverainError
from ..protocol.chat import ChatDelta
from ..protocol.common import Usage
from ..protocol.responses import function_call_item, message_item, text_part, usage_object
from ..protocol.tool_call_stream import new_tool_call_id
from .items import finish_status, item_id

Event = dict[str, Any]
# Renders the response object: (status, output, usage, error, incomplete reason).
Render = Callable[
    [str, list[dict[str, Any]], dict[str, Any] | None, dict[str, Any] | None, str | None],
    dict[str, Any],
]


class ResponseEvents:
    def __init__(self, render: Render) -> None:
        self.render = render
        self.output: list[dict[str, Any]] = []
        self.usage = Usage()
        self.finish_reason = "stop"
        self._sequence = 0
        self._text: list[str] | None = None  # the message item being streamed, if any

    def _event(self, kind: str, **fields: Any) -> Event:
        event = {"type": kind, "sequence_number": self._sequence, **fields}
        self._sequence += 1
        return event

    def start(self) -> list[Event]:
        response = self.render("in_progress", [], None, None, None)
        return [
            self._event("response.created", response=response),
            self._event("response.in_progress", response=response),
        ]

    def delta(self, delta: ChatDelta) -> list[Event]:
        events = []
        if delta.content:
            if self._text is None:
                events += self._open_message()
            assert self._text is not None
            self._text.append(delta.content)
            events.append(self._event("response.output_text.delta", **self._where(),
                                      delta=delta.content, logprobs=[]))  # fmt: skip
        for call in delta.tool_calls or ():
            events += self._close_message()
            events += self._function_call(call)
        if delta.finish_reason is not None:
            self.finish_reason = delta.finish_reason
        if delta.usage is not None:
            self.usage = delta.usage
        return events

    def finish(self) -> list[Event]:
        """The closing events; the output and usage are final once this is called."""
        status, reason = finish_status(self.finish_reason)
        # An answer with nothing in it is still one (empty) message.
        events = self._open_message() if not self.output else []
        events += self._close_message(status)
        kind = "response.completed" if status == "completed" else "response.incomplete"
        response = self.final(status, reason)
        return [*events, self._event(kind, response=response)]

    def final(self, status: str, reason: str | None) -> dict[str, Any]:
        usage = usage_object(self.usage.prompt_tokens, self.usage.completion_tokens)
        return self.render(status, self.output, usage, None, reason)

    def fail(self, error: SouverainError) -> list[Event]:
        code = "rate_limit_exceeded" if isinstance(error, RateLimited) else "server_error"
        detail = {"code": code, "message": error.message}
        response = self.render("failed", self.output, None, detail, None)
        return [self._event("response.failed", response=response)]

    # ---- output items ----------------------------------------------------------------

    def _where(self) -> dict[str, Any]:
        index = len(self.output) - 1
        return {"item_id": self.output[index]["id"], "output_index": index, "content_index": 0}

    def _open_message(self) -> list[Event]:
        item = message_item(item_id("msg"), "", "in_progress")
        self.output.append(item)
        self._text = []
        return [
            self._event("response.output_item.added", output_index=len(self.output) - 1,
                        item=dict(item)),
            self._event("response.content_part.added", **self._where(), part=text_part("")),
        ]  # fmt: skip

    def _close_message(self, status: str = "completed") -> list[Event]:
        if self._text is None:
            return []
        text, where = "".join(self._text), self._where()
        self._text = None
        item = message_item(where["item_id"], text, status)
        self.output[where["output_index"]] = item
        return [
            self._event("response.output_text.done", **where, text=text, logprobs=[]),
            self._event("response.content_part.done", **where, part=text_part(text)),
            self._event("response.output_item.done", output_index=where["output_index"],
                        item=item),
        ]  # fmt: skip

    def _function_call(self, call: dict[str, Any]) -> list[Event]:
        function = call.get("function") or {}
        name, arguments = function.get("name", ""), function.get("arguments") or "{}"
        call_id = call.get("id") or new_tool_call_id()
        fc_id = item_id("fc")
        index = len(self.output)
        self.output.append(function_call_item(fc_id, call_id, name, "", "in_progress"))
        done = function_call_item(fc_id, call_id, name, arguments, "completed")
        where = {"item_id": fc_id, "output_index": index}
        events = [
            self._event("response.output_item.added", output_index=index, item=self.output[index]),
            self._event("response.function_call_arguments.delta", **where, delta=arguments),
            self._event("response.function_call_arguments.done", **where, name=name,
                        arguments=arguments),
            self._event("response.output_item.done", output_index=index, item=done),
        ]  # fmt: skip
        self.output[index] = done
        return events
