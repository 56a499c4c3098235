"""Token log probabilities, in OpenAI's chat shape, whatever the engine.

One entry per generated token: `{"token", "logprob", "bytes", "top_logprobs": [...]}`,
each alternative `{"token", "logprob", "bytes"}` (OpenAI's `choices[].logprobs.content`).
The legacy completions shape (`tokens`, `token_logprobs`, `top_logprobs`, `text_offset`)
is rendered from these entries (protocol/text_completions.py), and read back into them
when an upstream answers in it.

The embedded engine computes them from llama.cpp's logits: the log-softmax of the raw
distribution the token was drawn from (before temperature, top-p or a grammar shaped the
choice), as OpenAI reports the model's own probabilities.
"""

from __future__ import annotations

import ctypes
from typing import Any

import numpy as np

LogprobEntry = dict[str, Any]
MAX_TOP_LOGPROBS = 20  # OpenAI's bound for chat; legacy completions allow 5


class LogprobCollector:
    """Gathers the entries of the tokens generated since the last `take`.

    `top` is how many alternatives to list (0: only the chosen token's logprob); None
    turns the collector off. Entries wait until the text they belong to is emitted (a
    stop sequence may hold text back), so they leave with it.
    """

    def __init__(self, llama: Any, top: int | None) -> None:
        self._llama = llama
        self._top = top
        self._pending: list[LogprobEntry] = []

    def add(self, token: int, previous: list[int]) -> None:
        """Call right after `token` was sampled, before it is evaluated: llama.cpp's
        last logits row is still the distribution it came from."""
        if self._top is None:
            return
        logprobs = _log_softmax(_last_logits(self._llama))
        entry = self._entry(token, float(logprobs[token]), previous)
        if self._top:
            best = np.argpartition(-logprobs, self._top)[: self._top]
            best = best[np.argsort(-logprobs[best], kind="stable")]
            entry["top_logprobs"] = [
                self._entry(int(other), float(logprobs[other]), previous) for other in best
            ]
        else:
            entry["top_logprobs"] = []
        self._pending.append(entry)

    def take(self) -> list[LogprobEntry] | None:
        if self._top is None or not self._pending:
            return None
        taken, self._pending = self._pending, []
        return taken

    def _entry(self, token: int, logprob: float, previous: list[int]) -> LogprobEntry:
        piece: bytes = self._llama.detokenize([token], prev_tokens=previous)
        return {
            "token": piece.decode("utf-8", errors="replace"),
            "logprob": max(logprob, -9999.0),  # -inf is not JSON; OpenAI floors it too
            "bytes": list(piece),
        }


def _last_logits(llama: Any) -> np.ndarray:
    from llama_cpp import llama_cpp as low

    n_vocab = llama.n_vocab()
    pointer = low.llama_get_logits_ith(llama._ctx.ctx, -1)
    row = ctypes.cast(pointer, ctypes.POINTER(ctypes.c_float))
    return np.ctypeslib.as_array(row, shape=(n_vocab,)).astype(np.float64)


def _log_softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max()
    result: np.ndarray = shifted - np.log(np.exp(shifted).sum())
    return result


# ---- entries from an upstream's answer ---------------------------------------------


def chat_entries(choice_logprobs: Any) -> list[LogprobEntry] | None:
    """The `content` entries of an OpenAI chat choice's `logprobs`, kept to the keys of
    the shape (an upstream's other keys are not relayed)."""
    if not isinstance(choice_logprobs, dict):
        return None
    content = choice_logprobs.get("content")
    if not isinstance(content, list):
        return None
    return [_clean(item, top=True) for item in content if isinstance(item, dict)]


def legacy_entries(choice_logprobs: Any) -> list[LogprobEntry] | None:
    """Entries from a legacy completion's `logprobs` (parallel lists)."""
    if not isinstance(choice_logprobs, dict):
        return None
    tokens = choice_logprobs.get("tokens")
    values = choice_logprobs.get("token_logprobs")
    tops = choice_logprobs.get("top_logprobs") or []
    if not isinstance(tokens, list) or not isinstance(values, list):
        return None
    entries = []
    for position, (token, value) in enumerate(zip(tokens, values, strict=False)):
        alternatives = tops[position] if position < len(tops) else None
        entries.append(
            {
                **_token(token, value),
                "top_logprobs": [
                    _token(other, other_value) for other, other_value in alternatives.items()
                ]
                if isinstance(alternatives, dict)
                else [],
            }
        )
    return entries


def _clean(item: dict[str, Any], *, top: bool) -> LogprobEntry:
    entry = _token(item.get("token"), item.get("logprob"))
    if isinstance(item.get("bytes"), list):
        entry["bytes"] = [b for b in item["bytes"] if isinstance(b, int) and 0 <= b < 256]
    if top:
        others = item.get("top_logprobs")
        entry["top_logprobs"] = [
            _clean(other, top=False) for other in others or () if isinstance(other, dict)
        ]
    return entry


def _token(token: Any, logprob: Any) -> LogprobEntry:
    text = token if isinstance(token, str) else ""
    value = float(logprob) if isinstance(logprob, int | float) else -9999.0
    return {"token": text, "logprob": value, "bytes": list(text.encode("utf-8"))}


def choice_entries(choice_logprobs: Any) -> list[LogprobEntry] | None:
    """A choice's `logprobs` in either of OpenAI's shapes (chat or legacy), or None."""
    entries = chat_entries(choice_logprobs)
    return entries if entries is not None else legacy_entries(choice_logprobs)
