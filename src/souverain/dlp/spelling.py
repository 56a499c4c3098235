"""Findings in the respelled views of a text (normalize.py), mapped back to the original.

The detectors first read the text as written (detectors.Scanner). Then:

- every detector but person names reads the `plain` view (NFKC, digits of any script, format
  characters dropped, tabs and no-break spaces as spaces), when it differs from the text;
- the e-mail detector reads a view where `[at]`, `(dot)`, `%40`... are undone;
- the identifiers whose own check is strong are searched in the `compact` view (no
  separators, upper case), where no spelling of separators or case can hide them: IBAN
  (registry length, BBAN format, mod 97), payment cards (issuer range and length, Luhn, and
  written as digit groups), FR NIR (mod 97 key), AWS access key ids and GitHub tokens (their
  prefix, their exact length, split at most once).

A finding from a view covers, in the original, everything from its first to its last
character: the zero-width spaces, soft hyphens and separators inside are replaced with it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator, Sequence

from stdnum.fr import nir

from souverain.dlp import checks
from souverain.dlp.cards import card_valid
from souverain.dlp.detectors import Detector, EmailDetector, Finding
from souverain.dlp.normalize import MARK, View, compact, plain

# Types whose detector reads only the text as written: names depend on the case and spacing
# of the words, and the plain view would double their cost for nothing.
ORIGINAL_ONLY_TYPES = frozenset({"person"})

_DIGIT_RUNS = re.compile(r"\d+")  # as [0-9]: the view has ASCII digits only; faster in sre
_NIR = re.compile(r"[1-478][0-9]{4}(?:[0-9]{2}|2[AB])[0-9]{8}(?![0-9])")
_AWS_HEAD = re.compile(r"A(?:KIA|SIA|GPA|IDA|ROA|IPA|NPA|NVA|BIA)")
_AWS = re.compile(_AWS_HEAD.pattern + r"[A-Z0-9]{16}")
_GITHUB = re.compile(r"GH[POUSR][A-Z0-9]{36}|GITHUBPAT[A-Z0-9]{70,240}")
_GITHUB_SPELLED = re.compile(r"(?i)gh[pousr]_|github_pat_")
_SPLITS = re.compile(f"{MARK}+")
_BLANKS = re.compile(r"\s+")
_EMAIL = EmailDetector()

# A compact-view candidate: (start, end, type) in the view, and its validator.
_Candidate = tuple[int, int, str, Callable[[str], bool]]


def spelled_findings(
    text: str, detectors: Sequence[Detector], known: Iterable[Finding] = ()
) -> list[Finding]:
    """Findings of the views of `text`, as spans of `text` (overlaps left to the caller).
    `known`: findings in the text as written, whose spans need no second validation."""
    found: list[Finding] = []
    view = plain(text)
    if view is not None:
        for detector in detectors:
            if set(detector.types) & ORIGINAL_ONLY_TYPES:
                continue
            found += _mapped(text, view, detector.find(view.text))
    view = _deobfuscated(text)
    if view is not None:
        found += _mapped(text, view, _EMAIL.find(view.text))
    found += _compact_findings(text, {(f.start, f.end, f.type) for f in (*known, *found)})
    return found


def _mapped(text: str, view: View, findings: Iterable[Finding]) -> Iterator[Finding]:
    for f in findings:
        start, end = view.original_span(f.start, f.end)
        yield Finding(start, end, f.type, text[start:end])


# ---- the compact view -----------------------------------------------------------------------


def _compact_findings(text: str, known: set[tuple[int, int, str]]) -> list[Finding]:
    view = compact(text)
    found: list[Finding] = []
    marked = view.marked
    for start, end, kind, valid in _compact_candidates(view.text):
        s, e = view.original_span(start, end)
        if (s, e, kind) in known:
            found.append(Finding(s, e, kind, text[s:e]))  # validated as written
            continue
        if kind in ("payment_card", "fr_nir"):
            # Not the tail or head of a word ("FR57 1186...", an IBAN's digits), and digit
            # groups, not numbers of a list merged: separators of 1-4 characters.
            if _glued(text, s, e) or any(len(run) > 4 for run in _SPLITS.findall(marked, s, e)):
                continue
        elif kind == "secret" and not _one_token(text, marked, s, e):
            continue
        if valid(view.text[start:end]):
            found.append(Finding(s, e, kind, text[s:e]))
    return found


def _one_token(text: str, marked: str, s: int, e: int) -> bool:
    """A token split at most once, and spelled with its prefix's underscore (GitHub)."""
    if len(_BLANKS.findall(text, s, e)) > 1:
        return False
    return marked[s] != "G" or _GITHUB_SPELLED.match(_unmarked(text, marked, s, e)) is not None


def _glued(text: str, s: int, e: int) -> bool:
    return text[s - 1 : s].isalnum() or text[e : e + 1].isalnum()


def _always(_: str) -> bool:
    return True


def _unmarked(text: str, marked: str, s: int, e: int) -> str:
    return "".join(c for c, m in zip(text[s:e], marked[s:e], strict=True) if m != MARK or c == "_")


def _compact_candidates(compacted: str) -> Iterator[_Candidate]:
    # Each of these holds a run of digits: look only around the runs (few in prose), where
    # a regex per type over the whole compact text would cost as much as the scan itself.
    # The checksums are left to the caller, which skips values already found as written.
    iban_end = aws_end = 0
    lengths = checks.IBAN_LENGTHS
    for run in _DIGIT_RUNS.finditer(compacted):
        s, e = run.span()
        if s >= 2 and s - 2 >= iban_end:  # a country code before the check digits
            # Exactly the registry length of the country: no boundary is needed on either
            # side, so an IBAN glued between letters ("refFR76...x") is found too.
            length = lengths.get(compacted[s - 2 : s], 0)
            candidate = compacted[s - 2 : s - 2 + length]
            if len(candidate) == length > 0 and checks.iban_plausible(candidate):
                iban_end = s - 2 + length
                yield s - 2, iban_end, "iban", checks.iban_valid
                continue
        if s < iban_end:
            continue
        if 12 <= e - s <= 19:
            yield s, e, "payment_card", card_valid
        if e - s >= 5 and compacted[s] in "12478":
            m = _NIR.match(compacted, s)
            if m is not None:
                yield m.start(), m.end(), "fr_nir", nir.is_valid
        # An AWS key id holds a digit: its prefix lies at most 19 characters before one.
        head = _AWS_HEAD.search(compacted, max(aws_end, s - 19), s)
        while head is not None:
            m = _AWS.match(compacted, head.start())
            if m is not None and m.end() > s:
                aws_end = m.end()
                yield m.start(), m.end(), "secret", _always
                break
            head = _AWS_HEAD.search(compacted, head.start() + 1, s)
    if "GH" in compacted:
        for m in _GITHUB.finditer(compacted):
            yield m.start(), m.end(), "secret", _always


# ---- e-mail obfuscations --------------------------------------------------------------------

_OBFUSCATED = re.compile(r"(?i)[\[({<] ?(?:at|dot) ?[\])}>]")
_PERCENT = re.compile(r"(?i)%40|%2e")


def _obfuscations() -> list[tuple[str, str]]:
    pairs = []
    for word, char in (("at", "@"), ("dot", ".")):
        for spelled in (word, word.upper(), word.title()):
            for left, right in ("[]", "()", "{}", "<>"):
                for core in (f"{left}{spelled}{right}", f"{left} {spelled} {right}"):
                    for token in (core, f" {core} "):
                        pairs.append((token, char + MARK * (len(token) - 1)))
    pairs.sort(key=lambda pair: -len(pair[0]))  # " [at] " before "[at]"
    return [*pairs, ("%40", "@" + MARK * 2), ("%2E", "." + MARK * 2), ("%2e", "." + MARK * 2)]


_DEOBFUSCATIONS = _obfuscations()


def _deobfuscated(text: str) -> View | None:
    """`jeanne [at] example [dot] fr`, `jeanne%40example.fr` as the address they spell, or
    None when the text has no such spelling."""
    if not _obfuscated(text):
        return None
    marked = text.replace(MARK, " ")
    for spelled, char in _DEOBFUSCATIONS:
        if spelled in marked:
            marked = marked.replace(spelled, char)
    return View(marked)


def _obfuscated(text: str) -> bool:
    if "%" in text and _PERCENT.search(text) is not None:
        return True
    for bracket in "[({<":
        count = text.count(bracket)
        if count > len(text) // 64:  # many: one regex pass rather than a look at each
            return _OBFUSCATED.search(text) is not None
        at = text.find(bracket)
        while at != -1:
            if _OBFUSCATED.match(text, at) is not None:
                return True
            at = text.find(bracket, at + 1)
    return False
