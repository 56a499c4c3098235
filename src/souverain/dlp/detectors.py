"""Detection half of data-loss prevention: find personal data in text, take no action.

Design: a permissive candidate regex, then a real validator (python-stdnum checksums,
phonenumbers, ipaddress), so a look-alike with a wrong check digit is never reported.
Everything is compiled at import; the per-call path only runs precompiled patterns. A scan
finds the runs of digits once (number_clusters) and each number pattern searches only the
runs it can match in; cheap necessary conditions (checks.py) spare the validators most
invalid candidates. Neither changes an answer (tests/test_dlp_checks.py).
"""

from __future__ import annotations

import importlib
import re
import string
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from operator import attrgetter
from typing import Any, NamedTuple, Protocol

import phonenumbers

from souverain.dlp import budget, checks


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


# Boundaries shared by the number patterns: not glued to a word, not the tail of a longer
# number ("4711-0815-2026", "12.345678901") and not followed by a decimal or a suffix ("-beta").
_LB = r"(?<![\w+\-/@])(?<!\d[.,])"
_RB = r"(?![\w@]|[.,\-/:]\w)"
_SEPARATORS = re.compile(r"[ .\-/]")
_UP_TO_LAST_LETTER = re.compile(r".*[^\W\d_]", re.S)
# Every number-shaped identifier lives in a run of digits, capitals and separators holding
# 4+ digits. Finding those runs is one regex pass; [0-9] scans faster than \d.
_CLUSTER = re.compile(r"[0-9](?:[A-Z .\-/:()]{0,6}[0-9]){3}[0-9A-Z .\-/:()]*")
_LEFT, _RIGHT = 8, 2  # room for a prefix ("FR76", "+", "RSSMRA", "X-") and the lookahead
_TAIL = " .-/:()"


# Flags of a run, computed once per run for all number detectors: a detector searches only
# the windows whose flags include what its pattern needs (NumberDetector._needs).
# DIGIT_START: a pattern starting with the _LB boundary (a digit, "+", "(") can match; not
# so in one word glued to a word on its left ("FR7630…", "NL123456789B01"), where every
# position follows a word character. LETTER_START: a capital right before the run ("FR12…",
# "ATU…", "FR 12…", "X-…") or inside it, where an identifier with leading letters (VAT, NIE)
# may start. CAPITALS_START: two capitals glued to the run ("FR76…", "RSSMRA85…") or one
# inside it (IBAN, codice fiscale). HAS_CAPITAL: a capital inside the run (DNI, NIE, codice
# fiscale). DOTTED: three dots (IPv4).
DIGIT_START, LETTER_START, CAPITALS_START, HAS_CAPITAL, DOTTED = 1, 2, 4, 8, 16
# A run: the window to search (the run plus margins), its digit count, its flags. A plain
# tuple: building a NamedTuple costs more than the rest of the pass.
Cluster = tuple[int, int, int, int]
_clusters_cache: tuple[str, list[Cluster]] = ("", [])
_CAPITALS = string.ascii_uppercase
_UPPER = frozenset(_CAPITALS)


def number_clusters(text: str) -> list[Cluster]:
    """Windows of `text` worth running number patterns on, shared by all number detectors.

    One pass instead of a dozen full-text regexes keeps a scan within its latency budget; the
    one-entry cache serves the detectors of one scan (it holds the text, so `is` is safe).
    """
    global _clusters_cache
    cached = _clusters_cache
    if cached[0] is text:
        return cached[1]
    found: list[Cluster] = []
    n = len(text)
    for count, m in enumerate(_CLUSTER.finditer(text), 1):
        if not count & 1023:  # charged by the thousand: a call per run would cost as much
            budget.charge(1024 * budget.PER_CLUSTER)
        g = m.group()
        if len(g) < 7:  # years, times, small prices: shorter than any identifier
            continue
        s, e = m.span()
        b1, b2 = text[s - 1 : s], text[s - 2 : s - 1] if s > 1 else ""
        if text[e : e + 1].isalpha():  # "2023. Die": capitals glued to a lowercase word end
            g = g.rstrip(_CAPITALS)  # no candidate (all end before a non-word character)
        flags = 0
        if g != g.lower():
            flags = HAS_CAPITAL | LETTER_START | CAPITALS_START
        elif b1 in _UPPER:
            flags = LETTER_START | CAPITALS_START if b2 in _UPPER else LETTER_START
        elif b1 and b1 in " .-" and b2 in _UPPER:
            flags = LETTER_START
        # \w but not \d on the left, and no separator inside the run to start after
        if not (b1.isalnum() or b1 == "_") or b1.isdecimal() or not g.rstrip(_TAIL).isalnum():
            flags |= DIGIT_START
        if g.count(".") >= 3:
            flags |= DOTTED
        digits = len(g) - len(g.encode().translate(None, b"0123456789"))  # g is ASCII
        found.append((max(0, s - _LEFT), min(n, e + _RIGHT), digits, flags))
    _clusters_cache = (text, found)
    return found


def _valid_prefix_end(text: str, s: int, e: int, ok: Callable[[str], bool]) -> int | None:
    # Greedy candidates can swallow the next word ("... 189 BIC"): try a few shorter cuts,
    # but only dropping a part with a letter in it. Cutting digits off a longer number
    # would find a valid short identifier inside an invalid long one (a VAT in an IBAN).
    if ok(text[s:e]):
        return e
    last_letter = _UP_TO_LAST_LETTER.match(text, s, e)
    if last_letter is None:
        return None
    cuts = [m.start() for m in _SEPARATORS.finditer(text, s, last_letter.end() - 1)]
    for cut in reversed(cuts[-4:]):
        if ok(text[s:cut]):
            return cut
    return None


def _compact(value: str) -> str:
    # Four replace() calls cost a quarter of a regex sub or str.translate here.
    return value.replace(" ", "").replace(".", "").replace("-", "").replace("/", "").upper()


class NumberSpec(NamedTuple):
    """A number type; a row of STDNUM_TABLE adds a country's identifier."""

    type: str
    module: str  # python-stdnum module whose is_valid() has the final word ("": given in code)
    candidate: str  # permissive regex, separators allowed (table rows: boundaries added)
    min_digits: int  # skip windows holding fewer digits
    letter: bool = False  # the identifier holds a capital letter
    greedy: bool = False  # the regex may swallow a following group: retry shorter cuts
    start: int = DIGIT_START  # how it starts: DIGIT_START, LETTER_START or CAPITALS_START
    dotted: bool = False  # needs three dots (IPv4)


_IBAN = r"[A-Z]{2}\d{2}(?:[ \-]?[A-Z0-9]){11,30}"
_NIE = r"[XYZ][ \-]?\d{7}[ \-]?[A-Z]"
_VAT_CC = "AT|BE|BG|CY|CZ|DE|DK|EE|EL|ES|FI|FR|HR|HU|IE|IT|LT|LU|LV|MT|NL|PL|PT|RO|SE|SI|SK|XI"
_VAT = rf"(?:{_VAT_CC})[ \-]?[0-9A-Z](?:[ .\-]?[0-9A-Z]){{7,13}}"
_NIR = r"[1-478](?:[ .]?\d{2}){2}[ .]?(?:\d{2}|2[AB])(?:[ .]?\d{3}){2}[ .]?\d{2}"
_CF = r"[A-Z]{6}[\dL-NP-V]{2}[A-EHLMPR-T][\dL-NP-V]{2}[A-Z][\dL-NP-V]{3}[A-Z]"  # L-V: omocodia
_BE_NN = r"\d{2}([ .]?)\d{2}\1\d{2}[ .\-]?\d{3}[ .]?\d{2}"
# Grouped BSNs must not be the tail or head of a longer grouped number ("28 183 857 604").
_BSN = r"\d{4}\.\d{2}\.\d{3}|(?<!\d[ .])\d{3}([ .])\d{3}\1\d{3}(?![ .]\d)|\d{9}"
# Row order is also the tie-break when two types claim the same span: strongest check first.
STDNUM_TABLE: tuple[NumberSpec, ...] = (
    NumberSpec("iban", "stdnum.iban", _IBAN, 8, greedy=True, start=CAPITALS_START),
    NumberSpec(
        "it_codice_fiscale", "stdnum.it.codicefiscale", _CF, 4, letter=True, start=CAPITALS_START
    ),
    NumberSpec("fr_nir", "stdnum.fr.nir", _NIR, 13),
    NumberSpec("eu_vat", "stdnum.eu.vat", _VAT, 7, greedy=True, start=LETTER_START),
    NumberSpec("be_national_number", "stdnum.be.nn", _BE_NN, 11),
    NumberSpec("pl_pesel", "stdnum.pl.pesel", r"\d{11}", 11),
    NumberSpec("de_steuer_id", "stdnum.de.idnr", r"[1-9]\d(?:[ ]?\d{3}){3}", 11),
    NumberSpec("es_nie", "stdnum.es.nie", _NIE, 7, letter=True, start=LETTER_START),
    NumberSpec("es_dni", "stdnum.es.dni", r"\d{2}\.?\d{3}\.?\d{3}[ \-]?[A-Z]", 8, letter=True),
    NumberSpec("nl_bsn", "stdnum.nl.bsn", _BSN, 9),
)
_OTHER_TYPES = ("payment_card", "email", "ip_address", "phone")
SPECIFICITY = ("secret", *(row.type for row in STDNUM_TABLE), *_OTHER_TYPES)
_RANK = {t: i for i, t in enumerate(SPECIFICITY)}
_START = attrgetter("start")


class NumberDetector:
    """Candidate regex over the number windows, then a validator on each candidate."""

    def __init__(self, spec: NumberSpec, valid: Callable[[str], bool]) -> None:
        self.name, self.types, self._spec, self._valid = spec.type, (spec.type,), spec, valid
        self._search = re.compile(spec.candidate).search
        # Cluster flags a window needs for this pattern to be able to match in it.
        self._needs = spec.start | (HAS_CAPITAL if spec.letter else 0)
        self._needs |= DOTTED if spec.dotted else 0

    def find(self, text: str) -> list[Finding]:
        clusters = number_clusters(text)
        if not clusters:
            return []
        found: list[Finding] = []
        kind, last, min_digits, needs = self.types[0], -1, self._spec.min_digits, self._needs
        greedy, valid, search = self._spec.greedy, self._valid, self._search
        windows = [c for c in clusters if c[2] >= min_digits and c[3] & needs == needs]
        budget.charge(budget.searching(windows))
        for start, end, _, _ in windows:
            m = search(text, start, end)
            while m is not None:
                s, e = m.span()
                if s >= last:  # else inside the previous finding: windows overlap by margins
                    budget.charge(budget.PER_CANDIDATE)
                    if greedy:
                        cut = _valid_prefix_end(text, s, e, valid)
                    else:
                        cut = e if valid(m.group()) else None
                    if cut is not None:
                        found.append(Finding(s, cut, kind, text[s:cut]))
                        last = cut
                m = search(text, e, end)
        return found


# Validators with a cheap necessary condition in front of stdnum's (see checks.py).
_VALIDATORS: dict[str, Callable[[str], bool]] = {
    "iban": checks.iban_valid,
    "eu_vat": checks.vat_valid,
}


def stdnum_detector(row: NumberSpec) -> NumberDetector:
    is_valid = _VALIDATORS.get(row.type) or importlib.import_module(row.module).is_valid
    row = row._replace(candidate=_LB + "(?:" + row.candidate + ")" + _RB)
    return NumberDetector(row, lambda candidate: bool(is_valid(_compact(candidate))))


# Regions with a trunk "0" in national format, and those written without one.
TRUNK_REGIONS = ("FR", "DE", "IT", "NL", "BE", "AT", "IE")
BARE_REGIONS = {"ES": "6789", "PL": "123456789", "PT": "29", "IT": "3", "LU": "6"}
for _region in (*TRUNK_REGIONS, *BARE_REGIONS):  # load metadata now, not on the first prompt
    phonenumbers.PhoneMetadata.metadata_for_region(_region)
_plausible = checks.NationalNumberCheck((*TRUNK_REGIONS, *BARE_REGIONS))
_DATE_LIKE = re.compile(r"\d{1,4}([./\-])\d{1,2}\1\d{1,4}")
_NON_DIGIT = re.compile(r"\D")


# National numbers are not the tail of a longer grouped number ("1 234 567 890 EUR",
# NIR "... 2B 046 468 50"); branches: +CC / 00CC, trunk 0, bare national in groups, and
# Italian mobiles (3xx) in the forms they are written without +39: "347 1234567", "347/123 4567".
_PHONE = _LB + (
    r"(?<!\d )(?<!\d[A-Z] )(?:(?:\+|00)[1-9][\d .\-/()]{5,22}\d"
    r"|\(?0[1-9][\d .\-/()]{4,18}\d|[1-9]\d{1,3}(?: \d{2,4}){2,4}"
    r"|3\d\d[ ./\-](?:\d{6,7}|\d{3}[ .\-]\d{3,4}))" + _RB
)


def _phone_ok(candidate: str) -> bool:
    if _DATE_LIKE.fullmatch(candidate):
        return False
    digits = _NON_DIGIT.sub("", candidate.replace("(0)", ""))
    if candidate[0] == "+" or candidate.startswith("00"):
        number = "+" + (digits[2:] if candidate[0] == "0" else digits)
        return 8 <= len(number) <= 16 and _valid_in(number, None)
    if digits[0] == "0":
        regions: Iterable[str] = TRUNK_REGIONS
        if not 7 <= len(digits) <= 14:
            return False
    else:
        regions = [r for r, lead in BARE_REGIONS.items() if digits[0] in lead]
        if not 9 <= len(digits) <= 10:
            return False
    return any(_plausible(digits, r) and _valid_in(digits, r) for r in regions)


def _valid_in(number: str, region: str | None) -> bool:
    try:
        return bool(phonenumbers.is_valid_number(phonenumbers.parse(number, region)))
    except phonenumbers.NumberParseException:
        return False


class PhoneDetector(NumberDetector):
    """International (+CC / 00CC) numbers, and national formats of the EU regions above.

    Numbers without a trunk 0 (ES, PL, PT, IT mobiles, LU) are only taken when written in
    space-separated groups: a bare 9-digit run is as likely an invoice number as a phone.
    """

    def __init__(self) -> None:
        super().__init__(NumberSpec("phone", "", _PHONE, 7, greedy=True), _phone_ok)


_WORD = re.compile(r"\w")

try:  # optional accelerator without type stubs: the regex fallback gives the same answers
    _AHOCORASICK: Any = importlib.import_module("ahocorasick")
except ImportError:  # pragma: no cover
    _AHOCORASICK = None


class DictionaryDetector:
    """Case-insensitive, whole-word search for a list of terms (names, projects, clients)."""

    def __init__(self, terms: Iterable[str], type_: str = "dictionary") -> None:
        self.name, self.types = type_, (type_,)
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
        found: list[Finding] = []
        for last, length in self._automaton.iter(lower):
            budget.charge(budget.PER_CANDIDATE)
            s, e = last - length + 1, last + 1
            if not (_WORD.match(text[s - 1 : s]) or _WORD.match(text[e : e + 1])):
                found.append(Finding(s, e, kind, text[s:e]))
        return found


class RegexDetector:
    """A user pattern for one type; `group` picks the reported part of each match."""

    def __init__(self, pattern: str | re.Pattern[str], type_: str, group: int | str = 0) -> None:
        self.name, self.types = type_, (type_,)
        self._pattern = re.compile(pattern) if isinstance(pattern, str) else pattern
        self._group = group

    def find(self, text: str) -> list[Finding]:
        found: list[Finding] = []
        for m in self._pattern.finditer(text):
            budget.charge(budget.PER_CANDIDATE)
            s, e = m.span(self._group)
            if e > s:
                found.append(Finding(s, e, self.types[0], text[s:e]))
        return found


def merge(findings: Iterable[Finding]) -> list[Finding]:
    """Drop overlaps: the longest finding wins, then the more specific type; sorted by start.

    Linear in the covered length: a bytearray marks what is kept (a pairwise check would be
    quadratic in the findings of a hostile body holding a million of them).
    """
    ranked = list(findings)
    if not ranked:
        return []
    budget.charge(len(ranked) * budget.PER_CANDIDATE)
    ranked.sort(key=lambda f: (f.start - f.end, _RANK.get(f.type, 99), f.start))
    covered = bytearray(max(f.end for f in ranked))
    kept: list[Finding] = []
    for f in ranked:
        if covered.find(1, f.start, f.end) == -1:
            covered[f.start : f.end] = b"\x01" * (f.end - f.start)
            kept.append(f)
    kept.sort(key=_START)
    return kept


def default_detectors() -> list[Detector]:
    """Every built-in detector except the dictionary (which needs the caller's terms)."""
    from souverain.dlp.addresses import EmailDetector, IpAddressDetector  # they import
    from souverain.dlp.cards import PaymentCardDetector  # from here
    from souverain.dlp.secrets import SecretDetector

    detectors: list[Detector] = [stdnum_detector(row) for row in STDNUM_TABLE]
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
        """Findings in the text as written and in its respellings (dlp/spelling.py)."""
        if not text:
            return []
        from souverain.dlp.spelling import spelled_findings  # it imports this module

        found = [f for d in self.detectors for f in d.find(text)]
        return merge(found + spelled_findings(text, self.detectors, found))
