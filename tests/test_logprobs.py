"""`logprobs` / `top_logprobs`: computed by the embedded engine, relayed from an `openai`
upstream (llama.cpp's own server, a real one), refused by the `mistral` engine and
wherever DLP pseudonymized the request (the tokens would spell the pseudonyms)."""

from __future__ import annotations

import json
import math
from typing import Any

import openai
import pytest

from .conftest import Server
from .recording_upstream import RecordingUpstream

CHAT = "smollm2"
LLAMA = "small"  # the shared `llama_gateway`'s model: llama.cpp's server (conftest.py)
IBAN = "FR76 3000 6000 0112 3456 7890 189"
MESSAGES: list[Any] = [{"role": "user", "content": "Name three colours."}]


def sdk(server: Server) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.v1, api_key=server.key, max_retries=0)


def check_entries(entries: list[Any], top: int, *, greedy: bool) -> None:
    """OpenAI's chat shape, with values that make sense."""
    assert entries
    for entry in entries:
        assert isinstance(entry.token, str) and entry.logprob <= 0
        assert entry.bytes is not None and bytes(entry.bytes).decode("utf-8", "replace")
        assert len(entry.top_logprobs) == top
        values = [other.logprob for other in entry.top_logprobs]
        assert values == sorted(values, reverse=True)
        assert sum(math.exp(value) for value in values) <= 1.0001
        if greedy and top:  # the chosen token is the most probable one
            assert entry.top_logprobs[0].token == entry.token
            assert entry.top_logprobs[0].logprob == pytest.approx(entry.logprob)


# ---- the embedded model ---------------------------------------------------------------


@pytest.mark.model
def test_chat_logprobs_whole(embedded: Server) -> None:
    answer = sdk(embedded).chat.completions.create(
        model=CHAT, messages=MESSAGES, max_tokens=8, temperature=0, logprobs=True, top_logprobs=3
    )
    choice = answer.choices[0]
    assert choice.logprobs is not None and choice.logprobs.content is not None
    entries = choice.logprobs.content
    check_entries(entries, 3, greedy=True)
    assert answer.usage is not None and len(entries) == answer.usage.completion_tokens
    joined = b"".join(bytes(entry.bytes or []) for entry in entries).decode()
    assert joined == choice.message.content


@pytest.mark.model
def test_chat_logprobs_streamed_match_the_whole_answer(embedded: Server) -> None:
    client = sdk(embedded)
    args: dict[str, Any] = {
        "model": CHAT, "messages": MESSAGES, "max_tokens": 8, "temperature": 0,
        "logprobs": True, "top_logprobs": 2,
    }  # fmt: skip
    whole = client.chat.completions.create(**args)
    chunks = list(client.chat.completions.create(**args, stream=True))
    streamed = [
        entry
        for chunk in chunks
        if chunk.choices and chunk.choices[0].logprobs and chunk.choices[0].logprobs.content
        for entry in chunk.choices[0].logprobs.content
    ]
    assert whole.choices[0].logprobs is not None
    expected = whole.choices[0].logprobs.content or []
    assert [(e.token, e.logprob) for e in streamed] == [(e.token, e.logprob) for e in expected]
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == whole.choices[0].message.content


@pytest.mark.model
def test_logprobs_only_the_chosen_token(embedded: Server) -> None:
    answer = sdk(embedded).chat.completions.create(
        model=CHAT, messages=MESSAGES, max_tokens=3, logprobs=True
    )
    assert answer.choices[0].logprobs is not None
    check_entries(answer.choices[0].logprobs.content or [], 0, greedy=False)


@pytest.mark.model
def test_no_logprobs_unless_asked(embedded: Server) -> None:
    client = sdk(embedded)
    plain = client.chat.completions.create(model=CHAT, messages=MESSAGES, max_tokens=3)
    assert plain.choices[0].logprobs is None
    off = client.chat.completions.create(
        model=CHAT, messages=MESSAGES, max_tokens=3, logprobs=False, top_logprobs=2
    )
    assert off.choices[0].logprobs is None


@pytest.mark.model
@pytest.mark.parametrize("top", [-1, 21, "3"])
def test_top_logprobs_out_of_range_is_a_400(embedded: Server, top: Any) -> None:
    body = {"model": CHAT, "messages": MESSAGES, "logprobs": True, "top_logprobs": top,
            "max_tokens": 2}  # fmt: skip
    with embedded.client() as client:
        response = client.post("/v1/chat/completions", json=body)
    # "3" too: requests are read as strictly as /openapi.json types them (docs/api.md)
    assert response.status_code == 400 and response.json()["error"]["param"] == "top_logprobs"


@pytest.mark.model
def test_legacy_completion_logprobs(embedded: Server) -> None:
    client = sdk(embedded)
    args: dict[str, Any] = {
        "model": CHAT, "prompt": "Red, green and", "max_tokens": 5, "temperature": 0,
        "logprobs": 2,
    }  # fmt: skip
    whole = client.completions.create(**args)
    logprobs = whole.choices[0].logprobs
    assert logprobs is not None and logprobs.tokens and logprobs.token_logprobs
    assert logprobs.top_logprobs is not None and logprobs.text_offset is not None
    assert len(logprobs.tokens) == len(logprobs.token_logprobs) == len(logprobs.top_logprobs)
    assert "".join(logprobs.tokens) == whole.choices[0].text
    for token, value, top in zip(
        logprobs.tokens, logprobs.token_logprobs, logprobs.top_logprobs, strict=True
    ):
        assert value <= 0 and 1 <= len(top) <= 3 and top[token] == pytest.approx(value)
        assert max(top.values()) == pytest.approx(value)  # greedy: the chosen is the best
    offsets = logprobs.text_offset
    assert offsets[0] == 0 and offsets == sorted(offsets)
    streamed = list(client.completions.create(**args, stream=True))
    tokens = [t for c in streamed if c.choices and c.choices[0].logprobs
              for t in c.choices[0].logprobs.tokens or []]  # fmt: skip
    assert tokens == logprobs.tokens


# ---- HTTP engines -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def upstream(relay_upstream: RecordingUpstream) -> RecordingUpstream:
    """The session's recording upstream, the one behind `gateway` (conftest.py)."""
    return relay_upstream


@pytest.fixture(scope="module")
def gateway(relay_gateway: Server) -> Server:
    """The session's relay gateway (conftest.py relay_config): one process for every module
    that relays to the recording upstream."""
    return relay_gateway


def test_forwarded_to_an_openai_upstream(gateway: Server, upstream: RecordingUpstream) -> None:
    sdk(gateway).chat.completions.create(
        model="cloud", messages=MESSAGES, logprobs=True, top_logprobs=4
    )
    sent = upstream.received[-1]
    assert sent["logprobs"] is True and sent["top_logprobs"] == 4


def test_the_mistral_engine_answers_400_naming_logprobs(
    gateway: Server, upstream: RecordingUpstream
) -> None:
    before = len(upstream.received)
    for stream in (False, True):
        with pytest.raises(openai.BadRequestError) as raised:
            sdk(gateway).chat.completions.create(
                model="mistral-cloud", messages=MESSAGES, logprobs=True, stream=stream
            )
        assert raised.value.body["param"] == "logprobs"  # type: ignore[index]
    assert len(upstream.received) == before
    # Without logprobs the same model answers.
    sdk(gateway).chat.completions.create(model="mistral-cloud", messages=MESSAGES)


def test_pseudonymized_requests_get_no_logprobs(
    gateway: Server, upstream: RecordingUpstream
) -> None:
    """The model saw pseudonyms; its tokens (and the alternatives) would spell them, and
    a token cannot be restored on its own: 400, and nothing leaves."""
    client = sdk(gateway)
    secret = [{"role": "user", "content": f"Repeat: {IBAN}"}]
    before = len(upstream.received)
    for stream in (False, True):
        with pytest.raises(openai.BadRequestError) as raised:
            client.chat.completions.create(
                model="cloud", messages=secret, logprobs=True, stream=stream
            )
        assert raised.value.body["param"] == "logprobs"  # type: ignore[index]
        assert "pseudonym" in str(raised.value)
        with pytest.raises(openai.BadRequestError):
            client.completions.create(model="cloud", prompt=f"Repeat: {IBAN}", logprobs=1)
    assert len(upstream.received) == before
    # No identifier, nothing pseudonymized: logprobs are asked for upstream.
    client.chat.completions.create(model="cloud", messages=MESSAGES, logprobs=True)
    assert upstream.received[-1]["logprobs"] is True
    # The identifier without logprobs: pseudonymized and answered, restored.
    answer = client.chat.completions.create(model="cloud", messages=secret)
    assert IBAN not in json.dumps(upstream.received[-1])
    assert IBAN in (answer.choices[0].message.content or "")


@pytest.mark.model
def test_relayed_from_llama_cpp_server(llama_gateway: Server) -> None:
    client = sdk(llama_gateway)
    answer = client.chat.completions.create(
        model=LLAMA, messages=MESSAGES, max_tokens=5, temperature=0, logprobs=True,
        top_logprobs=2,
    )  # fmt: skip
    assert answer.choices[0].logprobs is not None
    entries = answer.choices[0].logprobs.content or []
    assert entries and all(e.logprob <= 0 and len(e.top_logprobs) == 2 for e in entries)
    chunks = list(
        client.chat.completions.create(
            model=LLAMA, messages=MESSAGES, max_tokens=5, temperature=0, logprobs=True,
            top_logprobs=2, stream=True,
        )
    )  # fmt: skip
    streamed = [e for c in chunks if c.choices and c.choices[0].logprobs
                for e in c.choices[0].logprobs.content or []]  # fmt: skip
    # llama.cpp's server is not reproducible from call to call (its prompt cache changes
    # the batch shapes): the streamed entries are checked against the streamed text.
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert streamed and "".join(e.token for e in streamed) == text
    assert all(len(e.top_logprobs) == 2 for e in streamed)
    legacy = client.completions.create(
        model=LLAMA, prompt="Red, green and", max_tokens=4, temperature=0, logprobs=2
    )
    assert legacy.choices[0].logprobs is not None
    assert legacy.choices[0].logprobs.tokens
    assert len(legacy.choices[0].logprobs.token_logprobs or []) == len(
        legacy.choices[0].logprobs.tokens
    )
