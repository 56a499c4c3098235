"""Shared servers for the client-library tests, started once per session.

Every client module runs each test against two targets:

* `embedded`: `souverain serve` with no config (SmolLM2 in-process, e5 embeddings);
* `llama`: a `souverain serve` whose models are `openai` deployments pointing at llama.cpp's
  own server (`python -m llama_cpp.server`, a real second server we did not write), one
  process for chat with the `chatml-function-calling` format and one for embeddings: the
  session's `llama_servers` (tests/conftest.py, tests/llama_server.py), shared with the
  modules that test the `openai` engine against it.

No test may reach the network. The environment below is set when this file is imported,
before the client libraries are: several read it at import time (litellm fetches its price
list on import unless told not to).
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from ..conftest import Server, start_server, stop_server

CHAT = "smollm2-135m-instruct"
EMBED = "multilingual-e5-small"
# Where tiktoken fetches cl100k_base from; its cache file is named by this URL's SHA-1.
CL100K_URL = "https://openaipublic.blob.core.windows.net/encodings/cl100k_base.tiktoken"

OFFLINE_ENV = {
    "LITELLM_LOCAL_MODEL_COST_MAP": "True",  # litellm: no price-list download on import
    "LITELLM_TELEMETRY": "False",
    "OPENAI_AGENTS_DISABLE_TRACING": "1",  # openai-agents: no trace upload
    "LANGCHAIN_TRACING_V2": "false",  # langchain: no LangSmith
    "LANGSMITH_TRACING": "false",
    "HF_HUB_OFFLINE": "1",  # langchain-mistralai looks for a tokenizer on the Hub
    "TOKENIZERS_PARALLELISM": "false",
    "DO_NOT_TRACK": "1",
    "OTEL_SDK_DISABLED": "true",
}


def seed_tiktoken_cache(cache: Path) -> Path:
    """A tiktoken cache holding cl100k_base, copied from the file litellm's wheel carries.

    tiktoken looks for `$TIKTOKEN_CACHE_DIR/<sha1(url)>` before downloading and checks the
    file's SHA-256, so a copy of the genuine file is all it needs to work offline.
    langchain's `OpenAIEmbeddings` tokenizes with it (its defaults send token ids).
    """
    spec = importlib.util.find_spec("litellm")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("litellm is not installed: it carries the cl100k_base file")
    key = hashlib.sha1(CL100K_URL.encode()).hexdigest()
    bundled = Path(next(iter(spec.submodule_search_locations))) / "litellm_core_utils/tokenizers"
    cache.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(bundled / key, cache / key)
    return cache


def _set_offline_env() -> None:
    os.environ.update(OFFLINE_ENV)
    # Importing litellm points TIKTOKEN_CACHE_DIR at its own copy of the encodings, for the
    # whole process. Souverain servers started later inherit this environment: put it back,
    # so that a server decoding token ids cannot lean on the test's settings.
    before = os.environ.get("TIKTOKEN_CACHE_DIR")
    import litellm  # noqa: F401

    if before is None:
        os.environ.pop("TIKTOKEN_CACHE_DIR", None)
    else:
        os.environ["TIKTOKEN_CACHE_DIR"] = before


_set_offline_env()


@pytest.fixture
def tiktoken_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """What a user does for langchain's OpenAIEmbeddings offline (docs/clients.md)."""
    cache = seed_tiktoken_cache(tmp_path / "tiktoken")
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(cache))
    return cache


@dataclass(frozen=True)
class Target:
    """One Souverain to test a client against, and what its models give."""

    name: str
    server: Server
    chat: str
    embed: str
    dimensions: int

    @property
    def v1(self) -> str:
        return self.server.v1

    @property
    def key(self) -> str:
        return self.server.key


@pytest.fixture(scope="session")
def via_llama(
    llama_servers: tuple[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    """Souverain with the same model names, served by `openai` deployments to llama.cpp."""
    chat_url, embed_url = llama_servers
    chat = {
        "engine": "openai",
        "base_url": chat_url + "/v1",
        "upstream_model": "smollm2",
        # llama.cpp refuses json_schema, and its own schema converter drops numeric bounds:
        # it gets the local engine's grammar, for response formats and for a forced call's
        # arguments (backends/grammar_tool_call.py: pydantic-ai's output tool).
        "json_schema_as": "grammar",
    }
    embed = {"engine": "openai", "base_url": embed_url + "/v1", "upstream_model": "smollm2-embed"}
    config = {
        "models": [
            {
                "id": CHAT,
                "aliases": ["smollm2", "default"],
                "deployments": [chat],
                "capabilities": {"function_calling": True, "completion_fim": True},
            },
            {"id": EMBED, "type": "embeddings", "deployments": [embed]},
        ],
        # llama.cpp's server answers 500 to requests it cannot read (json_schema formats,
        # `tool_choice: required`): with the default breaker, three of those would mark it
        # down and fail the unrelated tests that follow. No retries: a refusal is final.
        "routing": {"failure_threshold": 1000, "retries": 0},
    }
    server = start_server(tmp_path_factory.mktemp("souverain-via-llama"), config)
    yield server
    stop_server(server)


@pytest.fixture(scope="session", params=["embedded", "llama"])
def target(request: pytest.FixtureRequest) -> Target:
    """Each client test runs once per target; the servers start on first use."""
    if request.param == "embedded":
        server: Server = request.getfixturevalue("embedded")
        return Target("embedded", server, CHAT, EMBED, dimensions=384)
    server = request.getfixturevalue("via_llama")
    # llama.cpp embeds with the chat model itself: SmolLM2-135M's hidden size.
    return Target("llama", server, CHAT, EMBED, dimensions=576)
