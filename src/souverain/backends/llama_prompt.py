"""Turning requests into llama.cpp tokens: the GGUF's chat template, and FIM tokens."""

from __future__ import annotations

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

    def chat_tokens(self, messages: list[dict[str, Any]]) -> tuple[list[int], list[str]]:
        """The prompt's tokens and the template's stop strings.

        A final assistant message with `prefix: true` (Mistral) is continued, not answered.
        """
        prefix = ""
        if messages and messages[-1]["role"] == "assistant" and messages[-1].get("prefix"):
            prefix = messages[-1]["content"]
            messages = messages[:-1]
        plain = [{"role": m["role"], "content": m["content"]} for m in messages]
        result = self._format(messages=plain)  # type: ignore[arg-type]
        text = result.prompt + prefix
        tokens = self._llama.tokenize(
            text.encode("utf-8"), add_bos=not result.added_special, special=True
        )
        stops = (
            result.stop if isinstance(result.stop, list) else [result.stop] if result.stop else []
        )
        return tokens, stops

    def fim_tokens(self, fim: FimTokens, prefix: str, suffix: str) -> list[int]:
        """Prefix-suffix-middle order, as code models trained with FIM expect."""
        encode = self._llama.tokenize
        return [
            fim.prefix,
            *encode(prefix.encode("utf-8"), add_bos=False, special=False),
            fim.suffix,
            *encode(suffix.encode("utf-8"), add_bos=False, special=False),
            fim.middle,
        ]
