"""What a quota store is asked, what it answers, and the clock arithmetic both stores share.

A request names one `Demand` per scope it belongs to (tenant, team, user, key). A store
reserves every demand at once or none of them, and the reservation is settled with the
actual usage when the request ends. The refusal messages live here so that the
in-process and Redis stores word them identically.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Literal, Protocol

from ..errors import QuotaUnavailable, RateLimited

ScopeKind = Literal["tenant", "team", "user", "key"]
BudgetPeriod = Literal["day", "month"]
LimitCode = Literal[
    "concurrent_requests",
    "requests_per_minute",
    "tokens_per_minute",
    "token_budget",
    "cost_budget",
]

WINDOW_S = 60
# Buckets counted at second b: b-60 .. b. The oldest one is only partly inside the real
# window but is counted whole, so every real 60-second window stays within the limit.
WINDOW_BUCKETS = WINDOW_S + 1
# Costs are floats: 0.1 + 0.2 must still fit a budget of 0.3.
COST_EPSILON = 1e-9

_SECONDS_PER_DAY = 86_400
_PERIOD_WORDS = {"day": "today", "month": "this month"}
_PERIOD_NOUNS = {"day": "day", "month": "month"}


@dataclass(frozen=True, slots=True)
class Scope:
    kind: ScopeKind
    # Goes into Redis keys and messages: a row id or a key prefix, never a secret.
    id: str
    label: str = ""  # human name for messages, e.g. team 'payments'

    def describe(self) -> str:
        return f"{self.kind} '{self.label or self.id}'"


@dataclass(frozen=True, slots=True)
class Limits:
    """The limits of one scope; None means unlimited."""

    rpm: int | None = None
    tpm: int | None = None
    concurrency: int | None = None
    budget_tokens: int | None = None
    budget_cost: float | None = None
    budget_period: BudgetPeriod = "month"

    def __post_init__(self) -> None:
        # The Redis script reads -1 as "unlimited": a negative limit must never get there.
        for name in ("rpm", "tpm", "concurrency", "budget_tokens", "budget_cost"):
            value = getattr(self, name)
            if value is not None and value < 0:
                raise ValueError(f"quota limit {name} must be 0 or more, not {value}")
        if self.budget_period not in ("day", "month"):
            raise ValueError(f"budget_period must be 'day' or 'month', not {self.budget_period!r}")

    @property
    def unlimited(self) -> bool:
        return (
            self.rpm is None
            and self.tpm is None
            and self.concurrency is None
            and self.budget_tokens is None
            and self.budget_cost is None
        )

    @property
    def has_budget(self) -> bool:
        return self.budget_tokens is not None or self.budget_cost is not None


@dataclass(frozen=True, slots=True)
class Demand:
    scope: Scope
    limits: Limits


@dataclass(slots=True)
class Reservation:
    """What `reserve` recorded, so that `settle` can undo or adjust exactly that."""

    request_id: str
    demands: tuple[Demand, ...]  # only those with at least one limit
    tokens: int  # reserved (estimated) tokens
    cost: float  # reserved (estimated) cost
    bucket: int  # the 1-second bucket (epoch second) its request and tokens were counted in
    period_starts: tuple[float, ...]  # per demand: its budget period start, 0.0 without budget
    settled: bool = False


# (scope, period_start epoch) -> (tokens, cost) durably spent in that period.
SpentLoader = Callable[[Scope, float], Awaitable[tuple[int, float]]]


class QuotaStore(Protocol):
    async def reserve(
        self,
        request_id: str,
        demands: Sequence[Demand],
        tokens: int,
        cost: float,
        now: float | None = None,
    ) -> Reservation: ...

    async def settle(
        self, reservation: Reservation, tokens: int, cost: float, now: float | None = None
    ) -> None: ...

    async def aclose(self) -> None: ...


# --- calendar periods (UTC) ---------------------------------------------------------


def limited(demands: Sequence[Demand], now: float) -> tuple[tuple[Demand, ...], tuple[float, ...]]:
    """The demands that have a limit, and each one's budget period start (0.0 without a
    budget): what every store reserves against."""
    active = tuple(d for d in demands if not d.limits.unlimited)
    starts = tuple(
        period_bounds(d.limits.budget_period, now)[0] if d.limits.has_budget else 0.0
        for d in active
    )
    return active, starts


def period_bounds(period: BudgetPeriod, now: float) -> tuple[float, float]:
    """The [start, end) epoch seconds of the calendar day or month that contains `now`."""
    return _period_bounds(period, int(now // _SECONDS_PER_DAY))


@lru_cache(maxsize=256)
def _period_bounds(period: BudgetPeriod, day: int) -> tuple[float, float]:
    # Cached per day number: datetime arithmetic costs microseconds and runs per request.
    if period == "day":
        start = float(day * _SECONDS_PER_DAY)
        return start, start + _SECONDS_PER_DAY
    date = datetime.fromtimestamp(day * _SECONDS_PER_DAY, UTC)
    first = datetime(date.year, date.month, 1, tzinfo=UTC)
    following = (first + timedelta(days=32)).replace(day=1)
    return first.timestamp(), following.timestamp()


def budget_ttl(period: BudgetPeriod, now: float, grace_days: int = 7) -> int:
    """Seconds a budget counter should outlive `now`: to the period end, plus a grace."""
    _, end = period_bounds(period, now)
    return math.ceil(end - now) + grace_days * _SECONDS_PER_DAY


def seconds_until(moment: float, now: float) -> int:
    """Retry-After value: whole seconds, at least 1."""
    return max(1, math.ceil(moment - now))


# --- refusals -----------------------------------------------------------------------


def refusal(
    demand: Demand, code: LimitCode, tokens: int, cost: float, retry_after: float | None
) -> RateLimited:
    """The 429 for one failed limit. `retry_after` None: this request can never fit."""
    limits, who = demand.limits, demand.scope.describe()
    period = _PERIOD_WORDS[limits.budget_period]
    if code == "concurrent_requests":
        message = f"concurrency limit reached: {who} allows {limits.concurrency} requests at a time"
    elif code == "requests_per_minute":
        message = f"rate limit reached: {who} allows {limits.rpm} requests per minute"
    elif code == "tokens_per_minute" and retry_after is None:
        message = (
            f"request too large: it needs {tokens} tokens but {who} allows "
            f"{limits.tpm} tokens per minute"
        )
    elif code == "tokens_per_minute":
        message = f"rate limit reached: {who} allows {limits.tpm} tokens per minute"
    elif code == "token_budget" and retry_after is None:
        message = (
            f"request too large: it needs {tokens} tokens but {who} has a budget of "
            f"{limits.budget_tokens} tokens per {_PERIOD_NOUNS[limits.budget_period]}"
        )
    elif code == "token_budget":
        message = f"budget exhausted: {who} has used its {limits.budget_tokens} tokens for {period}"
    elif retry_after is None:
        message = (
            f"request too large: it costs {cost:g} but {who} has a cost budget of "
            f"{limits.budget_cost:g} per {_PERIOD_NOUNS[limits.budget_period]}"
        )
    else:
        message = (
            f"budget exhausted: {who} has used its cost budget of {limits.budget_cost:g} "
            f"for {period}"
        )
    return RateLimited(message, code=code, retry_after=retry_after)


def budget_refusal(
    demand: Demand, code: LimitCode, tokens: int, cost: float, now: float, fits_ever: bool
) -> RateLimited:
    """A budget 429: retry at the next period start, or never if the request is too large."""
    if not fits_ever:
        return refusal(demand, code, tokens, cost, None)
    _, end = period_bounds(demand.limits.budget_period, now)
    return refusal(demand, code, tokens, cost, seconds_until(end, now))


# --- loading spent usage --------------------------------------------------------------


class SpentLoads:
    """Calls the spent loader once per (scope, period) even when many requests need it.

    Fifty requests arriving together for a new period would otherwise run fifty
    identical queries against the usage table.
    """

    def __init__(self, loader: SpentLoader) -> None:
        self._loader = loader
        self._pending: dict[tuple[Scope, float], asyncio.Future[tuple[int, float]]] = {}

    async def load(self, scope: Scope, period_start: float) -> tuple[int, float]:
        key = (scope, period_start)
        pending = self._pending.get(key)
        if pending is None:
            pending = asyncio.ensure_future(self._call(scope, period_start))
            self._pending[key] = pending
            pending.add_done_callback(lambda _: self._pending.pop(key, None))
        # shield: one cancelled request must not cancel the load the others wait for.
        return await asyncio.shield(pending)

    async def load_all(self, wanted: Sequence[tuple[Scope, float]]) -> list[tuple[int, float]]:
        return list(await asyncio.gather(*(self.load(s, p) for s, p in wanted)))

    async def _call(self, scope: Scope, period_start: float) -> tuple[int, float]:
        try:
            tokens, cost = await self._loader(scope, period_start)
        except Exception as exc:  # the usage table is down: fail closed
            raise QuotaUnavailable(
                f"quota store unavailable: could not load the usage of {scope.describe()}"
            ) from exc
        return int(tokens), float(cost)
