"""Legacy text completions on the embedded engine: the prompt as written, no template.

The caller writes the whole prompt, so special tokens spelled in it (`<|im_start|>`...)
are read as the control tokens they name, as llama.cpp's own server does: a client that
formats a chat by hand gets what it wrote. `suffix` is fill-in-the-middle, possible only
with a model that has FIM tokens; otherwise it is refused, never dropped.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..errors import UnsupportedByModel
from ..protocol.text_completions import TextCompletionRequest
from .llama_prompt import PromptBuilder, _TokenCounter

Prepare = Callable[[], tuple[list[int], list[str], Any]]


def text_prompt(
    builder: PromptBuilder, request: TextCompletionRequest, budget: int, *, model: str
) -> Prepare:
    """What the local engine's `_generate` runs off the event loop: (tokens, template
    stops, grammar); PromptTooLong as soon as the prompt exceeds `budget` tokens."""
    text = request.prompt_text
    if request.suffix:
        fim = builder.fim
        if fim is None:
            raise UnsupportedByModel(
                f"model {model!r} has no fill-in-the-middle tokens, so `suffix` cannot be "
                "honoured; send the prompt without it",
                param="suffix",
            )
        suffix = request.suffix
        return lambda: (builder.fim_tokens(fim, text, suffix, budget), [], None)

    def prepare() -> tuple[list[int], list[str], Any]:
        llama = builder._llama
        counter = _TokenCounter(llama, builder.max_token_bytes, budget)
        for token in llama.tokenize(b"", add_bos=True, special=False):  # the BOS, if any
            counter.add_token(token)
        counter.add(text, special=True)
        if not counter.tokens:  # an empty prompt: generation starts from the BOS or EOS
            bos = llama.token_bos()
            counter.add_token(bos if bos >= 0 else llama.token_eos())
        return counter.tokens, [], None

    return prepare
