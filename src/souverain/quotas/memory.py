"""Quotas held in this process: one gateway replica, no Redis.

`reserve` checks and records without awaiting anything (the spent loader runs first,
before the check), so on one event loop the whole check-then-record is atomic.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Sequence

from .limits import (
    COST_EPSILON,
    WINDOW_BUCKETS,
    WINDOW_S,
    BudgetPeriod,
    Demand,
    Reservation,
    Scope,
    SpentLoader,
    SpentLoads,
    budget_refusal,
    limited,
    refusal,
    seconds_until,
)

_REQUESTS, _TOKENS = 1, 2  # positions in a window entry [bucket, requests, tokens]


class _Window:
    """The last 61 one-second buckets of a scope, with running totals."""

    __slots__ = ("entries", "requests", "tokens")

    def __init__(self) -> None:
        self.entries: deque[list[int]] = deque()  # [bucket, requests, tokens], oldest first
        self.requests = 0
        self.tokens = 0

    def advance(self, bucket: int) -> None:
        oldest, entries = bucket - WINDOW_S, self.entries
        while entries and entries[0][0] < oldest:
            _, requests, tokens = entries.popleft()
            self.requests -= requests
            self.tokens -= tokens

    def add(self, bucket: int, tokens: int) -> None:
        entries = self.entries
        if entries and entries[-1][0] == bucket:
            entries[-1][_REQUESTS] += 1
            entries[-1][_TOKENS] += tokens
        elif not entries or entries[-1][0] < bucket:
            entries.append([bucket, 1, tokens])
        else:  # an injected clock went back: keep the entries sorted
            position = next(i for i, entry in enumerate(entries) if entry[0] >= bucket)
            if entries[position][0] == bucket:
                entries[position][_REQUESTS] += 1
                entries[position][_TOKENS] += tokens
            else:
                entries.insert(position, [bucket, 1, tokens])
        self.requests += 1
        self.tokens += tokens

    def adjust_tokens(self, bucket: int, delta: int) -> None:
        for entry in reversed(self.entries):  # the bucket is almost always among the newest
            if entry[0] == bucket:
                new = max(0, entry[_TOKENS] + delta)
                self.tokens += new - entry[_TOKENS]
                entry[_TOKENS] = new
                return
            if entry[0] < bucket:
                return

    def wait(self, now: float, field: int, need: int, limit: int) -> int:
        """Seconds until enough old buckets leave the window for `need` more to fit."""
        used = self.requests if field == _REQUESTS else self.tokens
        for entry in self.entries:
            used -= entry[field]
            if used + need <= limit:
                return seconds_until(entry[0] + WINDOW_BUCKETS, now)
        return seconds_until(now + WINDOW_BUCKETS, now)  # not reached while need <= limit


class _ScopeState:
    __slots__ = ("leases", "window")

    def __init__(self) -> None:
        self.leases: dict[str, float] = {}  # request id -> lease expiry
        self.window = _Window()


class _Budget:
    __slots__ = ("reserved_cost", "reserved_tokens", "spent_cost", "spent_tokens")

    def __init__(self, spent_tokens: int, spent_cost: float) -> None:
        self.spent_tokens = spent_tokens
        self.spent_cost = spent_cost
        self.reserved_tokens = 0
        self.reserved_cost = 0.0


class MemoryQuotaStore:
    def __init__(self, spent_loader: SpentLoader, *, lease_s: float = 600.0) -> None:
        self._loads = SpentLoads(spent_loader)
        self._lease_s = lease_s
        self._scopes: dict[Scope, _ScopeState] = {}
        # (scope, period) -> period start -> counter; older periods are dropped when idle.
        self._budgets: dict[tuple[Scope, BudgetPeriod], dict[float, _Budget]] = {}

    async def reserve(
        self,
        request_id: str,
        demands: Sequence[Demand],
        tokens: int,
        cost: float,
        now: float | None = None,
    ) -> Reservation:
        if now is None:
            now = time.time()
        bucket = math.floor(now)
        active, starts = limited(demands, now)
        if not active:
            return Reservation(request_id, (), tokens, cost, bucket, ())
        await self._load_missing(active, starts)

        # No await from here on: the checks and the records are one atomic step.
        states = [self._state(d.scope) for d in active]
        budgets: list[_Budget | None] = []
        for demand, state, start in zip(active, states, starts, strict=True):
            budgets.append(self._check(demand, state, start, tokens, cost, now))
        expiry = now + self._lease_s
        for demand, state, budget in zip(active, states, budgets, strict=True):
            limits = demand.limits
            if limits.concurrency is not None:
                state.leases[request_id] = expiry
            if limits.rpm is not None or limits.tpm is not None:
                state.window.add(bucket, tokens)
            if budget is not None:
                budget.reserved_tokens += tokens
                budget.reserved_cost += cost
        return Reservation(request_id, active, tokens, cost, bucket, starts)

    def _check(
        self,
        demand: Demand,
        state: _ScopeState,
        start: float,
        tokens: int,
        cost: float,
        now: float,
    ) -> _Budget | None:
        """Raise the refusal of the first limit this request breaks; return its budget."""
        limits = demand.limits
        if limits.concurrency is not None and len(state.leases) >= limits.concurrency:
            # Leases only matter when the scope looks full: drop the expired ones then.
            state.leases = {r: e for r, e in state.leases.items() if e > now}
            if len(state.leases) >= limits.concurrency:
                raise refusal(demand, "concurrent_requests", tokens, cost, 1)
        if limits.rpm is not None or limits.tpm is not None:
            window = state.window
            window.advance(math.floor(now))
            if limits.rpm is not None and window.requests + 1 > limits.rpm:
                retry = window.wait(now, _REQUESTS, 1, limits.rpm)
                raise refusal(demand, "requests_per_minute", tokens, cost, retry)
            if limits.tpm is not None:
                if tokens > limits.tpm:
                    raise refusal(demand, "tokens_per_minute", tokens, cost, None)
                if window.tokens + tokens > limits.tpm:
                    retry = window.wait(now, _TOKENS, tokens, limits.tpm)
                    raise refusal(demand, "tokens_per_minute", tokens, cost, retry)
        if not limits.has_budget:
            return None
        budget = self._budgets[(demand.scope, limits.budget_period)][start]
        if limits.budget_tokens is not None and (
            budget.spent_tokens + budget.reserved_tokens + tokens > limits.budget_tokens
        ):
            fits = tokens <= limits.budget_tokens
            raise budget_refusal(demand, "token_budget", tokens, cost, now, fits)
        if limits.budget_cost is not None and (
            budget.spent_cost + budget.reserved_cost + cost > limits.budget_cost + COST_EPSILON
        ):
            fits = cost <= limits.budget_cost + COST_EPSILON
            raise budget_refusal(demand, "cost_budget", tokens, cost, now, fits)
        return budget

    async def _load_missing(self, active: tuple[Demand, ...], starts: tuple[float, ...]) -> None:
        # A loop, not one pass: while we await the loader, another request may start a
        # newer period and drop an idle counter this request also needs.
        while True:
            missing = [
                (d, start)
                for d, start in zip(active, starts, strict=True)
                if d.limits.has_budget
                and start not in self._budgets.get((d.scope, d.limits.budget_period), {})
            ]
            if not missing:
                return
            loaded = await self._loads.load_all([(d.scope, start) for d, start in missing])
            for (demand, start), (spent_tokens, spent_cost) in zip(missing, loaded, strict=True):
                periods = self._budgets.setdefault((demand.scope, demand.limits.budget_period), {})
                if start in periods:
                    continue  # initialise only if absent: another request got there first
                for old in [s for s, b in periods.items() if s < start and _idle(b)]:
                    del periods[old]
                periods[start] = _Budget(spent_tokens, spent_cost)

    def _state(self, scope: Scope) -> _ScopeState:
        state = self._scopes.get(scope)
        if state is None:
            state = self._scopes[scope] = _ScopeState()
        return state

    async def settle(
        self, reservation: Reservation, tokens: int, cost: float, now: float | None = None
    ) -> None:
        if reservation.settled:
            return
        reservation.settled = True
        if now is None:
            now = time.time()
        in_window = reservation.bucket >= math.floor(now) - WINDOW_S
        for demand, start in zip(reservation.demands, reservation.period_starts, strict=True):
            limits = demand.limits
            state = self._scopes.get(demand.scope)
            if state is not None:
                if limits.concurrency is not None:
                    state.leases.pop(reservation.request_id, None)
                if limits.tpm is not None and in_window:
                    state.window.adjust_tokens(reservation.bucket, tokens - reservation.tokens)
            if limits.has_budget:
                periods = self._budgets.get((demand.scope, limits.budget_period), {})
                budget = periods.get(start)
                if budget is None:
                    continue  # that period is over and was dropped: the usage table has it
                budget.reserved_tokens = max(0, budget.reserved_tokens - reservation.tokens)
                budget.reserved_cost = max(0.0, budget.reserved_cost - reservation.cost)
                budget.spent_tokens += tokens
                budget.spent_cost += cost

    async def aclose(self) -> None:
        return None


def _idle(budget: _Budget) -> bool:
    return budget.reserved_tokens == 0 and budget.reserved_cost <= COST_EPSILON
