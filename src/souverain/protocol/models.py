"""`GET /v1/models`: OpenAI's model objects with the fields Mistral's SDK requires.

The mistralai SDK fails to parse a model without `type` and `capabilities`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Capabilities:
    completion_chat: bool = False
    completion_fim: bool = False
    function_calling: bool = False
    vision: bool = False
    embeddings: bool = False

    def as_dict(self) -> dict[str, bool]:
        return {
            "completion_chat": self.completion_chat,
            "completion_fim": self.completion_fim,
            "function_calling": self.function_calling,
            "vision": self.vision,
            "fine_tuning": False,
            "classification": False,
            "ocr": False,
        }


def render_model(
    *,
    model_id: str,
    created: int,
    owned_by: str,
    capabilities: Capabilities,
    max_context_length: int,
    aliases: tuple[str, ...],
    description: str | None,
) -> dict[str, Any]:
    return {
        "id": model_id,
        "object": "model",
        "created": created,
        "owned_by": owned_by,
        "type": "base",
        "name": model_id,
        "description": description,
        "capabilities": capabilities.as_dict(),
        "max_context_length": max_context_length,
        "aliases": list(aliases),
        "deprecation": None,
        "default_model_temperature": None,
    }


def render_model_list(models: list[dict[str, Any]]) -> dict[str, Any]:
    return {"object": "list", "data": models}
