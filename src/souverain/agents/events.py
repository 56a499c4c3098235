"""The typed events of a streamed response, built from the conversation loop's events.

Order, as OpenAI sends it: `response.created`, `response.in_progress`, then per output
item `output_item.added`, its parts and deltas, `output_item.done`; last
`response.completed` (or `.incomplete`, or `.failed`). Every event carries a
`sequence_number` counted from 0. The loop's `message.output.delta` events are relayed as
text deltas as they come; its `function.call.delta` (a call arrives whole) goes out as
one arguments delta. Items carry the ids of the entries the turn stores, so a streamed
response and the same response read back name the same items.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..errors import RateLimited, SouverainError
from ..protocol.responses import function_call_item, message_item, text_part

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

    def step(self, event: Event) -> list[Event]:
        """The Responses events for one event of the conversation loop."""
        kind = event.get("type")
        if kind == "message.output.delta":
            return self.text(event["id"], event.get("content") or "")
        if kind == "function.call.delta" and event.get("confirmation_status") is None:
            return self.function_call(
                event["id"], event["tool_call_id"], event["name"], event["arguments"]
            )
        return []  # started, done: the response's own lifecycle events stand for them

    def text(self, entry_id: str, delta: str) -> list[Event]:
        events = []
        if self._text is None or self.output[-1]["id"] != entry_id:
            events += self._close_message()
            events += self._open_message(entry_id)
        assert self._text is not None
        if delta:
            self._text.append(delta)
            events.append(self._event("response.output_text.delta", **self._where(),
                                      delta=delta, logprobs=[]))  # fmt: skip
        return events

    def function_call(self, entry_id: str, call_id: str, name: str, arguments: str) -> list[Event]:
        events = self._close_message()
        index = len(self.output)
        self.output.append(function_call_item(entry_id, call_id, name, "", "in_progress"))
        done = function_call_item(entry_id, call_id, name, arguments or "{}", "completed")
        where = {"item_id": entry_id, "output_index": index}
        events += [
            self._event("response.output_item.added", output_index=index, item=self.output[index]),
            self._event("response.function_call_arguments.delta", **where,
                        delta=done["arguments"]),
            self._event("response.function_call_arguments.done", **where, name=name,
                        arguments=done["arguments"]),
            self._event("response.output_item.done", output_index=index, item=done),
        ]  # fmt: skip
        self.output[index] = done
        return events

    def finish(self, response: dict[str, Any]) -> list[Event]:
        """The closing events for the final `response` (its output read from the stored
        entries): an answer with nothing streamed is still its (empty) message."""
        status = response["status"]
        events = []
        if not self.output:
            empty = [item for item in response["output"] if item["type"] == "message"]
            events += self._open_message(empty[0]["id"] if empty else "msg_empty")
        events += self._close_message(status)
        kind = "response.completed" if status == "completed" else "response.incomplete"
        return [*events, self._event(kind, response=response)]

    def fail(self, error: SouverainError) -> list[Event]:
        code = "rate_limit_exceeded" if isinstance(error, RateLimited) else "server_error"
        detail = {"code": code, "message": error.message}
        response = self.render("failed", self.output, None, detail, None)
        return [self._event("response.failed", response=response)]

    # ---- output items ----------------------------------------------------------------

    def _where(self) -> dict[str, Any]:
        index = len(self.output) - 1
        return {"item_id": self.output[index]["id"], "output_index": index, "content_index": 0}

    def _open_message(self, entry_id: str) -> list[Event]:
        item = message_item(entry_id, "", "in_progress")
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
