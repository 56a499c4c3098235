"""`/v1/conversations` request bodies: Mistral's Conversations API, as the SDK sends them.

Start (`ConversationRequest`), append (`ConversationAppendRequest`) and restart
(`ConversationRestartRequest`). A conversation is answered either by an agent
(`agent_id`, optionally `agent_version`: a number or an alias) or by a model with its own
`instructions`, `tools` and `completion_args`; both at once is a 400. Tools and completion
arguments are checked as an agent's are (protocol/agents.py), so a conversation can never
hold a tool an agent could not.

`inputs` are a string (one user message) or entries (agents/conversation_entries.py
checks them one by one, so a bad one is a 400 naming its index).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from ..backends.local_tools import MAX_TOOLS
from ..errors import InvalidRequest
from .agents import MAX_DESCRIPTION, MAX_INSTRUCTIONS, MAX_NAME, CompletionArgs
from .common import APIModel, Metadata

MAX_INPUT_ENTRIES = 256
MAX_CONFIRMATIONS = 64
MAX_ID = 200

Inputs = (
    Annotated[str, Field(min_length=1)]
    | Annotated[list[dict[str, Any]], Field(min_length=1, max_length=MAX_INPUT_ENTRIES)]
)
AgentVersionRef = int | str


class ToolConfirmation(BaseModel):
    model_config = ConfigDict(extra="forbid")

    tool_call_id: str = Field(min_length=1, max_length=MAX_ID)
    confirmation: Literal["allow", "deny"]


class _Turn(APIModel):
    inputs: Inputs | None = None
    stream: bool = False
    store: bool | None = True
    handoff_execution: Literal["client", "server"] | None = "server"
    completion_args: CompletionArgs | None = None


class ConversationStart(_Turn):
    inputs: Inputs
    instructions: str | None = Field(default=None, max_length=MAX_INSTRUCTIONS)
    tools: list[dict[str, Any]] | None = Field(default=None, max_length=MAX_TOOLS)
    guardrails: list[dict[str, Any]] | None = None
    name: str | None = Field(default=None, max_length=MAX_NAME)
    description: str | None = Field(default=None, max_length=MAX_DESCRIPTION)
    metadata: Metadata | None = None
    agent_id: str | None = Field(default=None, min_length=1, max_length=MAX_ID)
    agent_version: AgentVersionRef | None = None
    model: str | None = Field(default=None, min_length=1, max_length=MAX_ID)

    def check(self) -> None:
        """Rules between fields (400 naming one): the document cannot state them."""
        if (self.agent_id is None) == (self.model is None):
            raise InvalidRequest("give either agent_id or model", param="model")
        if self.agent_id is not None and (self.instructions is not None or self.tools):
            raise InvalidRequest(
                "instructions and tools belong to the agent: give them with model instead",
                param="instructions" if self.instructions is not None else "tools",
            )
        if self.agent_id is None and self.agent_version is not None:
            raise InvalidRequest("agent_version needs agent_id", param="agent_version")


class ConversationAppend(_Turn):
    tool_confirmations: list[ToolConfirmation] | None = Field(
        default=None, max_length=MAX_CONFIRMATIONS
    )

    def check(self) -> None:
        if not self.inputs and not self.tool_confirmations:
            raise InvalidRequest("give inputs or tool_confirmations", param="inputs")


class ConversationRestart(_Turn):
    from_entry_id: str = Field(min_length=1, max_length=MAX_ID)
    metadata: Metadata | None = None
    agent_version: AgentVersionRef | None = None
    guardrails: list[dict[str, Any]] | None = None
