"""Inputs sent as token ids, turned back into text as soon as the request is parsed.

OpenAI's embeddings and legacy completions accept token ids in place of text, and some
clients send them by default (langchain's `OpenAIEmbeddings` encodes with tiktoken's
`cl100k_base`). The gateway reads them as `cl100k_base` ids and replaces them with the
text they stand for, before anything else sees the request: data-loss prevention reads
that text like any other, quotas count it, and an engine receives text (a local model's
own vocabulary has nothing to do with OpenAI's ids).

The ranks file ships inside the package (data/NOTICE.md names its source): tiktoken
downloads it on first use, which these machines cannot do, and decoding needs only the
bytes of each token, not tiktoken itself.
"""

from __future__ import annotations

import asyncio
import binascii
import gzip
import hashlib
import threading
from importlib.resources import files
from typing import Any

from pydantic import WithJsonSchema

RANKS_FILE = "data/cl100k_base.tiktoken.gz"
RANKS_SHA256 = "223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7"
# cl100k_base's special tokens (tiktoken_ext/openai_public.py); 100261..100275 are unused.
SPECIAL_TOKENS = {
    100257: "<|endoftext|>",
    100258: "<|fim_prefix|>",
    100259: "<|fim_middle|>",
    100260: "<|fim_suffix|>",
    100276: "<|endofprompt|>",
}
VOCAB_SIZE = 100277
# OpenAI's own bounds: 8,192 tokens per embeddings input, 300,000 per request.
MAX_IDS_PER_INPUT = 8192
MAX_IDS_PER_REQUEST = 300_000

# Token ids as the document states them (decode() checks the same, and says which id is
# wrong): cl100k_base's ordinary ids or a special one, 1 to MAX_IDS_PER_INPUT per input.
TOKEN_IDS_SCHEMA: dict[str, Any] = {
    "type": "array",
    "minItems": 1,
    "maxItems": MAX_IDS_PER_INPUT,
    "items": {
        "anyOf": [
            {"type": "integer", "minimum": 0, "maximum": 100255},
            {"enum": sorted(SPECIAL_TOKENS)},
        ]
    },
}


def text_or_token_ids(max_inputs: int, *, min_length: int = 0) -> WithJsonSchema:
    """The document's schema of an input read by decode_inputs: a string, 1 to `max_inputs`
    strings (each at least `min_length` characters), token ids, or 1 to `max_inputs` lists
    of token ids."""
    text = {"type": "string", "minLength": min_length}
    texts = {"type": "array", "minItems": 1, "maxItems": max_inputs, "items": text}
    lists = {"type": "array", "minItems": 1, "maxItems": max_inputs, "items": TOKEN_IDS_SCHEMA}
    return WithJsonSchema({"anyOf": [text, texts, TOKEN_IDS_SCHEMA, lists]})


_pieces: list[bytes] | None = None
_loading = threading.Lock()


def token_pieces() -> list[bytes]:
    """The bytes of every cl100k_base token, by id; loaded once and checked against the
    hash tiktoken publishes (a corrupt or swapped file would change what DLP reads)."""
    global _pieces
    with _loading:
        if _pieces is None:
            raw = gzip.decompress(files("souverain.protocol").joinpath(RANKS_FILE).read_bytes())
            if hashlib.sha256(raw).hexdigest() != RANKS_SHA256:
                raise RuntimeError(f"{RANKS_FILE} does not have the published SHA-256")
            # The hash fixes the content: ranks run 0..100255 in line order.
            pieces = [binascii.a2b_base64(line.split(b" ", 1)[0]) for line in raw.splitlines()]
            pieces += [b""] * (VOCAB_SIZE - len(pieces))
            for token, text in SPECIAL_TOKENS.items():
                pieces[token] = text.encode()
            _pieces = pieces
        return _pieces


async def load_off_the_loop() -> None:
    """Loading takes a few hundred milliseconds, once: endpoints that accept token ids
    call this before parsing, so the first such request does not stall the event loop."""
    if _pieces is None:
        await asyncio.to_thread(token_pieces)


def is_token_ids(value: object) -> bool:
    """A list of ints, or a list of lists of ints: the protocol's unions have already
    checked that a list holds one kind of item, so its first one tells."""
    return isinstance(value, list) and bool(value) and not isinstance(value[0], str)


def decode(ids: list[int], *, where: str) -> str:
    """One input's text; ValueError (a 400) naming the bad id and where it is."""
    if not ids:
        raise ValueError(f"{where} is an empty list of token ids")
    if len(ids) > MAX_IDS_PER_INPUT:
        raise ValueError(f"{where} has {len(ids)} token ids; at most {MAX_IDS_PER_INPUT}")
    pieces = token_pieces()
    for position, token in enumerate(ids):
        if not 0 <= token < VOCAB_SIZE or (token >= 100256 and token not in SPECIAL_TOKENS):
            raise ValueError(
                f"{where}[{position}] = {token} is not a cl100k_base token id; token ids are "
                "read as OpenAI's cl100k_base (send text to avoid this)"
            )
    text = b"".join(pieces[token] for token in ids).decode("utf-8", errors="replace")
    if "\x00" in text:
        raise ValueError(f"{where} decodes to text with a NUL character")
    return text


def decode_inputs(value: list[int] | list[list[int]], *, field: str) -> list[str]:
    """Token ids (one input, or one list per input) as texts, bounded per request."""
    inputs: list[list[int]] = [value] if isinstance(value[0], int) else value
    total = sum(len(ids) for ids in inputs)
    if total > MAX_IDS_PER_REQUEST:
        raise ValueError(f"{field} has {total} token ids; at most {MAX_IDS_PER_REQUEST}")
    if len(inputs) == 1 and inputs is not value:
        return [decode(inputs[0], where=field)]
    return [decode(ids, where=f"{field}[{index}]") for index, ids in enumerate(inputs)]
