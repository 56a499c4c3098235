"""`souverain keys|tenants|teams|users`: the admin API from the command line.

Each command calls a running server (`--url`, `--key` or SOUVERAIN_URL/SOUVERAIN_API_KEY),
so the same role checks and audit leaves apply as for any other admin call.
"""

from __future__ import annotations

from typing import Any

import click

from ..cli_options import admin_call, admin_request, server_options, with_options

_limit_options = [
    click.option("--rpm", type=int, help="Requests per minute."),
    click.option("--tpm", type=int, help="Tokens per minute."),
    click.option("--max-concurrency", type=int, help="Requests in flight."),
    click.option("--budget-tokens", type=int, help="Tokens per budget period."),
    click.option("--budget-cost", type=float, help="Cost per budget period."),
    click.option("--budget-period", type=click.Choice(["day", "month"])),
]
_LIMITS = ("rpm", "tpm", "max_concurrency", "budget_tokens", "budget_cost", "budget_period")


def _limits(options: dict[str, Any]) -> dict[str, Any]:
    return {name: options.pop(name) for name in _LIMITS if options.get(name) is not None}


def _csv(value: str | None) -> list[str] | None:
    return None if value is None else [item.strip() for item in value.split(",") if item.strip()]


def print_table(rows: list[dict[str, Any]], columns: list[str]) -> None:
    widths = {c: max([len(c), *(len(str(row.get(c, ""))) for row in rows)]) for c in columns}
    click.echo("  ".join(c.ljust(widths[c]) for c in columns))
    for row in rows:
        cells = ("" if row.get(c) is None else str(row.get(c)) for c in columns)
        click.echo("  ".join(cell.ljust(widths[c]) for cell, c in zip(cells, columns, strict=True)))


# ---- keys ----------------------------------------------------------------------------------


@click.group()
def keys() -> None:
    """Create, list and revoke API keys."""


@keys.command("create")
@with_options(server_options)
@click.argument("name")
@click.option("--role", type=click.Choice(["owner", "admin", "auditor", "developer", "user"]))
@click.option("--user-id", type=int, help="The user or service account it belongs to.")
@click.option("--team", help="The team its usage is billed to.")
@click.option("--tenant", help="Platform owner only: the tenant it belongs to.")
@click.option("--models", help="Comma-separated model ids it may use (default: all).")
@click.option("--endpoints", help="Comma-separated: chat,fim,embeddings,ocr,models,admin,...")
@click.option("--expires", help="Lifetime: 30d, 12h, 90m (default: never).")
@click.option("--max-classification", help="The most sensitive data it may send.")
@with_options(_limit_options)
def keys_create(url: str, key: str, name: str, **options: Any) -> None:
    """Create a key and print it once.

    Example: souverain keys create ci-bot --team payments --models mistral-small --expires 30d
    """  # fmt: skip
    limits = _limits(options)
    body = {
        "name": name,
        "role": options["role"],
        "user_id": options["user_id"],
        "team": options["team"],
        "tenant": options["tenant"],
        "models": _csv(options["models"]),
        "endpoints": _csv(options["endpoints"]),
        "expires_in": options["expires"],
        "max_classification": options["max_classification"],
        "limits": limits or None,
    }
    created = admin_request(url, key, "POST", "/admin/v1/keys", body)
    click.echo(f"key {created['id']} ({created['name']}, {created['role']}); shown once:", err=True)
    click.echo(created["key"])


@keys.command("list")
@with_options(server_options)
def keys_list(url: str, key: str) -> None:
    """The keys you may see (never their secrets)."""
    rows = admin_request(url, key, "GET", "/admin/v1/keys")["data"]
    print_table(rows, ["id", "name", "prefix", "role", "tenant", "team", "expires_at", "revoked"])


@keys.command("revoke")
@with_options(server_options)
@click.argument("key_id", type=int)
def keys_revoke(url: str, key: str, key_id: int) -> None:
    """Revoke a key now (every replica)."""
    click.echo(admin_call(url, key, "DELETE", f"/admin/v1/keys/{key_id}", None))


# ---- tenants, teams, users ------------------------------------------------------------------


@click.group()
def tenants() -> None:
    """Tenants (the platform owner)."""


@tenants.command("create")
@with_options(server_options)
@click.argument("name")
@with_options(_limit_options)
def tenants_create(url: str, key: str, name: str, **options: Any) -> None:
    """Create a tenant (an organisation)."""
    body = {"name": name, "limits": _limits(options) or None}
    click.echo(admin_call(url, key, "POST", "/admin/v1/tenants", body))


@tenants.command("list")
@with_options(server_options)
def tenants_list(url: str, key: str) -> None:
    print_table(admin_request(url, key, "GET", "/admin/v1/tenants")["data"], ["id", "name"])


@click.group()
def teams() -> None:
    """Teams inside a tenant."""


@teams.command("create")
@with_options(server_options)
@click.argument("name")
@click.option("--tenant", help="Platform owner only.")
@with_options(_limit_options)
def teams_create(url: str, key: str, name: str, tenant: str | None, **options: Any) -> None:
    """Create a team, with its limits."""
    body = {"name": name, "tenant": tenant, "limits": _limits(options) or None}
    click.echo(admin_call(url, key, "POST", "/admin/v1/teams", body))


@teams.command("list")
@with_options(server_options)
def teams_list(url: str, key: str) -> None:
    rows = admin_request(url, key, "GET", "/admin/v1/teams")["data"]
    print_table(rows, ["id", "name", "tenant", "members"])


@teams.command("add-member")
@with_options(server_options)
@click.argument("team_id", type=int)
@click.argument("user_id", type=int)
def teams_add_member(url: str, key: str, team_id: int, user_id: int) -> None:
    body = {"user_id": user_id}
    click.echo(admin_call(url, key, "POST", f"/admin/v1/teams/{team_id}/members", body))


@click.group()
def users() -> None:
    """Users and service accounts."""


@users.command("create")
@with_options(server_options)
@click.argument("name")
@click.option("--role", default="user", show_default=True,
              type=click.Choice(["owner", "admin", "auditor", "developer", "user"]))  # fmt: skip
@click.option("--service", is_flag=True, help="A service account rather than a person.")
@click.option("--team", "team_ids", type=int, multiple=True, help="Team id (repeatable).")
@click.option("--tenant", help="Platform owner only.")
@with_options(_limit_options)
def users_create(url: str, key: str, name: str, **options: Any) -> None:
    """Create a user or a service account."""
    body = {
        "name": name,
        "role": options["role"],
        "kind": "service" if options["service"] else "user",
        "teams": list(options["team_ids"]),
        "tenant": options["tenant"],
        "limits": _limits(options) or None,
    }
    click.echo(admin_call(url, key, "POST", "/admin/v1/users", body))


@users.command("list")
@with_options(server_options)
def users_list(url: str, key: str) -> None:
    rows = admin_request(url, key, "GET", "/admin/v1/users")["data"]
    print_table(rows, ["id", "name", "object", "role", "tenant", "teams", "disabled"])
