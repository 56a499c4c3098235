"""Detection half of data-loss prevention: find personal data in text, take no action.

Design: a permissive candidate regex, then a real validator (python-stdnum checksums,
phonenumbers, ipaddress), so a look-alike with a wrong check digit is never reported.
Everything is compiled at import; the per-call path only runs precompiled patterns.
"""

from __future__ import annotations

import importlib
import ipaddress
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any, NamedTuple, Protocol

import phonenumbers
from stdnum import iban, luhn
from stdnum.be import nn
from stdnum.de import idnr
from stdnum.es import dni, nie
from stdnum.eu import vat
from stdnum.fr import nir
from stdnum.it import codicefiscale
from stdnum.nl import bsn
from stdnum.pl import pesel


@dataclass(frozen=True, slots=True)
class Finding:
    start: int
    end: int
    type: str
    # Findings get logged and audited: the matched text must never leak through repr().
    value: str = field(repr=False)


class Detector(Protocol):
    # Read-only properties so plain attributes and frozen dataclasses both satisfy it.
    @property
    def name(self) -> str: ...
    @property
    def types(self) -> tuple[str, ...]: ...
    def find(self, text: str) -> list[Finding]: ...


# On equal-length overlaps the earlier type here wins: stronger checksums / structure first.
SPECIFICITY: tuple[str, ...] = tuple(
    "secret iban it_codice_fiscale fr_nir eu_vat be_national_number pl_pesel de_steuer_id"
    " es_nie es_dni nl_bsn payment_card email ip_address phone".split()
)
_RANK = {t: i for i, t in enumerate(SPECIFICITY)}

# Boundaries shared by the number patterns: not glued to a word, not the tail of a longer
# number ("4711-0815-2026", "12.345678901") and not followed by a decimal or a suffix ("-beta").
_LB = r"(?<![\w+\-/@])(?<!\d[.,])"
_RB = r"(?![\w@]|[.,\-/:]\w)"
_SEPARATORS = re.compile(r"[ .\-/]")
# Every number-shaped identifier lives in a run of digits, capitals and separators holding
# 4+ digits. Finding those runs is one regex pass; [0-9] scans faster than \d.
_CLUSTER = re.compile(r"[0-9](?:[A-Z .\-/:()]{0,6}[0-9]){3}[0-9A-Z .\-/:()]*")
_LEFT, _RIGHT = 8, 2  # room for a prefix ("FR76", "+", "RSSMRA", "X-") and the lookahead


class Cluster(NamedTuple):
    start: int  # window to search: the run plus margins
    end: int
    digits: int
    letters: bool  # holds a capital letter (DNI, NIE, codice fiscale need one)
    dots: bool


_clusters_cache: tuple[str, tuple[Cluster, ...]] = ("", ())


def number_clusters(text: str) -> tuple[Cluster, ...]:
    """Windows of `text` worth running number patterns on, shared by all number detectors.

    One pass instead of a dozen full-text regexes keeps the scanner far under its latency
    budget; each detector then skips windows with too few digits for its type. The
    one-entry cache serves all the detectors of one scan (it holds the text, so `is` is safe).
    """
    global _clusters_cache
    cached = _clusters_cache
    if cached[0] is text:
        return cached[1]
    found: list[Cluster] = []
    n = len(text)
    for m in _CLUSTER.finditer(text):
        g = m.group()
        if len(g) < 7:  # years, times, small prices: shorter than any identifier
            continue
        found.append(
            Cluster(
                max(0, m.start() - _LEFT),
                min(n, m.end() + _RIGHT),
                sum(map(str.isdigit, g)),
                g != g.lower(),
                "." in g,
            )
        )
    result = tuple(found)
    _clusters_cache = (text, result)
    return result


def _valid_prefix_end(text: str, s: int, e: int, ok: Callable[[str], bool]) -> int | None:
    """End of the longest valid prefix of text[s:e], cut at separators.

    Greedy candidates can swallow the next group ("... 189 BIC"); retry a few shorter cuts.
    """
    cuts = [m.start() for m in _SEPARATORS.finditer(text, s, e)]
    ends = [e, *cuts[::-1][:4]]
    for end in ends:
        if ok(text[s:end]):
            return end
    return None


def _compact(value: str) -> str:
    return _SEPARATORS.sub("", value).upper()


class StdnumType(NamedTuple):
    """A row of STDNUM_TABLE: add a country's identifier by adding a row."""

    type: str
    module: ModuleType  # a python-stdnum module: its is_valid() has the final word
    candidate: str  # permissive regex, separators allowed; boundaries are added
    min_digits: int  # skip windows holding fewer digits
    letter: bool = False  # the identifier holds a capital letter
    greedy: bool = False  # the regex may swallow a following group: retry shorter cuts


_VAT_CC = "AT|BE|BG|CY|CZ|DE|DK|EE|EL|ES|FI|FR|HR|HU|IE|IT|LT|LU|LV|MT|NL|PL|PT|RO|SE|SI|SK|XI"
_NIR = r"[1-478](?:[ .]?\d{2}){2}[ .]?(?:\d{2}|2[AB])(?:[ .]?\d{3}){2}[ .]?\d{2}"
_CF = r"[A-Z]{6}[\dL-NP-V]{2}[A-EHLMPR-T][\dL-NP-V]{2}[A-Z][\dL-NP-V]{3}[A-Z]"  # L-V: omocodia
_BE_NN = r"\d{2}([ .]?)\d{2}\1\d{2}[ .\-]?\d{3}[ .]?\d{2}"
STDNUM_TABLE: tuple[StdnumType, ...] = (
    StdnumType("iban", iban, r"[A-Z]{2}\d{2}(?:[ \-]?[A-Z0-9]){11,30}", 8, greedy=True),
    StdnumType("fr_nir", nir, _NIR, 13),
    StdnumType("de_steuer_id", idnr, r"[1-9]\d(?:[ ]?\d{3}){3}", 11),
    StdnumType("it_codice_fiscale", codicefiscale, _CF, 4, letter=True),
    StdnumType("es_dni", dni, r"\d{2}\.?\d{3}\.?\d{3}[ \-]?[A-Z]", 8, letter=True),
    StdnumType("es_nie", nie, r"[XYZ][ \-]?\d{7}[ \-]?[A-Z]", 7, letter=True),
    StdnumType("nl_bsn", bsn, r"\d{4}\.\d{2}\.\d{3}|\d{3}([ .])\d{3}\1\d{3}|\d{9}", 9),
    StdnumType("be_national_number", nn, _BE_NN, 11),
    StdnumType("pl_pesel", pesel, r"\d{11}", 11),
    StdnumType(
        "eu_vat", vat, rf"(?:{_VAT_CC})[ \-]?[0-9A-Z](?:[ .\-]?[0-9A-Z]){{7,13}}", 7, greedy=True
    ),
)


class _NumberDetector:
    """Shared loop: candidate regex over the number windows, validator on each candidate."""

    name: str
    types: tuple[str, ...]
    _pattern: re.Pattern[str]
    _min_digits = 7
    _letter = False
    _greedy = False

    def _valid(self, candidate: str) -> bool:
        raise NotImplementedError

    def find(self, text: str) -> list[Finding]:
        found: list[Finding] = []
        kind, last = self.types[0], -1
        for c in number_clusters(text):
            if c.digits < self._min_digits or (self._letter and not c.letters):
                continue
            for m in self._pattern.finditer(text, c.start, c.end):
                s, e = m.span()
                if s < last:  # windows overlap by their margins
                    continue
                end = (
                    _valid_prefix_end(text, s, e, self._valid)
                    if self._greedy
                    else (e if self._valid(m.group()) else None)
                )
                if end is not None:
                    found.append(Finding(s, end, kind, text[s:end]))
                    last = end
        return found


class StdnumDetector(_NumberDetector):
    """One row of STDNUM_TABLE."""

    def __init__(self, row: StdnumType) -> None:
        self.name = row.type
        self.types = (row.type,)
        self._is_valid: Callable[[str], bool] = row.module.is_valid
        self._pattern = re.compile(_LB + "(?:" + row.candidate + ")" + _RB)
        self._min_digits, self._letter, self._greedy = row.min_digits, row.letter, row.greedy

    def _valid(self, candidate: str) -> bool:
        return bool(self._is_valid(_compact(candidate)))


def _plausible_iin(d: str) -> bool:
    """Issuer prefix and length agree (ISO/IEC 7812 ranges of the major networks)."""
    n, p2, p3, p4 = len(d), int(d[:2]), int(d[:3]), int(d[:4])
    if d[0] == "4":
        return n in (13, 16, 19)  # Visa
    if 51 <= p2 <= 55 or 2221 <= p4 <= 2720:
        return n == 16  # Mastercard
    if p2 in (34, 37):
        return n == 15  # Amex
    if 300 <= p3 <= 305 or p2 in (36, 38, 39):
        return 14 <= n <= 19  # Diners
    if 3528 <= p4 <= 3589 or p4 == 6011 or p2 in (62, 65) or 644 <= p3 <= 649:
        return 16 <= n <= 19  # JCB, Discover, UnionPay
    return p2 in (50, 56, 57, 58, 63, 67) and 12 <= n <= 19  # Maestro


class PaymentCardDetector(_NumberDetector):
    name = "payment_card"
    types = ("payment_card",)
    _pattern = re.compile(_LB + r"\d{4}(?:[ \-]?\d{2,6}){2,4}" + _RB)
    _min_digits = 13
    _greedy = True

    def _valid(self, candidate: str) -> bool:
        d = _compact(candidate)
        return 13 <= len(d) <= 19 and d.isdigit() and _plausible_iin(d) and luhn.is_valid(d)


# Regions with a trunk "0" in national format, and those written without one.
TRUNK_REGIONS = ("FR", "DE", "IT", "NL", "BE", "AT", "IE")
BARE_REGIONS = {"ES": "6789", "PL": "123456789", "PT": "29", "IT": "3", "LU": "6"}
for _region in (*TRUNK_REGIONS, *BARE_REGIONS):  # load metadata now, not on the first prompt
    phonenumbers.PhoneMetadata.metadata_for_region(_region)
_DATE_LIKE = re.compile(r"\d{1,4}([./\-])\d{1,2}\1\d{1,4}")
_NON_DIGIT = re.compile(r"\D")


class PhoneDetector(_NumberDetector):
    """International (+CC / 00CC) numbers, and national formats of the EU regions above.

    Numbers without a trunk 0 (ES, PL, PT, IT mobiles, LU) are only taken when written in
    space-separated groups: a bare 9-digit run is as likely an invoice number as a phone.
    """

    name = "phone"
    types = ("phone",)
    # National numbers are not the tail of a longer grouped number ("1 234 567 890 EUR",
    # NIR "... 2B 046 468 50").
    _pattern = re.compile(
        r"(?<![\w+])(?:\+|00)[1-9][\d .\-/()]{5,22}\d" + _RB + "|"
        r"(?<![\w+\-/.])(?<!\d )(?<!\d[A-Z] )\(?0[1-9][\d .\-/()]{4,18}\d" + _RB + "|"
        rf"{_LB}(?<!\d )(?<!\d[A-Z] )[1-9]\d{{1,3}}(?: \d{{2,4}}){{2,4}}" + _RB
    )
    _greedy = True

    def _valid(self, candidate: str) -> bool:
        if _DATE_LIKE.fullmatch(candidate):
            return False
        digits = _NON_DIGIT.sub("", candidate.replace("(0)", ""))
        if candidate[0] == "+" or candidate.startswith("00"):
            number = "+" + (digits[2:] if candidate[0] == "0" else digits)
            return 8 <= len(number) <= 16 and _phone_ok(number, None)
        if digits[0] == "0":
            return 7 <= len(digits) <= 14 and any(_phone_ok(digits, r) for r in TRUNK_REGIONS)
        regions = [r for r, lead in BARE_REGIONS.items() if digits[0] in lead]
        return 9 <= len(digits) <= 10 and any(_phone_ok(digits, r) for r in regions)


def _phone_ok(number: str, region: str | None) -> bool:
    try:
        return bool(phonenumbers.is_valid_number(phonenumbers.parse(number, region)))
    except phonenumbers.NumberParseException:
        return False


_EMAIL = re.compile(
    r"(?<![\w.%+\-])[\w.%+\-]{1,64}@(?:[^\W_](?:[\w\-]{0,61}[^\W_])?\.)+[A-Za-z]{2,24}"
    r"(?![\w\-@]|\.\w)"
)


class EmailDetector:
    name = "email"
    types = ("email",)

    def find(self, text: str) -> list[Finding]:
        # str.find is a memchr; the regex only runs in a window around each "@".
        found: list[Finding] = []
        last = 0
        i = text.find("@")
        while i != -1:
            m = _EMAIL.search(text, max(last, i - 64), i + 256)
            if m is not None and m.start() >= last:
                found.append(Finding(m.start(), m.end(), "email", m.group()))
                last = m.end()
            i = text.find("@", max(i + 1, last))
        return found


_IPV4 = re.compile(r"(?<![\w.\-])(?:\d{1,3}\.){3}\d{1,3}(?![\w\-]|\.\d)")
_V6_ANCHOR = re.compile(r":[0-9A-Fa-f]{0,4}:")
_V6_CHARS = frozenset("0123456789abcdefABCDEF:.")
# "version 1.2.3.4" is a version even though it parses as an address.
_VERSION_BEFORE = re.compile(r"(?i)(?:version|versione|versión|versie|wersja|release)[\s:]*$")


def _is_word_char(c: str) -> bool:
    return c.isalnum() or c == "_"


class IpAddressDetector:
    name = "ip_address"
    types = ("ip_address",)

    def find(self, text: str) -> list[Finding]:
        found: list[Finding] = []
        last = -1
        for c in number_clusters(text):
            if not c.dots:
                continue
            for m in _IPV4.finditer(text, c.start, c.end):
                s = m.start()
                if s < last or _VERSION_BEFORE.search(text, max(0, s - 12), s):
                    continue
                try:
                    ipaddress.IPv4Address(m.group())
                except ValueError:
                    continue
                found.append(Finding(s, m.end(), "ip_address", m.group()))
                last = m.end()
        found.extend(self._ipv6(text))
        return found

    @staticmethod
    def _ipv6(text: str) -> list[Finding]:
        # Anchor on ":x:" (a fast literal search), then grow over address characters.
        found: list[Finding] = []
        n, last = len(text), 0
        for m in _V6_ANCHOR.finditer(text):
            if m.start() < last:
                continue
            s, e = m.start(), m.end()
            while s > 0 and text[s - 1] in _V6_CHARS:
                s -= 1
            while e < n and text[e] in _V6_CHARS:
                e += 1
            while e > s and text[e - 1] == ".":  # a sentence's full stop
                e -= 1
            last = e
            cand = text[s:e]
            if (s > 0 and (_is_word_char(text[s - 1]) or text[s - 1] == ".")) or (
                e < n and _is_word_char(text[e])
            ):
                continue
            if sum(c not in ":." for c in cand) < 3 and cand != "::1":  # slices like [1::2]
                continue
            try:
                ipaddress.IPv6Address(cand)
            except ValueError:
                continue
            found.append(Finding(s, e, "ip_address", cand))
        return found


try:  # optional accelerator without type stubs: the regex fallback gives the same answers
    _AHOCORASICK: Any = importlib.import_module("ahocorasick")
except ImportError:  # pragma: no cover
    _AHOCORASICK = None


class DictionaryDetector:
    """Case-insensitive, whole-word search for a list of terms (names, projects, clients)."""

    def __init__(self, terms: Iterable[str], type_: str = "dictionary") -> None:
        self.name = type_
        self.types = (type_,)
        words = sorted({t.strip().lower() for t in terms if t.strip()}, key=len, reverse=True)
        alternation = "|".join(map(re.escape, words))
        self._regex = re.compile(rf"(?<!\w)(?:{alternation})(?!\w)", re.I) if words else None
        self._automaton: Any = None
        if words and _AHOCORASICK is not None:
            self._automaton = _AHOCORASICK.Automaton()
            for w in words:
                self._automaton.add_word(w, len(w))
            self._automaton.make_automaton()

    def find(self, text: str) -> list[Finding]:
        if self._regex is None:
            return []
        lower = text.lower()
        kind = self.types[0]
        # str.lower() can lengthen rare characters (e.g. "İ"): offsets then differ, use regex.
        if self._automaton is None or len(lower) != len(text):
            return [
                Finding(m.start(), m.end(), kind, m.group()) for m in self._regex.finditer(text)
            ]
        n, found = len(text), []
        for last, length in self._automaton.iter(lower):
            s, e = last - length + 1, last + 1
            if (s == 0 or not _is_word_char(text[s - 1])) and (
                e == n or not _is_word_char(text[e])
            ):
                found.append(Finding(s, e, kind, text[s:e]))
        return found


class RegexDetector:
    """A user pattern for one type; `group` picks the reported part of each match."""

    def __init__(self, pattern: str | re.Pattern[str], type_: str, group: int | str = 0) -> None:
        self.name = type_
        self.types = (type_,)
        self._pattern = re.compile(pattern) if isinstance(pattern, str) else pattern
        self._group = group

    def find(self, text: str) -> list[Finding]:
        found: list[Finding] = []
        for m in self._pattern.finditer(text):
            s, e = m.span(self._group)
            if e > s:
                found.append(Finding(s, e, self.types[0], text[s:e]))
        return found


def merge(findings: Iterable[Finding]) -> list[Finding]:
    """Drop overlaps: the longest finding wins, then the more specific type; sorted by start."""
    ranked = sorted(findings, key=lambda f: (f.start - f.end, _RANK.get(f.type, 99), f.start))
    kept: list[Finding] = []
    for f in ranked:
        if all(f.end <= k.start or f.start >= k.end for k in kept):
            kept.append(f)
    kept.sort(key=lambda f: f.start)
    return kept


def default_detectors() -> list[Detector]:
    """Every built-in detector except the dictionary (which needs the caller's terms)."""
    from souverain.dlp.secrets import SecretDetector  # secrets imports Finding from here

    detectors: list[Detector] = [StdnumDetector(row) for row in STDNUM_TABLE]
    detectors += [PaymentCardDetector(), PhoneDetector(), EmailDetector(), IpAddressDetector()]
    return [*detectors, SecretDetector()]


class Scanner:
    """Runs detectors over a text and returns non-overlapping findings sorted by start."""

    def __init__(self, detectors: Sequence[Detector]) -> None:
        self.detectors = tuple(detectors)
        self.types = tuple(t for d in self.detectors for t in d.types)

    @classmethod
    def default(cls) -> Scanner:
        return cls(default_detectors())

    def scan(self, text: str) -> list[Finding]:
        if not text:
            return []
        return merge(f for d in self.detectors for f in d.find(text))
