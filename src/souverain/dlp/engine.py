"""The data-loss prevention stage.

Before routing, `check` scans every text of the request (dlp/fields.py) and raises the
request's classification by what it found, so that the policy decides with it. Then,
for each deployment the dispatcher tries, `outbound` gives the request as that
deployment may see it: findings allowed, redacted or pseudonymized according to the
first `destinations` rule its facts match, or `DlpBlocked` if any finding may not go
there at all (the dispatcher then tries the next deployment). A detector that fails
blocks the request: nothing is sent unchecked.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from ..backends.base import Backend
from ..context import RequestContext
from ..errors import ConfigError, DlpBlocked, DlpUnavailable
from ..policy.engine import PolicyEngine
from ..policy.facts import DeploymentFacts
from .budget import ScanTooCostly, request_budget
from .crosstext import scan_texts
from .fields import Request, read, read_texts, with_texts
from .pool import run_scan
from .settings import DlpConfig
from .transform import Pseudonymizer

log = logging.getLogger("souverain.dlp")
# The finding type of values no detector can read (images sent as data: URLs): they can be
# allowed to a destination, never redacted or pseudonymized, so any other action blocks.
OPAQUE = "image"
INLINE_SCAN_CHARS = 16_000  # larger requests are scanned off the event loop (~5 ms and more)


class Scanner(Protocol):
    def scan(self, text: str) -> Sequence[Any]: ...


def build_scanner(config: DlpConfig) -> Scanner:
    """The built-in detectors plus the configured dictionaries and patterns; a text
    scanned before is not scanned again (scan_cache.py: a conversation's history)."""
    from .detectors import DictionaryDetector, RegexDetector, default_detectors
    from .detectors import Scanner as DetectorScanner
    from .normalize import warm_up
    from .scan_cache import CachingScanner

    warm_up()

    detectors = [
        *default_detectors(),
        *(DictionaryDetector(terms, kind) for kind, terms in config.dictionaries.items()),
        *(RegexDetector(pattern, kind) for kind, pattern in config.patterns.items()),
    ]
    if config.person_names:
        from .names import PersonNameDetector

        try:
            detectors.append(PersonNameDetector())
        except ImportError:  # the first-name list ships in the optional extra
            raise ConfigError(
                "dlp.person_names needs the optional extra: pip install 'souverain[names]'"
            ) from None
    return CachingScanner(DetectorScanner(detectors))


class DlpEngine:
    def __init__(
        self, config: DlpConfig, policy: PolicyEngine, scanner: Scanner, secret: bytes
    ) -> None:
        self.config = config
        self.policy = policy
        self.scanner = scanner
        self._secret = secret

    # ---- the guard: before routing ------------------------------------------------------

    async def check(self, ctx: RequestContext, call: Any) -> None:
        texts, opaque = read(call.request)  # one walk: texts and unreadable images
        try:
            if sum(len(text) for text in texts) > INLINE_SCAN_CHARS:
                # Their own pool (dlp/pool.py): not the default executor, which key lookups
                # and admin queries need while big scans run.
                findings = await run_scan(lambda: self._scan_all(texts))
            else:
                findings = self._scan_all(texts)
        except ScanTooCostly:  # more than a request's scan may cost: refused, unsent (413)
            log.warning("a request was refused: its scan would cost more than its budget")
            raise
        except Exception as exc:  # fail closed: an unchecked request is not sent
            log.error("a data-loss prevention detector failed: %s", type(exc).__name__)
            raise DlpUnavailable(
                "data-loss prevention could not check this request; it was not sent"
            ) from None
        ctx.notes["dlp_findings"] = findings
        counts = Counter(finding.type for per_text in findings for finding in per_text)
        if opaque:  # images no detector can read: classified and routed as their own type
            counts[OPAQUE] = opaque
            ctx.notes["dlp_opaque"] = opaque
        if not counts:
            return
        ctx.notes["dlp"] = dict(sorted(counts.items()))  # categories and counts, never values
        raised = [self._raises(kind) for kind in counts]
        ctx.classification = self.policy.classify(ctx.classification, *raised)
        self.policy.check_ceiling(ctx.classification, ctx.principal.max_classification)

    def _scan_all(self, texts: list[str]) -> list[list[Any]]:
        """Per text, its findings; a value split across texts counts in each (crosstext.py).
        All of it within one work budget (budget.py): past it, ScanTooCostly."""
        with request_budget(self.config.scan_budget):
            return scan_texts(self.scanner, texts)

    def _raises(self, kind: str) -> str | None:
        return self.config.raises.get(kind, self.config.raises.get("*"))

    # ---- per deployment: what it may see ------------------------------------------------

    def outbound(
        self, ctx: RequestContext, request: Request, backend: Backend
    ) -> tuple[Request, dict[str, str] | None]:
        findings: list[list[Any]] = ctx.notes.get("dlp_findings") or []
        kinds = {finding.type for per_text in findings for finding in per_text}
        action = self.actions_for(backend.facts)
        if ctx.notes.get("dlp_opaque") and action(OPAQUE) != "allow":
            raise DlpBlocked(
                f"the request contains images, which data-loss prevention cannot read; "
                f"deployment {backend.name} may receive them only where {OPAQUE!r} is allowed"
            )
        if not kinds:
            return request, None
        blocked = sorted(kind for kind in kinds if action(kind) == "block")
        if blocked:
            raise DlpBlocked(
                f"the request contains data of type {', '.join(blocked)}, which deployment "
                f"{backend.name} may not receive"
            )
        if all(action(kind) == "allow" for kind in kinds):
            return request, None
        pseudonymizer = Pseudonymizer(self._tenant_secret(ctx.principal.tenant))
        texts, mapping = [], {}
        for text, per_text in zip(read_texts(request), findings, strict=True):
            transformed, found = pseudonymizer.apply(text, per_text, action)
            texts.append(transformed)
            mapping.update(found)
        return with_texts(request, texts), mapping

    def actions_for(self, facts: DeploymentFacts) -> Callable[[str], str]:
        chosen: dict[str, str] = {}
        for rule in self.config.destinations:
            if rule.jurisdictions is not None and not facts.in_jurisdictions(rule.jurisdictions):
                continue
            if rule.operators is not None and facts.operator not in rule.operators:
                continue
            chosen = dict(rule.actions)
            break
        defaults = self.config.default_actions

        def action(kind: str) -> str:
            # The matching rule first (its "*" included), then the defaults; else block.
            return (
                chosen.get(kind)
                or chosen.get("*")
                or defaults.get(kind)
                or defaults.get("*")
                or "block"
            )

        return action

    def _tenant_secret(self, tenant: str) -> bytes:
        """Placeholders are stable within a tenant and unlinkable across tenants."""
        return hmac.new(self._secret, tenant.encode(), hashlib.sha256).digest()
