"""Usage aggregated by tenant, team, key, user, model, deployment and/or day."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any, Literal

from sqlalchemy import Engine, case, func, select

from ..store.tables import usage

GroupBy = Literal[
    "tenant", "team", "key", "user", "principal", "model", "deployment", "day", "endpoint"
]
GROUPS: dict[str, Any] = {
    "tenant": usage.c.tenant,
    "team": usage.c.team,
    "key": usage.c.key_id,
    "user": usage.c.user_id,
    "principal": usage.c.principal,  # key:12, oidc:keycloak:<sub>
    "model": usage.c.model,
    "deployment": usage.c.deployment,
    "day": usage.c.day,
    "endpoint": usage.c.endpoint,
}


def usage_report(
    engine: Engine,
    *,
    group_by: list[str],
    tenant: str | None,
    start: date | None = None,
    end: date | None = None,
) -> list[dict[str, Any]]:
    """One row per group: requests, errors, tokens, cost and mean latency.

    `tenant` confines the report (an admin's or auditor's own tenant); `start`/`end` are
    inclusive UTC days.
    """
    columns = [GROUPS[name].label(name) for name in dict.fromkeys(group_by)]  # once each
    query = select(
        *columns,
        func.count().label("requests"),
        func.sum(case((usage.c.status >= 400, 1), else_=0)).label("errors"),
        func.sum(usage.c.prompt_tokens).label("prompt_tokens"),
        func.sum(usage.c.completion_tokens).label("completion_tokens"),
        func.sum(usage.c.cost).label("cost"),
        func.avg(usage.c.latency_ms).label("mean_latency_ms"),
    )
    if tenant is not None:
        query = query.where(usage.c.tenant == tenant)
    if start is not None:
        query = query.where(usage.c.at >= _epoch(start))
    if end is not None:
        query = query.where(usage.c.at < _epoch(end + timedelta(days=1)))
    if columns:
        query = query.group_by(*columns).order_by(*columns)
    with engine.connect() as conn:
        rows = conn.execute(query).all()
    report = []
    for row in rows:
        item = dict(row._mapping)
        if not item["requests"]:
            continue
        item["prompt_tokens"] = int(item["prompt_tokens"] or 0)
        item["completion_tokens"] = int(item["completion_tokens"] or 0)
        item["total_tokens"] = item["prompt_tokens"] + item["completion_tokens"]
        item["errors"] = int(item["errors"] or 0)
        item["cost"] = round(float(item["cost"] or 0), 6)
        item["mean_latency_ms"] = round(float(item["mean_latency_ms"] or 0), 3)
        report.append(item)
    return report


def _epoch(day: date) -> float:
    return datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp()
