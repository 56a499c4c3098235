"""Souverain's own admin API (`/admin/v1/...`): request bodies."""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import ConfigDict, Field, model_validator
from pydantic.config import JsonDict

from ..routing.killswitch import CutKind
from .common import Id, StrictModel

# The document says what the validator checks: exactly one of the three is a string
# (the others absent or null), so a request it allows is one the server takes.
_EXACTLY_ONE: JsonDict = {
    "oneOf": [
        {"required": [name], "properties": {name: {"type": "string"}}}
        for name in ("deployment", "operator", "jurisdiction")
    ]
}


class ProviderTarget(StrictModel):
    """Exactly one of: a deployment name, an operator, or a jurisdiction."""

    model_config = ConfigDict(extra="forbid", strict=True, json_schema_extra=_EXACTLY_ONE)

    deployment: str | None = Field(default=None, min_length=1, max_length=200)
    operator: str | None = Field(default=None, min_length=1, max_length=200)
    jurisdiction: str | None = Field(default=None, min_length=1, max_length=200)

    @model_validator(mode="after")
    def _exactly_one(self) -> ProviderTarget:
        given = [name for name in ("deployment", "operator", "jurisdiction") if getattr(self, name)]
        if len(given) != 1:
            raise ValueError("give exactly one of deployment, operator, jurisdiction")
        return self

    @property
    def kind(self) -> CutKind:
        if self.deployment:
            return "deployment"
        return "operator" if self.operator else "jurisdiction"

    @property
    def value(self) -> str:
        return self.deployment or self.operator or self.jurisdiction or ""


class ErasureRequest(StrictModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    subject: str = Field(min_length=1, max_length=500)


# ---- identity: tenants, teams, users, keys (`/admin/v1/...`) ------------------------------

Role = Literal["owner", "admin", "auditor", "developer", "user"]
Endpoint = Literal[
    "chat",
    "fim",
    "embeddings",
    "ocr",
    "models",
    "libraries",
    "admin",
    "audit",
    "responses",
    "completions",
    "connectors",
    "agents",
    "conversations",  # /v1/conversations (its model steps run under this scope too)
    "files",  # /v1/files
    "batch",  # /v1/batches and /v1/batch/jobs (each line also needs its endpoint's scope)
]
NAME = r"^[A-Za-z0-9][A-Za-z0-9_.@ -]{0,99}$"  # tenants and teams: readable, no markup
_DURATION = re.compile(r"^(\d{1,6})([mhd])$")


class _Body(StrictModel):
    # Strict like the API's models (protocol/common.py `APIModel`): a value is read only
    # as the type the document gives it.
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class LimitsBody(_Body):
    """Quotas; omitted fields keep their value, null clears a limit."""

    rpm: int | None = Field(default=None, ge=1, le=10**9)
    tpm: int | None = Field(default=None, ge=1, le=2**31 - 1)  # an integer column
    max_concurrency: int | None = Field(default=None, ge=1, le=10**6)
    budget_tokens: int | None = Field(default=None, ge=0, le=10**15)
    budget_cost: float | None = Field(default=None, ge=0, le=10**12)
    budget_period: Literal["day", "month"] | None = None

    def values(self) -> dict[str, Any]:
        given = {name: getattr(self, name) for name in self.model_fields_set}
        if "budget_period" in given and given["budget_period"] is None:
            given["budget_period"] = "month"
        return given


class TenantCreate(_Body):
    name: str = Field(pattern=NAME)
    limits: LimitsBody = LimitsBody()


class LimitsUpdate(_Body):
    limits: LimitsBody


class TeamCreate(_Body):
    name: str = Field(pattern=NAME)
    tenant: str | None = Field(default=None, description="Owner only; default: your tenant.")
    limits: LimitsBody = LimitsBody()


class UserCreate(_Body):
    name: str = Field(min_length=1, max_length=200)
    kind: Literal["user", "service"] = "user"
    role: Role = "user"
    tenant: str | None = None
    teams: list[Id] = Field(default_factory=list, max_length=100)
    limits: LimitsBody = LimitsBody()


class UserUpdate(_Body):
    role: Role | None = None
    disabled: bool | None = None
    limits: LimitsBody | None = None


class MemberAdd(_Body):
    user_id: Id


class KeyCreate(_Body):
    name: str = Field(min_length=1, max_length=200)
    role: Role | None = Field(default=None, description="Default: its user's role, or user.")
    user_id: Id | None = None
    team: str | None = Field(default=None, description="The team its usage is billed to.")
    tenant: str | None = None
    models: list[str] | None = Field(default=None, max_length=1000)
    endpoints: list[Endpoint] | None = None
    expires_in: str | None = Field(
        default=None, description="30d, 12h, 90m", json_schema_extra={"pattern": _DURATION.pattern}
    )
    expires_at: int | None = Field(default=None, ge=0)
    default_classification: str | None = Field(default=None, max_length=64)
    max_classification: str | None = Field(default=None, max_length=64)
    limits: LimitsBody = LimitsBody()

    @model_validator(mode="after")
    def _one_expiry(self) -> KeyCreate:
        if self.expires_in is not None:
            if self.expires_at is not None:
                raise ValueError("give expires_in or expires_at, not both")
            if not _DURATION.match(self.expires_in):
                raise ValueError("expires_in looks like 30d, 12h or 90m")
        return self

    def expiry(self, now: float) -> float | None:
        if self.expires_in is None:
            return None if self.expires_at is None else float(self.expires_at)
        match = _DURATION.match(self.expires_in)
        assert match is not None
        return now + int(match.group(1)) * {"m": 60, "h": 3600, "d": 86400}[match.group(2)]
