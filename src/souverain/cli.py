"""The `souverain` command."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable
from pathlib import Path

import click

from .cli_options import F, admin_call, config_option, server_options, with_options
from .errors import ConfigError


@click.group()
@click.version_option(package_name="souverain")
def cli() -> None:
    """Souverain: a sovereign AI gateway with an OpenAI- and Mistral-compatible API.

    Run the embedded model on this machine, no network and no config file needed:

        souverain serve

    then point any OpenAI or Mistral client at http://127.0.0.1:8000 with the
    printed API key.
    """


@cli.command()
@config_option
@click.option(
    "--host", default=None, help="Address to listen on (default 127.0.0.1; env: SOUVERAIN_HOST)."
)
@click.option("--port", type=int, default=None, help="Port (default 8000; env: SOUVERAIN_PORT).")
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False),
    default=None,
    help="Where the database and keys live (default ./souverain-data; env: SOUVERAIN_DATA_DIR).",
)
@click.option(
    "--log-level",
    default="info",
    show_default=True,
    type=click.Choice(["debug", "info", "warning", "error"]),
)
def serve(
    config_file: str | None,
    host: str | None,
    port: int | None,
    data_dir: str | None,
    log_level: str,
) -> None:
    """Serve the API (OpenAI and Mistral shapes) on HOST:PORT.

    Every /v1 route needs `Authorization: Bearer KEY`. The first start creates the
    platform owner's key and prints it once; set SOUVERAIN_ADMIN_KEY to choose it instead.
    """  # fmt: skip
    from .app import build_state, create_app
    from .config import load_settings
    from .store.database import MigrationRefused

    logging.basicConfig(
        level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        settings = load_settings(
            config_file,
            {"server.host": host, "server.port": port, "data_dir": data_dir and Path(data_dir)},
        )
        state = build_state(settings)
    except (ConfigError, MigrationRefused) as exc:
        raise click.ClickException(str(exc)) from None
    new_key = state.keys.ensure_admin(os.environ.get("SOUVERAIN_ADMIN_KEY"))
    if new_key:
        click.echo(
            f"Created the platform owner's API key (shown once, store it now):\n\n"
            f"    {new_key}\n", err=True
        )  # fmt: skip
    click.echo(f"Souverain on http://{settings.server.host}:{settings.server.port}  "
               f"(data: {settings.data_dir}, models: "
               f"{', '.join(m.id for m in settings.models)})", err=True)  # fmt: skip
    from .http_server import serve as run_http_server

    run_http_server(create_app(settings, state), settings.server, log_level)


@cli.group()
def policy() -> None:
    """Inspect the sovereignty policy."""


@policy.command("explain")
@config_option
@click.option("--model", required=True, help="Model name or alias.")
@click.option("--classification", required=True, help="Classification level of the data.")
@click.option("--tenant", default="default", show_default=True)
def policy_explain(config_file: str | None, model: str, classification: str, tenant: str) -> None:
    """Print where a call would go and which rule decides, sending nothing.

    Example: souverain policy explain --model large --classification confidential
    """  # fmt: skip
    from .config import load_settings
    from .errors import SouverainError
    from .plugins import load_engine_registry
    from .policy.engine import PolicyEngine
    from .policy.explain import explain
    from .routing.models import ModelCatalog

    try:
        settings = load_settings(config_file)
        catalog = ModelCatalog.from_settings(settings, load_engine_registry())
        engine = PolicyEngine(settings.policy)
        click.echo(explain(engine, catalog.get(model), classification, tenant))
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None
    except SouverainError as exc:
        raise click.ClickException(exc.message) from None


@cli.group()
def db() -> None:
    """The database (SQLite in the data directory, or SOUVERAIN_DATABASE_URL)."""


@db.command("upgrade")
@config_option
@click.option("--data-dir", type=click.Path(file_okay=False), default=None)
def db_upgrade(config_file: str | None, data_dir: str | None) -> None:
    """Apply the migrations not applied yet (`serve` does it too at start)."""
    from .config import load_settings
    from .store.database import (
        MigrationRefused,
        current_revision,
        database_url,
        open_database,
        upgrade,
    )
    from .store.private_files import private_directory

    try:
        settings = load_settings(config_file, {"data_dir": data_dir and Path(data_dir)})
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None
    private_directory(settings.data_dir)  # 0700, its files 0600
    engine = open_database(database_url(settings.database_url, settings.data_dir))
    try:
        applied = upgrade(engine)
    except MigrationRefused as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"applied: {', '.join(applied) or 'nothing'}; at {current_revision(engine)}")


@cli.group()
def providers() -> None:
    """Cut providers off, restore them, and see their health (calls a running server)."""


target_options: list[Callable[[F], F]] = [
    click.argument("deployment", required=False),
    click.option("--operator", help="Every deployment of this operator."),
    click.option("--jurisdiction", help="Every deployment in this jurisdiction (e.g. US)."),
]


@providers.command("cut")
@with_options(server_options + target_options)
def providers_cut(
    url: str, key: str, deployment: str | None, operator: str | None, jurisdiction: str | None
) -> None:
    """Stop all traffic to a deployment, an operator or a jurisdiction, at once.

    Example: souverain providers cut --jurisdiction US
    """  # fmt: skip
    target = {"deployment": deployment, "operator": operator, "jurisdiction": jurisdiction}
    click.echo(admin_call(url, key, "POST", "/admin/v1/providers/cut", target))


@providers.command("restore")
@with_options(server_options + target_options)
def providers_restore(
    url: str, key: str, deployment: str | None, operator: str | None, jurisdiction: str | None
) -> None:
    """Undo a cut."""  # fmt: skip
    target = {"deployment": deployment, "operator": operator, "jurisdiction": jurisdiction}
    click.echo(admin_call(url, key, "POST", "/admin/v1/providers/restore", target))


@providers.command("list")
@with_options(server_options)
def providers_list(url: str, key: str) -> None:
    """Show the cuts and each deployment's breaker, load and latency."""
    click.echo(admin_call(url, key, "GET", "/admin/v1/providers", None))


def _register_subcommands() -> None:
    from .audit.cli import audit
    from .batch.cli import batch
    from .cli_chat import chat
    from .cli_connectors import connectors
    from .dlp.cli import dlp
    from .identity.cli import keys, teams, tenants, users
    from .library.cli import library
    from .usage.cli import usage

    for command in (audit, dlp, keys, library, tenants, teams, users, usage):
        cli.add_command(command)
    cli.add_command(chat)  # issue 14: souverain chat
    cli.add_command(connectors)  # issue 14: MCP connectors
    cli.add_command(batch)  # issue 15: batch jobs


_register_subcommands()


def main() -> None:
    try:
        cli()
    except ConfigError as exc:  # pragma: no cover - click reports its own errors
        click.echo(f"Error: {exc}", err=True)
        sys.exit(2)
