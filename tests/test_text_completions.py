"""`POST /v1/completions` (legacy text completions) through the real gateway.

The openai SDK's `client.completions` is the client, whole and streamed: against the
embedded model (the raw prompt, no chat template), through the `openai` engine to a
recording upstream (what is forwarded) and to llama.cpp's own server (a real upstream),
and refused with a 400 by the `mistral` engine, whose API has no such endpoint.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import openai
import pytest

from .conftest import Server
from .recording_upstream import RecordingUpstream
from .test_embedding_tokens import byte_ids

CHAT = "smollm2"
IBAN = "FR76 3000 6000 0112 3456 7890 189"
HELLO_WORLD = [9906, 1917]  # "Hello world" as cl100k_base ids


def sdk(server: Server, key: str | None = None) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.v1, api_key=key or server.key, max_retries=0)


# ---- the embedded model ---------------------------------------------------------------


@pytest.mark.model
def test_whole_completion(embedded: Server) -> None:
    answer = sdk(embedded).completions.create(
        model=CHAT, prompt="The capital of France is", max_tokens=8, temperature=0
    )
    assert answer.object == "text_completion"
    assert answer.id.startswith("cmpl") or answer.id
    choice = answer.choices[0]
    assert choice.index == 0 and choice.text and choice.logprobs is None
    assert choice.finish_reason in ("stop", "length")
    assert answer.usage is not None
    assert 0 < answer.usage.completion_tokens <= 8
    assert answer.usage.total_tokens == answer.usage.prompt_tokens + answer.usage.completion_tokens


@pytest.mark.model
def test_the_prompt_is_raw_no_chat_template(embedded: Server) -> None:
    """A chat template would add a system prompt and role markers: dozens of tokens."""
    answer = sdk(embedded).completions.create(model=CHAT, prompt="Hello", max_tokens=1)
    assert answer.usage is not None and answer.usage.prompt_tokens <= 2


@pytest.mark.model
def test_max_tokens_defaults_to_openais_16(embedded: Server) -> None:
    answer = sdk(embedded).completions.create(model=CHAT, prompt="Once upon a time", temperature=0)
    assert answer.usage is not None and 0 < answer.usage.completion_tokens <= 16


@pytest.mark.model
def test_stream_matches_the_whole_answer_and_counts_usage_once(embedded: Server) -> None:
    client = sdk(embedded)
    args: dict[str, Any] = {
        "model": CHAT, "prompt": "Paris is a city in", "max_tokens": 12, "temperature": 0,
    }  # fmt: skip
    whole = client.completions.create(**args)
    chunks = list(
        client.completions.create(**args, stream=True, stream_options={"include_usage": True})
    )
    assert all(chunk.object == "text_completion" for chunk in chunks)
    assert "".join(c.choices[0].text for c in chunks if c.choices) == whole.choices[0].text
    with_usage = [chunk for chunk in chunks if chunk.usage is not None]
    assert len(with_usage) == 1 and with_usage[0] is chunks[-1] and chunks[-1].choices == []
    assert with_usage[0].usage == whole.usage
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices]
    assert finishes[-1] == whole.choices[0].finish_reason and not any(finishes[:-1])


@pytest.mark.model
def test_stream_without_include_usage_puts_it_on_the_last_chunk(embedded: Server) -> None:
    chunks = list(
        sdk(embedded).completions.create(model=CHAT, prompt="One, two,", max_tokens=4, stream=True)
    )
    assert [chunk.usage is not None for chunk in chunks].count(True) == 1
    assert chunks[-1].usage is not None and chunks[-1].choices[0].finish_reason


@pytest.mark.model
def test_echo_leads_with_the_prompt(embedded: Server) -> None:
    client = sdk(embedded)
    prompt = "Lyon is"
    whole = client.completions.create(model=CHAT, prompt=prompt, max_tokens=4, echo=True)
    assert whole.choices[0].text.startswith(prompt) and len(whole.choices[0].text) > len(prompt)
    stream = client.completions.create(
        model=CHAT, prompt=prompt, max_tokens=4, echo=True, stream=True
    )
    chunks = list(stream)
    assert chunks[0].choices[0].text.startswith(prompt)


@pytest.mark.model
def test_stop_sequences_and_seed(embedded: Server) -> None:
    client = sdk(embedded)
    args: dict[str, Any] = {
        "model": CHAT, "prompt": "1, 2, 3, 4,", "max_tokens": 30, "stop": [","], "seed": 7,
        "temperature": 0.8,
    }  # fmt: skip
    first = client.completions.create(**args)
    assert "," not in first.choices[0].text
    assert client.completions.create(**args).choices[0].text == first.choices[0].text


@pytest.mark.model
@pytest.mark.parametrize(
    "prompt", [["The sky is"], HELLO_WORLD, [HELLO_WORLD]], ids=["list", "ids", "nested-ids"]
)
def test_prompt_spellings(embedded: Server, prompt: Any) -> None:
    answer = sdk(embedded).completions.create(model=CHAT, prompt=prompt, max_tokens=2, echo=True)
    expected = prompt[0] if isinstance(prompt[0], str) else "Hello world"
    assert answer.choices[0].text.startswith(expected)


@pytest.mark.model
@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"prompt": ["a", "b"]}, "prompt"),
        ({"prompt": [[1], [2]]}, "prompt"),
        ({"prompt": []}, "prompt"),
        ({"prompt": [-1]}, "prompt"),
        ({"prompt": [{"x": 1}]}, "prompt"),
        ({"prompt": None}, "prompt"),
        ({"prompt": "x", "n": 2}, "n"),
        ({"prompt": "x", "best_of": 3}, "best_of"),
        ({"prompt": "x", "logprobs": 6}, "logprobs"),
        ({"prompt": "x", "logprobs": -1}, "logprobs"),
        ({"prompt": "x", "echo": True, "logprobs": 1}, None),
        ({"prompt": "x", "max_tokens": 0}, "max_tokens"),
        ({"prompt": "x", "temperature": 3}, "temperature"),
        ({"prompt": "x", "stop": ["s"] * 17}, "stop"),
        ({"prompt": "x", "stream": "yes please"}, "stream"),
        ({}, "prompt"),
    ],
)
def test_bad_requests_are_400_naming_the_field(
    embedded: Server, body: dict[str, Any], param: str | None
) -> None:
    with embedded.client() as client:
        response = client.post("/v1/completions", json={"model": CHAT, **body})
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["message"]
    if param is not None:
        assert (error.get("param") or "").startswith(param), error


@pytest.mark.model
def test_suffix_needs_fim_tokens_which_smollm2_lacks(embedded: Server) -> None:
    """Refused naming `suffix`, never dropped (the answer would ignore half the ask)."""
    client = sdk(embedded)
    for stream in (False, True):
        with pytest.raises(openai.BadRequestError) as raised:
            client.completions.create(
                model=CHAT, prompt="def f(", suffix="return x", max_tokens=2, stream=stream
            )
        assert raised.value.body["param"] == "suffix"  # type: ignore[index]
    assert client.completions.create(model=CHAT, prompt="x", suffix="", max_tokens=1).choices


@pytest.mark.model
def test_a_prompt_past_the_context_is_a_400(embedded: Server) -> None:
    with pytest.raises(openai.BadRequestError) as raised:
        sdk(embedded).completions.create(model=CHAT, prompt="word " * 60_000, max_tokens=4)
    assert raised.value.status_code == 400
    assert "context length" in str(raised.value)


@pytest.mark.model
def test_unknown_model_and_embeddings_model(embedded: Server) -> None:
    client = sdk(embedded)
    with pytest.raises(openai.NotFoundError):
        client.completions.create(model="no-such-model", prompt="x")
    with pytest.raises(openai.BadRequestError) as refused:
        client.completions.create(model="multilingual-e5-small", prompt="x")
    assert "does not serve text completions" in refused.value.message


@pytest.mark.model
def test_endpoint_scopes_of_keys(embedded: Server) -> None:
    def key(endpoints: list[str]) -> str:
        with embedded.client() as client:
            response = client.post(
                "/admin/v1/keys",
                json={"name": f"text-{'-'.join(endpoints)}", "endpoints": endpoints},
            )
        assert response.status_code in (200, 201), response.text
        return str(response.json()["key"])

    chat_only = sdk(embedded, key(["chat"]))
    with pytest.raises(openai.PermissionDeniedError):
        chat_only.completions.create(model=CHAT, prompt="x", max_tokens=1)
    text_only = sdk(embedded, key(["completions"]))
    assert text_only.completions.create(model=CHAT, prompt="x", max_tokens=1).choices
    with pytest.raises(openai.PermissionDeniedError):
        text_only.chat.completions.create(
            model=CHAT, messages=[{"role": "user", "content": "x"}], max_tokens=1
        )


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


def test_forwarded_body_is_allow_listed(gateway: Server, upstream: RecordingUpstream) -> None:
    with gateway.client() as client:
        response = client.post(
            "/v1/completions",
            json={
                "model": "cloud", "prompt": "Say hi", "suffix": "end", "temperature": 0.5,
                "top_p": 0.9, "stop": "\n", "seed": 3, "echo": True, "user": "u1",
                "metadata": {"k": "v"}, "x_unknown": {"a": 1}, "logit_bias": {"50256": -100},
                "presence_penalty": 0.1, "frequency_penalty": 0.2,
            },
        )  # fmt: skip
    assert response.status_code == 200, response.text
    sent = upstream.received[-1]
    assert sent == {
        "model": "up-model", "prompt": "Say hi", "suffix": "end", "temperature": 0.5,
        "top_p": 0.9, "stop": "\n", "seed": 3, "max_tokens": 16, "stream": False,
        "presence_penalty": 0.1, "frequency_penalty": 0.2,
    }  # fmt: skip
    body = response.json()
    # The recording upstream echoes the prompt; the gateway's echo leads with it once more.
    assert body["choices"][0]["text"] == "Say hiSay hi"
    assert body["object"] == "text_completion" and body["model"] == "cloud"
    assert body["usage"] == {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}


@pytest.mark.parametrize("as_ids", [False, True], ids=["text", "token-ids"])
def test_dlp_reads_the_prompt_and_echo_gives_back_the_clients_own(
    gateway: Server, upstream: RecordingUpstream, as_ids: bool
) -> None:
    prompt = f"Pay {IBAN} today."
    sent_prompt: Any = byte_ids(prompt) if as_ids else prompt
    for stream in (False, True):
        answer = sdk(gateway).completions.create(
            model="cloud", prompt=sent_prompt, echo=True, stream=stream
        )
        text = (
            "".join(c.choices[0].text for c in answer if c.choices)  # type: ignore[union-attr]
            if stream
            else answer.choices[0].text  # type: ignore[union-attr]
        )
        forwarded = upstream.received[-1]["prompt"]
        assert IBAN not in forwarded and IBAN.replace(" ", "") not in forwarded
        # The echo is the client's prompt; the upstream's echo of the pseudonym is restored.
        assert text == prompt + prompt


def test_streamed_through_the_openai_engine(gateway: Server, upstream: RecordingUpstream) -> None:
    stream = sdk(gateway).completions.create(
        model="cloud", prompt="abcdefgh", stream=True, stream_options={"include_usage": True}
    )
    chunks = list(stream)
    assert "".join(c.choices[0].text for c in chunks if c.choices) == "abcdefgh"
    assert [c.usage is not None for c in chunks].count(True) == 1 and chunks[-1].choices == []
    assert upstream.received[-1]["stream"] is True
    assert upstream.received[-1]["stream_options"] == {"include_usage": True}


def test_the_mistral_engine_refuses_naming_the_endpoint(
    gateway: Server, upstream: RecordingUpstream
) -> None:
    before = len(upstream.received)
    client = sdk(gateway)
    for stream in (False, True):
        with pytest.raises(openai.BadRequestError) as raised:
            client.completions.create(model="mistral-cloud", prompt="x", stream=stream)
        assert "no legacy completions endpoint" in str(raised.value)
        assert raised.value.body["param"] == "model"  # type: ignore[index]
    assert len(upstream.received) == before


@pytest.mark.model
def test_through_llama_cpp_server_whole_and_streamed(llama_gateway: Server) -> None:
    client = sdk(llama_gateway)
    whole = client.completions.create(
        model="small", prompt="The capital of France is", max_tokens=6, temperature=0
    )
    assert whole.choices[0].text and whole.usage is not None
    assert whole.usage.completion_tokens > 0
    chunks = list(
        client.completions.create(
            model="small", prompt="The capital of France is", max_tokens=6, temperature=0,
            stream=True, stream_options={"include_usage": True},
        )
    )  # fmt: skip
    assert "".join(c.choices[0].text for c in chunks if c.choices) == whole.choices[0].text
    assert [c.usage is not None for c in chunks].count(True) == 1


def test_raw_http_stream_frames(gateway: Server) -> None:
    """The wire format itself: `data:` frames, `finish_reason` present and null until the
    last, `[DONE]` at the end."""
    with httpx.stream(
        "POST", gateway.v1 + "/completions", timeout=30,
        headers={"Authorization": f"Bearer {gateway.key}"},
        json={"model": "cloud", "prompt": "hello", "stream": True},
    ) as response:  # fmt: skip
        assert response.headers["content-type"].startswith("text/event-stream")
        frames = [line[6:] for line in response.iter_lines() if line.startswith("data: ")]
    assert frames[-1] == "[DONE]"
    chunks = [json.loads(frame) for frame in frames[:-1]]
    assert all("finish_reason" in chunk["choices"][0] for chunk in chunks)
    assert [chunk["choices"][0]["finish_reason"] for chunk in chunks][-1] == "stop"
    assert all(chunk["choices"][0]["finish_reason"] is None for chunk in chunks[:-1])
