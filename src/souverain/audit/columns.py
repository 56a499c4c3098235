"""The queryable columns of a leaf, and the check that they still say what its data says.

`audit_leaves` keeps `tenant`, `principal`, `kind`, `model`, `outcome` and `at` beside
the hashed `data` so that queries can filter on them. They are copies: only `data` is
hashed and signed. Whoever can rewrite rows (the triggers dropped) could move a leaf to
another tenant by changing its `tenant` column alone, and the hashes would still match.
So the writer derives every column from the data with `columns_of`, and `verify_log`
and every reader that serves leaves compare them again with `disagreement`.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Any

PRINCIPAL_COLUMN_CHARS = 200  # audit_leaves.principal (store/tables.py)
DEFAULT_TENANT = "default"  # leaves that name no tenant (configuration, start-up)
# Leaves written before the `at` column was taken from the hashed `time` were stamped a
# little later, when their batch was written; never earlier.
LEGACY_AT_SLACK_S = 300.0
AT_EPSILON_S = 1e-3  # float rounding of a microsecond timestamp


def timestamp(iso: str) -> float:
    """The hashed `time` field (ISO 8601, UTC, `Z`) as Unix seconds."""
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


def columns_of(leaf: dict[str, Any]) -> dict[str, Any]:
    """The query columns of a leaf, read from its (hashed) data and nothing else."""
    when = leaf.get("time")
    return {
        "tenant": _text(leaf.get("tenant")) or DEFAULT_TENANT,
        "principal": _fitted(_text(leaf.get("principal"))),
        "kind": _text(leaf.get("kind")) or "request",
        "model": _text(leaf.get("model")),
        "outcome": _text(leaf.get("outcome")),
        "at": timestamp(when) if isinstance(when, str) else None,
    }


def disagreement(row: Any, leaf: dict[str, Any]) -> str | None:
    """The first column of `row` that does not say what the hashed `leaf` says, or None."""
    expected = columns_of(leaf)
    for name in ("tenant", "principal", "kind", "model", "outcome"):
        if getattr(row, name) != expected[name]:
            return name
    at, when = row.at, expected["at"]
    if when is None or at is None:
        return "at"
    if not -AT_EPSILON_S <= at - when <= LEGACY_AT_SLACK_S:
        return "at"
    return None


def _fitted(value: str | None) -> str | None:
    """A label longer than its column (an OIDC `sub` may be 255 characters) as its digest:
    one such label must not fail the write of a whole batch of other callers' leaves."""
    if value is None or len(value) <= PRINCIPAL_COLUMN_CHARS:
        return value
    return "sha256:" + hashlib.sha256(value.encode()).hexdigest()


def _text(value: Any) -> str | None:
    if value is None:
        return None
    return value if isinstance(value, str) else str(value)
