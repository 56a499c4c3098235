"""The GDPR Art. 30 record of processing, derived from the configuration itself.

Recipients are the deployments (operator, country); a transfer outside the EU is any
deployment whose jurisdiction is neither on-prem nor in the EU, listed with the data
classifications the policy lets reach it.
"""

from __future__ import annotations

from typing import Any

from ..config import Settings
from ..policy.engine import PolicyEngine, violated
from ..policy.facts import EU, EU_MEMBERS, ON_PREM, DeploymentFacts

SECURITY_MEASURES = (
    "API keys are random, shown once, stored only as HMAC-SHA256 with a server-side pepper, "
    "compared in constant time",
    "every /v1 and /admin route needs a key; admin routes need the admin role",
    "a sovereignty policy decides, before any byte leaves, which deployments may receive "
    "each classification of data; refusals name the rule",
    "one pipeline for every model call; only the dispatcher sends data to an engine",
    "a tamper-evident audit log: RFC 9162 Merkle tree over every request and admin action, "
    "Ed25519-signed C2SP checkpoints, key outside the database, rows append-only in the "
    "database; prompts and answers are never written to it",
    "request bodies are size-limited; errors never echo request content",
)


def record_of_processing(settings: Settings) -> dict[str, Any]:
    policy = PolicyEngine(settings.policy)
    recipients, transfers = [], []
    for model in settings.models:
        for deployment in model.deployments:
            facts = DeploymentFacts.of(deployment)
            levels = [
                level
                for level in settings.policy.levels
                if violated(settings.policy.rules[level], facts) is None
            ]
            entry = {
                "model": model.id,
                "deployment": deployment.name or f"{model.id}@{deployment.engine}",
                "operator": facts.operator,
                "jurisdiction": facts.jurisdiction,
                "region": facts.region,
                "retention_days": facts.retention_days,
                "trains_on_data": facts.trains_on_data,
                "certifications": sorted(facts.certifications),
                "classifications_allowed": levels,
            }
            recipients.append(entry)
            if facts.jurisdiction not in (ON_PREM, EU) and facts.jurisdiction not in EU_MEMBERS:
                transfers.append(entry)
    return {
        "article": "GDPR Art. 30(1) record of processing activities",
        "purposes": [
            "generation, completion and embedding of text by AI models for the "
            "institution's users, through its Souverain gateway"
        ],
        "categories_of_data": list(settings.policy.levels),
        "recipients": recipients,
        "transfers_outside_the_eu": transfers,
        "retention": {
            "audit_log": "append-only; leaves hold metadata only (no prompts or answers)",
            "by_recipient": "see recipients[].retention_days (null: unknown)",
        },
        "security_measures": list(SECURITY_MEASURES),
        "policy_version": policy.version,
    }
