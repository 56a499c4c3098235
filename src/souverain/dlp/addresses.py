"""E-mail and IP addresses: detectors that anchor on a character ("@", ":") rather than on a
run of digits, each kept linear in its input however dense the anchors (docs/dlp.md).
"""

from __future__ import annotations

import ipaddress
import re

from souverain.dlp import budget
from souverain.dlp.detectors import Finding, NumberDetector, NumberSpec

# Two ways, the same answers (tests/test_dlp_worst_case.py): where "@" is rare, the local
# part is read backwards from each "@" (a match on the reversed text) and the domain forwards,
# a bounded look on both sides; where "@" is dense (a hostile body of "@"), one pass of the
# whole pattern, whose left boundary makes it try each run of local-part characters once.
# Either is linear; a window search at every "@" was not.
_LOCAL = r"[\w.%+\-]"
_DOMAIN_PATTERN = r"(?:[^\W_](?:[\w\-]{0,61}[^\W_])?\.)+[A-Za-z]{2,24}(?![\w\-@]|\.\w)"
# The left boundary after the first character: a pattern that starts with a character class
# lets sre skip to the next candidate in C (a body of "@" searched 3x faster).
_EMAIL = re.compile(rf"{_LOCAL}(?<!{_LOCAL}{_LOCAL}){_LOCAL}{{0,63}}@{_DOMAIN_PATTERN}")
# Bytes: every local-part character as "a" (non-ASCII ones too), "@" as is, the rest " ".
_LOCAL_AS_A = bytes(
    ord("a") if re.fullmatch(_LOCAL, chr(b)) or b == ord("?") else b if b == ord("@") else 32
    for b in range(256)
)
_LOCAL_REVERSED = re.compile(_LOCAL + "{1,65}")
_DOMAIN = re.compile(_DOMAIN_PATTERN)


class EmailDetector:
    name = "email"
    types = ("email",)

    def find(self, text: str) -> list[Finding]:
        ats = text.count("@")
        if not ats:
            return []
        if ats > len(text) // 256:
            # The pass costs little per "@", and much per run of local-part characters
            # before one (the domain is tried after each): charged before it runs.
            runs = text.encode("ascii", "replace").translate(_LOCAL_AS_A).count(b"a@")
            budget.charge(ats * 3 + runs * budget.PER_EMAIL_RUN)
            return _dense_emails(text)
        budget.charge(ats * budget.PER_ANCHOR)
        found: list[Finding] = []
        reversed_text, n, last = text[::-1], len(text), 0
        at = text.find("@")
        while at != -1:
            local = _LOCAL_REVERSED.match(reversed_text, n - at)
            # The whole run of local-part characters, at most 64 of them.
            if local is not None and local.end() - local.start() <= 64:
                start = at - (local.end() - local.start())
                domain = _DOMAIN.match(text, at + 1) if start >= last else None
                if domain is not None:
                    found.append(Finding(start, domain.end(), "email", text[start : domain.end()]))
                    last = domain.end()
            at = text.find("@", max(at + 1, last))
        return found


def _dense_emails(text: str) -> list[Finding]:
    found: list[Finding] = []
    for count, m in enumerate(_EMAIL.finditer(text), 1):
        if not count & 1023:
            budget.charge(1024 * budget.PER_CANDIDATE)
        found.append(Finding(m.start(), m.end(), "email", m.group()))
    return found


# "version 1.2.3.4" is a version even though it parses as an address.
_IPV4 = r"(?<![\w.\-])(?<![vV]ersion )(?<![vV]ersione )(?<![vV]ersión )(?<!release )"
_IPV4 += r"(?:\d{1,3}\.){3}\d{1,3}(?![\w\-]|\.\d)"  # a port or a /prefix may follow
_V6_ANCHOR = re.compile(r":[0-9A-Fa-f]{0,4}:")
_V6_CHARS = frozenset("0123456789abcdefABCDEF:.")
_V6_RUN = re.compile(r"[0-9A-Fa-f:.]*")
_V6_MAX = 45  # the longest text form: eight groups, the last two as a dotted IPv4
_WORD_CHAR = re.compile(r"[\w.]")  # what must not touch an address


def _ipv4_ok(candidate: str) -> bool:
    try:
        return bool(ipaddress.IPv4Address(candidate))
    except ValueError:
        return False


class IpAddressDetector(NumberDetector):
    def __init__(self) -> None:
        super().__init__(NumberSpec("ip_address", "", _IPV4, 4, dotted=True), _ipv4_ok)

    def find(self, text: str) -> list[Finding]:
        return super().find(text) + self._ipv6(text)

    @staticmethod
    def _ipv6(text: str) -> list[Finding]:
        # Anchor on ":x:" (a fast literal search), then grow over address characters; the
        # next anchor is searched after the run, so a run is read once however long.
        found: list[Finding] = []
        anchor = _V6_ANCHOR.search(text)
        while anchor is not None:
            budget.charge(budget.PER_ANCHOR)
            s, e, resume = _v6_span(text, anchor)
            if e - s <= _V6_MAX and _v6_valid(text, s, e):
                found.append(Finding(s, e, "ip_address", text[s:e]))
            anchor = _V6_ANCHOR.search(text, resume)
        return found


def _v6_span(text: str, anchor: re.Match[str]) -> tuple[int, int, int]:
    """The run of address characters around an anchor, without a sentence's full stop,
    and where to search for the next anchor. At most an address's length is read to the
    left, a character at a time; the right end is one regex match (":a:a:a..." is one run
    of 8 MiB)."""
    s, e = anchor.start(), anchor.end()
    while s > 0 and text[s - 1] in _V6_CHARS and anchor.start() - s <= _V6_MAX:
        s -= 1
    run = _V6_RUN.match(text, e)
    run_end = run.end() if run else e
    e = s + len(text[s:run_end].rstrip("."))
    return s, e, run_end if e - s > _V6_MAX else e


def _v6_valid(text: str, s: int, e: int) -> bool:
    if _WORD_CHAR.match(text[s - 1 : s]) or _WORD_CHAR.match(text[e : e + 1]):
        return False
    cand = text[s:e]
    if len(cand) - cand.count(":") - cand.count(".") < 3 and cand != "::1":
        return False  # slices like [1::2]
    try:
        ipaddress.IPv6Address(cand)
    except ValueError:
        return False
    return True
