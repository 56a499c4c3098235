"""Options shared by the `souverain` subcommands."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any, TypeVar

import click

config_option = click.option(
    "--config",
    "config_file",
    type=click.Path(dir_okay=False),
    envvar="SOUVERAIN_CONFIG",
    help="YAML configuration file (env: SOUVERAIN_CONFIG). Default: the embedded defaults.",
)


F = TypeVar("F", bound=Callable[..., Any])

server_options: list[Callable[[F], F]] = [
    click.option(
        "--url",
        envvar="SOUVERAIN_URL",
        default="http://127.0.0.1:8000",
        show_default=True,
        help="The Souverain server (env: SOUVERAIN_URL).",
    ),
    click.option(
        "--key",
        envvar=["SOUVERAIN_API_KEY", "SOUVERAIN_ADMIN_KEY"],
        required=True,
        help="An admin API key (env: SOUVERAIN_API_KEY or SOUVERAIN_ADMIN_KEY).",
    ),
]


def with_options(options: list[Callable[[F], F]]) -> Callable[[F], F]:
    def apply(function: F) -> F:
        for option in reversed(options):
            function = option(function)
        return function

    return apply


def admin_call(url: str, key: str, method: str, path: str, body: dict[str, Any] | None) -> str:
    """Call the admin API; the answer as indented JSON."""
    return json.dumps(admin_request(url, key, method, path, body), indent=2)


def admin_request(
    url: str, key: str, method: str, path: str, body: dict[str, Any] | None = None
) -> Any:
    """Call the admin API; the answer parsed, or a ClickException with the server's message."""
    data = None
    if body is not None:
        data = json.dumps({k: v for k, v in body.items() if v is not None}).encode()
    request = urllib.request.Request(
        url.rstrip("/") + path, data=data, method=method,
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
    )  # fmt: skip
    return send(request, timeout=30)


def send(request: urllib.request.Request, *, timeout: float) -> Any:
    """Send a request to the server; its JSON answer, or a ClickException with the
    server's error message (or why it could not be reached)."""
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return json.loads(response.read())
    except urllib.error.HTTPError as exc:
        detail = json.loads(exc.read() or b"{}").get("error", {}).get("message", exc.reason)
        raise click.ClickException(f"{exc.code}: {detail}") from None
    except urllib.error.URLError as exc:
        raise click.ClickException(f"cannot reach {request.full_url}: {exc.reason}") from None
