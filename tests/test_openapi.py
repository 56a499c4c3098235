"""`/openapi.json` and `/docs`: every route is described, the document is valid OpenAPI 3.1,
its request bodies are the protocol's own schemas, its roles are the RBAC table's, and the
reference page loads nothing from another site.

A real `souverain serve` over loopback, its model calls going to a recording upstream (a
named fake; nothing here calls a model). The property-based run over the same document
is tests/test_schemathesis.py.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import httpx
import pytest
from openapi_spec_validator import validate
from pydantic import BaseModel

from souverain.api.openapi import REF, openapi_document, route_methods
from souverain.api.openapi_routes import OPERATIONS
from souverain.app import create_app
from souverain.config import load_settings
from souverain.identity.rbac import GRANTS, ROLES
from souverain.state import AppState

from .conftest import ADMIN_KEY, Server, start_server, stop_server
from .recording_upstream import RecordingUpstream

ROOT = Path(__file__).resolve().parents[1]
HTTP_METHODS = {"get", "put", "post", "delete", "patch", "head", "options", "trace"}


class _NoState:
    """Stands in for AppState while the routes are read (nothing runs)."""

    def __getattr__(self, name: str) -> None:
        return None


@pytest.fixture(scope="module")
def app_routes(tmp_path_factory: pytest.TempPathFactory) -> list[tuple[str, str]]:
    """(method, path) of every route of the app, read from the app itself."""
    tmp = tmp_path_factory.mktemp("openapi-routes")
    settings = load_settings(None, {"data_dir": tmp}, environ={})
    app = create_app(settings, state=cast(AppState, _NoState()))
    return route_methods(app.routes)


@pytest.fixture(scope="module")
def server(
    upstream: RecordingUpstream, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    config = {
        "models": [
            {"id": "cloud", "deployments": [upstream.deployment()]},
            {"id": "emb", "type": "embeddings", "deployments": [upstream.deployment()]},
        ]
    }
    served = start_server(tmp_path_factory.mktemp("openapi"), config)
    yield served
    stop_server(served)


@pytest.fixture(scope="module")
def document(server: Server) -> dict[str, Any]:
    response = httpx.get(server.url + "/openapi.json", timeout=30)  # no credentials needed
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/json")
    return cast(dict[str, Any], response.json())


def _openapi_path(route_path: str) -> str:
    return re.sub(r"\{(\w+)(?::\w+)?\}", r"{\1}", route_path)


def test_every_route_of_the_app_is_in_the_document_method_by_method(
    app_routes: list[tuple[str, str]], document: dict[str, Any]
) -> None:
    missing = [
        f"{method} {path}"
        for method, path in app_routes
        if method.lower() not in document["paths"].get(_openapi_path(path), {})
    ]
    assert not missing, (
        "routes without documentation: add one line each to OPERATIONS in "
        f"src/souverain/api/openapi_routes.py: {missing}"
    )
    documented = sum(len(set(item) & HTTP_METHODS) for item in document["paths"].values())
    assert documented == len(app_routes)  # and nothing the app does not serve


def test_no_line_of_the_table_describes_a_route_that_does_not_exist(
    app_routes: list[tuple[str, str]],
) -> None:
    served = {f"{method} {path}" for method, path in app_routes}
    assert sorted(set(OPERATIONS) - served) == []


def test_a_route_the_table_lacks_is_reported_by_the_comparison(
    app_routes: list[tuple[str, str]],
) -> None:
    """The check above can fail: a route added to the app without its line is missing."""
    from starlette.routing import Route

    async def endpoint(request: object) -> None:  # never called
        raise AssertionError

    routes = [Route("/v1/undocumented", endpoint, methods=["POST", "GET"])]
    assert openapi_document(routes)["paths"] == {}
    assert route_methods(routes) == [("GET", "/v1/undocumented"), ("POST", "/v1/undocumented")]


def test_the_document_is_valid_openapi_3_1(document: dict[str, Any]) -> None:
    assert document["openapi"].startswith("3.1")
    validate(document)  # openapi-spec-validator: raises on any violation


def test_request_bodies_are_the_protocol_models_own_schemas(document: dict[str, Any]) -> None:
    """What the document says a route takes is what the handler validates with."""
    schemas = document["components"]["schemas"]
    checked = 0
    for operation in OPERATIONS.values():
        if isinstance(operation.body, type) and issubclass(operation.body, BaseModel):
            expected = operation.body.model_json_schema(ref_template=REF)
            expected.pop("$defs", None)
            assert schemas[operation.body.__name__] == expected, operation.body.__name__
            checked += 1
    assert checked >= 20


def test_each_operation_names_the_roles_that_may_call_it(document: dict[str, Any]) -> None:
    for path, item in document["paths"].items():
        for method, operation in item.items():
            permission = operation.get("x-permission")
            if permission is None:
                continue
            roles = [role for role in ROLES if role in GRANTS[permission]]
            assert operation["x-roles"] == roles, (method, path)
            assert operation["security"][0] == {"bearerAuth": []}
            assert {"401", "403"} <= set(operation["responses"]), (method, path)


def test_a_role_outside_x_roles_is_refused_403_on_every_admin_route(
    server: Server, document: dict[str, Any]
) -> None:
    """The roles the document names are the ones the server enforces: each admin route,
    called by a key of a role it does not list, answers 403 (before reading the body)."""
    keys = _keys_per_role(server)
    refused = 0
    for path, item in document["paths"].items():
        if not path.startswith("/admin/"):
            continue
        for method, operation in item.items():
            outsiders = [role for role in ROLES if role not in operation["x-roles"]]
            for role in outsiders:
                url = server.url + re.sub(r"\{\w+\}", "1", path)
                response = httpx.request(method.upper(), url, timeout=30,
                                         headers={"Authorization": f"Bearer {keys[role]}"})  # fmt: skip
                assert response.status_code == 403, (role, method, path, response.text)
                assert response.json()["error"]["type"] == "permission_error"
                refused += 1
    assert refused >= 40


def _keys_per_role(server: Server) -> dict[str, str]:
    owner = {"Authorization": f"Bearer {ADMIN_KEY}"}
    keys = {"owner": ADMIN_KEY}
    tenant = httpx.post(server.url + "/admin/v1/tenants", json={"name": "roles"}, headers=owner)
    assert tenant.status_code == 201, tenant.text
    for role in ROLES[1:]:
        user = httpx.post(server.url + "/admin/v1/users", headers=owner,
                          json={"name": f"r-{role}", "role": role, "tenant": "roles"})  # fmt: skip
        assert user.status_code == 201, user.text
        key = httpx.post(server.url + "/admin/v1/keys", headers=owner,
                         json={"name": f"k-{role}", "user_id": user.json()["id"]})  # fmt: skip
        assert key.status_code == 201, key.text
        keys[role] = key.json()["key"]
    return keys


def test_streamed_answers_are_described_as_server_sent_events(document: dict[str, Any]) -> None:
    chat = document["paths"]["/v1/chat/completions"]["post"]["responses"]["200"]["content"]
    assert set(chat) == {"application/json", "text/event-stream"}
    data = chat["text/event-stream"]["schema"]["properties"]["data"]["anyOf"]
    assert {"const": "[DONE]"} in data


def test_errors_have_the_one_error_shape(server: Server, document: dict[str, Any]) -> None:
    """The shared error responses are `ErrorResponse`, which is what the server sends."""
    for name, response in document["components"]["responses"].items():
        schema = response["content"]["application/json"]["schema"]
        assert schema == {"$ref": REF.format(model="ErrorResponse")}, name
    sent = httpx.get(server.url + "/v1/models", timeout=30).json()  # no key: 401
    assert set(sent["error"]) == set(document["components"]["schemas"]["ErrorDetail"]["required"])


# ---- /docs: the page, from the package's own files ------------------------------------------


def test_docs_page_loads_only_its_own_files(server: Server, document: dict[str, Any]) -> None:
    page = httpx.get(server.url + "/docs", timeout=30)
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert "default-src 'self'" in page.headers["content-security-policy"]
    references = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    assert "/docs/docs.js" in references and "/docs/docs.css" in references
    for reference in references:
        assert reference.startswith("/"), reference  # same origin: nothing from a CDN
        asset = httpx.get(server.url + reference, timeout=30)
        assert asset.status_code == 200, reference
        assert not re.search(r"https?://", asset.text), reference
    script = httpx.get(server.url + "/docs/docs.js", timeout=30)
    assert script.headers["content-type"].startswith("text/javascript")
    assert 'fetch("/openapi.json")' in script.text


def test_docs_serves_no_other_file_of_the_package(server: Server) -> None:
    for name in ("index.html", "..%2Fopenapi.py", "..%2F..%2F__init__.py", "docs.js.bak"):
        response = httpx.get(f"{server.url}/docs/{name}", timeout=30)
        assert response.status_code == 404, name
        assert response.json()["error"]["code"] == "unknown_url"


def test_the_page_and_its_assets_are_in_the_built_wheel(tmp_path: Path) -> None:
    """`pip install .` ships the page: the wheel built from this tree carries its files.
    (Built from a copy, so the build leaves nothing in the working tree.)"""
    source = tmp_path / "source"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    shutil.copytree(ROOT / "src", source / "src",
                    ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))  # fmt: skip
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet",
         "--wheel-dir", str(tmp_path / "wheels"), str(source)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert built.returncode == 0, built.stderr
    (wheel,) = (tmp_path / "wheels").glob("souverain-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for asset in ("index.html", "docs.js", "docs.css"):
        assert f"souverain/api/docs_static/{asset}" in names


def test_a_405_lists_in_allow_every_method_the_path_serves(server: Server) -> None:
    """RFC 9110: a 405 carries `Allow`. Found by the property-based run: Starlette's
    answer had none (our handler dropped it), and its own would name only the first of
    the routes sharing a path. A path that is a route of its own is not also read as an
    id (POST /v1/libraries/search is not GET /v1/libraries/{library_id})."""
    owner = {"Authorization": f"Bearer {ADMIN_KEY}"}
    expected = {
        "/admin/v1/tenants": "GET, HEAD, POST",
        "/admin/v1/users/7": "DELETE, GET, HEAD, PATCH",
        "/v1/libraries/search": "POST",
        "/v1/chat/completions": "POST",
    }
    for path, allow in expected.items():
        response = httpx.request("TRACE", server.url + path, headers=owner, timeout=30)
        assert response.status_code == 405, path
        assert response.headers["allow"] == allow, path
        assert response.json()["error"]["code"] == "method_not_allowed"
