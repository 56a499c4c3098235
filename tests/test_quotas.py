"""Quota stores against their contract: the in-process one and Redis (the real local server).

Every test that applies to both runs on both. Time is injected (`now=`), so windows slide
and periods roll over without sleeping. Redis keys live under a prefix unique to each
test and are deleted afterwards; nothing else on the shared server is touched.
"""

from __future__ import annotations

import asyncio
import math
import random
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import pytest_asyncio
import redis

from souverain.errors import QuotaUnavailable, RateLimited
from souverain.quotas import (
    Demand,
    Limits,
    MemoryQuotaStore,
    QuotaStore,
    RedisQuotaStore,
    Reservation,
    Scope,
    SpentLoader,
    open_quota_store,
    period_bounds,
)

REDIS_URL = "redis://127.0.0.1:6379/0"
T0 = datetime(2024, 3, 14, 12, 0, 0, 250_000, tzinfo=UTC).timestamp()  # mid-day, mid-month
B0 = math.floor(T0)  # the bucket of T0

TEAM = Scope("team", "t-42", "payments")
KEY = Scope("key", "k-7", "ci-bot")
USER = Scope("user", "u-1")
TENANT = Scope("tenant", "acme")


class Loader:
    """The durable usage table, as the store sees it: spent per (scope, period start)."""

    def __init__(self, spent: dict[Scope, tuple[int, float]] | None = None) -> None:
        self.spent = spent or {}
        self.calls: list[tuple[Scope, float]] = []

    async def __call__(self, scope: Scope, period_start: float) -> tuple[int, float]:
        self.calls.append((scope, period_start))
        await asyncio.sleep(0.001)  # a real query yields to the event loop
        return self.spent.get(scope, (0, 0.0))


StoreFactory = Callable[..., QuotaStore]


@pytest.fixture
def prefix() -> Iterator[str]:
    value = f"souverain-test:quota:{uuid.uuid4().hex}:"
    yield value
    client = redis.Redis.from_url(REDIS_URL)
    keys = list(client.scan_iter(match=value + "*", count=1000))
    if keys:
        client.delete(*keys)
    client.close()


@pytest_asyncio.fixture(params=["memory", "redis"])
async def make_store(request: pytest.FixtureRequest, prefix: str) -> AsyncIterator[StoreFactory]:
    """Builds stores of the parametrized kind; all of them are closed after the test."""
    opened: list[QuotaStore] = []

    def make(loader: SpentLoader | None = None, lease_s: float = 600.0) -> QuotaStore:
        spent = loader or Loader()
        store: QuotaStore
        if request.param == "memory":
            store = MemoryQuotaStore(spent, lease_s=lease_s)
        else:
            store = RedisQuotaStore(REDIS_URL, spent, prefix=prefix, lease_s=lease_s)
        opened.append(store)
        return store

    yield make
    for store in opened:
        await store.aclose()


@pytest_asyncio.fixture
async def redis_store(prefix: str) -> AsyncIterator[Callable[..., RedisQuotaStore]]:
    opened: list[RedisQuotaStore] = []

    def make(loader: Loader | None = None, lease_s: float = 600.0) -> RedisQuotaStore:
        store = RedisQuotaStore(REDIS_URL, loader or Loader(), prefix=prefix, lease_s=lease_s)
        opened.append(store)
        return store

    yield make
    for store in opened:
        await store.aclose()


async def refused(
    store: QuotaStore, demands: list[Demand], tokens: int = 1, cost: float = 0.0, *, now: float
) -> RateLimited:
    with pytest.raises(RateLimited) as caught:
        await store.reserve(f"refused-{uuid.uuid4().hex}", demands, tokens, cost, now=now)
    return caught.value


async def reserve(
    store: QuotaStore, demands: list[Demand], tokens: int = 1, cost: float = 0.0, *, now: float
) -> Reservation:
    return await store.reserve(f"r-{uuid.uuid4().hex}", demands, tokens, cost, now=now)


# --- each limit ---------------------------------------------------------------------


async def test_concurrency_limit_then_release(make_store: StoreFactory) -> None:
    store = make_store()
    demands = [Demand(TEAM, Limits(concurrency=2))]
    first = await reserve(store, demands, now=T0)
    await reserve(store, demands, now=T0)
    error = await refused(store, demands, now=T0)
    assert error.code == "concurrent_requests" and error.status_code == 429
    assert error.message == "concurrency limit reached: team 'payments' allows 2 requests at a time"
    assert error.retry_after == 1 and error.headers() == {"Retry-After": "1"}
    await store.settle(first, 0, 0.0, now=T0)
    await reserve(store, demands, now=T0)  # the slot came back
    await refused(store, demands, now=T0)


async def test_requests_per_minute_and_the_window_slides(make_store: StoreFactory) -> None:
    store = make_store()
    demands = [Demand(TEAM, Limits(rpm=3))]
    for offset in (0, 10, 20):
        await reserve(store, demands, now=T0 + offset)
    error = await refused(store, demands, now=T0 + 30)
    assert error.code == "requests_per_minute"
    assert error.message == "rate limit reached: team 'payments' allows 3 requests per minute"
    # The first request's bucket [B0, B0+1) leaves the window at B0+61.
    assert error.retry_after == math.ceil(B0 + 61 - (T0 + 30)) == 31
    # 60.5 s later the oldest bucket is only partly in the window, and still counted whole.
    await refused(store, demands, now=B0 + 60.9)
    await reserve(store, demands, now=B0 + 61)
    error = await refused(store, demands, now=B0 + 61)
    assert error.retry_after == 10  # now the request of T0+10 is the oldest


async def test_tokens_per_minute(make_store: StoreFactory) -> None:
    store = make_store()
    demands = [Demand(USER, Limits(tpm=1000))]
    big = await reserve(store, demands, 600, now=T0)
    await reserve(store, demands, 100, now=T0 + 5)
    error = await refused(store, demands, 400, now=T0 + 6)
    assert error.code == "tokens_per_minute"
    assert error.message == "rate limit reached: user 'u-1' allows 1000 tokens per minute"
    assert error.retry_after == math.ceil(B0 + 61 - (T0 + 6))  # once the 600 leave
    # The 600 tokens were an estimate: 250 were used, so 350 come back to the window.
    await store.settle(big, 250, 0.0, now=T0 + 7)
    await reserve(store, demands, 650, now=T0 + 7)
    await refused(store, demands, 1, now=T0 + 7)


async def test_a_request_larger_than_the_tpm_never_passes(make_store: StoreFactory) -> None:
    store = make_store()
    error = await refused(store, [Demand(TEAM, Limits(tpm=1000))], 1500, now=T0)
    assert error.code == "tokens_per_minute" and error.retry_after is None
    assert error.message == (
        "request too large: it needs 1500 tokens but team 'payments' allows 1000 tokens per minute"
    )


async def test_token_budget_starts_from_the_loader(make_store: StoreFactory) -> None:
    loader = Loader({KEY: (99_000, 0.0)})
    store = make_store(loader)
    demands = [Demand(KEY, Limits(budget_tokens=100_000))]
    first = await reserve(store, demands, 800, now=T0)
    error = await refused(store, demands, 300, now=T0 + 1)
    assert error.code == "token_budget"
    assert (
        error.message == "budget exhausted: key 'ci-bot' has used its 100000 tokens for this month"
    )
    april = datetime(2024, 4, 1, tzinfo=UTC).timestamp()
    assert error.retry_after == math.ceil(april - (T0 + 1))
    await store.settle(first, 500, 0.0, now=T0 + 2)  # 99_500 spent, nothing reserved
    await reserve(store, demands, 500, now=T0 + 3)  # exactly the budget
    await refused(store, demands, 1, now=T0 + 3)
    march = datetime(2024, 3, 1, tzinfo=UTC).timestamp()
    assert loader.calls == [(KEY, march)]  # loaded once, on first use


async def test_a_request_larger_than_the_budget_never_passes(make_store: StoreFactory) -> None:
    store = make_store()
    demands = [Demand(KEY, Limits(budget_tokens=1000, budget_period="day"))]
    error = await refused(store, demands, 1001, now=T0)
    assert error.code == "token_budget" and error.retry_after is None
    assert "it needs 1001 tokens" in error.message and "1000 tokens per day" in error.message


async def test_cost_budget_per_day(make_store: StoreFactory) -> None:
    store = make_store(Loader({TEAM: (0, 0.7)}))
    demands = [Demand(TEAM, Limits(budget_cost=1.0, budget_period="day"))]
    await reserve(store, demands, cost=0.1, now=T0)
    await reserve(store, demands, cost=0.2, now=T0)  # 0.7 + 0.1 + 0.2 fits despite floats
    error = await refused(store, demands, cost=0.01, now=T0)
    assert error.code == "cost_budget"
    assert (
        error.message == "budget exhausted: team 'payments' has used its cost budget of 1 for today"
    )
    midnight = datetime(2024, 3, 15, tzinfo=UTC).timestamp()
    assert error.retry_after == math.ceil(midnight - T0) == 12 * 3600


# --- atomicity and settling -----------------------------------------------------------


async def test_a_refusal_records_nothing_on_any_scope(make_store: StoreFactory) -> None:
    store = make_store()
    team = Demand(TEAM, Limits(rpm=2, tpm=1000, concurrency=2, budget_tokens=1000))
    tight_key = Demand(KEY, Limits(rpm=1))
    await reserve(store, [team, tight_key], 100, now=T0)
    # The team passes every check, then the key refuses: the team must not count it.
    for _ in range(3):
        error = await refused(store, [team, tight_key], 100, now=T0)
        assert error.code == "requests_per_minute" and "key 'ci-bot'" in error.message
    # One request, 100 tokens, one slot on the team: room for exactly one more of 900.
    await reserve(store, [team], 900, now=T0)
    error = await refused(store, [team], 0, now=T0)
    assert error.code in ("requests_per_minute", "concurrent_requests")


async def test_unlimited_demands_cost_nothing(make_store: StoreFactory, prefix: str) -> None:
    store = make_store()
    free = [Demand(TENANT, Limits()), Demand(USER, Limits(budget_period="day"))]
    reservation = await reserve(store, free, 10**9, 10**6, now=T0)
    assert reservation.demands == ()
    await store.settle(reservation, 10**9, 10**6, now=T0)
    client = redis.Redis.from_url(REDIS_URL)
    assert list(client.scan_iter(match=prefix + "*")) == []
    client.close()


async def test_no_limits_never_touch_redis() -> None:
    store = RedisQuotaStore(f"redis://127.0.0.1:{unused_port()}/0", Loader())
    reservation = await store.reserve("r", [Demand(TENANT, Limits())], 10, 0.0)
    await store.settle(reservation, 10, 0.0)
    await store.aclose()


async def test_settle_is_idempotent(make_store: StoreFactory) -> None:
    store = make_store()
    demands = [Demand(USER, Limits(tpm=100)), Demand(KEY, Limits(budget_tokens=100))]
    reservation = await reserve(store, demands, 100, now=T0)
    await store.settle(reservation, 40, 0.0, now=T0)
    await store.settle(reservation, 40, 0.0, now=T0)  # a no-op
    assert reservation.settled
    await reserve(store, demands, 60, now=T0)  # 40 + 60: both the window and the budget
    error = await refused(store, demands, 1, now=T0)
    assert error.code == "tokens_per_minute"
    assert (await refused(store, [demands[1]], 1, now=T0 + 61)).code == "token_budget"


async def test_a_failed_request_settles_with_zero(make_store: StoreFactory) -> None:
    store = make_store()
    demands = [Demand(KEY, Limits(concurrency=1, tpm=500, budget_tokens=500, budget_cost=1.0))]
    reservation = await reserve(store, demands, 500, 1.0, now=T0)
    await refused(store, demands, 1, now=T0)
    await store.settle(reservation, 0, 0.0, now=T0)
    await reserve(store, demands, 500, 1.0, now=T0)  # everything came back


async def test_settle_after_the_window_leaves_it_alone(make_store: StoreFactory) -> None:
    store = make_store()
    demands = [Demand(USER, Limits(tpm=100))]
    old = await reserve(store, demands, 100, now=T0)
    await reserve(store, demands, 100, now=B0 + 61)  # T0's bucket has left the window
    await store.settle(old, 0, 0.0, now=B0 + 61)  # must not free tokens of the new bucket
    await refused(store, demands, 1, now=B0 + 61)


async def test_tokens_added_at_settle_leave_the_window_with_their_second(
    make_store: StoreFactory,
) -> None:
    store = make_store()
    demands = [Demand(USER, Limits(tpm=100))]
    streamed = await reserve(store, demands, 0, now=T0)  # no estimate: counted at settle
    await reserve(store, demands, 0, now=T0 + 1)
    await store.settle(streamed, 80, 0.0, now=T0 + 2)
    error = await refused(store, demands, 30, now=T0 + 2)
    assert error.retry_after == math.ceil(B0 + 61 - (T0 + 2))
    await reserve(store, demands, 100, now=B0 + 61)  # the 80 left with the second of T0


async def test_a_window_idle_for_an_hour_starts_empty(make_store: StoreFactory) -> None:
    store = make_store()
    demands = [Demand(USER, Limits(rpm=2, tpm=100))]
    for offset in (0, 30):
        await reserve(store, demands, 50, now=T0 + offset)
    await refused(store, demands, 1, now=T0 + 31)
    later = T0 + 3600
    for _ in range(2):
        await reserve(store, demands, 50, now=later)
    assert (await refused(store, demands, 0, now=later)).code == "requests_per_minute"


# --- budget periods ---------------------------------------------------------------------


async def test_budget_rolls_over_at_the_period_boundary(make_store: StoreFactory) -> None:
    loader = Loader({TEAM: (1000, 0.0)})
    store = make_store(loader)
    demands = [Demand(TEAM, Limits(budget_tokens=1000, budget_period="day"))]
    midnight = datetime(2024, 3, 15, tzinfo=UTC).timestamp()
    error = await refused(store, demands, 1, now=midnight - 0.5)
    assert error.retry_after == 1
    loader.spent[TEAM] = (200, 0.0)  # what the usage table holds for the new day
    await reserve(store, demands, 800, now=midnight)
    await refused(store, demands, 1, now=midnight + 1)
    day = datetime(2024, 3, 14, tzinfo=UTC).timestamp()
    assert loader.calls == [(TEAM, day), (TEAM, midnight)]


async def test_settle_across_the_boundary_does_not_touch_the_new_period(
    make_store: StoreFactory,
) -> None:
    store = make_store()
    demands = [Demand(TEAM, Limits(budget_tokens=1000, budget_period="day"))]
    midnight = datetime(2024, 3, 15, tzinfo=UTC).timestamp()
    late = await reserve(store, demands, 1000, now=midnight - 1)
    await reserve(store, demands, 1000, now=midnight + 1)
    await store.settle(late, 1000, 0.0, now=midnight + 2)
    await refused(store, demands, 1, now=midnight + 3)  # the new day is still fully held


def test_period_bounds_are_utc_calendar_periods() -> None:
    def ts(year: int, month: int, day: int, hour: int = 0, minute: int = 0, sec: int = 0) -> float:
        return datetime(year, month, day, hour, minute, sec, tzinfo=UTC).timestamp()

    assert period_bounds("day", ts(2024, 3, 14, 23, 59, 59)) == (ts(2024, 3, 14), ts(2024, 3, 15))
    assert period_bounds("month", ts(2024, 2, 29, 12)) == (ts(2024, 2, 1), ts(2024, 3, 1))
    assert period_bounds("month", ts(2024, 12, 31, 23)) == (ts(2024, 12, 1), ts(2025, 1, 1))
    assert period_bounds("month", ts(2025, 1, 1)) == (ts(2025, 1, 1), ts(2025, 2, 1))
    assert period_bounds("day", ts(2024, 12, 31, 23, 59, 59) + 0.999) == (
        ts(2024, 12, 31),
        ts(2025, 1, 1),
    )


def test_limits_reject_negative_values() -> None:
    with pytest.raises(ValueError, match="rpm"):
        Limits(rpm=-1)
    with pytest.raises(ValueError, match="budget_period"):
        Limits(budget_period="week")  # type: ignore[arg-type]
    assert Limits().unlimited and not Limits(concurrency=0).unlimited


# --- concurrency at the edge of a budget -----------------------------------------------


@pytest.mark.parametrize("overshoot", [False, True])
async def test_fifty_concurrent_requests_at_the_edge_of_a_budget(
    make_store: StoreFactory, overshoot: bool
) -> None:
    budget, already, estimate = 10_000, 8_000, 100
    loader = Loader({KEY: (already, 0.0)})
    store = make_store(loader)
    demands = [Demand(TENANT, Limits(rpm=10**6)), Demand(KEY, Limits(budget_tokens=budget))]
    rng = random.Random(7)
    actuals: list[int] = []
    pending = 0  # reserve called and not yet settled: at least what the store has in flight
    most_pending = 0

    async def client(n: int) -> None:
        nonlocal pending, most_pending
        for attempt in range(1000):
            pending += 1
            most_pending = max(most_pending, pending)
            try:
                reservation = await store.reserve(f"c{n}-{attempt}", demands, estimate, 0.0, now=T0)
            except RateLimited as error:
                pending -= 1
                assert error.code == "token_budget"
                return
            await asyncio.sleep(rng.random() / 500)
            actual = estimate + 20 if overshoot else rng.randint(estimate // 2, estimate)
            await store.settle(reservation, actual, 0.0, now=T0)
            actuals.append(actual)
            pending -= 1

    await asyncio.gather(*(client(n) for n in range(50)))
    spent = already + sum(actuals)
    # Fifty first uses share one query in a process. Over Redis, a reply that said "load"
    # before another request initialised the counter can still cost one more query.
    assert set(loader.calls) == {(KEY, datetime(2024, 3, 1, tzinfo=UTC).timestamp())}
    most_loads = 1 if isinstance(store, MemoryQuotaStore) else 9
    assert len(loader.calls) <= most_loads
    assert len(actuals) >= (budget - already) // estimate  # the budget was really used
    if overshoot:
        # Every settle adds 20 over its estimate: only the requests in flight at the last
        # acceptance can push past the budget.
        assert budget - estimate < spent <= budget + 20 * most_pending
    else:
        assert spent <= budget
        # The store's counter is exact: the rest of the budget fits, one more token does not.
        await reserve(store, demands, budget - spent, now=T0)
        await refused(store, demands, 1, now=T0)


# --- leases ---------------------------------------------------------------------------


async def test_a_concurrency_lease_expires(make_store: StoreFactory) -> None:
    store = make_store(lease_s=600)
    demands = [Demand(TEAM, Limits(concurrency=1))]
    await reserve(store, demands, now=T0)  # its replica dies: never settled
    await refused(store, demands, now=T0 + 599)
    late = await reserve(store, demands, now=T0 + 601)
    await store.settle(late, 1, 0.0, now=T0 + 602)
    await reserve(store, demands, now=T0 + 602)


async def test_a_budget_reservation_of_a_dead_replica_expires(
    redis_store: Callable[..., RedisQuotaStore],
) -> None:
    crashed, alive = redis_store(lease_s=60), redis_store(lease_s=60)
    demands = [Demand(KEY, Limits(budget_tokens=1000))]
    await reserve(crashed, demands, 1000, now=T0)
    await refused(alive, demands, 1, now=T0 + 59)
    await reserve(alive, demands, 1000, now=T0 + 61)


# --- Redis specifics --------------------------------------------------------------------


def unused_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_redis_unreachable_fails_closed() -> None:
    store = open_quota_store(f"redis://127.0.0.1:{unused_port()}/0", Loader())
    demands = [Demand(TEAM, Limits(rpm=10))]
    with pytest.raises(QuotaUnavailable) as caught:
        await store.reserve("r", demands, 1, 0.0)
    assert caught.value.status_code == 503 and caught.value.code == "quota_unavailable"
    assert "127.0.0.1" not in caught.value.message
    fake = Reservation("r", tuple(demands), 1, 0.0, 0, (0.0,))
    with pytest.raises(QuotaUnavailable):
        await store.settle(fake, 1, 0.0)
    await store.aclose()


async def test_a_redis_that_never_answers_fails_closed_quickly() -> None:
    with socket.socket() as silent:  # accepts connections (the backlog), never replies
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        port = silent.getsockname()[1]
        store = RedisQuotaStore(f"redis://127.0.0.1:{port}/0", Loader(), timeout_s=0.2)
        started = time.monotonic()
        with pytest.raises(QuotaUnavailable):
            await store.reserve("r", [Demand(TEAM, Limits(rpm=10))], 1, 0.0)
        assert time.monotonic() - started < 2
        await store.aclose()


async def test_a_script_error_fails_closed(
    redis_store: Callable[..., RedisQuotaStore], prefix: str
) -> None:
    store = redis_store()
    client = redis.Redis.from_url(REDIS_URL)
    client.set(f"{prefix}team:{len(TEAM.id)}:{TEAM.id}:rpm", "not a hash")  # WRONGTYPE
    client.close()
    with pytest.raises(QuotaUnavailable):
        await reserve(store, [Demand(TEAM, Limits(rpm=10))], now=T0)


async def test_a_loader_failure_fails_closed(make_store: StoreFactory) -> None:
    async def broken(scope: Scope, period_start: float) -> tuple[int, float]:
        raise OSError("usage table down")

    store = make_store(broken)
    with pytest.raises(QuotaUnavailable):
        await reserve(store, [Demand(KEY, Limits(budget_tokens=10))], now=T0)


async def test_one_round_trip_per_call_and_noscript_recovery(
    redis_store: Callable[..., RedisQuotaStore],
) -> None:
    store = redis_store()
    demands = [
        Demand(TENANT, Limits(rpm=100, budget_cost=10.0)),
        Demand(TEAM, Limits(tpm=10_000, concurrency=5)),
        Demand(USER, Limits(rpm=100)),
        Demand(KEY, Limits(budget_tokens=10_000)),
    ]
    await store.settle(await reserve(store, demands, 10, 0.1, now=T0), 5, 0.05, now=T0)
    client = store._client
    sent: list[str] = []
    original = client.execute_command

    async def counting(*args: object, **options: object) -> object:
        sent.append(str(args[0]))
        return await original(*args, **options)  # type: ignore[no-untyped-call]

    client.execute_command = counting  # type: ignore[method-assign]
    reservation = await reserve(store, demands, 10, 0.1, now=T0 + 1)
    await store.settle(reservation, 5, 0.05, now=T0 + 1)
    assert sent == ["EVALSHA", "EVALSHA"]
    # As after a Redis restart: the script is unknown, loaded again, and the call succeeds.
    store._reserve.sha = "0" * 40
    sent.clear()
    await reserve(store, demands, 10, 0.1, now=T0 + 2)
    assert sent == ["EVALSHA", "SCRIPT LOAD", "EVALSHA"]


async def test_budget_keys_expire_days_after_the_period(
    redis_store: Callable[..., RedisQuotaStore], prefix: str
) -> None:
    store = redis_store()
    await reserve(store, [Demand(KEY, Limits(budget_tokens=10, budget_period="day"))], now=T0)
    client = redis.Redis.from_url(REDIS_URL)
    day = int(datetime(2024, 3, 14, tzinfo=UTC).timestamp())
    ttl = client.ttl(f"{prefix}key:{len(KEY.id)}:{KEY.id}:budget:day:{day}")
    client.close()
    midnight = datetime(2024, 3, 15, tzinfo=UTC).timestamp()
    assert ttl == pytest.approx(midnight - T0 + 7 * 86_400, abs=2)


async def test_two_replicas_initialising_a_budget_keep_both_reservations(
    redis_store: Callable[..., RedisQuotaStore],
) -> None:
    demands = [Demand(KEY, Limits(budget_tokens=1000))]
    first = redis_store(Loader({KEY: (100, 0.0)}))

    class Racing(Loader):
        async def __call__(self, scope: Scope, period_start: float) -> tuple[int, float]:
            # While this replica queries the usage table, the other one initialises the
            # counter and reserves. Ours must not overwrite it.
            await reserve(first, demands, 400, now=T0)
            return await super().__call__(scope, period_start)

    second = redis_store(Racing({KEY: (100, 0.0)}))
    await reserve(second, demands, 500, now=T0)  # 100 spent + 400 + 500
    await refused(second, demands, 1, now=T0)


def test_two_processes_share_one_rpm_limit(prefix: str) -> None:
    rpm, attempts = 150, 200
    worker = Path(__file__).with_name("quota_worker.py")
    processes = [
        subprocess.Popen(
            [sys.executable, str(worker), REDIS_URL, prefix, str(rpm), str(attempts)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    try:
        for process in processes:
            assert process.stdout is not None
            assert process.stdout.readline().strip() == "ready"
        for process in processes:  # both start together
            assert process.stdin is not None
            process.stdin.write("go\n")
            process.stdin.flush()
        outputs = [process.communicate(timeout=60) for process in processes]
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
    accepted = [int(out.strip()) for out, _ in outputs]
    assert all(p.returncode == 0 for p in processes)
    assert sum(accepted) == rpm
