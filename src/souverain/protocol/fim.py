"""`POST /v1/fim/completions`: Mistral's fill-in-the-middle endpoint.

The answer has the chat completion's shape (Mistral's spec reuses it), so the
rendering in `chat.py` serves both.
"""

from __future__ import annotations

from pydantic import Field

from .common import MAX_COUNT, APIModel, Metadata, Seed, TokenCount


class FIMCompletionRequest(APIModel):
    model: str = Field(min_length=1)
    prompt: str
    suffix: str | None = None
    temperature: float | None = Field(default=None, ge=0, le=2)
    top_p: float | None = Field(default=None, ge=0, le=1)
    max_tokens: TokenCount | None = None
    min_tokens: int | None = Field(default=None, ge=0, le=MAX_COUNT)
    stream: bool = False
    stop: str | list[str] | None = None
    random_seed: Seed | None = None
    metadata: Metadata | None = None

    @property
    def stop_sequences(self) -> list[str]:
        if self.stop is None:
            return []
        return [self.stop] if isinstance(self.stop, str) else list(self.stop)
