"""Embeddings sent as token ids (langchain's `OpenAIEmbeddings` default): read as
cl100k_base, embedded as the text they stand for, and scanned by DLP as that text."""

from __future__ import annotations

import gzip
import hashlib
import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import openai
import pytest

from souverain.protocol import token_ids
from souverain.protocol.embeddings import EmbeddingRequest

from .conftest import Server, start_server, stop_server
from .recording_upstream import RecordingUpstream

EMBED = "multilingual-e5-small"
IBAN = "FR76 3000 6000 0112 3456 7890 189"
HELLO_WORLD = [9906, 1917]  # "Hello world" in cl100k_base (OpenAI's cookbook example)


def byte_ids(text: str) -> list[int]:
    """Valid cl100k ids for any text without tiktoken: one single-byte token per byte
    (every byte is a token of the vocabulary; a client's ids would be merged ones)."""
    by_piece = {piece: token for token, piece in enumerate(token_ids.token_pieces())}
    return [by_piece[bytes([byte])] for byte in text.encode("utf-8")]


# ---- the shipped ranks file ---------------------------------------------------------


def test_the_ranks_file_is_tiktokens_published_one() -> None:
    raw = gzip.decompress((Path(token_ids.__file__).parent / token_ids.RANKS_FILE).read_bytes())
    assert hashlib.sha256(raw).hexdigest() == token_ids.RANKS_SHA256
    # The decoder takes the ranks in line order (the hash fixes the file): check they are.
    ranks = [int(line.split()[1]) for line in raw.splitlines()]
    assert ranks == list(range(100256))


def test_known_ids_decode() -> None:
    assert token_ids.decode(HELLO_WORLD, where="input") == "Hello world"
    assert token_ids.decode([100257], where="input") == "<|endoftext|>"
    text = "Créance échue: 12 € — München, 東京 🙂"
    assert token_ids.decode(byte_ids(text), where="input") == text


def test_decoding_agrees_with_tiktoken(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """tiktoken itself, pointed at the shipped file through its cache directory (it
    looks the file up under the SHA-1 of its download URL), encodes; we decode."""
    tiktoken = pytest.importorskip("tiktoken")
    url = "https://openaipublic.blob.core.windows.net/encodings/cl100k_base.tiktoken"
    name = hashlib.sha1(url.encode()).hexdigest()
    shipped = Path(token_ids.__file__).parent / token_ids.RANKS_FILE
    (tmp_path / name).write_bytes(gzip.decompress(shipped.read_bytes()))
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(tmp_path))
    encoding = tiktoken.get_encoding("cl100k_base")
    for text in ["Hello world", "Créance échue: 12 €, München", "東京 🙂 def f(x):\n\treturn x"]:
        ids = encoding.encode(text)
        assert token_ids.decode(ids, where="input") == text
    assert encoding.encode("Hello world") == HELLO_WORLD


@pytest.mark.parametrize(
    ("bad", "said"),
    [
        ([-1], "input[0] = -1"),
        ([100256], "input[0] = 100256"),  # between the ranks and the special tokens
        ([100261], "input[0] = 100261"),  # an unused special slot
        ([100277], "input[0] = 100277"),
        ([2**63], "input[0] = 9223372036854775808"),
        ([[1, 2], []], "input[1] is an empty list"),
        ([0] * 8193, "8193 token ids"),
        ([[0] * 8000] * 40, "320000 token ids"),
    ],
)
def test_bad_token_ids_are_refused_naming_them(bad: list[object], said: str) -> None:
    with pytest.raises(ValueError, match=said.replace("[", r"\[").replace("]", r"\]")):
        EmbeddingRequest.model_validate({"model": EMBED, "input": bad})


def test_ids_become_text_in_the_request_itself() -> None:
    request = EmbeddingRequest.model_validate({"model": EMBED, "input": [HELLO_WORLD, [9906]]})
    assert request.input == ["Hello world", "Hello"]
    assert request.texts() == ["Hello world", "Hello"]


# ---- through the real gateway ---------------------------------------------------------


@pytest.mark.model
def test_token_ids_embed_as_their_text(embedded: Server) -> None:
    client = openai.OpenAI(base_url=embedded.v1, api_key=embedded.key, max_retries=0)
    as_ids = client.embeddings.create(model=EMBED, input=[HELLO_WORLD, byte_ids("Bonjour")])
    as_text = client.embeddings.create(model=EMBED, input=["Hello world", "Bonjour"])
    for by_ids, by_text in zip(as_ids.data, as_text.data, strict=True):
        assert np.allclose(by_ids.embedding, by_text.embedding, atol=1e-6)
    one = client.embeddings.create(model=EMBED, input=HELLO_WORLD)  # one input as ids
    assert np.allclose(one.data[0].embedding, as_text.data[0].embedding, atol=1e-6)


@pytest.mark.model
@pytest.mark.parametrize(
    "bad",
    [[-5], [[1], [10**30]], [[]], [1, "a"], [[1, 2], "x"], [0.5]],
    ids=["negative", "huge", "empty", "mixed", "mixed-nested", "float"],
)
def test_bad_token_ids_are_a_400_over_http(embedded: Server, bad: list[object]) -> None:
    with embedded.client() as client:
        response = client.post("/v1/embeddings", json={"model": EMBED, "input": bad})
    assert response.status_code == 400, response.text
    assert response.json()["error"]["param"] is None or "input" in response.json()["error"]["param"]


@pytest.mark.model
def test_a_huge_array_of_ids_is_a_400(embedded: Server) -> None:
    body = {"model": EMBED, "input": [[1] * 8192] * 37}  # 303,104 ids, under the body limit
    with embedded.client() as client:
        response = client.post("/v1/embeddings", json=body)
    assert response.status_code in (400, 413), response.text


@pytest.fixture(scope="module")
def pseudonymizing(
    upstream: RecordingUpstream, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    cloud = upstream.deployment()
    models = [{"id": "emb-cloud", "type": "embeddings", "deployments": [cloud]}]
    dlp = {
        "destinations": [{"operators": ["EU Cloud"], "actions": {"*": "pseudonymize"}}],
        "raises": {"*": "confidential"},
    }
    server = start_server(tmp_path_factory.mktemp("emb-ids"), {"models": models, "dlp": dlp})
    yield server
    stop_server(server)


def test_an_identifier_sent_as_token_ids_is_caught_by_dlp(
    pseudonymizing: Server, upstream: RecordingUpstream
) -> None:
    client = openai.OpenAI(base_url=pseudonymizing.v1, api_key=pseudonymizing.key, max_retries=0)
    before = len(upstream.received)
    client.embeddings.create(model="emb-cloud", input=[byte_ids(f"pay {IBAN} today")])
    sent = upstream.received[before:]
    assert len(sent) == 1
    text = sent[0]["input"]
    assert isinstance(text, list) and isinstance(text[0], str)  # text leaves, never ids
    assert IBAN not in json.dumps(sent) and IBAN.replace(" ", "") not in json.dumps(sent)
    assert text[0].startswith("pay ") and text[0].endswith(" today")
