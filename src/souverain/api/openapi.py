"""`GET /openapi.json`: the OpenAPI 3.1 description of every route, generated, not written.

The paths come from the app's own route table (`request.app.routes`), each method of each
`Route`; what a route takes and answers comes from api/openapi_routes.py (one line per
route: how to add yours is in that module's docstring); the request bodies are the
protocol's pydantic models (`model_json_schema`), the very classes the handlers validate
with, so the document cannot say one thing while the server accepts another.

A route with no line in the table is left out of the document and logged;
tests/test_openapi.py fails on it, method by method.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Sequence
from typing import Any, cast

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from .. import __version__
from ..identity.oidc import IdentityProviderConfig
from ..identity.rbac import GRANTS, ROLES, Permission
from .http import JSON, app_state
from .openapi_routes import OPERATIONS
from .openapi_schemas import RESPONSE_MODELS, ErrorResponse
from .openapi_spec import Access, Operation

log = logging.getLogger("souverain.openapi")

REF = "#/components/schemas/{model}"
# Numeric ids in paths (api/admin_access.py `path_id`): anything else answers 404.
INTEGER_PATH_PARAMS = frozenset({"tenant_id", "team_id", "user_id", "key_id"})
_CONVERTOR = re.compile(r"\{(\w+)(?::\w+)?\}")

ERROR_MEANING = {
    400: "Invalid request: malformed JSON, a field or parameter out of its bounds, or a "
    "request the model cannot serve (`code` says which).",
    401: "Missing or invalid credentials (always the same body).",
    403: "The caller's role, scopes or classification ceiling do not allow it.",
    404: "No such object, model or route, or one outside the caller's scope.",
    408: "The body arrived too slowly (server.body_timeout_s).",
    409: "A name that exists, an object in use, or a state that forbids it.",
    413: "The body is larger than server.max_body_bytes (or the upload limit).",
    429: "A rate limit, concurrency limit or budget is reached (Retry-After).",
    501: "Not served by this gateway.",
    502: "The engine failed.",
    503: "An engine, or a guard every call passes (DLP, audit, quotas), cannot run: "
    "fail closed (Retry-After).",
    504: "An upstream the gateway calls (an MCP connector) did not answer in time.",
}


def sse_event(events: type[BaseModel] | None) -> dict[str, Any]:
    """One server-sent event of a stream (OpenAPI 3.1 describes each event with `schema`):
    its `data` is an `events` object as JSON (a ChatCompletionChunk unless the route says),
    an ErrorResponse when the stream fails after it started, or `[DONE]`."""
    chunk = events.__name__ if events is not None else "ChatCompletionChunk"
    as_json = {
        "type": "string",
        "contentMediaType": "application/json",
        "contentSchema": {"anyOf": [{"$ref": REF.format(model=chunk)},
                                    {"$ref": REF.format(model="ErrorResponse")}]},
    }  # fmt: skip
    return {
        "type": "object",
        "required": ["data"],
        "properties": {
            "data": {"anyOf": [{"const": "[DONE]"}, as_json]},
            "event": {"type": "string"},
        },
    }


RETRY_AFTER = {"Retry-After": {"schema": {"type": "integer"}, "description": "Seconds."}}


def statuses(operation: Operation, path_params: Sequence[str]) -> list[int]:
    """The error statuses a route can answer, from what it does."""
    codes = set(operation.errors)
    if operation.body is not None or operation.query or path_params:
        codes.add(400)
    if operation.body is not None:
        codes.update({408, 413})
    if path_params:
        codes.add(404)
    if operation.access == "scrape":
        codes.update({401, 403, 404})
    elif operation.access != "public":
        # Authentication, then the endpoint scopes and role; every refusal is audited,
        # so an audit log that cannot write answers 503 rather than act unrecorded.
        codes.update({401, 403, 503})
    if operation.access == "key":  # libraries: may be switched off (404 for all)
        codes.add(404)
    if operation.call:
        codes.update({400, 404, 429, 502, 503})
    return sorted(codes)


def _security(operation: Operation, oidc: Sequence[str]) -> list[dict[str, list[str]]]:
    if operation.access == "public":
        return []
    if operation.access == "scrape":
        return [{}, {"scrapeToken": []}]  # loopback clients need none
    alternatives: list[dict[str, list[str]]] = [{"bearerAuth": []}]
    return alternatives + [{name: []} for name in oidc]


def _who(operation: Operation) -> str:
    access = operation.access
    if access == "public":
        return "No credentials needed."
    if access == "scrape":
        return "Loopback clients, or the metrics scrape token (metrics.scrape_token)."
    if access == "key":
        return (
            "Any valid key or token whose endpoint scopes include `libraries`; access is "
            "then checked on the library (owner, editor, viewer: docs/libraries.md)."
        )
    return f"Permission `{access}`: roles {', '.join(_roles(access) or ())}."


def _roles(access: Access) -> list[str] | None:
    """The roles holding the permission; None for routes no permission guards."""
    if access in ("key", "public", "scrape"):
        return None
    granted = GRANTS[cast(Permission, access)]
    return [role for role in ROLES if role in granted]


def _parameters(operation: Operation, path_params: Sequence[str]) -> list[dict[str, Any]]:
    params: list[dict[str, Any]] = []
    for name in path_params:
        schema: dict[str, Any] = {"type": "string", "minLength": 1}
        if name in INTEGER_PATH_PARAMS:
            schema = {"type": "integer", "minimum": 0, "maximum": 2**31 - 1}
        params.append({"name": name, "in": "path", "required": True, "schema": schema})
    for query in operation.query:
        param: dict[str, Any] = {"name": query.name, "in": "query", "schema": query.schema}
        if query.description:
            param["description"] = query.description
        if query.required:
            param["required"] = True
        params.append(param)
    return params


def _request_body(operation: Operation) -> dict[str, Any] | None:
    body = operation.body
    if body is None:
        return None
    if body == "multipart":
        upload: dict[str, Any] = {
            "type": "object",
            "required": ["file"],
            "properties": {
                "file": {"type": "string", "contentMediaType": "application/octet-stream"}
            },
        }
        if operation.form is not None:  # the fields beside the file, inline
            fields = operation.form.model_json_schema()
            upload["properties"] = {**fields.get("properties", {}), **upload["properties"]}
            upload["required"] = ["file", *fields.get("required", [])]
            if "dependentRequired" in fields:
                upload["dependentRequired"] = fields["dependentRequired"]
        return {"required": True, "content": {"multipart/form-data": {"schema": upload}}}
    assert not isinstance(body, str)
    return {"required": True, "content": {"application/json": {"schema": _ref(body)}}}


def _ref(model: type[BaseModel]) -> dict[str, str]:
    return {"$ref": REF.format(model=model.__name__)}


def _responses(operation: Operation, path: str, path_params: Sequence[str]) -> dict[str, Any]:
    responses: dict[str, Any] = {}
    if operation.status == 204:
        responses["204"] = {"description": "Done; no content."}
    elif path == "/metrics":
        text = {"text/plain": {"schema": {"type": "string"}}}
        responses["200"] = {"description": "Prometheus text format 0.0.4.", "content": text}
    elif operation.binary:
        octets = {"application/octet-stream": {"schema": {"type": "string"}}}
        responses["200"] = {"description": "The bytes, as stored.", "content": octets}
    elif path == "/docs" or path.startswith("/docs/"):
        html = {"text/html": {"schema": {"type": "string"}}} if path == "/docs" else {
            "text/css": {"schema": {"type": "string"}},
            "text/javascript": {"schema": {"type": "string"}},
        }  # fmt: skip
        responses["200"] = {"description": "The API reference page.", "content": html}
    else:
        content: dict[str, Any] = {}
        if operation.ok is not None:
            content["application/json"] = {"schema": _ref(operation.ok)}
        if operation.stream:
            content["text/event-stream"] = {"schema": sse_event(operation.events)}
        description = "OK" if operation.status == 200 else "Created"
        if operation.stream:
            description += (
                "; with `stream: true`, server-sent events: one `data: {chunk}` per "
                "ChatCompletionChunk, then `data: [DONE]`"
            )
        responses[str(operation.status)] = {"description": description, "content": content}
    for code in statuses(operation, path_params):
        responses[str(code)] = {"$ref": f"#/components/responses/Error{code}"}
    return responses


def _error_responses() -> dict[str, Any]:
    """One shared response object per error status: the body is `ErrorResponse` always."""
    found = {}
    for code, meaning in ERROR_MEANING.items():
        error: dict[str, Any] = {
            "description": meaning,
            "content": {"application/json": {"schema": _ref(ErrorResponse)}},
        }
        if code in (429, 503):
            error["headers"] = RETRY_AFTER
        found[f"Error{code}"] = error
    return found


def _operation(
    method: str, route_path: str, operation: Operation, oidc: Sequence[str]
) -> tuple[str, dict[str, Any]]:
    path = _CONVERTOR.sub(r"{\1}", route_path)
    names: list[str] = _CONVERTOR.findall(route_path)
    description = _who(operation)
    if operation.description:
        description = f"{operation.description}\n\n{description}"
    document: dict[str, Any] = {
        "operationId": _operation_id(method, path),
        "summary": operation.summary,
        "description": description,
        "tags": [operation.tag],
        "security": _security(operation, oidc),
        "responses": _responses(operation, path, names),
    }
    roles = _roles(operation.access)
    if roles is not None:
        document["x-permission"] = operation.access
        document["x-roles"] = roles
    parameters = _parameters(operation, names)
    if parameters:
        document["parameters"] = parameters
    body = _request_body(operation)
    if body is not None:
        document["requestBody"] = body
    return path, document


def _operation_id(method: str, path: str) -> str:
    words = re.sub(r"[^A-Za-z0-9]+", "_", path).strip("_")
    return f"{method.lower()}_{words}"


def route_methods(routes: Iterable[BaseRoute]) -> list[tuple[str, str]]:
    """(method, path as declared) for every method of every route; HEAD goes with GET."""
    found: list[tuple[str, str]] = []
    for route in routes:
        if isinstance(route, Route) and route.methods:
            found.extend((method, route.path) for method in sorted(route.methods - {"HEAD"}))
    return found


def _components(oidc: Sequence[IdentityProviderConfig]) -> dict[str, Any]:
    request_models = {op.body for op in OPERATIONS.values() if isinstance(op.body, type)}
    pairs = [(model, "validation") for model in sorted(request_models, key=lambda m: m.__name__)]
    answers = {*RESPONSE_MODELS, *(op.events for op in OPERATIONS.values() if op.events)}
    answers |= {op.ok for op in OPERATIONS.values() if op.ok}  # lines that bring their own
    pairs += [(model, "serialization") for model in sorted(answers, key=lambda m: m.__name__)]
    _, definitions = models_json_schema(pairs, ref_template=REF)  # type: ignore[arg-type]
    schemes: dict[str, Any] = {
        "bearerAuth": {
            "type": "http",
            "scheme": "bearer",
            "description": "An API key (`sk-sv-...`), or an access token from one of the "
            "identity providers this gateway trusts (identity.providers).",
        },
        "scrapeToken": {
            "type": "http",
            "scheme": "bearer",
            "description": "The metrics scrape token (only /metrics, only off loopback).",
        },
    }
    for provider in oidc:
        schemes[_oidc_name(provider)] = {
            "type": "openIdConnect",
            "openIdConnectUrl": provider.issuer.rstrip("/") + "/.well-known/openid-configuration",
            "description": f"A bearer access token issued by {provider.name}.",
        }
    return {
        "schemas": definitions.get("$defs", {}),
        "responses": _error_responses(),
        "securitySchemes": schemes,
    }


def _oidc_name(provider: IdentityProviderConfig) -> str:
    return "oidc_" + re.sub(r"[^A-Za-z0-9_]+", "_", provider.name)


def openapi_document(
    routes: Iterable[BaseRoute], providers: Sequence[IdentityProviderConfig] = ()
) -> dict[str, Any]:
    oidc = [_oidc_name(provider) for provider in providers]
    paths: dict[str, dict[str, Any]] = {}
    for method, route_path in route_methods(routes):
        operation = OPERATIONS.get(f"{method} {route_path}")
        if operation is None:
            log.warning("route %s %s has no line in api/openapi_routes.py", method, route_path)
            continue
        path, document = _operation(method, route_path, operation, oidc)
        paths.setdefault(path, {})[method.lower()] = document
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Souverain",
            "version": __version__,
            "summary": "A sovereign AI gateway speaking the OpenAI and Mistral APIs.",
            "description": "Errors have one shape everywhere (`ErrorResponse`). Model calls "
            "answer `text/event-stream` when the body asks `stream: true`. The roles each "
            "route needs are in its description and in `x-roles`.",
        },
        "paths": paths,
        "components": _components(providers),
    }


async def openapi_json(request: Request) -> Response:
    """Built once per app: the routes and the configuration do not change while it runs."""
    document = getattr(request.app.state, "souverain_openapi", None)
    if document is None:
        providers = app_state(request).settings.identity.providers
        document = openapi_document(request.app.routes, providers)
        request.app.state.souverain_openapi = document
    return JSON(document)
