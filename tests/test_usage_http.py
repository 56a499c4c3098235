"""The usage report end to end, on SQLite and on PostgreSQL: rows written by real calls
through a real gateway, aggregated by `GET /admin/v1/usage` and `souverain usage`.

The upstream (`RecordingUpstream`, a fake) reports 10 prompt and 5 completion tokens
per chat call, so every sum below is known in advance.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from click.testing import CliRunner

from souverain.cli import cli

from .conftest import ADMIN_KEY, Server, start_server, stop_server
from .databases import postgres_database
from .recording_upstream import RecordingUpstream
from .test_quotas_http import admin, chat, create, refused, upstream_config, usage_rows


@dataclass
class Setup:
    server: Server
    keys: dict[str, int]  # name -> key id
    north_admin: str  # an admin key of tenant north
    days: set[str]  # the UTC days the calls were made on (one, unless run at midnight)


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def setup(
    request: pytest.FixtureRequest,
    upstream: RecordingUpstream,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Setup]:
    databases: Iterator[str] | None = None
    config = upstream_config(upstream)
    if request.param == "postgresql":
        databases = postgres_database()
        config["database_url"] = next(databases)
    server = start_server(tmp_path_factory.mktemp(f"usage-{request.param}"), config)
    try:
        yield _make_calls(server)
    finally:
        stop_server(server)
        if databases is not None:
            databases.close()


def _make_calls(server: Server) -> Setup:
    create(server, "tenants", {"name": "north"})
    create(server, "tenants", {"name": "south"})
    create(server, "teams", {"name": "research", "tenant": "north"})
    made = {
        "researcher": {"tenant": "north", "team": "research"},
        "northern": {"tenant": "north"},
        "limited": {"tenant": "north", "limits": {"rpm": 2}},
        "southern": {"tenant": "south"},
        "north-admin": {"tenant": "north", "role": "admin"},
    }
    secrets, ids = {}, {}
    for name, fields in made.items():
        created = create(server, "keys", {"name": name, **fields})
        secrets[name], ids[name] = created["key"], created["id"]
    first_day = _today()
    for _ in range(3):
        assert chat(server, secrets["researcher"]).status_code == 200
    assert chat(server, secrets["researcher"], model="priced").status_code == 200
    assert chat(server, secrets["northern"]).status_code == 200
    assert chat(server, secrets["northern"], stream=True).status_code == 200
    assert chat(server, secrets["limited"]).status_code == 200
    assert chat(server, secrets["limited"]).status_code == 200
    refused(chat(server, secrets["limited"]), "requests_per_minute", "key 'limited'")
    assert chat(server, secrets["southern"]).status_code == 200
    return Setup(server, ids, secrets["north-admin"], {first_day, _today()})


def _today(offset: int = 0) -> str:
    return (datetime.now(UTC) + timedelta(days=offset)).strftime("%Y-%m-%d")


def _by(rows: list[dict[str, Any]], *columns: str) -> dict[Any, dict[str, Any]]:
    keyed = {tuple(row[c] for c in columns): row for row in rows}
    assert len(keyed) == len(rows)
    return {k[0] if len(k) == 1 else k: v for k, v in keyed.items()}


def _sums(row: dict[str, Any]) -> tuple[int, int, int, int, int]:
    return (row["requests"], row["errors"], row["prompt_tokens"], row["completion_tokens"],
            row["total_tokens"])  # fmt: skip


def test_by_key_and_model_counts_what_the_upstream_reported(setup: Setup) -> None:
    ids = setup.keys
    rows = _by(usage_rows(setup.server, "key,model"), "key", "model")
    assert {k: _sums(v) for k, v in rows.items()} == {
        (ids["researcher"], "cloud"): (3, 0, 30, 15, 45),
        (ids["researcher"], "priced"): (1, 0, 10, 5, 15),
        (ids["northern"], "cloud"): (2, 0, 20, 10, 30),  # one of them streamed
        (ids["limited"], "cloud"): (3, 1, 20, 10, 30),  # the 429 is a row without tokens
        (ids["southern"], "cloud"): (1, 0, 10, 5, 15),
    }
    assert rows[ids["researcher"], "priced"]["cost"] == pytest.approx(0.02)
    assert usage_rows(setup.server, "key,model,key") == list(rows.values())  # not a 500
    assert rows[ids["researcher"], "cloud"]["cost"] == 0
    assert all(row["mean_latency_ms"] > 0 for row in rows.values())


def test_by_team_tenant_day_and_in_total(setup: Setup) -> None:
    teams = _by(usage_rows(setup.server, "team"), "team")
    assert {k: _sums(v) for k, v in teams.items()} == {
        None: (6, 1, 50, 25, 75),
        "research": (4, 0, 40, 20, 60),
    }
    tenants = _by(usage_rows(setup.server, "tenant,team"), "tenant", "team")
    assert {k: v["requests"] for k, v in tenants.items()} == {
        ("north", None): 5, ("north", "research"): 4, ("south", None): 1,
    }  # fmt: skip
    days = usage_rows(setup.server, "day")
    assert {row["day"] for row in days} <= setup.days
    assert sum(row["requests"] for row in days) == 10
    (total,) = usage_rows(setup.server, "")
    assert _sums(total) == (10, 1, 90, 45, 135)
    assert total["cost"] == pytest.approx(0.02)
    endpoints = usage_rows(setup.server, "endpoint,deployment")
    assert {(r["endpoint"], r["deployment"], r["requests"]) for r in endpoints} == {
        ("chat", "eu-cloud", 8), ("chat", "eu-priced", 1), ("chat", None, 1),  # refused: none
    }  # fmt: skip


def test_an_admin_sees_only_their_tenant_the_owner_all(setup: Setup) -> None:
    def tenants(key: str, **params: str) -> dict[str, int]:
        query = "usage?" + "&".join(f"{k}={v}" for k, v in {"group_by": "tenant", **params}.items())
        response = admin(setup.server, "GET", query, key=key)
        assert response.status_code == 200, response.text
        return {row["tenant"]: row["requests"] for row in response.json()["data"]}

    assert tenants(ADMIN_KEY) == {"north": 9, "south": 1}
    assert tenants(ADMIN_KEY, tenant="south") == {"south": 1}
    assert tenants(setup.north_admin) == {"north": 9}
    assert tenants(setup.north_admin, tenant="south") == {"north": 9}  # not theirs to ask
    keys = {row["key"] for row in usage_rows(setup.server, "key", tenant="north")}
    assert setup.keys["southern"] not in keys and setup.keys["researcher"] in keys


def test_date_range(setup: Setup) -> None:
    first, last = min(setup.days), max(setup.days)
    assert usage_rows(setup.server, "model", start=_today(1)) == []
    assert usage_rows(setup.server, "model", end=_today(-2)) == []
    within = usage_rows(setup.server, "model", start=first, end=last)
    assert sum(row["requests"] for row in within) == 10


@pytest.mark.parametrize(
    ("query", "param"),
    [
        ("group_by=colour", "group_by"),
        ("group_by=key,nonsense", "group_by"),
        ("group_by=key&start=2026-13-01", "start"),
        ("group_by=key&end=29/11/2026", "end"),
        ("group_by=key&start=yesterday", "start"),
    ],
)
def test_bad_parameters_are_400(setup: Setup, query: str, param: str) -> None:
    response = admin(setup.server, "GET", f"usage?{query}")
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert (error["type"], error["param"]) == ("invalid_request_error", param)


def test_the_cli_prints_the_rows(setup: Setup) -> None:
    runner = CliRunner()
    url = setup.server.url
    result = runner.invoke(cli, ["usage", "--url", url, "--key", ADMIN_KEY, "--group-by", "key,model"])  # fmt: skip
    assert result.exit_code == 0, result.output
    header, *lines = result.output.splitlines()
    assert header.split() == ["key", "model", "requests", "errors", "prompt_tokens",
                              "completion_tokens", "cost"]  # fmt: skip
    table = {tuple(line.split()[:2]): line.split()[2:] for line in lines}
    assert table[str(setup.keys["researcher"]), "cloud"] == ["3", "0", "30", "15", "0.0"]
    assert table[str(setup.keys["researcher"]), "priced"] == ["1", "0", "10", "5", "0.02"]
    assert table[str(setup.keys["limited"]), "cloud"] == ["3", "1", "20", "10", "0.0"]
    assert len(table) == 5

    bad = runner.invoke(cli, ["usage", "--url", url, "--key", ADMIN_KEY, "--group-by", "colour"])
    assert bad.exit_code == 1 and "400: cannot group by colour" in bad.output
