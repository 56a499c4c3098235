"""`souverain dlp scan`: try the detectors and the actions on your own documents."""

from __future__ import annotations

import json
from typing import IO

import click

from ..cli_options import config_option
from ..config import DeploymentConfig, load_settings
from ..errors import ConfigError
from ..policy.engine import PolicyEngine
from ..policy.facts import DeploymentFacts
from .engine import DlpEngine, build_scanner


@click.group("dlp")
def dlp() -> None:
    """Data-loss prevention tools."""


@dlp.command("scan")
@click.argument("source", type=click.File("r", encoding="utf-8"), default="-")
@click.option("--jsonl", is_flag=True, help="One JSON object per line, with a `text` field.")
@config_option
@click.option("--jurisdiction", default=None, help="Show the actions for a deployment there...")
@click.option("--operator", default=None, help="...run by this operator (default: neither).")
def scan(
    source: IO[str],
    jsonl: bool,
    config_file: str | None,
    jurisdiction: str | None,
    operator: str | None,
) -> None:
    """Print findings as JSON lines: where (start, end), what (type), and the action.

    Reads FILE, or standard input. The values found are never printed.

    Example: souverain dlp scan contract.txt --jurisdiction US
    """  # fmt: skip
    try:
        settings = load_settings(config_file)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None
    engine = DlpEngine(
        settings.dlp, PolicyEngine(settings.policy), build_scanner(settings.dlp), b""
    )
    where = DeploymentConfig(
        engine="openai", base_url="http://scan", jurisdiction=jurisdiction, operator=operator
    )
    action = engine.actions_for(DeploymentFacts.of(where))
    texts = _texts(source, jsonl)
    for number, text in enumerate(texts, start=1):
        for finding in engine.scanner.scan(text):
            line = {"start": finding.start, "end": finding.end, "type": finding.type,
                    "action": action(finding.type)}  # fmt: skip
            if jsonl:
                line = {"line": number, **line}
            click.echo(json.dumps(line))


def _texts(source: IO[str], jsonl: bool) -> list[str]:
    if not jsonl:
        return [source.read()]
    texts = []
    for number, raw in enumerate(source, start=1):
        if not raw.strip():
            continue
        try:
            texts.append(str(json.loads(raw)["text"]))
        except (ValueError, KeyError, TypeError):
            raise click.ClickException(
                f"line {number}: expected a JSON object with a `text` field"
            ) from None
    return texts
