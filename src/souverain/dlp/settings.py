"""`dlp:` in the configuration: what to look for, and what each destination may see.

Its own module, like identity/settings.py, so that data-loss prevention's settings sit with
it; `config.Settings` includes it. README "Data-loss prevention", docs/dlp.md.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from .budget import WORK_LIMIT


class _Settings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


DlpAction = Literal["allow", "redact", "pseudonymize", "block"]


class DlpDestination(_Settings):
    """What deployments matching these facts may see, by finding type ("*": any other)."""

    jurisdictions: tuple[str, ...] | None = None
    operators: tuple[str, ...] | None = None
    actions: dict[str, DlpAction]


def _default_dlp_actions() -> dict[str, DlpAction]:
    return {"secret": "block", "*": "pseudonymize"}


class DlpConfig(_Settings):
    """Data-loss prevention: what to look for, and what each destination may see."""

    enabled: bool = True
    # Person names (type "person"): needs the optional `names` extra; off by default,
    # because it costs up to ~0.6 ms on a name-dense 2 KB prompt (docs/dlp-names.md).
    person_names: bool = False
    # Work units one request's scan may cost before it is refused unsent (413
    # dlp_scan_too_costly; dlp/budget.py): ~10 ns each here, so the default is about half a
    # CPU-second. Raise it where large numeric tables are sent on purpose.
    scan_budget: int = Field(default=WORK_LIMIT, ge=1_000_000)
    # Custom detectors: finding type -> terms (whole words, any case) or a regex.
    dictionaries: dict[str, tuple[str, ...]] = Field(default_factory=dict)
    patterns: dict[str, str] = Field(default_factory=dict)
    # The classification a finding of this type gives the request ("*": any other type).
    raises: dict[str, str] = Field(
        default_factory=lambda: {
            "secret": "restricted",
            "email": "internal",
            "phone": "internal",
            "ip_address": "internal",
            "*": "confidential",
        }
    )
    # First matching destination wins; deployments matching none get `default_actions`.
    destinations: tuple[DlpDestination, ...] = (
        DlpDestination(jurisdictions=("on-prem",), actions={"*": "allow"}),
    )
    default_actions: dict[str, DlpAction] = Field(default_factory=_default_dlp_actions)

    @model_validator(mode="after")
    def _patterns_compile(self) -> DlpConfig:
        import re

        from .patterns import pattern_problem  # searches stay linear in the text

        for name, pattern in self.patterns.items():
            try:
                re.compile(pattern)
            except re.error as exc:
                raise ValueError(
                    f"patterns.{name}: not a valid regular expression: {exc}"
                ) from None
            problem = pattern_problem(pattern)
            if problem:
                raise ValueError(f"patterns.{name}: {problem}")
        return self
