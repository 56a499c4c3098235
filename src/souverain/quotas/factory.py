"""Pick the quota store: Redis when replicas share limits, else this process's memory."""

from __future__ import annotations

from .limits import QuotaStore, SpentLoader
from .memory import MemoryQuotaStore
from .redis_store import RedisQuotaStore


def open_quota_store(
    redis_url: str | None,
    spent_loader: SpentLoader,
    *,
    lease_s: float = 600.0,
    prefix: str = "souverain:quota:",
    timeout_s: float = 1.0,
) -> QuotaStore:
    """Connects lazily: an unreachable Redis surfaces as `QuotaUnavailable` on first use."""
    if redis_url:
        return RedisQuotaStore(
            redis_url, spent_loader, prefix=prefix, lease_s=lease_s, timeout_s=timeout_s
        )
    return MemoryQuotaStore(spent_loader, lease_s=lease_s)
