"""The policy stage: classify the request, then keep only the deployments its rule allows.

Evaluated for every model call, before any byte leaves. A refusal names the rule that
denied each deployment, never the data that raised the classification.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from ..config import PolicyConfig, PolicyRule
from ..errors import InvalidRequest, PermissionDenied
from .facts import DeploymentFacts

CLASSIFICATION_HEADER = "x-souverain-classification"


class Deployment(Protocol):
    """What the policy needs of a deployment: a name and its facts."""

    name: str

    @property
    def facts(self) -> DeploymentFacts: ...


@dataclass(slots=True)
class PolicyDecision:
    """Why a call went where it went: for response headers and for the audit record."""

    classification: str
    policy_version: str
    allowed: list[str] = field(default_factory=list)
    denied: dict[str, str] = field(default_factory=dict)  # deployment -> rule that denied it

    def record(self) -> dict[str, Any]:
        return {
            "classification": self.classification,
            "policy_version": self.policy_version,
            "allowed": list(self.allowed),
            "denied": dict(self.denied),
        }


class PolicyEngine:
    def __init__(self, config: PolicyConfig) -> None:
        self.config = config
        self._rank = {level: rank for rank, level in enumerate(config.levels)}
        canonical = json.dumps(
            config.model_dump(mode="json"), sort_keys=True, separators=(",", ":")
        )
        self.version = "sha256:" + hashlib.sha256(canonical.encode()).hexdigest()[:16]

    # ---- classification ---------------------------------------------------------------

    def classify(self, *claims: str | None) -> str:
        """The highest of the default and every level claimed (header, metadata, DLP...)."""
        level = self.config.default_classification
        for claim in claims:
            if claim is None:
                continue
            if claim not in self._rank:
                levels = ", ".join(self.config.levels)
                raise InvalidRequest(
                    f"unknown classification {claim!r}; levels are: {levels}",
                    param="classification",
                )
            if self._rank[claim] > self._rank[level]:
                level = claim
        return level

    def check_ceiling(self, classification: str, ceiling: str | None) -> None:
        """403 when the data is more sensitive than the caller's key may send."""
        if ceiling is None:
            return
        if ceiling not in self._rank or self._rank[classification] > self._rank[ceiling]:
            raise PermissionDenied(
                f"this API key may send data up to {ceiling!r}; this request is "
                f"classified {classification!r}",
                code="classification_ceiling",
            )

    def check_readable(self, stored: str | None, ceiling: str | None) -> None:
        """403 when stored data (a response, a conversation) is above the reader's key's
        ceiling: a key reads back no more than it may send."""
        self.check_ceiling(self.classify(stored), ceiling)

    def claimed_in(self, metadata: Mapping[str, Any] | None) -> str | None:
        """The level a request body claims in `metadata.classification`, if any."""
        claim = (metadata or {}).get("classification")
        if claim is not None and not isinstance(claim, str):
            raise InvalidRequest(
                "metadata.classification must be a string", param="metadata.classification"
            )
        return claim

    # ---- decisions ----------------------------------------------------------------------

    def rule(self, classification: str, tenant: str) -> tuple[str, PolicyRule]:
        override = self.config.tenants.get(tenant, {}).get(classification)
        if override is not None:
            return f"tenants.{tenant}.{classification}", override
        return classification, self.config.rules[classification]

    def decide(
        self, classification: str, tenant: str, deployments: Sequence[Deployment]
    ) -> PolicyDecision:
        name, rule = self.rule(classification, tenant)
        decision = PolicyDecision(classification=classification, policy_version=self.version)
        for deployment in deployments:
            broken = violated(rule, deployment.facts)
            if broken is None:
                decision.allowed.append(deployment.name)
            else:
                decision.denied[deployment.name] = f"{name}.{broken}"
        return decision

    def enforce(self, decision: PolicyDecision, model: str) -> None:
        if decision.allowed:
            return
        reasons = ", ".join(f"{d} (rule {r})" for d, r in decision.denied.items())
        raise PermissionDenied(
            f"the policy allows no deployment of model {model!r} for data classified "
            f"{decision.classification!r}: {reasons} [policy {decision.policy_version}]",
            code="policy_denied",
        )


def violated(rule: PolicyRule, facts: DeploymentFacts) -> str | None:
    """The first constraint of `rule` the deployment breaks, or None if it may receive data."""
    if rule.jurisdictions is not None and not facts.in_jurisdictions(rule.jurisdictions):
        return "jurisdictions"
    if rule.operators is not None and facts.operator not in rule.operators:
        return "operators"
    if rule.max_retention_days is not None and (
        facts.retention_days is None or facts.retention_days > rule.max_retention_days
    ):
        return "max_retention_days"
    if not rule.allow_training and facts.trains_on_data:
        return "allow_training"
    if not set(rule.require_certifications) <= facts.certifications:
        return "require_certifications"
    return None
