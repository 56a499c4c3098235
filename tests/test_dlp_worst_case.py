"""Hostile bodies: the detectors stay correct on them, and long scans keep to their own pool.

No timing assertions (bench/dlp_worst_case.py measures); the bodies are 128 KiB so the file
stays quick, and each is built to hit one detector's weak spot. Before the fix, the e-mail
detector ran a regex window at every "@" (38.6 s for 2 MB of "@"), and long scans ran on
asyncio's default executor, which key lookups and admin queries need too.
"""

from __future__ import annotations

import asyncio
import os
import threading
from typing import Any

import pytest

from souverain.config import PolicyConfig
from souverain.context import Principal, RequestContext
from souverain.dlp import engine as dlp_engine
from souverain.dlp.addresses import _EMAIL, EmailDetector
from souverain.dlp.budget import ScanTooCostly, request_budget
from souverain.dlp.detectors import Scanner
from souverain.dlp.engine import DlpEngine, build_scanner
from souverain.dlp.settings import DlpConfig
from souverain.policy.engine import PolicyEngine
from souverain.protocol.chat import ChatCompletionRequest

SIZE = 128 * 1024
IBAN = "FR76 3000 6000 0112 3456 7890 189"
EMAIL = "jeanne.dupont@example.fr"
SCANNER = Scanner.default()


def fill(unit: str, size: int = SIZE) -> str:
    return (unit * (size // len(unit) + 1))[:size]


HOSTILE = {
    "all @": fill("@"),
    "a@ repeated": fill("a@"),
    "a@b. repeated": fill("a@b."),
    "all digits": fill("7"),
    "digit, space": fill("1 "),
    "digit, dot": fill("1."),
    "digit, zero-width space": fill("1\u200b"),
    "full-width digits": fill("\uff17"),
    "zero-width spaces": fill("\u200b"),
    "FR76 repeated": fill("FR76"),
    "GB82 repeated": fill("GB82"),
    "AKIA1 repeated": fill("AKIA1"),
    "upper-case words": fill("ABCD "),
    "base64": fill("QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVo0NTY3"),
    "password= repeated": fill("password="),
    "brackets [at]": fill("[at]"),
}


@pytest.mark.parametrize("name", list(HOSTILE))
def test_a_value_planted_in_a_hostile_body_is_found_whole(name: str) -> None:
    body = HOSTILE[name]
    middle = len(body) // 2
    text = f"{body[:middle]} IBAN {IBAN} , mail {EMAIL} . {body[middle:]}"
    found = {(text[f.start : f.end], f.type) for f in SCANNER.scan(text)}
    assert (IBAN, "iban") in found
    assert (EMAIL, "email") in found


@pytest.mark.parametrize("name", list(HOSTILE))
def test_a_request_budget_does_not_cut_a_hostile_body_of_this_size(name: str) -> None:
    # The bound refuses bodies far past any model's context, never one of 128 KiB.
    body = HOSTILE[name]
    text = f"{body[:100]} IBAN {IBAN} , mail {EMAIL} . {body[100:]}"
    with request_budget():
        found = {(text[f.start : f.end], f.type) for f in SCANNER.scan(text)}
    assert {(IBAN, "iban"), (EMAIL, "email")} <= found


@pytest.mark.parametrize(
    "unit", ["1 ", "7", "+33 6 12 ", "token: x ", "ab@cd.fr ", "a@", "\uff17", "FR76"]
)
async def test_a_body_past_the_scan_budget_is_refused_unsent(unit: str) -> None:
    """Before the budget, 8 MiB of these took 2-6 CPU-seconds to scan; now the check stops
    at the step that would cross it and refuses the request (413), failing closed."""
    engine = DlpEngine(DlpConfig(), PolicyEngine(PolicyConfig()), SCANNER, b"k" * 32)
    ctx = RequestContext(
        endpoint="chat", principal=Principal(1, "t", "user"), classification="public"
    )
    with pytest.raises(ScanTooCostly) as refused:
        await engine.check(ctx, _call(fill(unit, 4 * 1024 * 1024)))
    assert refused.value.status_code == 413 and refused.value.code == "dlp_scan_too_costly"
    assert "was not sent" in refused.value.message


async def test_a_raised_scan_budget_lets_a_large_numeric_table_through() -> None:
    """`dlp.scan_budget` is the institution's to raise: the same table refused at the
    default is scanned whole, its planted IBAN found, under a budget ten times larger."""
    policy = PolicyEngine(PolicyConfig())
    table = fill("1 ", 512 * 1024) + f" IBAN {IBAN}"
    ctx = RequestContext(
        endpoint="chat", principal=Principal(1, "t", "user"), classification="public"
    )
    default = DlpEngine(DlpConfig(), policy, SCANNER, b"k" * 32)
    with pytest.raises(ScanTooCostly):
        await default.check(ctx, _call(table))
    raised = DlpEngine(DlpConfig(scan_budget=1_000_000_000), policy, SCANNER, b"k" * 32)
    await raised.check(ctx, _call(table))
    assert ctx.notes["dlp"] == {"iban": 1}


async def test_the_optional_name_detector_is_under_the_budget_too() -> None:
    """With person names on, 8 MiB of capitalised words took ~15 CPU-seconds: each word is a
    Python step. Now each is charged first, so such a body is refused (413), while an
    ordinary name-dense prompt is still read whole."""
    config = DlpConfig(person_names=True)
    engine = DlpEngine(config, PolicyEngine(PolicyConfig()), build_scanner(config), b"k" * 32)
    ctx = RequestContext(
        endpoint="chat", principal=Principal(1, "t", "user"), classification="public"
    )
    with pytest.raises(ScanTooCostly):
        await engine.check(ctx, _call(fill("Abcd Efgh ", 1024 * 1024)))
    await engine.check(ctx, _call("Bonjour Marie Dupont, voici le dossier. " * 50))
    assert ctx.notes["dlp"]["person"] >= 50


def test_the_budget_bounds_only_the_scans_inside_it() -> None:
    body = fill("1 ", 4 * 1024 * 1024)
    with pytest.raises(ScanTooCostly), request_budget():
        SCANNER.scan(body)
    assert SCANNER.scan(fill("1 ", 100_000)) == []  # outside a request: unbounded, as before


def test_a_long_run_of_colons_and_hex_is_read_once() -> None:
    # ":a:a:a..." was grown over character by character at each of its anchors.
    address = "2001:db8::8a2e:370:7334"
    text = fill(":a", 200_000) + f" then {address} and ::1 now"
    with request_budget(2_000_000):  # a few hundred anchors at most, not 100,000
        found = {(text[f.start : f.end], f.type) for f in SCANNER.scan(text)}
    assert {(address, "ip_address"), ("::1", "ip_address")} <= found


@pytest.mark.parametrize("name", ["all @", "a@ repeated", "a@b. repeated", "all digits"])
def test_junk_alone_yields_nothing(name: str) -> None:
    assert SCANNER.scan(HOSTILE[name]) == []


def test_every_valid_address_of_a_dense_body_is_found() -> None:
    count = SIZE // (len(EMAIL) + 1)
    found = EmailDetector().find(f"{EMAIL} " * count)
    assert len(found) == count
    assert {f.value for f in found} == {EMAIL}


@pytest.mark.parametrize(
    "text",
    [
        f"Écrire à {EMAIL}, ou à x.y+tag@sub.example.co.uk.",
        "a@b.cd@e.fg, foo@bar, @@x@y.zz, " + "w" * 70 + "@example.com, ok@example.com",
        "mails: " + ", ".join(f"user{i}@host{i}.example.org" for i in range(40)),
        fill("a@b.fr ", 4000) + " tail@example.fr",
    ],
)
def test_both_ways_of_the_email_detector_agree(text: str) -> None:
    # Sparse "@": a look around each one; dense: one pass of the whole pattern.
    sparse = EmailDetector().find(text)
    dense = [(m.start(), m.end()) for m in _EMAIL.finditer(text)]
    assert [(f.start, f.end) for f in sparse] == dense


class _BlockingScanner:
    """A scanner that holds its thread until released, noting which thread it ran on."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.threads: set[str] = set()

    def scan(self, text: str) -> list[Any]:
        self.threads.add(threading.current_thread().name)
        self.release.wait(30)
        return []


def _call(text: str) -> Any:
    class Call:
        request = ChatCompletionRequest(model="m", messages=[{"role": "user", "content": text}])

    return Call()


async def test_long_scans_leave_the_default_executor_free() -> None:
    """More long scans at once than the default executor has threads: work sent to that
    executor (key lookups, admin queries) still runs while they are all in flight."""
    scanner = _BlockingScanner()
    engine = DlpEngine(DlpConfig(), PolicyEngine(PolicyConfig()), scanner, b"k" * 32)
    big = "x" * (dlp_engine.INLINE_SCAN_CHARS + 1)
    ctx = RequestContext(
        endpoint="chat", principal=Principal(1, "t", "user"), classification="public"
    )
    default_workers = min(32, (os.cpu_count() or 1) + 4)  # ThreadPoolExecutor's default
    scans = [asyncio.create_task(engine.check(ctx, _call(big))) for _ in range(default_workers + 2)]
    try:
        await asyncio.sleep(0.2)  # let them start
        answer = await asyncio.wait_for(asyncio.to_thread(lambda: "answered"), timeout=20)
        assert answer == "answered"
        assert not any(scan.done() for scan in scans)  # all still held by the scanner
    finally:
        scanner.release.set()
        await asyncio.gather(*scans)
    assert scanner.threads and all(name.startswith("souverain-dlp") for name in scanner.threads)
