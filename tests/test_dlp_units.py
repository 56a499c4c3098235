"""The DLP stage without servers: fail closed, destinations, the scan command, config."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from souverain.cli import cli
from souverain.config import DeploymentConfig, PolicyConfig, load_settings
from souverain.context import Principal, RequestContext
from souverain.dlp.engine import DlpEngine, build_scanner
from souverain.dlp.settings import DlpConfig
from souverain.errors import ConfigError, DlpUnavailable
from souverain.policy.engine import PolicyEngine
from souverain.policy.facts import DeploymentFacts
from souverain.protocol.chat import ChatCompletionRequest

IBAN = "DE89 3704 0044 0532 0130 00"


class BrokenScanner:
    def scan(self, text: str) -> list[Any]:
        raise RuntimeError("detector crashed")


class Call:
    def __init__(self, text: str) -> None:
        self.request = ChatCompletionRequest(
            model="m", messages=[{"role": "user", "content": text}]
        )


def context() -> RequestContext:
    return RequestContext(
        endpoint="chat", principal=Principal(1, "t", "user"), classification="public"
    )


def test_a_detector_failure_blocks_the_request() -> None:
    engine = DlpEngine(DlpConfig(), PolicyEngine(PolicyConfig()), BrokenScanner(), b"k" * 32)
    with pytest.raises(DlpUnavailable) as caught:
        asyncio.run(engine.check(context(), Call("anything")))
    assert caught.value.status_code == 503


def test_findings_raise_the_classification_and_are_counted_not_copied() -> None:
    config = DlpConfig()
    engine = DlpEngine(config, PolicyEngine(PolicyConfig()), build_scanner(config), b"k" * 32)
    ctx = context()
    asyncio.run(engine.check(ctx, Call(f"IBAN {IBAN} and bob@example.org")))
    assert ctx.classification == "confidential"
    assert ctx.notes["dlp"] == {"email": 1, "iban": 1}


@pytest.mark.parametrize(
    ("jurisdiction", "operator", "iban_action"),
    [("on-prem", None, "allow"), ("FR", None, "pseudonymize"), ("US", "Redactor", "redact")],
)
def test_first_matching_destination_decides(
    jurisdiction: str, operator: str | None, iban_action: str
) -> None:
    config = DlpConfig(destinations=({"operators": ("Redactor",), "actions": {"*": "redact"}},
                                     {"jurisdictions": ("on-prem",), "actions": {"*": "allow"}}))  # type: ignore[arg-type]  # fmt: skip
    engine = DlpEngine(config, PolicyEngine(PolicyConfig()), build_scanner(config), b"k" * 32)
    deployment = DeploymentConfig(
        engine="openai", base_url="http://x/v1", jurisdiction=jurisdiction, operator=operator
    )
    action = engine.actions_for(DeploymentFacts.of(deployment))
    assert action("iban") == iban_action
    assert action("secret") == (
        "allow" if jurisdiction == "on-prem" else "redact" if operator else "block"
    )


def test_scan_command_prints_positions_types_and_actions_never_values(tmp_path: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(cli, ["dlp", "scan", "--jurisdiction", "US"], input=f"Pay to {IBAN} now")
    lines = [json.loads(line) for line in result.output.splitlines()]
    assert lines == [{"start": 7, "end": 7 + len(IBAN), "type": "iban", "action": "pseudonymize"}]
    assert IBAN not in result.output
    source = tmp_path / "docs.jsonl"
    source.write_text(
        json.dumps({"text": "nothing here"})
        + "\n"
        + json.dumps({"text": f"mail x@y.de {IBAN}"})
        + "\n"
    )
    result = runner.invoke(cli, ["dlp", "scan", "--jsonl", str(source)])
    assert [json.loads(line)["line"] for line in result.output.splitlines()] == [2, 2]
    bad = runner.invoke(cli, ["dlp", "scan", "--jsonl"], input="not json\n")
    assert bad.exit_code != 0 and "line 1" in bad.output


@pytest.mark.parametrize(
    ("dlp", "named"),
    [({"raises": {"iban": "top-secret"}}, "dlp.raises.iban"),
     ({"patterns": {"ticket": "TCK-(\\d"}}, "patterns.ticket"),
     # Searches on a client's text must stay linear (dlp/patterns.py).
     ({"patterns": {"ticket": "(a+)+b"}}, "patterns.ticket"),
     ({"patterns": {"ticket": "\\w+@corp"}}, "patterns.ticket"),
     ({"patterns": {"ticket": "(TCK)-\\1"}}, "patterns.ticket"),
     ({"default_actions": {"*": "shred"}}, "dlp.default_actions")],
)  # fmt: skip
def test_dlp_config_errors_name_the_key(tmp_path: Path, dlp: dict[str, object], named: str) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump({"dlp": dlp}))
    with pytest.raises(ConfigError, match=named.replace(".", r"\.")):
        load_settings(path, environ={})


def test_organisation_dictionaries_and_patterns() -> None:
    config = DlpConfig(
        dictionaries={"project": ("Projet Orion", "Falcon")}, patterns={"ticket": r"TCK-\d{6}"}
    )
    found = build_scanner(config).scan("Le projet orion (ticket TCK-004711) remplace FALCON.")
    assert [(f.type, f.start) for f in found] == [("project", 3), ("ticket", 24), ("project", 45)]


def test_person_names_are_an_opt_in_detector() -> None:
    text = "Bonjour, Mme Claire Lefèvre vous attend."
    assert not build_scanner(DlpConfig()).scan(text)
    found = build_scanner(DlpConfig(person_names=True)).scan(text)
    assert [f.type for f in found] == ["person"]


@pytest.mark.parametrize(
    "text",
    [
        "password=<YOUR_PASSWORD>",  # an angle-bracket placeholder, not a secret
        "Bel het secretariaat: 06-66226127.",  # 'secret' inside a longer word
        "Referentie 28 183 857 604 van de klant",  # not a BSN cut out of a longer number
        "Konto PL37 2204 8667 2590 0000 0000 0000",  # not a VAT cut out of an invalid IBAN
    ],
)
def test_decoys_found_by_the_evaluation(text: str) -> None:
    kinds = {f.type for f in build_scanner(DlpConfig()).scan(text)}
    assert not kinds & {"secret", "nl_bsn", "eu_vat"}, kinds
