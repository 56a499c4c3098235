"""How sensitive the passages a library search returns are: the level a tool outcome claims.

library/ records no classification per document: the level claimed when a document was
uploaded (header, key default) travels with its ingest job only, and the job is dropped
once the document is processed. So a passage's level is the highest of

  - its document's claim in `attributes.classification` (Mistral's free-form document
    attributes, set at upload or with `PUT .../documents/{id}`). A claim only raises a
    level; one the policy does not know, or that is not a string, counts as the highest
    level (fail closed: an unreadable label is not read as "public");
  - what data-loss prevention finds in the passage's text as the model will read it,
    raised through `dlp.raises` exactly as a request's findings are (a secret:
    restricted, an e-mail address: internal, ...). A scan that fails or would cost more
    than a request's scan may withholds the passages.

The outcome's level is the highest passage's, or the whole output's if higher (its
headers carry document and library names, which can hold data too). Above the
caller's `max_classification` the passages are withheld: the key could not have sent
them, so it may not read them into a conversation either.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine, select

from ..context import Principal
from ..dlp.budget import ScanTooCostly, request_budget
from ..dlp.engine import DlpEngine
from ..dlp.pool import run_scan
from ..errors import DlpUnavailable, PermissionDenied
from ..policy.engine import PolicyEngine
from ..store.tables import library_documents

if TYPE_CHECKING:
    from ..state import AppState

log = logging.getLogger("souverain.agents.library_sources")
ATTRIBUTE = "classification"


@dataclass(frozen=True, slots=True)
class Sources:
    levels: list[str]  # each passage's level
    classification: str  # the highest of them and of the output as a whole


async def classify_sources(
    state: AppState, principal: Principal, passages: Sequence[tuple[str, str]], output: str
) -> Sources:
    """Levels of (document id, text) passages, and of the `output` that carries them to
    the model (their headers name documents and libraries: names hold data too).
    PermissionDenied above the caller's ceiling; DlpUnavailable or ScanTooCostly when
    they could not be checked."""
    policy = state.pipeline.router.policy
    claims = await asyncio.to_thread(
        document_claims, state.database, sorted({doc for doc, _ in passages})
    )
    # Each passage alone (they come from different documents: a value never spans two),
    # then the whole output.
    *found, whole = await _dlp_levels(state.pipeline.dlp, [*(t for _, t in passages), output])
    levels = [
        policy.classify(_readable(policy, claims.get(doc)), *raised)
        for (doc, _), raised in zip(passages, found, strict=True)
    ]
    classification = policy.classify(*levels, *whole)
    ceiling = principal.max_classification
    try:
        policy.check_ceiling(classification, ceiling)
    except PermissionDenied:
        raise PermissionDenied(
            f"the passages found are classified {classification!r}, above what this API "
            f"key may read ({ceiling!r}); they were withheld",
            code="classification_ceiling",
        ) from None
    return Sources(levels=levels, classification=classification)


def document_claims(database: Engine, document_ids: Sequence[str]) -> dict[str, object]:
    """Each document's `attributes.classification`, where it has one."""
    docs = library_documents.c
    claims: dict[str, object] = {}
    with database.connect() as conn:
        rows = conn.execute(select(docs.id, docs.attributes).where(docs.id.in_(document_ids)))
        for document_id, attributes in rows:
            claim = _claim_in(attributes)
            if claim is not None:
                claims[document_id] = claim
    return claims


def _claim_in(attributes: str | None) -> object:
    if not attributes:
        return None
    try:
        data: Any = json.loads(attributes)
    except ValueError:
        return None  # written by us as JSON; never expected
    return data.get(ATTRIBUTE) if isinstance(data, dict) else None


def _readable(policy: PolicyEngine, claim: object) -> str | None:
    levels = policy.config.levels
    if claim is None:
        return None
    if isinstance(claim, str) and claim in levels:
        return claim
    return levels[-1]  # a label we cannot read is the most sensitive one


async def _dlp_levels(dlp: DlpEngine | None, texts: list[str]) -> list[list[str | None]]:
    """Per text, scanned alone, the levels its findings raise it to (none without DLP).
    One budget for all of them, as for a request's texts."""
    if dlp is None:
        return [[] for _ in texts]
    engine = dlp

    def scan() -> list[list[str | None]]:
        with request_budget(engine.config.scan_budget):
            findings = [list(engine.scanner.scan(text)) for text in texts]
        raises = engine.config.raises
        return [
            [raises.get(finding.type, raises.get("*")) for finding in per_text]
            for per_text in findings
        ]

    try:
        return await run_scan(scan)
    except ScanTooCostly:
        raise
    except Exception as exc:  # fail closed: passages nobody checked are not passed on
        log.error("data-loss prevention failed on library passages: %s", type(exc).__name__)
        raise DlpUnavailable(
            "data-loss prevention could not check the passages found; they were withheld"
        ) from None
