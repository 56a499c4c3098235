"""What is known about a deployment, with unknowns read as the worst case."""

from __future__ import annotations

from dataclasses import dataclass

from ..config import DeploymentConfig

ON_PREM = "on-prem"
EU = "EU"
UNKNOWN = "unknown"
# ISO 3166-1 alpha-2 codes of the EU member states (Eurostat uses EL for Greece: both).
EU_MEMBERS = frozenset(
    {
        "AT",
        "BE",
        "BG",
        "CY",
        "CZ",
        "DE",
        "DK",
        "EE",
        "EL",
        "ES",
        "FI",
        "FR",
        "GR",
        "HR",
        "HU",
        "IE",
        "IT",
        "LT",
        "LU",
        "LV",
        "MT",
        "NL",
        "PL",
        "PT",
        "RO",
        "SE",
        "SI",
        "SK",
    }
)


@dataclass(frozen=True, slots=True)
class DeploymentFacts:
    operator: str
    jurisdiction: str  # "on-prem", "EU", an upper-case country code, or "unknown"
    region: str | None
    retention_days: int | None  # None: unknown, read as unlimited
    trains_on_data: bool  # unknown is read as True
    certifications: frozenset[str]

    @classmethod
    def of(cls, deployment: DeploymentConfig) -> DeploymentFacts:
        in_process = deployment.engine == "local"
        jurisdiction = deployment.jurisdiction or (ON_PREM if in_process else UNKNOWN)
        if jurisdiction.lower() == ON_PREM:
            jurisdiction = ON_PREM
        elif jurisdiction != UNKNOWN:
            jurisdiction = jurisdiction.upper()
        retention = deployment.retention_days
        trains = deployment.trains_on_data
        return cls(
            operator=deployment.operator or ("self" if in_process else UNKNOWN),
            jurisdiction=jurisdiction,
            region=deployment.region,
            retention_days=0 if retention is None and in_process else retention,
            trains_on_data=(not in_process) if trains is None else trains,
            certifications=frozenset(deployment.certifications),
        )

    def in_jurisdictions(self, allowed: tuple[str, ...]) -> bool:
        """ "EU" in a rule admits "EU" deployments and those in any member state."""
        wanted = {ON_PREM if item.lower() == ON_PREM else item.upper() for item in allowed}
        return self.jurisdiction in wanted or (EU in wanted and self.jurisdiction in EU_MEMBERS)
