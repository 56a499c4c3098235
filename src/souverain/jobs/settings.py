"""`jobs:` in the configuration: how this replica takes part in background work."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class JobsConfig(BaseModel):
    """Leases, polling and concurrency of the job runner (jobs/runner.py)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = Field(default=True, description="Run background jobs in this replica.")
    workers: int = Field(default=4, ge=1, le=256, description="Jobs run at once here.")
    lease_s: float = Field(
        default=60.0,
        ge=1.0,
        le=3600.0,
        description="A claim not renewed for this long is abandoned (its replica died); "
        "renewed every third of it.",
    )
    check_s: float = Field(
        default=2.0,
        gt=0,
        le=60.0,
        description="Renew leases and read cancellations this often (at most a third of "
        "lease_s): a cancelled job stops within about this long.",
    )
    poll_s: float = Field(default=1.0, gt=0, le=60.0, description="Look for work this often.")
    max_attempts: int = Field(
        default=5, ge=1, le=100, description="Claims of one job before it is given up."
    )
