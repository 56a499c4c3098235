"""Passive health of each deployment: a circuit breaker, latency and load figures.

A breaker opens after `failure_threshold` consecutive failures (connection errors,
timeouts, 5xx, 429), stays open `open_seconds`, then lets one probe request through
(half-open): success closes it, failure opens it again. No background traffic needed.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum

EWMA_WEIGHT = 0.2  # weight of the newest latency sample


class BreakerState(Enum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


@dataclass
class DeploymentHealth:
    failure_threshold: int
    open_seconds: float
    clock: Callable[[], float] = time.monotonic
    state: BreakerState = BreakerState.CLOSED
    consecutive_failures: int = 0
    opened_at: float = 0.0
    probing: bool = False
    in_flight: int = 0
    latency_s: float | None = None  # exponentially weighted moving average
    failures_total: int = field(default=0)

    def allows(self) -> bool:
        """May a request go there now? Flips open → half-open when the wait is over."""
        if self.state is BreakerState.CLOSED:
            return True
        if self.state is BreakerState.OPEN and self.clock() - self.opened_at >= self.open_seconds:
            self.state = BreakerState.HALF_OPEN
            self.probing = False
        return self.state is BreakerState.HALF_OPEN and not self.probing

    def started(self) -> None:
        self.in_flight += 1
        if self.state is BreakerState.HALF_OPEN:
            self.probing = True

    def succeeded(self, latency_s: float) -> None:
        self.in_flight -= 1
        self.state = BreakerState.CLOSED
        self.consecutive_failures = 0
        self.probing = False
        self.latency_s = (
            latency_s
            if self.latency_s is None
            else EWMA_WEIGHT * latency_s + (1 - EWMA_WEIGHT) * self.latency_s
        )

    def failed(self) -> None:
        self.in_flight -= 1
        self.failures_total += 1
        self.consecutive_failures += 1
        self.probing = False
        if (
            self.state is BreakerState.HALF_OPEN
            or self.consecutive_failures >= self.failure_threshold
        ):
            self.state = BreakerState.OPEN
            self.opened_at = self.clock()

    def probed(self, ok: bool) -> None:
        """An active health check's result: a failure counts like a failed request."""
        if ok:
            self.state = BreakerState.CLOSED
            self.consecutive_failures = 0
            self.probing = False
            return
        self.in_flight += 1
        self.failed()

    def abandoned(self) -> None:
        """The call ended for a reason that says nothing about the deployment's health."""
        self.in_flight -= 1
        self.probing = False
