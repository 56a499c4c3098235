"""Server-side tools an agent may call: the one shape every kind of tool is bound to.

A model step may answer with tool calls. Function tools go back to the client, which runs
them and appends their results; every other kind runs here: document libraries
(agents/library_tool.py) and MCP connectors (connectors/tools.py). Each kind turns one
entry of an agent's `tools` into `BoundTool`s, bound to the caller, so the runtime never
needs to know what a tool is: it offers the specs to the model and awaits `run`.

A tool's output is text that becomes a `tool` message of the next model step, so it
passes data-loss prevention and policy routing like user text. Its classification is a
claim on the conversation: once restricted data entered it, the level only rises.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..context import Principal
    from ..state import AppState


@dataclass(frozen=True, slots=True)
class ToolSpec:
    """A tool as the model sees it: a function name, what it does, its JSON schema."""

    name: str
    description: str | None
    parameters: dict[str, Any]
    requires_approval: bool = False  # the turn pauses until a person accepts the call


@dataclass(frozen=True, slots=True)
class ToolInvocation:
    call_id: str
    name: str
    arguments: dict[str, Any]


@dataclass(frozen=True, slots=True)
class ToolOutcome:
    output: str  # what the model reads next; on failure, why it failed
    ok: bool = True
    classification: str | None = None  # the most sensitive data the tool read
    citations: tuple[dict[str, Any], ...] = ()
    # For the audit leaf (connector, tool, latency...): never arguments or results.
    audit: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class BoundTool:
    """A tool ready to run for one caller: its spec and how to run it."""

    spec: ToolSpec
    kind: str  # "document_library", "connector", ...: named in the audit leaf
    run: Callable[[ToolInvocation], Awaitable[ToolOutcome]]


# Turns one entry of an agent's `tools` into the tools it offers, for one caller; raises
# SouverainError (400 for a bad entry, 404 for a library or connector the caller cannot
# see) before any model step runs.
ToolBinder = Callable[["AppState", "Principal", dict[str, Any]], Awaitable[list[BoundTool]]]
