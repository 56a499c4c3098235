"""The DLP scan cache (dlp/scan_cache.py): a text scanned before gets its findings again
without the detectors' work, exactly as a fresh scan would give them, values split across
texts included, and the work budget answers as it would without the cache."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest

from souverain.dlp.budget import ScanTooCostly, remaining, request_budget
from souverain.dlp.crosstext import scan_texts
from souverain.dlp.detectors import Scanner
from souverain.dlp.engine import build_scanner
from souverain.dlp.scan_cache import CachingScanner
from souverain.dlp.settings import DlpConfig

HISTORY = [
    "Bonjour, je voudrais virer 300 EUR.",
    "Mon IBAN est FR76 3000 6000 0112 3456 7890 189, merci.",
    "Écrivez-moi à jeanne.martin@example.fr ou au 06 12 34 56 78.",
    "token: ghp_" + "a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8",
    "Rien à signaler ici.",
]


class Counting:
    """The real scanner, counting the texts it actually scans."""

    def __init__(self) -> None:
        self.inner = Scanner.default()
        self.texts: list[str] = []

    def scan(self, text: str) -> Sequence[Any]:
        self.texts.append(text)
        return self.inner.scan(text)


def test_findings_are_those_of_a_fresh_scan_and_history_is_not_rescanned() -> None:
    counting = Counting()
    cached = CachingScanner(counting)
    fresh = Scanner.default()
    with request_budget():
        first = scan_texts(cached, HISTORY)
    assert first == scan_texts(fresh, HISTORY)
    assert sum(len(per_text) for per_text in first) >= 4  # IBAN, e-mail, phone, token
    scanned = len(counting.texts)

    turn = [*HISTORY, "Et l'autre compte ?"]  # the next step: one new text
    with request_budget():
        again = scan_texts(cached, turn)
    assert again == scan_texts(fresh, turn)
    new = counting.texts[scanned:]
    assert "Et l'autre compte ?" in new and not set(HISTORY) & set(new)  # old texts: hits

    changed = [*HISTORY[:-1], "Rien à signaler ici!"]  # one character differs: scanned
    with request_budget():
        scan_texts(cached, changed)
    assert "Rien à signaler ici!" in counting.texts


def test_a_value_split_across_entries_is_found_when_one_half_is_old() -> None:
    cached = CachingScanner(Scanner.default())
    history = ["Mon IBAN est FR76 3000 6000 0112", "Bien reçu."]
    with request_budget():
        scan_texts(cached, history)
    turn = ["Mon IBAN est FR76 3000 6000 0112", "3456 7890 189"]  # its second half, new
    with request_budget():
        found = scan_texts(cached, turn)
    assert found == scan_texts(Scanner.default(), turn)
    assert [f.type for f in found[0]] == ["iban"] and [f.type for f in found[1]] == ["iban"]


def test_the_budget_refuses_with_the_cache_as_without() -> None:
    text = " ".join(f"{n:04d} {n:04d} {n:04d}" for n in range(400))  # many number runs
    with request_budget():
        start = remaining()
        Scanner.default().scan(text)
        left = remaining()
    assert start is not None and left is not None
    cost = start - left
    cached = CachingScanner(Scanner.default())
    with request_budget():
        cached.scan(text)  # now kept
    with request_budget(cost - 1), pytest.raises(ScanTooCostly):
        cached.scan(text)
    with request_budget(cost):  # exactly its cost: accepted, as without the cache
        hit = cached.scan(text)
    assert hit == Scanner.default().scan(text)


def test_kept_texts_are_bounded_and_the_built_scanner_caches() -> None:
    counting = Counting()
    cached = CachingScanner(counting, max_chars=40)
    with request_budget():
        for text in ("a" * 20, "b" * 20, "c" * 20):  # 60 characters: "a" goes
            cached.scan(text)
        cached.scan("c" * 20)
        cached.scan("a" * 20)
    assert counting.texts == ["a" * 20, "b" * 20, "c" * 20, "a" * 20]
    assert isinstance(build_scanner(DlpConfig()), CachingScanner)
