"""The quota stage of the pipeline: reserve before the call, settle after it.

The reservation is an estimate made before anything is sent: the prompt's characters
(at most one token each would be exact; a third of them is the usual ratio, and the
settle corrects it) plus the completion tokens the request allows. With budgets, what
a request may overshoot is therefore bounded by what was reserved while it ran.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from ..config import QuotasConfig
from ..context import RequestContext
from .limits import QuotaStore, Reservation

if TYPE_CHECKING:
    from ..pipeline import ModelCall

CHARS_PER_TOKEN = 3  # multilingual text with a small vocabulary; a little pessimistic


class QuotaGuard:
    def __init__(self, store: QuotaStore, config: QuotasConfig) -> None:
        self.store = store
        self._config = config
        self._background: set[asyncio.Task[None]] = set()

    async def check(self, ctx: RequestContext, call: ModelCall) -> None:
        if not ctx.principal.quotas:
            return
        prompt = _prompt_tokens(call.request)
        completion = 0 if call.kind == "embeddings" else self._completion_allowance(call, prompt)
        pricing = call.model.config.pricing
        cost = pricing.cost(prompt, completion) if pricing else 0.0
        await self.reserve(ctx, prompt + completion, cost)

    async def reserve(self, ctx: RequestContext, tokens: int, cost: float) -> None:
        """Reserve on every scope of the caller (429 naming the limit); kept in the
        context until `settle`."""
        if ctx.principal.quotas:
            ctx.notes["quota"] = await self.store.reserve(
                ctx.request_id, ctx.principal.quotas, tokens, cost
            )

    async def settle(self, ctx: RequestContext, cost: float, *, wait: bool = True) -> None:
        reservation: Reservation | None = ctx.notes.pop("quota", None)
        if reservation is None:
            return
        tokens = ctx.usage.total_tokens if ctx.usage else 0
        if wait:
            await self.store.settle(reservation, tokens, cost)
            return
        task = asyncio.create_task(self.store.settle(reservation, tokens, cost))
        self._background.add(task)  # a cancelled request cannot wait, but must free its slot
        task.add_done_callback(self._background.discard)

    def _completion_allowance(self, call: ModelCall, prompt: int) -> int:
        request: Any = call.request
        asked = getattr(request, "max_completion_tokens", None) or request.max_tokens
        if asked is not None:
            return int(asked)
        room = max(call.model.context_length() - prompt, 1)
        return min(self._config.reserve_completion_tokens, room)


def _prompt_tokens(request: Any) -> int:
    chars = 0
    for message in getattr(request, "messages", None) or ():
        chars += _content_chars(message.content)
    chars += len(getattr(request, "prompt", "") or "") + len(getattr(request, "suffix", "") or "")
    texts = getattr(request, "texts", None)
    if callable(texts):
        inputs = texts()
        if inputs is None:  # token ids: count them
            raw = request.input
            return sum(len(item) if isinstance(item, list) else 1 for item in raw)
        chars += sum(len(text) for text in inputs)
    return chars // CHARS_PER_TOKEN + 1


def _content_chars(content: Any) -> int:
    if content is None:
        return 0
    if isinstance(content, str):
        return len(content)
    total = 0
    for part in content:
        text = getattr(part, "text", None)
        if text is None and isinstance(part, dict):
            text = part.get("text")
        total += len(text or "")
    return total
