"""Quotas shared by every gateway replica through one Redis (single node or Sentinel).

Each `reserve` and each `settle` is one EVALSHA: the Lua script checks every limit of
every scope and records only if all pass, so replicas never race each other. Redis
Cluster is not supported: one script touches the keys of several scopes.

Keys, per scope (`<prefix><kind>:<len(id)>:<id>`, the length so no id can forge another's):
  :inflight               zset  request id -> lease expiry (concurrency)
  :rpm / :tpm             hash  epoch second -> requests / tokens (61 one-second buckets),
                          plus their running 'sum' and the oldest second, 'head'
  :budget:<period>:<start> hash st/sc spent, rt/rc reserved, t:<id>/c:<id> per request
  :holds:<period>:<start> zset  request id -> lease expiry of its budget reservation
A replica that dies mid-request leaks nothing for long: its concurrency slots and budget
reservations expire with their lease (`lease_s`).

Time comes from the replica's clock (`now`), not Redis's, so tests can inject it; replicas
are expected to run NTP, and a skew of a few ms only moves requests between buckets.
"""

from __future__ import annotations

import hashlib
import math
import time
from collections.abc import Sequence
from typing import Any

import redis.asyncio as redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError, RedisError

from ..errors import QuotaUnavailable
from .limits import (
    WINDOW_S,
    Demand,
    LimitCode,
    Reservation,
    SpentLoader,
    SpentLoads,
    budget_refusal,
    budget_ttl,
    limited,
    refusal,
)

_UNLIMITED = "-1"
_CODES: tuple[LimitCode, ...] = (
    "concurrent_requests",
    "requests_per_minute",
    "tokens_per_minute",
    "token_budget",
    "cost_budget",
)
_OK, _REFUSED = 1, 2  # 3: load budgets first
_MAX_LOAD_ROUNDS = 3

# Arguments are kept few: redis-py spends more time encoding them than Redis spends
# running the script. Per demand, KEYS holds only the keys its limits use, in the order
# inflight (concurrency), rpm, tpm, budget + holds; ARGV holds one spec string.
#
# ARGV: now, bucket, request id, tokens, cost, lease_s; then per demand
# "concurrency rpm tpm budget_tokens budget_cost budget_ttl [spent_tokens spent_cost]"
# (-1 = unlimited; the spent pair is appended once loaded, to initialise a missing budget).
# Returns {1} recorded, {2, demand, code 1..5, retry (-1 never, 0 next period)} refused,
# {3, demand...} budgets to load first. Nothing is recorded unless it returns {1}.
_RESERVE = """
local now, bucket = tonumber(ARGV[1]), tonumber(ARGV[2])
local rid, tokens, cost = ARGV[3], tonumber(ARGV[4]), tonumber(ARGV[5])
local lease = tonumber(ARGV[6])
local oldest = bucket - 60
local plans, missing, cursor = {}, {}, 0

local function take()
  cursor = cursor + 1
  return KEYS[cursor]
end

-- A window hash: one field per second, 'sum' of the fields still in the window, and
-- 'head', the oldest second that may still have a field. Each call drops only the
-- seconds that left since the last one, so it costs O(1), not a read of 61 fields.
local function window(key)
  local v = redis.call('HMGET', key, 'sum', 'head')
  local sum, head = tonumber(v[1]), tonumber(v[2])
  if not sum then return 0 end
  if head < oldest then
    if oldest - head > 61 then  -- idle for over a minute: every field is stale
      redis.call('DEL', key)
      return 0
    end
    local stale = {}
    for b = head, oldest - 1 do stale[#stale + 1] = b end
    for _, x in ipairs(redis.call('HMGET', key, unpack(stale))) do
      if x then sum = sum - tonumber(x) end
    end
    redis.call('HDEL', key, unpack(stale))
    redis.call('HSET', key, 'sum', sum, 'head', oldest)
  end
  return sum
end

local function count(key, amount)
  local head = tonumber(redis.call('HGET', key, 'head'))
  if not head or head > bucket then  -- a new window, or an injected clock went back
    redis.call('HSET', key, 'head', bucket)
  end
  redis.call('HINCRBY', key, 'sum', amount)
  redis.call('HINCRBY', key, ARGV[2], amount)
  redis.call('EXPIRE', key, 62)
end

-- seconds until enough old seconds leave the window for `need` more to fit (refusals only)
local function wait(key, used, need, limit)
  local flat, per = redis.call('HGETALL', key), {}
  for i = 1, #flat, 2 do
    local b = tonumber(flat[i])
    if b and b >= oldest then per[#per + 1] = {b, tonumber(flat[i + 1])} end
  end
  table.sort(per, function(x, y) return x[1] < y[1] end)
  for _, entry in ipairs(per) do
    used = used - entry[2]
    if used + need <= limit then return math.max(1, math.ceil(entry[1] + 61 - now)) end
  end
  return 61
end

-- budget reservations of requests whose replica never settled them
local function release_expired(budget, holds)
  local expired = redis.call('ZRANGEBYSCORE', holds, '-inf', ARGV[1])
  for _, member in ipairs(expired) do
    local held = redis.call('HMGET', budget, 't:' .. member, 'c:' .. member)
    if held[1] then
      redis.call('HINCRBY', budget, 'rt', 0 - tonumber(held[1]))
      redis.call('HINCRBYFLOAT', budget, 'rc', 0 - tonumber(held[2]))
      redis.call('HDEL', budget, 't:' .. member, 'c:' .. member)
    end
  end
  if #expired > 0 then redis.call('ZREMRANGEBYSCORE', holds, '-inf', ARGV[1]) end
end

for i = 0, #ARGV - 7 do
  local f = {}
  for field in string.gmatch(ARGV[7 + i], '%S+') do f[#f + 1] = field end
  local p = {conc = tonumber(f[1]), rpm = tonumber(f[2]), tpm = tonumber(f[3]),
             bt = tonumber(f[4]), bc = tonumber(f[5]), ttl = f[6]}
  plans[i] = p
  if p.conc >= 0 then
    p.inflight = take()
    redis.call('ZREMRANGEBYSCORE', p.inflight, '-inf', ARGV[1])
    if redis.call('ZCARD', p.inflight) >= p.conc then return {2, i, 1, 1} end
  end
  if p.rpm >= 0 then
    p.requests = take()
    local used = window(p.requests)
    if used + 1 > p.rpm then return {2, i, 2, wait(p.requests, used, 1, p.rpm)} end
  end
  if p.tpm >= 0 then
    p.tokens = take()
    if tokens > p.tpm then return {2, i, 3, -1} end
    local used = window(p.tokens)
    if used + tokens > p.tpm then return {2, i, 3, wait(p.tokens, used, tokens, p.tpm)} end
  end
  if p.bt >= 0 or p.bc >= 0 then
    p.budget, p.holds = take(), take()
    local ready = true
    if redis.call('EXISTS', p.budget) == 0 then
      if f[7] == nil then
        missing[#missing + 1] = i
        ready = false
      else  -- only if absent: another replica may have initialised it meanwhile
        redis.call('HSET', p.budget, 'st', f[7], 'sc', f[8], 'rt', 0, 'rc', 0)
        redis.call('EXPIRE', p.budget, p.ttl)
      end
    end
    if ready then
      release_expired(p.budget, p.holds)
      local v = redis.call('HMGET', p.budget, 'st', 'rt', 'sc', 'rc')
      if p.bt >= 0 and tonumber(v[1]) + tonumber(v[2]) + tokens > p.bt then
        return {2, i, 4, tokens > p.bt and -1 or 0}
      end
      if p.bc >= 0 and tonumber(v[3]) + tonumber(v[4]) + cost > p.bc + 1e-9 then
        return {2, i, 5, cost > p.bc + 1e-9 and -1 or 0}
      end
    end
  end
end
if #missing > 0 then return {3, unpack(missing)} end

local expiry = now + lease
for i = 0, #ARGV - 7 do
  local p = plans[i]
  if p.inflight then
    redis.call('ZADD', p.inflight, expiry, rid)
    redis.call('EXPIRE', p.inflight, math.ceil(lease) + 60)
  end
  if p.requests then count(p.requests, 1) end
  if p.tokens then count(p.tokens, tokens) end
  if p.budget then
    redis.call('HINCRBY', p.budget, 'rt', ARGV[4])
    redis.call('HINCRBYFLOAT', p.budget, 'rc', ARGV[5])
    redis.call('HSET', p.budget, 't:' .. rid, ARGV[4], 'c:' .. rid, ARGV[5])
    redis.call('ZADD', p.holds, expiry, rid)
    redis.call('EXPIRE', p.holds, p.ttl)
  end
end
return {1}
"""

# KEYS: as for reserve. ARGV: bucket, request id, reserved tokens, actual tokens, actual
# cost, 1 if the bucket is still in the window; then per demand the letters of its keys:
# c (release the slot), r (nothing to do), t (fix the tokens of its bucket), b (move its
# budget reservation to spent).
_SETTLE = """
local bucket, rid = ARGV[1], ARGV[2]
local delta = tonumber(ARGV[4]) - tonumber(ARGV[3])
local fix_tokens = ARGV[6] == '1' and delta ~= 0
local cursor = 0
for i = 7, #ARGV do
  local spec = ARGV[i]
  if string.find(spec, 'c', 1, true) then
    cursor = cursor + 1
    redis.call('ZREM', KEYS[cursor], rid)
  end
  if string.find(spec, 'r', 1, true) then cursor = cursor + 1 end
  if string.find(spec, 't', 1, true) then
    cursor = cursor + 1
    local v = fix_tokens and redis.call('HGET', KEYS[cursor], bucket)
    if v then
      local change = math.max(0, tonumber(v) + delta) - tonumber(v)
      redis.call('HINCRBY', KEYS[cursor], bucket, change)
      redis.call('HINCRBY', KEYS[cursor], 'sum', change)
    end
  end
  if string.find(spec, 'b', 1, true) then
    local budget, holds = KEYS[cursor + 1], KEYS[cursor + 2]
    cursor = cursor + 2
    if redis.call('EXISTS', budget) == 1 then
      local held = redis.call('HMGET', budget, 't:' .. rid, 'c:' .. rid)
      if held[1] then  -- absent when its lease expired first
        redis.call('HINCRBY', budget, 'rt', 0 - tonumber(held[1]))
        redis.call('HINCRBYFLOAT', budget, 'rc', 0 - tonumber(held[2]))
        redis.call('HDEL', budget, 't:' .. rid, 'c:' .. rid)
        redis.call('ZREM', holds, rid)
      end
      redis.call('HINCRBY', budget, 'st', ARGV[4])
      redis.call('HINCRBYFLOAT', budget, 'sc', ARGV[5])
    end
  end
end
return 1
"""


class _Script:
    __slots__ = ("sha", "source")

    def __init__(self, source: str) -> None:
        self.source = source
        self.sha = hashlib.sha1(source.encode()).hexdigest()


class RedisQuotaStore:
    def __init__(
        self,
        redis_url: str,
        spent_loader: SpentLoader,
        *,
        prefix: str = "souverain:quota:",
        lease_s: float = 600.0,
        timeout_s: float = 1.0,
    ) -> None:
        # One retry, on connection errors only: it reconnects a pooled connection after a
        # Redis restart. Timeouts are not retried: the script may have run, and a quota
        # check that waits seconds is worse than a 503.
        self._client = redis.Redis.from_url(
            redis_url,
            socket_timeout=timeout_s,
            socket_connect_timeout=timeout_s,
            retry=Retry(NoBackoff(), 1, supported_errors=(RedisConnectionError,)),
        )
        self._loads = SpentLoads(spent_loader)
        self._prefix = prefix
        self._lease_s = lease_s
        self._reserve = _Script(_RESERVE)
        self._settle = _Script(_SETTLE)

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
        keys: list[str] = []
        for demand, start in zip(active, starts, strict=True):
            keys += self._keys(demand, start)
        specs = [_spec(demand, now) for demand in active]
        header: list[str | int] = [repr(now), bucket, request_id, tokens, repr(float(cost))]
        header.append(repr(float(self._lease_s)))
        for _ in range(_MAX_LOAD_ROUNDS):
            reply = await self._eval(self._reserve, keys, [*header, *specs])
            status = int(reply[0])
            if status == _OK:
                return Reservation(request_id, active, tokens, cost, bucket, starts)
            if status == _REFUSED:
                demand, code = active[int(reply[1])], _CODES[int(reply[2]) - 1]
                retry = int(reply[3])
                if code in ("token_budget", "cost_budget"):
                    raise budget_refusal(demand, code, tokens, cost, now, retry >= 0)
                raise refusal(demand, code, tokens, cost, None if retry < 0 else retry)
            # Budget counters missing (new period, or Redis lost them): load the durable
            # spent usage, then run again with it; the script initialises only if absent.
            missing = [int(i) for i in reply[1:]]
            loaded = await self._loads.load_all([(active[i].scope, starts[i]) for i in missing])
            for i, (spent_tokens, spent_cost) in zip(missing, loaded, strict=True):
                specs[i] = f"{_spec(active[i], now)} {spent_tokens} {float(spent_cost)!r}"
        raise QuotaUnavailable("quota store unavailable: budget counters could not be initialised")

    async def settle(
        self, reservation: Reservation, tokens: int, cost: float, now: float | None = None
    ) -> None:
        # Marked first: at most once, even if Redis fails below. What a failed settle
        # leaves behind (slot, budget reservation) expires with its lease.
        if reservation.settled or not reservation.demands:
            reservation.settled = True
            return
        reservation.settled = True
        if now is None:
            now = time.time()
        in_window = reservation.bucket >= math.floor(now) - WINDOW_S
        keys: list[str] = []
        specs: list[str] = []
        for demand, start in zip(reservation.demands, reservation.period_starts, strict=True):
            keys += self._keys(demand, start)
            limits = demand.limits
            specs.append(
                ("c" if limits.concurrency is not None else "")
                + ("r" if limits.rpm is not None else "")
                + ("t" if limits.tpm is not None else "")
                + ("b" if limits.has_budget else "")
            )
        args: list[str | int] = [reservation.bucket, reservation.request_id, reservation.tokens]
        args += [tokens, repr(float(cost)), 1 if in_window else 0, *specs]
        await self._eval(self._settle, keys, args)

    async def aclose(self) -> None:
        await self._client.aclose()

    def _keys(self, demand: Demand, start: float) -> list[str]:
        """The keys its limits use, in the order the scripts take them."""
        scope, limits = demand.scope, demand.limits
        base = f"{self._prefix}{scope.kind}:{len(scope.id)}:{scope.id}"
        keys: list[str] = []
        if limits.concurrency is not None:
            keys.append(base + ":inflight")
        if limits.rpm is not None:
            keys.append(base + ":rpm")
        if limits.tpm is not None:
            keys.append(base + ":tpm")
        if limits.has_budget:
            period = f"{limits.budget_period}:{int(start)}"
            keys += (f"{base}:budget:{period}", f"{base}:holds:{period}")
        return keys

    async def _eval(self, script: _Script, keys: list[str], args: list[str | int]) -> Any:
        try:
            try:
                return await self._client.evalsha(script.sha, len(keys), *keys, *args)
            except NoScriptError:  # Redis restarted or its script cache was flushed
                script.sha = str(await self._client.script_load(script.source))
                return await self._client.evalsha(script.sha, len(keys), *keys, *args)
        except (RedisError, OSError) as exc:
            # The message names the failure, never the URL (it may hold a password).
            raise QuotaUnavailable(f"quota store unavailable: Redis {type(exc).__name__}") from exc


def _spec(demand: Demand, now: float) -> str:
    """One demand's limits for the reserve script, -1 meaning unlimited."""
    limits = demand.limits
    ttl = budget_ttl(limits.budget_period, now) if limits.has_budget else 0
    return " ".join(
        (
            _UNLIMITED if limits.concurrency is None else str(limits.concurrency),
            _UNLIMITED if limits.rpm is None else str(limits.rpm),
            _UNLIMITED if limits.tpm is None else str(limits.tpm),
            _UNLIMITED if limits.budget_tokens is None else str(limits.budget_tokens),
            _UNLIMITED if limits.budget_cost is None else repr(float(limits.budget_cost)),
            str(ttl),
        )
    )
