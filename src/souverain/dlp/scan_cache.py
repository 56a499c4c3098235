"""Findings of texts already scanned, so that a conversation's history is not scanned
again at every step (agents/conversation_loop.py sends the whole history each time).

A scan is a pure function of the text and the scanner's configuration, so the findings
of a text identical to one scanned before are those findings again: the cache is keyed
by the text's SHA-256 and length, per scanner (one configuration). The guard still reads
every text of every request (dlp/fields.py); only the detectors' work is skipped, and a
text that differs by one character is scanned again. The junctions between texts
(crosstext.py) go through the same `scan` and are looked up the same way, so a value
split across two entries is found whichever entries are new.

The work budget (budget.py) gives the same answer as without the cache: a hit charges
the units its first scan cost, so a request is refused (413) exactly when its scan would
have been. Only scans made inside a budget are kept (their cost is known then).

Bounded by the characters of the texts kept (their findings hold matched values: kept in
this process's memory only, like the texts of requests in flight).
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any, Protocol

from . import budget

MAX_TEXT_CHARS = 256_000  # longer texts are scanned each time (rarely repeated)
MAX_CHARS = 32_000_000  # of the texts whose findings are kept


class _Scanner(Protocol):
    def scan(self, text: str) -> Sequence[Any]: ...


class CachingScanner:
    def __init__(self, scanner: _Scanner, max_chars: int = MAX_CHARS) -> None:
        self.scanner = scanner
        self.max_chars = max_chars
        self._kept: OrderedDict[tuple[bytes, int], tuple[tuple[Any, ...], int]] = OrderedDict()
        self._chars = 0
        self._lock = threading.Lock()  # large scans run in a pool (dlp/pool.py)

    def scan(self, text: str) -> list[Any]:
        if not text or len(text) > MAX_TEXT_CHARS:
            return list(self.scanner.scan(text))
        key = (hashlib.sha256(text.encode("utf-8", "surrogatepass")).digest(), len(text))
        with self._lock:
            found = self._kept.get(key)
            if found is not None:
                self._kept.move_to_end(key)
        if found is not None:
            findings, units = found
            budget.charge(units)
            return list(findings)
        before = budget.remaining()
        findings = tuple(self.scanner.scan(text))
        after = budget.remaining()
        if before is not None and after is not None:
            self._keep(key, findings, before - after)
        return list(findings)

    def _keep(self, key: tuple[bytes, int], findings: tuple[Any, ...], units: int) -> None:
        with self._lock:
            if key in self._kept:
                return
            self._kept[key] = (findings, units)
            self._chars += key[1]
            while self._chars > self.max_chars:
                (_, chars), _ = self._kept.popitem(last=False)
                self._chars -= chars
