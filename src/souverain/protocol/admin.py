"""Souverain's own admin API (`/admin/v1/...`): request bodies."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator

from ..routing.killswitch import CutKind


class ProviderTarget(BaseModel):
    """Exactly one of: a deployment name, an operator, or a jurisdiction."""

    model_config = ConfigDict(extra="forbid")

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


class ErasureRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    subject: str = Field(min_length=1, max_length=500)
