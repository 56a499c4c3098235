"""Bad input is a 400, never a 500: numbers past any column, days past the calendar,
JSON nested past any payload. Through a real `souverain serve`, on SQLite and PostgreSQL
(where an id past 32 bits is an overflow in the driver, not an empty answer)."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from souverain.jsonsafe import JsonTooDeep, parse_json_bounded

from .conftest import ADMIN_KEY, Server, start_server, stop_server
from .databases import server_database
from .recording_upstream import RecordingUpstream

HUGE = [
    "99999999999999999999999999999",  # past 64 bits
    "9223372036854775808",  # 2**63
    "2147483648",  # 2**31: past PostgreSQL's integer
    "-1",
    "²",  # str.isdigit() says yes, int() says no
    "١٢",  # Arabic-Indic digits: int() reads them
    "1e3",
    "0x10",
    " 7",
    "7 ",
    "1_000",
]
CHAT = {"model": "cloud", "messages": [{"role": "user", "content": "bonjour"}], "max_tokens": 4}


def nested(depth: int, leaf: Any = 1) -> Any:
    value = leaf
    for _ in range(depth):
        value = {"a": value}
    return value


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def server(
    request: pytest.FixtureRequest,
    upstream: RecordingUpstream,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Server]:
    tmp = tmp_path_factory.mktemp(f"bad-input-{request.param}")
    with server_database(request.param, tmp) as url:
        config = {
            "models": [
                {"id": "cloud", "deployments": [upstream.deployment()]},
                {"id": "emb", "type": "embeddings", "deployments": [upstream.deployment()]},
            ],
        }
        server = start_server(tmp, config, env={"SOUVERAIN_DATABASE_URL": url})
        try:
            yield server
        finally:
            stop_server(server)


@pytest.fixture(scope="module")
def without_dlp(
    upstream: RecordingUpstream, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    """No DLP stage: the body reader alone stands between a deep body and the engines."""
    config = {
        "models": [
            {"id": "cloud", "deployments": [upstream.deployment()]},
            {"id": "emb", "type": "embeddings", "deployments": [upstream.deployment()]},
        ],
        "dlp": {"enabled": False},
    }
    server = start_server(tmp_path_factory.mktemp("bad-input-no-dlp"), config)
    yield server
    stop_server(server)


def call(server: Server, method: str, path: str, body: Any = None, **kwargs: Any) -> httpx.Response:
    headers = {"Authorization": f"Bearer {ADMIN_KEY}"}
    return httpx.request(
        method, server.url + path, headers=headers, json=body, timeout=60, **kwargs
    )


def assert_400(response: httpx.Response, param: str | None = None) -> None:
    assert response.status_code == 400, (response.request.url, response.text)
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error"
    if param is not None:
        assert error["param"] == param, error


@pytest.fixture(scope="module")
def library_id(server: Server) -> str:
    response = call(server, "POST", "/v1/libraries", {"name": "bad-input"})
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


@pytest.mark.parametrize("value", HUGE)
@pytest.mark.parametrize(
    ("path", "param"),
    [
        ("/admin/v1/audit/leaves?after={}", "after"),
        ("/admin/v1/audit/leaves?limit={}", "limit"),
        ("/admin/v1/audit/proof/inclusion?index=0&size={}", "size"),
        ("/admin/v1/audit/proof/inclusion?index={}&size=1", "index"),
        ("/admin/v1/audit/proof/consistency?old_size=1&new_size={}", "new_size"),
        ("/v1/libraries?page={}", "page"),
        ("/v1/libraries?page_size={}", "page_size"),
    ],
)
def test_integers_in_query_strings(server: Server, path: str, param: str, value: str) -> None:
    assert_400(call(server, "GET", path.format(value)), param)


@pytest.mark.parametrize("value", HUGE)
@pytest.mark.parametrize("param", ["page", "page_size"])
def test_integers_in_document_listings(
    server: Server, library_id: str, param: str, value: str
) -> None:
    path = f"/v1/libraries/{library_id}/documents?{param}={value}"
    assert_400(call(server, "GET", path), param)


def test_a_page_token_past_any_offset(server: Server) -> None:
    token = base64.urlsafe_b64encode(b"offset:" + b"9" * 30).decode().rstrip("=")
    assert_400(call(server, "GET", f"/v1/libraries?page_token={token}"), "page_token")


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "1e999", "-5", "9" * 400])
def test_timestamps_in_query_strings(server: Server, value: str) -> None:
    assert_400(call(server, "GET", f"/admin/v1/audit/leaves?since={value}"), "since")
    assert_400(call(server, "GET", f"/admin/v1/audit/leaves?until={value}"), "until")


@pytest.mark.parametrize("value", ["9999-12-31", "0001-01-01", "2026-02-30", "2026-1-1x"])
def test_days_in_the_usage_report(server: Server, value: str) -> None:
    assert_400(call(server, "GET", f"/admin/v1/usage?start={value}"), "start")
    assert_400(call(server, "GET", f"/admin/v1/usage?end={value}"), "end")


def test_a_valid_query_still_answers(server: Server) -> None:
    assert call(server, "GET", "/admin/v1/usage?start=2026-01-01&end=9999-12-30").status_code == 200
    assert call(server, "GET", "/admin/v1/audit/leaves?after=0&limit=2&since=0").status_code == 200
    assert call(server, "GET", "/v1/libraries?page=0&page_size=1000").status_code == 200


@pytest.mark.parametrize("depth", [65, 1_000, 100_000])
def test_a_body_nested_too_deep(server: Server, depth: int) -> None:
    body = {**CHAT, "x_extra": nested(depth)} if depth < 1_000 else None
    content = None if body else ('{"x":' * depth + "1" + "}" * depth).encode()
    response = httpx.post(
        server.url + "/v1/chat/completions",
        json=body,
        content=content,
        headers={"Authorization": f"Bearer {ADMIN_KEY}", "Content-Type": "application/json"},
        timeout=60,
    )
    assert_400(response)


def post_raw(server: Server, route: str, content: str) -> httpx.Response:
    headers = {"Authorization": f"Bearer {ADMIN_KEY}", "Content-Type": "application/json"}
    return httpx.post(server.url + route, content=content.encode(), headers=headers, timeout=60)


@pytest.mark.parametrize("field", ["metadata", "x_extra"])
@pytest.mark.parametrize("route", ["/v1/chat/completions", "/v1/embeddings"])
@pytest.mark.parametrize("dlp", [True, False])
def test_metadata_nested_1000_deep(
    server: Server, without_dlp: Server, dlp: bool, route: str, field: str
) -> None:
    body = {**CHAT} if route == "/v1/chat/completions" else {"model": "emb", "input": "x"}
    deep = '{"a":' * 1_000 + "1" + "}" * 1_000  # below orjson's own limit of 1,024
    content = json.dumps(body)[:-1] + f', "{field}": ' + deep + "}"
    assert_400(post_raw(server if dlp else without_dlp, route, content))


def test_metadata_deeper_or_larger_than_the_protocol_allows(server: Server) -> None:
    assert_400(call(server, "POST", "/v1/chat/completions", {**CHAT, "metadata": nested(9)}),
               "metadata")  # fmt: skip
    large = {f"k{i}": "v" * 100 for i in range(200)}  # 20 KiB
    assert_400(call(server, "POST", "/v1/chat/completions", {**CHAT, "metadata": large}),
               "metadata")  # fmt: skip
    ok = {"team": "payments", "tags": ["a", "b"], "trace": {"id": "t-1"}}
    assert call(server, "POST", "/v1/chat/completions", {**CHAT, "metadata": ok}).status_code == 200


@pytest.mark.parametrize("where", ["arguments", "tool_result"])
def test_json_nested_100000_deep_inside_tool_arguments(server: Server, where: str) -> None:
    deep = "[" * 100_000 + "]" * 100_000
    call_ = {"id": "call_1", "type": "function", "function": {"name": "f", "arguments": deep}}
    messages: list[dict[str, Any]] = [
        {"role": "user", "content": "x"},
        {"role": "assistant", "content": None, "tool_calls": [call_]},
        {
            "role": "tool",
            "tool_call_id": "call_1",
            "content": deep if where == "tool_result" else "1",
        },
    ]
    if where == "tool_result":
        call_["function"]["arguments"] = "{}"
    response = call(server, "POST", "/v1/chat/completions", {**CHAT, "messages": messages})
    assert_400(response)


def test_the_bounded_parser() -> None:
    assert parse_json_bounded('{"a": [1, {"b": "c"}]}') == {"a": [1, {"b": "c"}]}
    assert parse_json_bounded(json.dumps(nested(63))) == nested(63)
    for depth in (65, 1_000, 100_000):
        with pytest.raises(JsonTooDeep):
            parse_json_bounded("[" * depth + "]" * depth)
    with pytest.raises(ValueError):  # JsonTooDeep is one, and so is invalid JSON
        parse_json_bounded("[" * 100_000)
    assert issubclass(JsonTooDeep, ValueError)


@pytest.mark.parametrize(
    "path",
    ["/v1/libraries/%00", "/v1/libraries?search=%00", "/admin/v1/audit/leaves?principal=a%00b"],
)
def test_a_nul_character_in_the_path_or_query(server: Server, path: str) -> None:
    assert_400(call(server, "GET", path))


@pytest.mark.parametrize("raw", ["2147483648", "99999999999", "²", "٣"])
@pytest.mark.parametrize("kind", ["users", "teams", "tenants", "keys"])
def test_ids_no_column_holds_are_not_found(server: Server, kind: str, raw: str) -> None:
    response = call(server, "GET", f"/admin/v1/{kind}/{raw}")
    assert response.status_code == 404, response.text


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/v1/libraries", {"name": "a\u0000b"}),
        ("/admin/v1/users", {"name": "a\u0000"}),
        ("/admin/v1/keys", {"name": "k", "default_classification": "\u0000"}),
        ("/v1/chat/completions", {**CHAT, "user": "\u0000"}),
        ("/v1/chat/completions", {**CHAT, "metadata": {"\u0000": "x"}}),  # a key too
    ],
)
def test_a_nul_character_in_a_json_string(server: Server, path: str, body: Any) -> None:
    assert_400(call(server, "POST", path, body))


def test_an_escaped_backslash_before_u0000_is_not_a_nul(server: Server) -> None:
    body = {**CHAT, "messages": [{"role": "user", "content": "printf('\\u0000')"}]}
    assert call(server, "POST", "/v1/chat/completions", body).status_code == 200


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/admin/v1/keys", {"name": "k", "user_id": 2**31}),
        ("/admin/v1/keys", {"name": "k", "user_id": 2**63}),
        ("/admin/v1/users", {"name": "u", "teams": [2**31]}),
        ("/admin/v1/teams/1/members", {"user_id": 2**31}),
    ],
)
def test_ids_past_32_bits_in_bodies(server: Server, path: str, body: Any) -> None:
    if path.startswith("/admin/v1/teams/"):
        team = call(server, "POST", "/admin/v1/teams", {"name": f"t{len(str(body))}"}).json()
        path = f"/admin/v1/teams/{team['id']}/members"
    assert_400(call(server, "POST", path, body))


def test_limits_past_their_columns(server: Server) -> None:
    tenant = call(server, "POST", "/admin/v1/tenants", {"name": "limits-past-columns"}).json()
    for limits in ({"tpm": 2**31}, {"rpm": 2**31}, {"max_concurrency": 2**31}):
        assert_400(call(server, "PATCH", f"/admin/v1/tenants/{tenant['id']}", {"limits": limits}))
