"""`souverain connectors add|list|tools|remove`: MCP connectors from the command line.

Each command calls a running server (`--url`, `--key` or SOUVERAIN_URL/SOUVERAIN_API_KEY),
so the same role checks and audit leaves apply as for the admin API. Secrets given with
`--header` or `--env` travel once, to the server, and are never printed back.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

import click

from .cli_options import admin_request, server_options, with_options
from .identity.cli import print_table

BASE = "/admin/v1/connectors"


def _pairs(values: tuple[str, ...], separator: str, what: str) -> dict[str, str]:
    pairs: dict[str, str] = {}
    for value in values:
        name, found, secret = value.partition(separator)
        if not found or not name.strip():
            raise click.BadParameter(f"expected NAME{separator}VALUE", param_hint=what)
        pairs[name.strip()] = secret.strip() if separator == ":" else secret
    return pairs


@click.group()
def connectors() -> None:
    """Register, list and remove the MCP servers agents may call.

    \b
    souverain connectors add crm --mcp-url https://crm.lan/mcp --header "Authorization: Bearer …"
    souverain connectors add files --command uvx --arg mcp-server-files   (platform owner)
    """


@connectors.command("add")
@with_options(server_options)
@click.argument("name")
@click.option("--mcp-url", "server_url", help="The MCP server's streamable HTTP endpoint.")
@click.option("--command", help="stdio: the program to run on the gateway host (owner only).")
@click.option("--arg", "args", multiple=True, help="stdio: an argument (repeat for more).")
@click.option("--header", "headers", multiple=True, help='"Name: value" (secret; repeatable).')
@click.option("--env", "env", multiple=True, help="stdio: NAME=value (secret; repeatable).")
@click.option("--timeout", "timeout_s", type=float, help="Seconds per call (default 30).")
@click.option("--description")
@click.option("--tenant", help="Platform owner only: the tenant it belongs to.")
def add(url: str, key: str, name: str, server_url: str | None, command: str | None,
        args: tuple[str, ...], headers: tuple[str, ...], env: tuple[str, ...],
        timeout_s: float | None, description: str | None, tenant: str | None) -> None:  # fmt: skip
    """Register connector NAME: --mcp-url for HTTP, or --command for stdio."""
    if (server_url is None) == (command is None):
        raise click.UsageError("give exactly one of --mcp-url and --command")
    body: dict[str, Any] = {
        "name": name,
        "transport": "http" if server_url is not None else "stdio",
        "url": server_url,
        "command": command,
        "args": list(args) or None,
        "headers": _pairs(headers, ":", "--header") or None,
        "env": _pairs(env, "=", "--env") or None,
        "timeout_s": timeout_s,
        "description": description,
        "tenant": tenant,
    }
    created = admin_request(url, key, "POST", BASE, body)
    click.echo(json.dumps(created, indent=2))


@connectors.command("list")
@with_options(server_options)
def list_connectors(url: str, key: str) -> None:
    """The connectors the caller may see."""
    rows = admin_request(url, key, "GET", BASE)["data"]
    for row in rows:
        row["target"] = row["url"] or " ".join([row["command"], *row["args"]])
    print_table(rows, ["id", "name", "tenant", "transport", "target", "timeout_s"])


@connectors.command("tools")
@with_options(server_options)
@click.argument("connector")
def tools(url: str, key: str, connector: str) -> None:
    """List CONNECTOR's tools (name or id), asked live from its server."""
    listing = admin_request(url, key, "GET", f"{BASE}/{quote(connector, safe='')}/tools")
    print_table(listing["data"], ["name", "description"])


@connectors.command("remove")
@with_options(server_options)
@click.argument("connector")
def remove(url: str, key: str, connector: str) -> None:
    """Delete CONNECTOR (name or id)."""
    deleted = admin_request(url, key, "DELETE", f"{BASE}/{quote(connector, safe='')}")
    click.echo(f"removed {deleted['id']}")
