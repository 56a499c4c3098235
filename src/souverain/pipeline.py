"""The request pipeline: every model call, from every endpoint, goes through here.

    identity     who is calling (API key → Principal)          identity/keys.py
    classify     the highest level claimed for the data        policy/engine.py
    guards       quotas, data-loss prevention                  (issues to come: `Guard`)
    routing      policy, then the ordered ready deployments    routing/router.py
    dispatch     send to the first that answers; fail over     here
    restore      un-pseudonymize answers and streams           (DLP issue: `Restorer`)
    accounting   usage and metrics, whatever the outcome       here
    audit        a tamper-evident record per request           (audit issue)

Guards run before any byte leaves; the dispatcher is the only caller of an engine.
Failover happens only before an engine produced anything: once a token went out,
an error ends the stream instead.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Literal, Protocol

from .backends.base import Backend, Embeddings
from .context import RequestContext
from .errors import EngineUnavailable, SouverainError, UnsupportedByModel
from .identity.keys import Authenticator
from .observability.metrics import Metrics
from .policy.engine import CLASSIFICATION_HEADER
from .protocol.chat import ChatCompletionRequest, ChatDelta, Completion
from .protocol.embeddings import EmbeddingRequest
from .protocol.fim import FIMCompletionRequest
from .routing.models import ModelCatalog, ServedModel
from .routing.router import Router

CallKind = Literal["chat", "fim", "embeddings"]
CallRequest = ChatCompletionRequest | FIMCompletionRequest | EmbeddingRequest


@dataclass(frozen=True, slots=True)
class ModelCall:
    kind: CallKind
    model: ServedModel
    request: CallRequest


class Guard(Protocol):
    """A stage that may refuse a call (raise) or adjust its context before dispatch."""

    async def check(self, ctx: RequestContext, call: ModelCall) -> None: ...


class Pipeline:
    def __init__(
        self,
        *,
        authenticator: Authenticator,
        catalog: ModelCatalog,
        router: Router,
        metrics: Metrics,
        guards: Sequence[Guard] = (),
    ) -> None:
        self.authenticator = authenticator
        self.catalog = catalog
        self.router = router
        self.metrics = metrics
        self.guards = list(guards)

    # ---- identity ---------------------------------------------------------------------

    async def open(self, headers: Mapping[str, str], endpoint: str) -> RequestContext:
        principal = await self.authenticator.authenticate(headers.get("authorization"))
        ctx = RequestContext(endpoint=endpoint, principal=principal)
        ctx.claims.append(headers.get(CLASSIFICATION_HEADER))
        return ctx

    # ---- model calls --------------------------------------------------------------------

    def prepare(self, ctx: RequestContext, kind: CallKind, request: CallRequest) -> ModelCall:
        """Resolve the model (404) and check it can do this kind of call (400)."""
        model = self.catalog.get(request.model)
        ctx.model = model.id
        _check_capability(model, kind)
        ctx.claims.append(self.router.policy.claimed_in(request.metadata))
        ctx.classification = self.router.policy.classify(*ctx.claims)
        return ModelCall(kind=kind, model=model, request=request)

    async def stream(self, ctx: RequestContext, call: ModelCall) -> AsyncIterator[ChatDelta]:
        """Deltas of a chat or FIM generation; errors before the first one are raised."""
        with self._accounting(ctx):
            targets = await self._admit(ctx, call)
            deltas = await self._first_that_answers(ctx, targets, call)
            async for delta in deltas:
                if delta.usage is not None:
                    ctx.usage = delta.usage
                yield delta

    async def complete(self, ctx: RequestContext, call: ModelCall) -> Completion:
        return await self._unary(ctx, call)  # type: ignore[return-value]

    async def embed(self, ctx: RequestContext, call: ModelCall) -> Embeddings:
        return await self._unary(ctx, call)  # type: ignore[return-value]

    async def _unary(self, ctx: RequestContext, call: ModelCall) -> Completion | Embeddings:
        with self._accounting(ctx):
            targets = await self._admit(ctx, call)
            last_error: SouverainError | None = None
            for backend in targets:
                try:
                    result = await _call_unary(backend, call)
                except EngineUnavailable as exc:
                    last_error = exc
                    continue
                _chosen(ctx, backend)
                ctx.usage = result.usage
                return result
            assert last_error is not None
            raise last_error

    # ---- stages -------------------------------------------------------------------------

    async def _admit(self, ctx: RequestContext, call: ModelCall) -> list[Backend]:
        for guard in self.guards:
            await guard.check(ctx, call)
        return self.router.candidates(ctx, call.model)

    async def _first_that_answers(
        self, ctx: RequestContext, targets: list[Backend], call: ModelCall
    ) -> AsyncIterator[ChatDelta]:
        """Start the stream on the first deployment that produces a first delta."""
        last_error: SouverainError | None = None
        for backend in targets:
            stream: AsyncIterator[ChatDelta] | None = None
            try:
                stream = _start_stream(backend, call)
                first = await anext(stream)
            except EngineUnavailable as exc:
                last_error = exc
                if stream is not None:
                    await stream.aclose()  # type: ignore[attr-defined]
                continue
            _chosen(ctx, backend)
            ctx.first_token_at = ctx.elapsed()
            return _prepend(first, stream)
        assert last_error is not None
        raise last_error

    @contextmanager
    def _accounting(self, ctx: RequestContext) -> Iterator[None]:
        """Record the call's outcome and usage however it ends (error, cancel, success)."""
        try:
            yield
        except BaseException as exc:
            ctx.outcome = _outcome(exc)
            raise
        finally:
            self._account(ctx)

    def _account(self, ctx: RequestContext) -> None:
        model = ctx.model or "unknown"
        self.metrics.model_calls.labels(model, ctx.endpoint, ctx.outcome).inc()
        if ctx.usage is not None:
            self.metrics.tokens.labels(model, "prompt").inc(ctx.usage.prompt_tokens)
            self.metrics.tokens.labels(model, "completion").inc(ctx.usage.completion_tokens)
        if ctx.first_token_at is not None:
            self.metrics.first_token.labels(model).observe(ctx.first_token_at)


def _chosen(ctx: RequestContext, backend: Backend) -> None:
    ctx.deployment = backend.name
    ctx.jurisdiction = backend.facts.jurisdiction


def _check_capability(model: ServedModel, kind: CallKind) -> None:
    capabilities = model.capabilities()
    if kind == "embeddings" and not capabilities.embeddings:
        raise UnsupportedByModel(f"model {model.id!r} is not an embeddings model", param="model")
    if kind == "chat" and not capabilities.completion_chat:
        raise UnsupportedByModel(
            f"model {model.id!r} does not serve chat completions", param="model"
        )
    if kind == "fim" and not capabilities.completion_fim:
        raise UnsupportedByModel(
            f"model {model.id!r} does not support fill-in-the-middle completions", param="model"
        )


def _start_stream(backend: Backend, call: ModelCall) -> AsyncIterator[ChatDelta]:
    if call.kind == "fim":
        return backend.fim(call.request)  # type: ignore[arg-type]
    return backend.chat(call.request)  # type: ignore[arg-type]


async def _call_unary(backend: Backend, call: ModelCall) -> Completion | Embeddings:
    if call.kind == "embeddings":
        return await backend.embed(call.request)  # type: ignore[arg-type]
    if call.kind == "fim":
        return await backend.fim_complete(call.request)  # type: ignore[arg-type]
    return await backend.chat_complete(call.request)  # type: ignore[arg-type]


async def _prepend(first: ChatDelta, rest: AsyncIterator[ChatDelta]) -> AsyncIterator[ChatDelta]:
    yield first
    async for delta in rest:
        yield delta


def _outcome(exc: BaseException) -> str:
    if isinstance(exc, SouverainError):
        return exc.error_type
    if isinstance(exc, GeneratorExit | KeyboardInterrupt) or type(exc).__name__ == "CancelledError":
        return "cancelled"
    return "internal_error"
