"""llama.cpp's own OpenAI-compatible server (`python -m llama_cpp.server`), a real upstream
we did not write, on the embedded SmolLM2 GGUF.

Every test that needs it shares the same processes (session fixtures in tests/conftest.py):
one for chat and one for embeddings. Each start imports llama.cpp's server stack and loads
the model; on the shared 2-core machine that cost was paid once per module that wanted one.
The servers run one request at a time (`n_threads` 1) and keep no state a test relies on,
so sharing them changes nothing a test can observe.
"""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from souverain.backends.local_llama import embedded_gguf_path

from . import processes

CHAT_ALIAS = "smollm2"
EMBED_ALIAS = "smollm2-embed"

# llama.cpp's server as `python -m llama_cpp.server` runs it, with one setting its command
# line lacks: mean pooling. Without it, SmolLM2 (a chat model) embeds each token separately
# and `/v1/embeddings` answers a list of vectors per input, which no embeddings client reads.
MEAN_POOLING_SERVER = """
import sys, llama_cpp, uvicorn
from llama_cpp.server.app import create_app
from llama_cpp.server.settings import ModelSettings, ServerSettings
init = llama_cpp.Llama.__init__
def pooled(self, *args, **kwargs):
    kwargs.setdefault("pooling_type", llama_cpp.LLAMA_POOLING_TYPE_MEAN)
    init(self, *args, **kwargs)
llama_cpp.Llama.__init__ = pooled
model, alias, port = sys.argv[1:4]
settings = ModelSettings(model=model, model_alias=alias, embedding=True, n_threads=1)
app = create_app(server_settings=ServerSettings(port=int(port)), model_settings=[settings])
uvicorn.run(app, host="127.0.0.1", port=int(port))
"""


@dataclass(frozen=True)
class LlamaServer:
    """One running llama.cpp server; `url` has no `/v1`."""

    url: str
    process: subprocess.Popen[bytes]
    log: Path

    @property
    def v1(self) -> str:
        return self.url + "/v1"


def start_chat(log: Path, port: int) -> LlamaServer:
    """Chat and text completions, with tool calls (`chatml-function-calling`).

    That chat format is what the client tests need (tools, `tool_choice`); requests without
    tools take its plain ChatML path, the same prompt shape SmolLM2's own template gives.
    """
    process = subprocess.Popen(
        [sys.executable, "-m", "llama_cpp.server", "--model", str(embedded_gguf_path()),
         "--model_alias", CHAT_ALIAS, "--host", "127.0.0.1", "--port", str(port),
         "--n_ctx", "2048", "--n_threads", "1", "--chat_format", "chatml-function-calling"],
        stdout=log.open("wb"), stderr=subprocess.STDOUT,
    )  # fmt: skip
    return LlamaServer(f"http://127.0.0.1:{port}", process, log)


def start_embeddings(log: Path, port: int) -> LlamaServer:
    """Embeddings of the same GGUF, mean-pooled (one vector per input)."""
    process = subprocess.Popen(
        [sys.executable, "-c", MEAN_POOLING_SERVER, str(embedded_gguf_path()), EMBED_ALIAS,
         str(port)],
        stdout=log.open("wb"), stderr=subprocess.STDOUT,
    )  # fmt: skip
    return LlamaServer(f"http://127.0.0.1:{port}", process, log)


def wait_ready(server: LlamaServer, timeout: float = 120) -> LlamaServer:
    """Until `/v1/models` answers; a server that exits or never answers fails with its log."""
    if processes.answers(server.process, server.v1 + "/models", timeout, interval=0.2):
        return server
    stop(server)
    raise RuntimeError(f"llama.cpp server did not start:\n{server.log.read_text()}")


def stop(server: LlamaServer) -> None:
    processes.stop(server.process, grace=30)
