"""The limits that apply to a call: a key's own, its user's, its team's, its tenant's, and
those of every key above a minted key. All of them must allow the call (quotas/)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Row

from ..quotas.limits import Demand, Limits, Scope
from .directory import LIMIT_FIELDS


def limits_from(values: dict[str, Any]) -> Limits | None:
    if all(values.get(f) is None for f in LIMIT_FIELDS if f != "budget_period"):
        return None
    return Limits(
        rpm=values.get("rpm"),
        tpm=values.get("tpm"),
        concurrency=values.get("max_concurrency"),
        budget_tokens=values.get("budget_tokens"),
        budget_cost=values.get("budget_cost"),
        budget_period=values.get("budget_period") or "month",
    )


def demands(row: Row[Any], team: Row[Any] | None) -> tuple[Demand, ...]:
    """The limits that apply to a call with this key: its own, its user's, its team's,
    its tenant's. All of them must allow the call."""
    data = row._mapping
    levels: list[tuple[Scope, dict[str, Any]]] = [
        (Scope("key", str(row.id), row.name), {f: data[f] for f in LIMIT_FIELDS}),
    ]
    if row.user_id is not None:
        user = {f: data[f"user_{f}"] for f in LIMIT_FIELDS}
        levels.append((Scope("user", str(row.user_id), row.user_name or ""), user))
    if team is not None:
        team_values = {f: team._mapping[f] for f in LIMIT_FIELDS}
        levels.append((Scope("team", str(team.id), team.name), team_values))
    if row.tenant_id is not None:
        tenant = {f: data[f"tenant_{f}"] for f in LIMIT_FIELDS}
        levels.append((Scope("tenant", str(row.tenant_id), row.tenant_name or ""), tenant))
    demands = []
    for scope, values in levels:
        limits = limits_from(values)
        if limits is not None:
            demands.append(Demand(scope, limits))
    return tuple(demands)


def ancestor_demands(rows: list[Row[Any]]) -> tuple[Demand, ...]:
    """The own limits of each key above: a minted key's use counts against them too."""
    demands = []
    for row in rows:
        limits = limits_from({f: row._mapping[f] for f in LIMIT_FIELDS})
        if limits is not None:
            demands.append(Demand(Scope("key", str(row.id), row.name), limits))
    return tuple(demands)
