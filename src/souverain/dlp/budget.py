"""A bound on the CPU one request's scan may cost, failing closed.

Every detector is linear in its input, but a hostile body can make the constant large: a
megabyte of back-to-back e-mail addresses is a million findings, "1 1 1 1 ..." is one run of
digits that a dozen number patterns each try at every position, "token: x" repeated is a
million secret names to judge. No realistic prompt comes near (the largest model context,
~256k tokens, is about a megabyte of text), yet an 8 MiB body of such shapes cost up to four
CPU-seconds.

So the detectors charge what they are about to do to a budget, in work units of roughly ten
nanoseconds of CPU on the reference machine (docs/benchmarks.md): a character a pattern will
search, a candidate a validator will judge, a finding to build. The charge comes before the
work, so a scan stops at the first step that would cross the limit, and the request is
refused with a 413 that says why (fail closed: nothing is sent unchecked). Units, not a
clock: the same body gets the same answer whatever the machine's load.

The budget belongs to one request (`DlpEngine.check` opens it around all its texts and
their junctions); a scan outside one (the CLI, tests, benchmarks) is not bounded.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from ..errors import PayloadTooLarge

# About half a CPU-second here: what the fixed passes over an 8 MiB body (the digit-run
# search, the views) leave of the one second a request's scan may take.
WORK_LIMIT = 50_000_000
# What each step costs, in units (measured, rounded up; bench/dlp_worst_case.py).
PER_SEARCHED_CHAR = 5  # one pattern trying one character (a fast-failing position)
PER_LONG_RUN_CHAR = 15  # a number pattern trying a character of a long run ("1 1 1 ...")
LONG_RUN = 64  # longer than any identifier with its separators: a run of digits that long
PER_WINDOW = 6  # a number pattern searching one short run (the call costs, not the chars)
PER_TRANSLATED_CHAR = 8  # a character of a long text mapped through the views' whole table
PER_CANDIDATE = 300  # a regex match handed to a validator, or a finding built
PER_CLUSTER = 350  # one run of digits and separators, flagged for the number patterns
PER_ANCHOR = 200  # one "@" or ":x:" looked at in Python
PER_SECRET_NAME = 800  # a secret-ish name, its key and the value after it judged in Python
PER_EMAIL_RUN = 40  # a run of local-part characters before an "@", in the dense pass
PER_NAME_WORD = 1500  # a capitalised word the optional person-name detector judges


def searching(windows: Sequence[tuple[int, int, int, int]]) -> int:
    """What a number pattern searching these runs (start, end, ...) costs: every position
    of a long run is a place where most patterns can start, and fail slowly."""
    units = 0
    for window in windows:
        length = window[1] - window[0]
        units += PER_WINDOW if length <= LONG_RUN else length * PER_LONG_RUN_CHAR
    return units


class ScanTooCostly(PayloadTooLarge):
    """Data-loss prevention would need more CPU than a request may take: refused unsent."""

    default_code = "dlp_scan_too_costly"

    def __init__(self) -> None:
        super().__init__(
            "data-loss prevention stops at a bounded amount of work per request, and this "
            "one holds more candidate values (numbers, addresses, secret names) than it may "
            "check; it was not sent. Send smaller requests."
        )


_local = threading.local()


def charge(units: int) -> None:
    """Take `units` from the current request's budget; ScanTooCostly past its limit."""
    left: int | None = getattr(_local, "left", None)
    if left is None:
        return
    left -= units
    _local.left = left
    if left < 0:
        raise ScanTooCostly()


def remaining() -> int | None:
    """What is left of the current request's budget; None outside one."""
    left: int | None = getattr(_local, "left", None)
    return left


@contextmanager
def request_budget(limit: int = WORK_LIMIT) -> Iterator[None]:
    """Bounds the scans run in this thread inside the block (nested blocks share the outer
    one's budget: a request's texts and junctions draw on one)."""
    if getattr(_local, "left", None) is not None:
        yield
        return
    _local.left = limit
    try:
        yield
    finally:
        _local.left = None
