"""`create_app(settings)`: the one place the application is assembled. Importing is free."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy import Engine
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from .agents.conversation_store import ConversationStore
from .agents.store import ResponseStore
from .api import admin, completions, directory, embeddings, health, keys, models, usage
from .api import audit as audit_routes
from .api import responses as responses_routes
from .api.agents import agent_routes
from .api.batches import batch_routes
from .api.connectors import connector_routes
from .api.conversations import conversation_routes
from .api.docs_page import docs, docs_asset
from .api.files import file_routes, upload_body_limits
from .api.http import error_response, method_not_allowed
from .api.libraries import library_routes
from .api.middleware import AuditCoverage, BodyLimit, RefuseNul, RequestMetrics
from .api.ocr import ocr as ocr_route
from .api.openapi import openapi_json
from .api.text_completions import text_completions
from .audit.opening import open_audit_log, purge_payloads
from .audit.verify import last_configuration
from .batch.lines import LineStore
from .batch.retention import purge_finished_batches
from .batch.service import BatchService
from .config import Settings
from .dlp.engine import DlpEngine, build_scanner
from .errors import InvalidRequest, NotFound, SouverainError
from .files.store import FileStore
from .identity.authenticate import Authenticator
from .identity.directory import Directory
from .identity.invalidation import CacheInvalidation
from .identity.keys import KeyStore, load_pepper
from .identity.oidc import OidcVerifier
from .jobs.runner import JobHandler, JobRunner
from .jobs.store import JobStore
from .library.service import LibraryService
from .observability.metrics import Metrics
from .ocr.call import OcrCalls
from .pipeline import Pipeline
from .plugins import load_engine_registry
from .policy.engine import PolicyEngine
from .quotas.factory import open_quota_store
from .quotas.guard import QuotaGuard
from .quotas.limits import Scope
from .routing.health_checks import HealthChecker
from .routing.killswitch import KillSwitch
from .routing.models import ModelCatalog
from .routing.router import Router
from .state import AppState
from .store.database import database_url as store_url
from .store.database import open_database, upgrade
from .store.keyfile import load_or_create_key_file
from .store.private_files import private_directory
from .usage.recorder import UsageRecorder

log = logging.getLogger("souverain")


def build_state(settings: Settings, *, database_url: str | None = None) -> AppState:
    private_directory(settings.data_dir)  # 0700, its files 0600
    database = open_database(store_url(database_url or settings.database_url, settings.data_dir))
    upgrade(database)
    keys = KeyStore(database, load_pepper(settings.data_dir), cache_s=settings.identity.key_cache_s)
    catalog = ModelCatalog.from_settings(settings, load_engine_registry())

    def queue_depths() -> list[tuple[str, str, int]]:
        return [(m.id, b.name, b.queue_depth()) for m in catalog.models for b in m.backends]

    metrics = Metrics(queue_depths)
    killswitch = KillSwitch(database, settings.redis_url)
    audit = open_audit_log(settings, database)
    policy = PolicyEngine(settings.policy)
    usage_recorder = UsageRecorder(database)

    async def spent(scope: Scope, since: float) -> tuple[int, float]:
        return await asyncio.to_thread(usage_recorder.spent, scope, since)

    providers = settings.identity.providers
    pipeline = Pipeline(
        authenticator=Authenticator(keys, database, OidcVerifier(providers) if providers else None),
        catalog=catalog,
        router=Router(policy, killswitch, settings.routing),
        metrics=metrics,
        audit=audit,
        dlp=open_dlp(settings, policy),
        quotas=QuotaGuard(
            open_quota_store(settings.redis_url, spent, lease_s=settings.quotas.lease_s),
            settings.quotas,
        ),
        usage=usage_recorder,
    )
    ocr = OcrCalls(settings, pipeline)  # one OCR engine and queue: the route and batch lines
    return AppState(
        settings=settings,
        database=database,
        keys=keys,
        directory=Directory(database),
        catalog=catalog,
        metrics=metrics,
        pipeline=pipeline,
        audit=audit,
        usage=usage_recorder,
        libraries=LibraryService(settings, database, pipeline)
        if settings.libraries.enabled
        else None,
        batches=open_batches(settings, database, pipeline, ocr),
        ocr=ocr,
    )


def open_batches(
    settings: Settings, database: Engine, pipeline: Pipeline, ocr: OcrCalls | None = None
) -> BatchService | None:
    if not settings.batch.enabled:
        return None
    files = FileStore(database, settings.files)
    return BatchService(
        settings.batch, JobStore(database), LineStore(database), files, pipeline, ocr
    )


def open_dlp(settings: Settings, policy: PolicyEngine) -> DlpEngine | None:
    if not settings.dlp.enabled:
        return None
    secret = load_or_create_key_file(settings.data_dir / "dlp.key")
    return DlpEngine(settings.dlp, policy, build_scanner(settings.dlp), secret)


async def record_configuration(settings: Settings, state: AppState) -> None:
    """An admin leaf whenever the policy or the retention settings differ from the last
    ones recorded: configuration changes are admin actions too."""
    assert state.audit is not None
    current = {
        "policy": state.pipeline.router.policy.version,
        "retention": settings.audit.model_dump(
            mode="json", include={"payloads", "retention_floor_days"}
        ),
    }
    if await asyncio.to_thread(last_configuration, state.database) != current:
        await state.audit.append({"kind": "admin", "principal": "config", "action": "configuration",
                                  "target": current})  # fmt: skip


def create_app(settings: Settings, state: AppState | None = None) -> Starlette:
    state = state or build_state(settings)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await state.pipeline.router.killswitch.start()
        invalidation = None
        if settings.redis_url:
            invalidation = CacheInvalidation(state.keys, settings.redis_url)
            await invalidation.start()
        if state.usage is not None:
            await state.usage.start()
        if state.audit is not None:
            await state.audit.start()
            await asyncio.to_thread(purge_payloads, settings, state.audit)
            await record_configuration(settings, state)
        # Conversations follow their tenant's payload retention (agents/conversation_store.py).
        days = {tenant: rule.retention_days for tenant, rule in settings.audit.payloads.items()}
        await asyncio.to_thread(ConversationStore(state.database).purge_by_retention, days)
        # Stored responses index conversations: the rows of those gone (retention, deletion).
        await asyncio.to_thread(ResponseStore(state.database).drop_orphans)
        await asyncio.to_thread(FileStore(state.database, settings.files).purge_expired)
        # Finished batches follow the same retention as conversations (batch/retention.py).
        await asyncio.to_thread(purge_finished_batches, state.database, days)
        for backend in state.catalog.backends():
            await backend.start()
            log.info("deployment %s ready (%s)", backend.name, backend.kind)
        checker = HealthChecker(state.pipeline.router, state.catalog.backends())
        checker.start()
        runner = open_runner(settings, state)
        if runner is not None:
            await runner.start()  # background jobs (batches, ingest), once the engines are up
        state.started = True
        try:
            yield
        finally:
            state.started = False
            if runner is not None:
                await runner.close()  # gives its leases back: another replica resumes
            await checker.close()
            for backend in state.catalog.backends():
                await backend.close()
            await state.pipeline.router.killswitch.close()
            if invalidation is not None:
                await invalidation.close()
            if state.usage is not None:
                await state.usage.close()
            if state.pipeline.quotas is not None:
                await state.pipeline.quotas.store.aclose()
            await state.pipeline.authenticator.aclose()
            if state.audit is not None:
                await state.audit.close()
            state.database.dispose()

    routes = [
        Route("/v1/chat/completions", completions.chat_completions, methods=["POST"]),
        Route("/v1/fim/completions", completions.fim_completions, methods=["POST"]),
        Route("/v1/completions", text_completions, methods=["POST"]),
        Route("/v1/embeddings", embeddings.embeddings, methods=["POST"]),
        Route("/v1/responses", responses_routes.create_response, methods=["POST"]),
        *response_routes(),
        Route("/v1/ocr", ocr_route, methods=["POST"]),
        Route("/v1/models", models.list_models, methods=["GET"]),
        Route("/v1/models/{model_id:path}", models.get_model, methods=["GET"]),
        Route("/admin/v1/providers", admin.list_providers, methods=["GET"]),
        Route("/admin/v1/providers/cut", admin.cut_provider, methods=["POST"]),
        Route("/admin/v1/providers/restore", admin.restore_provider, methods=["POST"]),
        *identity_routes(),
        *library_routes(),
        *agent_routes(),
        *connector_routes(),
        *conversation_routes(),
        *file_routes(),
        *batch_routes(),
        Route("/admin/v1/audit/leaves", audit_routes.leaves, methods=["GET"]),
        Route("/admin/v1/audit/checkpoint", audit_routes.checkpoint, methods=["GET"]),
        Route("/admin/v1/audit/proof/inclusion", audit_routes.inclusion, methods=["GET"]),
        Route("/admin/v1/audit/proof/consistency", audit_routes.consistency, methods=["GET"]),
        Route("/admin/v1/audit/verify", audit_routes.verify, methods=["GET"]),
        Route("/admin/v1/audit/erase", audit_routes.erase, methods=["POST"]),
        Route("/healthz", health.healthz, methods=["GET"]),
        Route("/readyz", health.readyz, methods=["GET"]),
        Route("/metrics", health.metrics, methods=["GET"]),
        Route("/openapi.json", openapi_json, methods=["GET"]),  # see api/openapi_routes.py
        Route("/docs", docs, methods=["GET"]),
        Route("/docs/{asset}", docs_asset, methods=["GET"]),
    ]
    app = Starlette(
        routes=routes,
        middleware=[
            Middleware(RequestMetrics, metrics=state.metrics),
            Middleware(RefuseNul),
            # A file upload streams to disk (files/upload.py) and has its own limit.
            Middleware(
                BodyLimit,
                max_bytes=settings.server.max_body_bytes,
                routes=upload_body_limits(settings.files),
            ),
            Middleware(AuditCoverage, audit=state.audit),
        ],
        exception_handlers={
            SouverainError: _souverain_error,
            HTTPException: _http_error,
            Exception: _unexpected_error,
        },
        lifespan=lifespan,
    )
    app.state.souverain = state
    return app


def open_runner(settings: Settings, state: AppState) -> JobRunner | None:
    """This replica's job runner (docs/jobs.md), with the handlers of every job kind."""
    handlers: dict[str, JobHandler] = {}
    for service in (state.batches, state.libraries):
        if service is not None:
            handlers.update(service.handlers())
    if not settings.jobs.enabled or not handlers:
        return None
    runner = JobRunner(JobStore(state.database), handlers, settings.jobs)
    for service in (state.batches, state.libraries):
        if service is not None:
            service.runner = runner
    return runner


def response_routes() -> list[Route]:
    """`/v1/responses/{id}`: stored responses (docs/responses.md)."""
    one = "/v1/responses/{response_id}"
    return [
        Route(one, responses_routes.get_response, methods=["GET"]),
        Route(one, responses_routes.delete_response, methods=["DELETE"]),
        Route(f"{one}/input_items", responses_routes.list_input_items, methods=["GET"]),
    ]


def identity_routes() -> list[Route]:
    """`/admin/v1/`: tenants, teams, users, keys, roles and usage (docs/identity.md)."""
    v1 = "/admin/v1"
    return [
        Route(f"{v1}/tenants", directory.create_tenant, methods=["POST"]),
        Route(f"{v1}/tenants", directory.list_tenants, methods=["GET"]),
        Route(f"{v1}/tenants/{{tenant_id}}", directory.get_tenant, methods=["GET"]),
        Route(f"{v1}/tenants/{{tenant_id}}", directory.update_tenant, methods=["PATCH"]),
        Route(f"{v1}/tenants/{{tenant_id}}", directory.delete_tenant, methods=["DELETE"]),
        Route(f"{v1}/teams", directory.create_team, methods=["POST"]),
        Route(f"{v1}/teams", directory.list_teams, methods=["GET"]),
        Route(f"{v1}/teams/{{team_id}}", directory.get_team, methods=["GET"]),
        Route(f"{v1}/teams/{{team_id}}", directory.update_team, methods=["PATCH"]),
        Route(f"{v1}/teams/{{team_id}}", directory.delete_team, methods=["DELETE"]),
        Route(f"{v1}/teams/{{team_id}}/members", directory.add_member, methods=["POST"]),
        Route(
            f"{v1}/teams/{{team_id}}/members/{{user_id}}",
            directory.remove_member,
            methods=["DELETE"],
        ),
        Route(f"{v1}/users", directory.create_user, methods=["POST"]),
        Route(f"{v1}/users", directory.list_users, methods=["GET"]),
        Route(f"{v1}/users/{{user_id}}", directory.get_user, methods=["GET"]),
        Route(f"{v1}/users/{{user_id}}", directory.update_user, methods=["PATCH"]),
        Route(f"{v1}/users/{{user_id}}", directory.delete_user, methods=["DELETE"]),
        Route(f"{v1}/roles", directory.list_roles, methods=["GET"]),
        Route(f"{v1}/keys", keys.create_key, methods=["POST"]),
        Route(f"{v1}/keys", keys.list_keys, methods=["GET"]),
        Route(f"{v1}/keys/{{key_id}}", keys.get_key, methods=["GET"]),
        Route(f"{v1}/keys/{{key_id}}", keys.revoke_key, methods=["DELETE"]),
        Route(f"{v1}/usage", usage.usage, methods=["GET"]),
    ]


async def _souverain_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, SouverainError)
    return error_response(exc)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if exc.status_code == 404:
        return error_response(NotFound(f"no route {request.url.path}", code="unknown_url"))
    if exc.status_code == 405:
        return method_not_allowed(request)
    return error_response(InvalidRequest(str(exc.detail)))


async def _unexpected_error(request: Request, exc: Exception) -> Response:
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    return error_response(SouverainError("internal error; the server log has the details"))
