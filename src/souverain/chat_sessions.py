"""The HTTP side of `souverain chat`: a running gateway's streams, read as a person's chat.

Two kinds of session, one interface (`send(text)` yields the answer's text as it comes):

    ModelSession   POST /v1/chat/completions, stream: the client keeps the history
    AgentSession   POST /v1/conversations (start), then POST /v1/conversations/{id}
                   (append), stream: the server keeps the history (Mistral's
                   Conversations API; conversation events as `event:` frames)

The standard library's urllib does the HTTP: a line of a server-sent event stream is
read as soon as it arrives, and a blocking read is interrupted by Ctrl-C in the main
thread, which is what an interactive terminal needs. Every failure is a `ChatError`
with the server's own message (its OpenAI/Mistral error body), never a traceback.
"""

from __future__ import annotations

import http.client
import json
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

CONNECT_TIMEOUT_S = 30.0
STREAM_TIMEOUT_S = 900.0  # between two lines of a stream: a loaded CPU model is slow


class ChatError(Exception):
    """Why a call failed, as a person should read it. `status` is the HTTP status, if the
    server answered with one; `unreachable` when it could not be reached at all."""

    def __init__(self, message: str, status: int | None = None, *, unreachable: bool = False):
        super().__init__(message)
        self.message = message
        self.status = status
        self.unreachable = unreachable

    @property
    def fatal(self) -> bool:
        """Nothing else can work either: the key is refused or the server is gone."""
        return self.unreachable or self.status == 401


@dataclass
class Gateway:
    url: str  # http://host:port, no /v1
    key: str

    def request(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        with self._open(method, path, body, CONNECT_TIMEOUT_S) as response:
            return json.loads(response.read() or b"null")

    def events(self, path: str, body: dict[str, Any]) -> Iterator[tuple[str | None, Any]]:
        """(event name, parsed data) per server-sent event; ends at `[DONE]` or the end
        of the stream."""
        with self._open("POST", path, body, STREAM_TIMEOUT_S) as response:
            name: str | None = None
            data: list[str] = []
            for raw in _lines(response, self.url):
                line = raw.decode("utf-8", "replace").rstrip("\r\n")
                if line.startswith("event:"):
                    name = line[6:].strip()
                elif line.startswith("data:"):
                    data.append(line[5:].removeprefix(" "))
                elif not line and data:
                    payload = "\n".join(data)
                    if payload == "[DONE]":
                        return
                    yield name, _parse(payload)
                    name, data = None, []

    def _open(self, method: str, path: str, body: dict[str, Any] | None, timeout: float) -> Any:
        request = urllib.request.Request(
            self.url.rstrip("/") + path,
            data=None if body is None else json.dumps(body).encode(),
            method=method,
            headers={
                "Authorization": f"Bearer {self.key}",
                "Content-Type": "application/json",
                "Accept": "application/json, text/event-stream",
            },
        )
        try:
            return urllib.request.urlopen(request, timeout=timeout)
        except urllib.error.HTTPError as exc:
            raise ChatError(_message_of(exc.read(), exc.reason), exc.code) from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise ChatError(f"cannot reach {self.url}: {reason}", unreachable=True) from None


def _lines(response: Any, url: str) -> Iterator[bytes]:
    """The stream's lines; a connection that breaks or stalls mid-answer is a ChatError."""
    try:
        yield from response
    except (OSError, http.client.HTTPException) as exc:
        raise ChatError(f"the stream from {url} broke off: {exc or type(exc).__name__}") from None


def _parse(payload: str) -> Any:
    try:
        return json.loads(payload)
    except ValueError:
        raise ChatError(f"the server sent an event that is not JSON: {payload[:200]!r}") from None


def _message_of(body: bytes, reason: str) -> str:
    try:
        parsed = json.loads(body)
    except ValueError:
        return str(reason)
    error = parsed.get("error", parsed) if isinstance(parsed, dict) else None
    if isinstance(error, dict) and isinstance(error.get("message"), str):
        return str(error["message"])
    if isinstance(error, str):
        return error
    return str(reason)


def stream_error(data: Any) -> ChatError | None:
    """The error a stream reported in one of its frames, if this frame is one."""
    if not isinstance(data, dict):
        return None
    error = data.get("error")
    if isinstance(error, dict):
        return ChatError(str(error.get("message") or "the stream failed"), _status(error))
    if data.get("type") == "conversation.response.error":
        return ChatError(str(data.get("message") or "the conversation failed"), _status(data))
    return None


def _status(error: dict[str, Any]) -> int | None:
    """An HTTP-like status, when the error carries one (Mistral's conversation errors do;
    OpenAI's carry a string code)."""
    code = error.get("code")
    return code if isinstance(code, int) and 400 <= code < 600 else None


# ---- model mode ---------------------------------------------------------------------------


@dataclass
class ModelSession:
    gateway: Gateway
    model: str
    system: str | None = None
    options: dict[str, Any] = field(default_factory=dict)  # max_tokens, temperature
    history: list[dict[str, str]] = field(default_factory=list)

    @property
    def title(self) -> str:
        return f"model {self.model}"

    def reset(self) -> None:
        self.history.clear()

    def send(self, text: str) -> Iterator[str]:
        """The answer's text, streamed; the turn joins the history once it is whole (or
        cut by Ctrl-C: what was shown is what the model said)."""
        system = [{"role": "system", "content": self.system}] if self.system else []
        messages = [*system, *self.history, {"role": "user", "content": text}]
        body = {"model": self.model, "messages": messages, "stream": True, **self.options}
        answer: list[str] = []
        try:
            for _, data in self.gateway.events("/v1/chat/completions", body):
                error = stream_error(data)
                if error is not None:
                    raise error
                for choice in data.get("choices") or ():
                    piece = (choice.get("delta") or {}).get("content")
                    if piece:
                        answer.append(piece)
                        yield piece
        except KeyboardInterrupt:
            self._keep(text, answer)
            raise
        self._keep(text, answer)

    def _keep(self, text: str, answer: list[str]) -> None:
        self.history.append({"role": "user", "content": text})
        self.history.append({"role": "assistant", "content": "".join(answer)})


# ---- agent mode ---------------------------------------------------------------------------


@dataclass
class PendingCall:
    """A tool call the conversation waits on: a person allows or denies it."""

    tool_call_id: str
    name: str
    arguments: str


@dataclass
class AgentSession:
    gateway: Gateway
    agent_id: str
    agent_name: str
    conversation_id: str | None = None
    notify: Callable[[str], None] = lambda notice: None  # tools, handoffs: shown aside
    confirm: Callable[[PendingCall], bool] = lambda call: False  # approvals: deny unasked
    sources: list[dict[str, Any]] = field(default_factory=list)  # the last answer's
    _told: set[str] = field(default_factory=set)  # function calls already told
    _pending: dict[str, PendingCall] = field(default_factory=dict)

    @property
    def title(self) -> str:
        return f"agent {self.agent_name}"

    def reset(self) -> None:
        self.conversation_id = None  # the next message starts a new conversation

    def send(self, text: str) -> Iterator[str]:
        """The agent's answer, streamed; tool calls that need approval are put to the
        person (`confirm`) and the conversation goes on with their decisions."""
        if self.conversation_id is None:
            path = "/v1/conversations"
            body: dict[str, Any] = {"agent_id": self.agent_id, "inputs": text}
        else:
            path = self._path()
            body = {"inputs": text}
        self.sources.clear()
        self._told.clear()
        while True:
            self._pending.clear()
            for name, data in self.gateway.events(path, {**body, "stream": True, "store": True}):
                error = stream_error(data)
                if error is not None:
                    raise error
                kind = (data.get("type") if isinstance(data, dict) else None) or name
                yield from self._event(kind, data)
            if not self._pending:
                return
            decisions = [
                {"tool_call_id": call.tool_call_id, "confirmation": _decision(self.confirm(call))}
                for call in list(self._pending.values())
            ]
            path, body = self._path(), {"tool_confirmations": decisions}

    def _path(self) -> str:
        if self.conversation_id is None:
            raise ChatError("the server did not say which conversation it started")
        return f"/v1/conversations/{urllib.parse.quote(self.conversation_id, safe='')}"

    def _event(self, kind: str | None, data: dict[str, Any]) -> Iterator[str]:
        if kind == "conversation.response.started":
            self.conversation_id = data.get("conversation_id") or self.conversation_id
        elif kind == "message.output.delta":
            content = data.get("content")
            if isinstance(content, str):
                yield content
            elif isinstance(content, dict):
                if content.get("type") == "text" and isinstance(content.get("text"), str):
                    yield content["text"]
                elif content.get("type") == "tool_reference":
                    self.sources.append(content)
        elif kind == "tool.execution.started":
            self.notify(f"[running tool {data.get('name', '?')}]")
        elif kind == "tool.execution.done":
            info = data.get("info")
            citations = info.get("citations") if isinstance(info, dict) else None
            if isinstance(citations, list):
                self.sources.extend(c for c in citations if isinstance(c, dict))
        elif kind == "agent.handoff.done":
            who = data.get("next_agent_name") or data.get("next_agent_id") or "?"
            self.notify(f"[handed over to agent {who}]")
        elif kind == "function.call.delta":
            self._function_call(data)

    def _function_call(self, data: dict[str, Any]) -> None:
        call_id = str(data.get("tool_call_id") or data.get("id") or "")
        name = str(data.get("name") or "?")
        if data.get("confirmation_status") == "pending":
            earlier = self._pending.get(call_id)
            arguments = (earlier.arguments if earlier else "") + str(data.get("arguments") or "")
            self._pending[call_id] = PendingCall(call_id, name, arguments)
        elif data.get("confirmation_status") is None and call_id not in self._told:
            self._told.add(call_id)  # its arguments may come in many deltas: tell once
            self.notify(
                f"[the agent asked for the function {name}: souverain chat does not run "
                "client-side functions]"
            )


def _decision(allowed: bool) -> str:
    return "allow" if allowed else "deny"
