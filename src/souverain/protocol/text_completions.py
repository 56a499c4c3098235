"""`POST /v1/completions`: OpenAI's legacy text completions.

What llama-index's `OpenAILike` (by default), litellm's `text_completion` and the openai
SDK's `client.completions` speak. Fields follow the order of OpenAI's reference.

One prompt and one choice per request: `prompt` may be a string, a list holding one
string, or token ids (read as `cl100k_base`, protocol/token_ids.py, and replaced by their
text here, so data-loss prevention and the engines see text). Several prompts, `n` or
`best_of` above 1 are refused (400): no engine here generates several choices at once.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any

from pydantic import Field, field_validator, model_validator

from ..errors import InvalidRequest
from .chat import ChatDelta, ChunkRenderer, Completion, StreamOptions
from .common import APIModel, Metadata, Seed, TokenCount, Usage, new_id, now
from .token_ids import decode_inputs, is_token_ids, text_or_token_ids

DEFAULT_MAX_TOKENS = 16  # OpenAI's default for this endpoint
MAX_LEGACY_LOGPROBS = 5


class TextCompletionRequest(APIModel):
    model: str = Field(min_length=1)
    # One prompt: a string, a list of one string, token ids, or a list of one list of them.
    prompt: Annotated[str | list[str] | list[int] | list[list[int]], text_or_token_ids(1)]
    best_of: int | None = Field(default=None, ge=1, le=1)
    echo: bool = False
    frequency_penalty: float | None = Field(default=None, ge=-2, le=2)
    logprobs: int | None = Field(default=None, ge=0, le=MAX_LEGACY_LOGPROBS)
    max_tokens: TokenCount | None = None
    n: int | None = Field(default=None, ge=1, le=1)  # several choices: not supported
    presence_penalty: float | None = Field(default=None, ge=-2, le=2)
    seed: Seed | None = None
    stop: str | list[str] | None = None
    stream: bool = False
    stream_options: StreamOptions | None = None
    suffix: str | None = None
    temperature: float | None = Field(default=None, ge=0, le=2)
    top_p: float | None = Field(default=None, ge=0, le=1)
    user: str | None = None
    metadata: Metadata | None = None

    @field_validator("prompt")
    @classmethod
    def _one_prompt(cls, value: Any) -> str:
        if isinstance(value, str):
            return value
        if not value:
            raise ValueError("prompt must not be empty")
        texts = decode_inputs(value, field="prompt") if is_token_ids(value) else list(value)
        if len(texts) != 1:
            raise ValueError(
                f"send one prompt per request ({len(texts)} were given): "
                "this gateway answers one choice per completion request"
            )
        return str(texts[0])

    @field_validator("stop")
    @classmethod
    def _stop_list(cls, value: str | list[str] | None) -> str | list[str] | None:
        if isinstance(value, list) and len(value) > 16:
            raise ValueError("at most 16 stop sequences")
        return value

    @model_validator(mode="after")
    def _echo_without_logprobs(self) -> TextCompletionRequest:
        if self.echo and self.logprobs is not None:
            # The prompt's own log probabilities would need a second pass over it.
            raise InvalidRequest(
                "echo cannot be combined with logprobs here; ask for one of them", param="echo"
            )
        return self

    @property
    def prompt_text(self) -> str:
        assert isinstance(self.prompt, str)  # the validator made it one
        return self.prompt

    @property
    def stop_sequences(self) -> list[str]:
        if self.stop is None:
            return []
        return [self.stop] if isinstance(self.stop, str) else list(self.stop)

    @property
    def effective_max_tokens(self) -> int:
        return self.max_tokens or DEFAULT_MAX_TOKENS

    @property
    def include_usage_chunk(self) -> bool:
        return bool(self.stream_options and self.stream_options.include_usage)


# ---- responses ---------------------------------------------------------------------


def legacy_logprobs(entries: Sequence[dict[str, Any]], offset: int) -> dict[str, Any]:
    """OpenAI's legacy `logprobs`: parallel lists, alternatives as {token: logprob}
    (the sampled token always among them, so up to `logprobs` + 1 keys)."""
    tokens, values, tops, offsets = [], [], [], []
    for entry in entries:
        tokens.append(entry["token"])
        values.append(entry["logprob"])
        alternatives = {other["token"]: other["logprob"] for other in entry["top_logprobs"]}
        alternatives.setdefault(entry["token"], entry["logprob"])
        tops.append(alternatives)
        offsets.append(offset)
        offset += len(entry["token"])
    return {
        "tokens": tokens,
        "token_logprobs": values,
        "top_logprobs": tops,
        "text_offset": offsets,
    }


def render_text_completion(
    completion: Completion,
    *,
    model: str,
    request_id: str | None,
    echo: str | None,
    with_logprobs: bool,
) -> dict[str, Any]:
    head = echo or ""
    logprobs = legacy_logprobs(completion.logprobs or [], len(head)) if with_logprobs else None
    return {
        "id": request_id or new_id("cmpl"),
        "object": "text_completion",
        "created": now(),
        "model": model,
        "choices": [
            {
                "text": head + completion.content,
                "index": 0,
                "logprobs": logprobs,
                "finish_reason": completion.finish_reason,
            }
        ],
        "usage": completion.usage.as_dict(),
    }


class TextChunkRenderer(ChunkRenderer):
    """The `text_completion` chunks of one stream, with usage sent exactly once as in
    chat streams (protocol/chat.py explains why); an echoed prompt leads the first."""

    def __init__(
        self,
        *,
        model: str,
        include_usage_chunk: bool,
        request_id: str | None,
        echo: str | None,
        with_logprobs: bool,
    ) -> None:
        super().__init__(model=model, include_usage_chunk=include_usage_chunk)
        self.id = request_id or new_id("cmpl")
        self._echo = echo or ""
        self._with_logprobs = with_logprobs
        self._offset = 0

    def _text_chunk(self, choices: list[dict[str, Any]], usage: Usage | None) -> dict[str, Any]:
        chunk = self._chunk(choices, usage)
        chunk["object"] = "text_completion"
        return chunk

    def delta(self, delta: ChatDelta) -> list[dict[str, Any]]:
        if (
            delta.content is None
            and not delta.logprobs
            and delta.finish_reason is None
            and not self._echo
        ):
            return []
        text, self._echo = self._echo + (delta.content or ""), ""
        logprobs = None
        if self._with_logprobs:
            logprobs = legacy_logprobs(delta.logprobs or [], self._offset)
        self._offset += len(text)
        choice = {
            "text": text,
            "index": 0,
            "logprobs": logprobs,
            "finish_reason": delta.finish_reason,
        }
        usage = delta.usage if delta.finish_reason is not None else None
        usage_apart = usage is not None and self.include_usage_chunk
        chunks = [self._text_chunk([choice], None if usage_apart else usage)]
        if usage_apart:
            chunks.append(self._text_chunk([], usage))
        return chunks
