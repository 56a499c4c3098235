"""The Conversations API's lines of the OpenAPI table (`/v1/conversations...`,
api/conversations.py) and the shapes it answers (Mistral's); merged into
api/openapi_routes.py, whose docstring says how to add a line."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, RootModel

from ..protocol.conversations import ConversationAppend, ConversationRestart, ConversationStart
from .openapi_spec import PAGE, Operation, op
from .openapi_spec import int_param as _int
from .openapi_spec import text_param as _text


class _Out(BaseModel):
    model_config = ConfigDict(extra="allow")


class ConversationResponse(_Out):
    """Mistral's `ConversationResponse`: this turn's output entries and usage."""

    object: Literal["conversation.response"]
    conversation_id: str
    outputs: list[dict[str, Any]]
    usage: dict[str, Any]


class ConversationEvent(_Out):
    """One streamed event (`event:` names its type)."""

    type: str
    created_at: str


class ConversationObject(_Out):
    """Mistral's `AgentConversation` or `ModelConversation`."""

    object: Literal["conversation"]
    id: str
    created_at: str
    updated_at: str


class ConversationArray(RootModel[list[ConversationObject]]):
    """A bare JSON array of conversations, newest first."""


class ConversationHistory(_Out):
    object: Literal["conversation.history"]
    conversation_id: str
    entries: list[dict[str, Any]]


class ConversationMessages(_Out):
    object: Literal["conversation.messages"]
    conversation_id: str
    messages: list[dict[str, Any]]


C = "/v1/conversations"
ONE = C + "/{conversation_id}"
USE: Literal["models.use"] = "models.use"
TAG = "conversations"

CONVERSATION_OPERATIONS: dict[str, Operation] = {
    f"POST {C}": op(
        "Start a conversation with an agent or a model (Mistral)",
        USE,
        tag=TAG,
        body=ConversationStart,
        ok=ConversationResponse,
        stream=True,
        events=ConversationEvent,
        call=True,
    ),
    f"GET {C}": op(
        "The caller's conversations, newest first",
        USE,
        tag=TAG,
        ok=ConversationArray,
        query=(
            PAGE,
            _int("page_size", "Conversations per page.", minimum=1, maximum=100),
            _text("metadata", "A JSON object: conversations whose metadata holds each pair."),
        ),
    ),
    f"GET {ONE}": op("A conversation", USE, tag=TAG, ok=ConversationObject),
    f"POST {ONE}": op(
        "Append inputs or tool confirmations, and run the turn",
        USE,
        tag=TAG,
        body=ConversationAppend,
        ok=ConversationResponse,
        stream=True,
        events=ConversationEvent,
        call=True,
    ),
    f"DELETE {ONE}": op("Delete a conversation and its entries", USE, tag=TAG, status=204),
    f"GET {ONE}/history": op("Every entry, in order", USE, tag=TAG, ok=ConversationHistory),
    f"GET {ONE}/messages": op(
        "The input and output messages, in order", USE, tag=TAG, ok=ConversationMessages
    ),
    f"POST {ONE}/restart": op(
        "A new conversation from one of this one's entries, and its turn",
        USE,
        tag=TAG,
        body=ConversationRestart,
        ok=ConversationResponse,
        stream=True,
        events=ConversationEvent,
        call=True,
    ),
}
