"""A process's copy of recently used conversation histories, so that a turn reads from
the database only the entries it has not seen (agents/conversation_store.py).

The database stays the truth: every read validates a copy against the conversation's
row, read in the same call (`version`, bumped by every write; `entry_count`; `rewritten`,
the version at which an old entry last changed). Replicas share the database, not this
cache; a copy another replica made stale is noticed by its version and topped up (new
entries) or dropped (an old entry rewritten).

Entries are handed out as shallow copies: a caller may set an entry's keys (the loop
marks a call's confirmation status) without touching the copy kept here; nested values
are shared and are never changed in place. Bounded three ways: conversations, total
characters of their stored JSON, and idle time (an erased or deleted conversation's copy
in another replica is gone within `max_idle_s`, or at its next lookup there).
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

MAX_CONVERSATIONS = 2_000
MAX_CHARS = 64_000_000  # of stored JSON, about the memory the parsed entries take
MAX_IDLE_S = 300.0


@dataclass(frozen=True, slots=True)
class CachedHistory:
    version: int  # the row's version this copy is exactly
    entries: tuple[dict[str, Any], ...]  # ordinals 0..len-1
    chars: int

    def copies(self) -> list[dict[str, Any]]:
        return [dict(value) for value in self.entries]


class HistoryCache:
    def __init__(
        self,
        max_conversations: int = MAX_CONVERSATIONS,
        max_chars: int = MAX_CHARS,
        max_idle_s: float = MAX_IDLE_S,
    ) -> None:
        self.max_conversations = max_conversations
        self.max_chars = max_chars
        self.max_idle_s = max_idle_s
        self._items: OrderedDict[str, tuple[float, CachedHistory]] = OrderedDict()
        self._chars = 0
        self._lock = threading.Lock()  # stores run in worker threads (asyncio.to_thread)

    def get(self, conversation_id: str) -> CachedHistory | None:
        with self._lock:
            now = time.monotonic()
            self._expire(now)
            found = self._items.pop(conversation_id, None)
            if found is None:
                return None
            self._items[conversation_id] = (now, found[1])  # most recently used: last
            return found[1]

    def put(
        self, conversation_id: str, version: int, entries: Iterable[dict[str, Any]], chars: int
    ) -> None:
        kept = CachedHistory(version, tuple(dict(value) for value in entries), chars)
        with self._lock:
            self._expire(time.monotonic())
            self._drop(conversation_id)
            if chars > self.max_chars:
                return
            self._items[conversation_id] = (time.monotonic(), kept)
            self._chars += chars
            while len(self._items) > self.max_conversations or self._chars > self.max_chars:
                self._drop(next(iter(self._items)))

    def drop(self, conversation_ids: Iterable[str]) -> None:
        with self._lock:
            for conversation_id in conversation_ids:
                self._drop(conversation_id)

    def __len__(self) -> int:
        return len(self._items)

    def _drop(self, conversation_id: str) -> None:
        found = self._items.pop(conversation_id, None)
        if found is not None:
            self._chars -= found[1].chars

    def _expire(self, now: float) -> None:
        while self._items:
            oldest, (used_at, _) = next(iter(self._items.items()))
            if now - used_at <= self.max_idle_s:
                return
            self._drop(oldest)
