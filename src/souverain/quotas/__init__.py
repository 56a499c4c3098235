"""Rate limits, concurrency caps and token/cost budgets per tenant, team, user and key.

`reserve` before calling the backend (all scopes at once, or a 429 and nothing
recorded); `settle` with the actual usage when the request ends, (0, 0) if it failed.
"""

from .factory import open_quota_store
from .limits import (
    Demand,
    Limits,
    QuotaStore,
    Reservation,
    Scope,
    ScopeKind,
    SpentLoader,
    period_bounds,
)
from .memory import MemoryQuotaStore
from .redis_store import RedisQuotaStore

__all__ = [
    "Demand",
    "Limits",
    "MemoryQuotaStore",
    "QuotaStore",
    "RedisQuotaStore",
    "Reservation",
    "Scope",
    "ScopeKind",
    "SpentLoader",
    "open_quota_store",
    "period_bounds",
]
