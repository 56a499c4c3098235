"""Turning requests into llama.cpp tokens: the GGUF's chat template, and FIM tokens."""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any


def load_llama(path: Path, *, n_ctx: int, n_threads: int) -> Any:
    from llama_cpp import Llama

    return Llama(
        model_path=str(path),
        n_ctx=n_ctx,
        n_threads=n_threads,
        n_threads_batch=n_threads,
        verbose=False,
    )


@dataclass(frozen=True, slots=True)
class FimTokens:
    prefix: int
    suffix: int
    middle: int


class PromptBuilder:
    """Formats chat messages with the model's own template (from the GGUF metadata)."""

    def __init__(self, llama: Any) -> None:
        from llama_cpp import llama_cpp as low
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        self._llama = llama
        self.vocab = llama._model.vocab
        self.max_token_bytes = longest_token_bytes(llama)
        template = llama.metadata.get("tokenizer.chat_template")
        if not template:
            raise ValueError("the GGUF has no chat template (tokenizer.chat_template)")
        eos = llama.token_eos()
        bos = llama.token_bos()
        self._format = Jinja2ChatFormatter(
            template=template,
            eos_token=llama._model.token_get_text(eos) if eos != -1 else "",
            bos_token=llama._model.token_get_text(bos) if bos != -1 else "",
            stop_token_ids=[eos],
        )
        vocab = llama._model.vocab
        ids = (
            low.llama_vocab_fim_pre(vocab),
            low.llama_vocab_fim_suf(vocab),
            low.llama_vocab_fim_mid(vocab),
        )
        self.fim = FimTokens(*ids) if all(token >= 0 for token in ids) else None

    def chat_tokens(
        self, messages: list[dict[str, Any]], budget: int
    ) -> tuple[list[int], list[str]]:
        """The prompt's tokens and the template's stop strings; PromptTooLong as soon as
        the prompt is known to exceed `budget` tokens.

        A final assistant message with `prefix: true` (Mistral) is continued, not answered.
        """
        prefix = ""
        if messages and messages[-1]["role"] == "assistant" and messages[-1].get("prefix"):
            prefix = messages[-1]["content"]
            messages = messages[:-1]
        plain = [{"role": m["role"], "content": m["content"]} for m in messages]
        result = self._render(plain)
        counter = _TokenCounter(self._llama, self.max_token_bytes, budget)
        segments = self._segments(plain, result.prompt)
        if not result.added_special:  # the vocabulary's own BOS, if it asks for one
            for token in self._llama.tokenize(b"", add_bos=True, special=False):
                counter.add_token(token)
        for text, is_template in [*segments, (prefix, False)]:
            counter.add(text, special=is_template)
        stops = (
            result.stop if isinstance(result.stop, list) else [result.stop] if result.stop else []
        )
        return counter.tokens, stops

    def _render(self, messages: list[dict[str, Any]]) -> Any:
        import jinja2

        try:
            return self._format(messages=messages)  # type: ignore[arg-type]
        except (jinja2.TemplateError, ValueError) as exc:  # the template's raise_exception
            raise TemplateRefused(str(exc)) from None

    def _segments(self, messages: list[dict[str, Any]], prompt: str) -> list[tuple[str, bool]]:
        """The rendered prompt as (text, is_template) pieces.

        Tokenizing one long prompt costs llama.cpp time in the square of its special
        tokens (100,000 short messages: minutes). The template is rendered a second
        time with a marker in place of each content; the template's text is then
        tokenized with special tokens and each content as plain text, piece by piece,
        in linear time, and a content can no longer spell the template's control
        tokens. If the markers do not give back exactly the same prompt (a template
        that trims or rewrites contents), the prompt is tokenized whole, as before.
        """
        nonce = secrets.token_hex(8)
        marked = [
            {"role": m["role"], "content": f"\ue000{nonce}:{index}\ue001"}
            for index, m in enumerate(messages)
        ]
        parts = re.split(f"\ue000{nonce}:(\\d+)\ue001", self._render(marked).prompt)
        segments: list[tuple[str, bool]] = []
        for position, part in enumerate(parts):
            if position % 2 == 0:
                segments.append((part, True))
            else:
                segments.append((messages[int(part)]["content"], False))
        if "".join(text for text, _ in segments) != prompt:
            return [(prompt, True)]
        return segments

    def fim_tokens(self, fim: FimTokens, prefix: str, suffix: str, budget: int) -> list[int]:
        """Prefix-suffix-middle order, as code models trained with FIM expect."""
        counter = _TokenCounter(self._llama, self.max_token_bytes, budget - 3)
        counter.add(prefix, special=False)
        prefix_tokens = counter.tokens
        counter.tokens = []
        counter.add(suffix, special=False)
        return [fim.prefix, *prefix_tokens, fim.suffix, *counter.tokens, fim.middle]


class TemplateRefused(ValueError):
    """The model's chat template refused the messages (roles out of order, say)."""


class PromptTooLong(Exception):
    def __init__(self, at_least: int) -> None:
        super().__init__(f"the prompt has at least {at_least} tokens")
        self.at_least = at_least


class _TokenCounter:
    """Tokenizes piece by piece and stops as soon as the budget is known to be exceeded:
    first from the byte count (no token is longer than `max_token_bytes`), so that a
    huge prompt is refused without being tokenized, then from the tokens themselves."""

    def __init__(self, llama: Any, max_token_bytes: int, budget: int) -> None:
        self._llama = llama
        self._max_token_bytes = max(1, max_token_bytes)
        self._budget = budget
        self._counted = 0
        self.tokens: list[int] = []

    def add_token(self, token: int) -> None:
        self._counted += 1
        self.tokens.append(token)

    def add(self, text: str, *, special: bool) -> None:
        if not text:
            return
        data = text.encode("utf-8", errors="replace")
        at_least = self._counted + len(data) // self._max_token_bytes
        if at_least > self._budget:
            raise PromptTooLong(at_least)
        tokens = self._llama.tokenize(data, add_bos=False, special=special)
        self._counted += len(tokens)
        if self._counted > self._budget:
            raise PromptTooLong(self._counted)
        self.tokens.extend(tokens)


def longest_token_bytes(llama: Any) -> int:
    """The most bytes one token of the vocabulary stands for (special ones included)."""
    import ctypes

    from llama_cpp import llama_cpp as low

    buffer = ctypes.create_string_buffer(1024)
    vocab = llama._model.vocab
    # A piece longer than the buffer comes back as minus its length.
    lengths = (
        abs(int(low.llama_token_to_piece(vocab, token, buffer, len(buffer), 0, True)))
        for token in range(llama.n_vocab())
    )
    return max(lengths, default=1)
