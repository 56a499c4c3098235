"""The policy decision, checked against a separately written reading of the rules.

The property test draws thousands of (policy, classification, deployment set) cases and
checks that the engine never allows a deployment the rule forbids, never forbids one it
allows, and refuses with 403 exactly when nothing is allowed.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from souverain.cli import cli
from souverain.config import DeploymentConfig, PolicyConfig, PolicyRule, load_settings
from souverain.errors import ConfigError, InvalidRequest, PermissionDenied
from souverain.policy.engine import PolicyEngine
from souverain.policy.facts import EU_MEMBERS, DeploymentFacts

JURISDICTIONS = ["on-prem", "EU", "FR", "DE", "IT", "US", "CN", "CH", "GB", None]
OPERATORS = ["self", "Mistral AI", "OVHcloud", "Scaleway", "Hyperscaler", None]
CERTS = ["SecNumCloud", "C5", "ISO27001"]


@dataclass
class Deployment:
    name: str
    facts: DeploymentFacts
    config: DeploymentConfig


def random_deployment(rng: random.Random, index: int) -> Deployment:
    config = DeploymentConfig(
        engine=rng.choice(["local", "openai", "mistral"]),
        base_url="http://127.0.0.1:1/v1",
        operator=rng.choice(OPERATORS),
        jurisdiction=rng.choice(JURISDICTIONS),
        retention_days=rng.choice([None, 0, 1, 30, 90, 365]),
        trains_on_data=rng.choice([None, True, False]),
        certifications=tuple(rng.sample(CERTS, rng.randint(0, 2))),
    )
    return Deployment(name=f"d{index}", facts=DeploymentFacts.of(config), config=config)


def random_rule(rng: random.Random) -> PolicyRule:
    return PolicyRule(
        jurisdictions=rng.choice([None, ("on-prem",), ("on-prem", "EU"), ("FR", "DE"), ("US",)]),
        operators=rng.choice([None, ("self",), ("Mistral AI", "OVHcloud", "self")]),
        max_retention_days=rng.choice([None, 0, 30]),
        allow_training=rng.choice([True, False]),
        require_certifications=tuple(rng.sample(CERTS, rng.randint(0, 1))),
    )


def may_receive(rule: PolicyRule, config: DeploymentConfig) -> bool:
    """The rules, read directly from the configuration (the worst case for unknowns)."""
    local = config.engine == "local"
    where = config.jurisdiction or ("on-prem" if local else None)
    operator = config.operator or ("self" if local else None)
    retention = (
        config.retention_days if config.retention_days is not None else (0 if local else None)
    )
    trains = config.trains_on_data if config.trains_on_data is not None else not local
    if rule.jurisdictions is not None:
        if where is None:
            return False
        eu_ok = "EU" in rule.jurisdictions and (where == "EU" or where in EU_MEMBERS)
        if where not in rule.jurisdictions and not eu_ok:
            return False
    if rule.operators is not None and operator not in rule.operators:
        return False
    if rule.max_retention_days is not None and (
        retention is None or retention > rule.max_retention_days
    ):
        return False
    if trains and not rule.allow_training:
        return False
    return set(rule.require_certifications) <= set(config.certifications)


def test_no_request_is_ever_routed_to_a_disallowed_deployment() -> None:
    rng = random.Random(20261129)
    refused = 0
    for _ in range(5000):
        levels = ("public", "internal", "confidential", "restricted")
        config = PolicyConfig(rules={level: random_rule(rng) for level in levels})
        engine = PolicyEngine(config)
        deployments = [random_deployment(rng, i) for i in range(rng.randint(1, 5))]
        level = rng.choice(levels)
        decision = engine.decide(level, "default", deployments)
        expected = [d.name for d in deployments if may_receive(config.rules[level], d.config)]
        assert decision.allowed == expected
        assert set(decision.denied) == {d.name for d in deployments} - set(expected)
        if expected:
            engine.enforce(decision, "m")
        else:
            refused += 1
            with pytest.raises(PermissionDenied) as caught:
                engine.enforce(decision, "m")
            assert caught.value.status_code == 403
            assert f"rule {level}." in caught.value.message
    assert 500 < refused < 4500  # both outcomes were exercised


def test_classification_is_the_highest_claim() -> None:
    engine = PolicyEngine(PolicyConfig())
    assert engine.classify() == "public"
    assert engine.classify(None, "internal") == "internal"
    assert engine.classify("restricted", "internal", None) == "restricted"
    with pytest.raises(InvalidRequest):
        engine.classify("top-secret")


def test_tenant_rules_only_tighten(tmp_path: Path) -> None:
    looser = {"policy": {"tenants": {"acme": {"restricted": {"jurisdictions": ["on-prem", "US"]}}}}}
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(looser))
    with pytest.raises(ConfigError) as caught:
        load_settings(path, environ={})
    assert "tenants.acme.restricted" in str(caught.value)

    tighter = {
        "policy": {
            "tenants": {
                "acme": {"internal": {"jurisdictions": ["on-prem"], "allow_training": False}}
            }
        }
    }
    path.write_text(yaml.safe_dump(tighter))
    engine = PolicyEngine(load_settings(path, environ={}).policy)
    assert engine.rule("internal", "acme")[0] == "tenants.acme.internal"
    assert engine.rule("internal", "other")[0] == "internal"


def test_policy_version_changes_with_the_policy() -> None:
    a = PolicyEngine(PolicyConfig()).version
    b = PolicyEngine(
        PolicyConfig(rules={**PolicyConfig().rules, "public": PolicyRule(allow_training=False)})
    ).version
    assert a.startswith("sha256:") and a != b and a == PolicyEngine(PolicyConfig()).version


def test_explain_prints_the_decision_without_sending(tmp_path: Path) -> None:
    config = {
        "models": [{"id": "large", "deployments": [
            {"name": "mistral-eu", "engine": "mistral", "jurisdiction": "FR", "operator": "Mistral AI",
             "retention_days": 30, "trains_on_data": False, "base_url": "http://127.0.0.1:9"},
            {"name": "us-cloud", "engine": "openai", "jurisdiction": "US", "base_url": "http://127.0.0.1:9/v1"},
        ]}]
    }  # fmt: skip
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(config))
    runner = CliRunner()
    result = runner.invoke(cli, ["policy", "explain", "--config", str(path), "--model", "large",
                                 "--classification", "confidential"])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "mistral-eu" in result.output and "allowed" in result.output
    assert "denied by confidential.jurisdictions" in result.output
    assert "routed to mistral-eu" in result.output
    result = runner.invoke(cli, ["policy", "explain", "--config", str(path), "--model", "large",
                                 "--classification", "restricted"])  # fmt: skip
    assert "refused with 403" in result.output
