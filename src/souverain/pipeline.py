"""The request pipeline: every model call, from every endpoint, goes through here.

    identity     who is calling (API key, OIDC token →          identity/authenticate.py
                 Principal); role and scopes                   identity/rbac.py
    classify     the highest level claimed for the data        policy/engine.py
    quotas       rate limits and budgets: reserve now           quotas/guard.py
    guards       data-loss prevention (findings raise the       dlp/engine.py
                 classification), then any other `Guard`
    routing      policy, kill switch, health, then strategy    routing/router.py
    dispatch     send to the first that answers; fail over     here (breakers learn from it)
                 each deployment gets the request as it may
                 see it (DLP: redacted, pseudonymized, blocked)
    restore      un-pseudonymize answers and streams           dlp/restore.py
    accounting   settle the quotas; a usage row and metrics,    quotas/, usage/recorder.py
                 whatever the outcome
    audit        a durable, tamper-evident leaf per call       audit/log.py (the answer
                 (allowed or refused) before the answer goes   waits for it)

Guards run before any byte leaves; the dispatcher is the only caller of an engine.
Failover happens only before an engine produced anything: once a token went out,
an error ends the stream instead.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from typing import Literal, Protocol, TypeVar

from .audit import coverage
from .audit.leaves import request_leaf
from .audit.log import AuditLog, Payload, canonical
from .backends.answer_conformance import checked_stream, checked_unary
from .backends.base import Backend, Embeddings
from .context import RequestContext
from .dlp.engine import DlpEngine
from .dlp.restore import restore_completion, restore_stream
from .errors import (
    DlpBlocked,
    EngineError,
    EngineOverloaded,
    EngineUnavailable,
    InvalidRequest,
    NotFound,
    PermissionDenied,
    SouverainError,
    UnsupportedByModel,
)
from .identity.authenticate import Authenticator
from .identity.rbac import require
from .observability.metrics import Metrics
from .policy.engine import CLASSIFICATION_HEADER
from .protocol.chat import ChatCompletionRequest, ChatDelta, Completion
from .protocol.embeddings import EmbeddingRequest
from .protocol.fim import FIMCompletionRequest
from .protocol.text_completions import TextCompletionRequest
from .quotas.guard import QuotaGuard
from .routing.models import ModelCatalog, ServedModel
from .routing.router import Router
from .usage.recorder import UsageRecorder

CallKind = Literal["chat", "fim", "embeddings", "text"]
CallRequest = (
    ChatCompletionRequest | FIMCompletionRequest | EmbeddingRequest | TextCompletionRequest
)
AttemptT = TypeVar("AttemptT")


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
        audit: AuditLog | None = None,
        dlp: DlpEngine | None = None,
        quotas: QuotaGuard | None = None,
        usage: UsageRecorder | None = None,
    ) -> None:
        self.authenticator = authenticator
        self.catalog = catalog
        self.router = router
        self.metrics = metrics
        # Quotas first (refusing is cheapest before any scan), then data-loss prevention:
        # what it finds raises the classification every later stage (policy) works with.
        self.guards: list[Guard] = [*([quotas] if quotas else []), *([dlp] if dlp else []), *guards]
        self.audit = audit
        self.dlp = dlp
        self.quotas = quotas
        self.usage = usage
        self._background: set[asyncio.Task[int]] = set()

    # ---- identity ---------------------------------------------------------------------

    async def open(self, headers: Mapping[str, str], endpoint: str) -> RequestContext:
        principal = await self.authenticator.authenticate(headers.get("authorization"))
        ctx = RequestContext(endpoint=endpoint, principal=principal)
        coverage.opened(ctx)  # from here on, a refusal leaves a leaf (audit/coverage.py)
        if principal.endpoints is not None and endpoint not in principal.endpoints:
            raise PermissionDenied(f"this key may not use the {endpoint} endpoints")
        ctx.claims.append(headers.get(CLASSIFICATION_HEADER))
        return ctx

    # ---- model calls --------------------------------------------------------------------

    async def prepare(self, ctx: RequestContext, kind: CallKind, request: CallRequest) -> ModelCall:
        """Resolve the model (404), check it can do this kind of call (400), classify."""
        async with self._accounting(ctx):  # a refused call is recorded like any other
            return self._prepare(ctx, kind, request)

    def _prepare(self, ctx: RequestContext, kind: CallKind, request: CallRequest) -> ModelCall:
        require(ctx.principal, "models.use")
        model = self.visible_model(ctx, request.model)
        ctx.model = model.id
        _check_capability(model, kind)
        policy = self.router.policy
        ctx.claims.append(policy.claimed_in(request.metadata))
        ctx.classification = policy.classify(ctx.principal.default_classification, *ctx.claims)
        policy.check_ceiling(ctx.classification, ctx.principal.max_classification)
        if self.audit is not None and self.audit.keeps_payloads(ctx.principal.tenant):
            ctx.notes["request"] = request.model_dump(mode="json", exclude_none=True, by_alias=True)
            ctx.notes["subject"] = _subject(ctx, request)
        return ModelCall(kind=kind, model=model, request=request)

    def visible_model(self, ctx: RequestContext, name: str) -> ServedModel:
        """The model by id or alias, if the caller's scopes include it. A model outside
        them does not exist for this caller: 404, as OpenAI answers, never 403."""
        model = self.catalog.get(name)
        allowed = ctx.principal.models
        if allowed is not None and model.id not in allowed:
            raise NotFound(
                f"the model {name!r} does not exist or you do not have access to it",
                param="model",
                code="model_not_found",
            )
        return model

    # ---- calls served in this process outside the catalog (OCR) -------------------------

    def accounted(self, ctx: RequestContext) -> AbstractAsyncContextManager[None]:
        """The accounting every model call gets (quota settlement, usage row, metrics,
        durable audit leaf), for work an endpoint does itself, such as local OCR."""
        return self._accounting(ctx, final=True)

    async def admit(self, ctx: RequestContext, *, tokens: int = 0, cost: float = 0.0) -> None:
        """The quota stage for such work: reserve now, settled by `accounted`."""
        if self.quotas is not None:
            await self.quotas.reserve(ctx, tokens, cost)

    async def stream(self, ctx: RequestContext, call: ModelCall) -> AsyncIterator[ChatDelta]:
        """Deltas of a chat or FIM generation; errors before the first one are raised."""
        async with self._accounting(ctx, final=True):
            await self._guard(ctx, call)
            deltas = await self._first_that_answers(ctx, call)
            keep = "request" in ctx.notes
            async for delta in deltas:
                if delta.usage is not None:
                    ctx.usage = delta.usage
                if keep and delta.content:
                    ctx.notes["response"] = ctx.notes.get("response", "") + delta.content
                yield delta

    async def complete(self, ctx: RequestContext, call: ModelCall) -> Completion:
        return await self._unary(ctx, call)  # type: ignore[return-value]

    async def embed(self, ctx: RequestContext, call: ModelCall) -> Embeddings:
        return await self._unary(ctx, call)  # type: ignore[return-value]

    async def _unary(self, ctx: RequestContext, call: ModelCall) -> Completion | Embeddings:
        async with self._accounting(ctx, final=True):
            await self._guard(ctx, call)

            async def attempt(backend: Backend) -> Completion | Embeddings:
                request, mapping = self._outbound(ctx, call, backend)
                return await checked_unary(  # held to the schema it demands, if any
                    backend, request, lambda req: _call_unary(backend, call.kind, req, mapping)
                )

            result = await self._dispatch(ctx, call, attempt)
            ctx.usage = result.usage
            if "request" in ctx.notes and isinstance(result, Completion):
                ctx.notes["response"] = result.content
            return result

    # ---- stages -------------------------------------------------------------------------

    def _outbound(
        self, ctx: RequestContext, call: ModelCall, backend: Backend
    ) -> tuple[CallRequest, dict[str, str] | None]:
        """The request as this deployment may see it (redacted, pseudonymized) and the
        mapping that restores the answer; `DlpBlocked` when it may not see it at all."""
        if self.dlp is None:
            return call.request, None
        request, mapping = self.dlp.outbound(ctx, call.request, backend)
        if mapping and _wants_logprobs(call.request):
            # Tokens are pieces of the pseudonyms the model saw: no way to restore them.
            raise InvalidRequest(
                f"logprobs cannot be returned for this request: data-loss prevention "
                f"pseudonymized parts of it for deployment {backend.name}, and the tokens' "
                "log probabilities would show the pseudonyms; send it without logprobs",
                param="logprobs",
            )
        return request, mapping

    async def _guard(self, ctx: RequestContext, call: ModelCall) -> None:
        for guard in self.guards:
            await guard.check(ctx, call)

    async def _dispatch(
        self,
        ctx: RequestContext,
        call: ModelCall,
        attempt: Callable[[Backend], Awaitable[AttemptT]],
    ) -> AttemptT:
        """Try the routed deployments in order, then again up to `retries` times.

        Only `EngineUnavailable` moves on (down, timeout, 5xx, 429, queue full); any other
        error is the answer. Each attempt's outcome feeds the deployment's breaker.
        """
        config = self.router.config
        last_error: SouverainError | None = None
        for round_number in range(1 + config.retries):
            if isinstance(last_error, DlpBlocked):
                break  # what the data is does not change between rounds
            if round_number:
                await asyncio.sleep(config.retry_backoff_s * (1 + random.random()))
            try:
                targets = self.router.candidates(ctx, call.model)
            except EngineUnavailable:
                if last_error is None:
                    raise
                break
            for backend in targets:
                health = self.router.health(backend)
                health.started()
                started = time.perf_counter()
                try:
                    result = await attempt(backend)
                except (EngineOverloaded, DlpBlocked) as exc:  # busy, or not for this one
                    health.abandoned()
                    last_error = exc
                    continue
                except EngineUnavailable as exc:
                    health.failed()
                    last_error = exc
                    continue
                except BaseException:
                    health.abandoned()
                    raise
                health.succeeded(time.perf_counter() - started)
                _chosen(ctx, backend)
                return result
        assert last_error is not None
        raise last_error

    async def _first_that_answers(
        self, ctx: RequestContext, call: ModelCall
    ) -> AsyncIterator[ChatDelta]:
        """Start the stream on the first deployment that produces a first delta."""

        async def first_delta(backend: Backend) -> tuple[ChatDelta, AsyncIterator[ChatDelta]]:
            request, mapping = self._outbound(ctx, call, backend)
            stream = checked_stream(  # held until it conforms to the schema it demands, if any
                backend, request, lambda req: _start_stream(backend, call.kind, req, mapping)
            )
            try:
                return await anext(stream), stream
            except StopAsyncIteration:
                raise EngineError(f"deployment {backend.name} ended without output") from None
            except BaseException:
                await stream.aclose()  # type: ignore[attr-defined]
                raise

        first, stream = await self._dispatch(ctx, call, first_delta)
        ctx.first_token_at = ctx.elapsed()
        return _prepend(first, stream)

    @asynccontextmanager
    async def _accounting(self, ctx: RequestContext, *, final: bool = False) -> AsyncIterator[None]:
        """Record the call's outcome, usage and audit leaf however it ends.

        On success the caller resumes only once the leaf is durable (`final`), so the
        client never gets an answer the log does not hold. A failure is recorded too.
        """
        try:
            yield
        except BaseException as exc:
            ctx.outcome = _outcome(exc)
            ctx.status = exc.status_code if isinstance(exc, SouverainError) else 499
            can_wait = not isinstance(exc, GeneratorExit | asyncio.CancelledError)
            await self._account(ctx, wait=can_wait)
            await self._audit(ctx, wait=can_wait)
            raise
        if final:
            await self._account(ctx)
            await self._audit(ctx, wait=True)

    async def _audit(self, ctx: RequestContext, *, wait: bool) -> None:
        if self.audit is None:
            return
        payload = None
        if "request" in ctx.notes:
            body = {"request": ctx.notes["request"], "response": ctx.notes.get("response")}
            payload = Payload(subject=ctx.notes["subject"], body=canonical(body))
        if wait:
            await self.audit.append(request_leaf(ctx), payload)
        else:  # a cancelled call cannot wait; its leaf still goes in
            task = asyncio.create_task(self.audit.append(request_leaf(ctx), payload))
            self._background.add(task)
            task.add_done_callback(self._background.discard)

    async def _account(self, ctx: RequestContext, *, wait: bool = True) -> None:
        cost = self._cost(ctx)
        if self.quotas is not None:
            await self.quotas.settle(ctx, cost, wait=wait)
        if self.usage is not None and ctx.model is not None:
            self.usage.record(ctx, cost)
        model = ctx.model or "unknown"
        self.metrics.model_calls.labels(model, ctx.endpoint, ctx.outcome).inc()
        if ctx.usage is not None:
            self.metrics.tokens.labels(model, "prompt").inc(ctx.usage.prompt_tokens)
            self.metrics.tokens.labels(model, "completion").inc(ctx.usage.completion_tokens)
        if ctx.first_token_at is not None:
            self.metrics.first_token.labels(model).observe(ctx.first_token_at)

    def _cost(self, ctx: RequestContext) -> float:
        if ctx.usage is None or ctx.model is None or not self.catalog.has(ctx.model):
            return 0.0
        pricing = self.catalog.get(ctx.model).config.pricing
        if pricing is None:
            return 0.0
        return pricing.cost(ctx.usage.prompt_tokens, ctx.usage.completion_tokens)


def _subject(ctx: RequestContext, request: CallRequest) -> str:
    """Whose data this is: the request's `user`, else `metadata.subject`, else the key."""
    user = getattr(request, "user", None)
    subject = (request.metadata or {}).get("subject")
    return str(user or subject or ctx.principal.label)


def _chosen(ctx: RequestContext, backend: Backend) -> None:
    ctx.deployment = backend.name
    ctx.jurisdiction = backend.facts.jurisdiction


def _check_capability(model: ServedModel, kind: CallKind) -> None:
    capabilities = model.capabilities()
    if kind == "embeddings" and not capabilities.embeddings:
        raise UnsupportedByModel(f"model {model.id!r} is not an embeddings model", param="model")
    if kind in ("chat", "text") and not capabilities.completion_chat:
        what = "chat" if kind == "chat" else "text"
        raise UnsupportedByModel(
            f"model {model.id!r} does not serve {what} completions", param="model"
        )
    if kind == "fim" and not capabilities.completion_fim:
        raise UnsupportedByModel(
            f"model {model.id!r} does not support fill-in-the-middle completions", param="model"
        )


def _start_stream(
    backend: Backend, kind: CallKind, request: CallRequest, mapping: dict[str, str] | None
) -> AsyncIterator[ChatDelta]:
    if kind == "fim":
        stream = backend.fim(request)  # type: ignore[arg-type]
    elif kind == "text":
        stream = backend.text(request)  # type: ignore[arg-type]
    else:
        stream = backend.chat(request)  # type: ignore[arg-type]
    return restore_stream(stream, mapping) if mapping else stream


async def _call_unary(
    backend: Backend, kind: CallKind, request: CallRequest, mapping: dict[str, str] | None
) -> Completion | Embeddings:
    if kind == "embeddings":
        return await backend.embed(request)  # type: ignore[arg-type]
    if kind == "fim":
        result = await backend.fim_complete(request)  # type: ignore[arg-type]
    elif kind == "text":
        result = await backend.text_complete(request)  # type: ignore[arg-type]
    else:
        result = await backend.chat_complete(request)  # type: ignore[arg-type]
    return restore_completion(result, mapping) if mapping else result


def _wants_logprobs(request: CallRequest) -> bool:
    if isinstance(request, ChatCompletionRequest):
        return bool(request.logprobs)
    return isinstance(request, TextCompletionRequest) and request.logprobs is not None


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
