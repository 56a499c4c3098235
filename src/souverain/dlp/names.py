"""Person-name detector for FR, DE, IT, ES, NL, PL and EN text, without a statistical model.

Why no NER model: the official spaCy models on PyPI cover only some of these languages, hub
models (GLiNER, transformers) download weights at run time, and an English NER run on French
text tags half of every sentence as a person. Instead: a first-name gazetteer (the nam_dict
list shipped in the `gender-guesser` wheel, read as data, with per-country frequencies) plus
the structure names take in text - a known first name before capitalised surname tokens,
an honorific ("Mme", "Herr", "Sig.ra", "Pani", "Dr.") before capitalised tokens, a greeting
before a first name, and "Surname, Firstname" in lists. Guards drop streets, places, months
and company names, which are the usual false positives of such rules.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass, field
from typing import NamedTuple

from souverain.dlp import budget
from souverain.dlp.detectors import Finding
from souverain.dlp.name_rules import (
    ACRONYMS,
    AFTER,
    AMBIGUOUS,
    AND_FIRST,
    CLOSINGS,
    GREETINGS,
    INITIAL,
    LONE_MIN_FREQUENCY,
    NEVER_FIRST,
    NOT_SURNAME,
    PARTICLES,
    PL_ENDINGS,
    PLACE_CUE,
    RUN,
    SECTION,
    SENTENCE_START,
    STREET_SUFFIXES,
    TITLES,
    WORD,
    load_first_names,
)


class _Tok(NamedTuple):  # a NamedTuple builds several times faster than a frozen dataclass
    start: int
    end: int
    text: str
    gap: str  # text between the previous token and this one


def _ends_sentence(word: str) -> bool:
    """A word with a full stop that is not an abbreviation ("Dupont." but not "J." or "Dr.")."""
    return word.endswith(".") and not INITIAL.fullmatch(word) and word not in TITLES


def _cap(word: str) -> bool:
    # A trailing dot is the sentence's ("... Dupont."), except on initials ("J.").
    return word[:1].isupper() and len(word.rstrip(".")) > 1


@dataclass
class PersonNameDetector:
    """Finds person names; the span covers the name itself, never the title or greeting."""

    name: str = "person_names"
    types: tuple[str, ...] = ("person",)
    first_names: dict[str, int] = field(default_factory=load_first_names, repr=False)
    _memo: dict[tuple[str, bool], int] = field(default_factory=dict, repr=False, compare=False)

    def _first(self, word: str, strict: bool) -> int:
        """How common a first name `word` is (0: not one). `strict` excludes names that are
        also common words."""
        key = (word, strict)
        hit = self._memo.get(key)
        if hit is None:
            hit = self._memo[key] = self._first_uncached(word, strict)
            if len(self._memo) > 50_000:  # prompts repeat their vocabulary; bound the memory
                self._memo.clear()
        return hit

    def _first_uncached(self, word: str, strict: bool) -> int:
        word = word.rstrip(".")
        if (strict and word in AMBIGUOUS) or word in NEVER_FIRST:
            return 0
        if word in GREETINGS or word in TITLES:
            return 0
        names = self.first_names
        if word in names:
            return names[word]
        folded = unicodedata.normalize("NFD", word).encode("ascii", "ignore").decode()
        if folded != word and folded in names:
            return names[folded]  # the list spells some names unaccented: "Etienne"
        if "-" in word:  # "Jean-Pierre", "Anna-Lena"
            parts = word.split("-")
            return min(names.get(p, 0) for p in parts)
        for suffix, repl in PL_ENDINGS:
            if word.endswith(suffix) and len(word) > 3:
                base = word[: -len(suffix)] + repl
                if base in names:
                    return names[base]
        return 0

    def _surname(self, word: str) -> bool:
        bare = word.rstrip(".")
        if "." in bare:  # "B.V.", "S.p.A.": an abbreviation, not a surname
            return False
        return (
            _cap(word)
            and bare not in NOT_SURNAME
            and word not in TITLES
            and bare not in CLOSINGS  # "Cheers, Hannah" signs a message
            and not bare.lower().endswith(STREET_SUFFIXES)  # "Willem de Zwijgerlaan"
        )

    def _tail(self, toks: list[_Tok], i: int, limit: int) -> int:
        """Index after the surname tokens starting at i (particles allowed), or i if none."""
        j, end, taken = i, i, 0
        while j < len(toks) and taken < limit and toks[j].gap.strip(" ") in ("", "-"):
            w = toks[j].text
            if j > i and "\n" in toks[j].gap:
                break
            if (j and _ends_sentence(toks[j - 1].text)) or "  " in toks[j].gap:
                break  # "Mr Barnes. Apologies", "NOM : MERCIER  Prénom": the next is no name
            if w.lower() in PARTICLES or w in ("d'", "D'"):
                j += 1
                continue
            if not self._surname(w):
                break
            j += 1
            end, taken = j, taken + 1
        return end

    def find(self, text: str) -> list[Finding]:
        spans: list[tuple[int, int]] = []
        for run in RUN.finditer(text):
            # Each capitalised word costs a Python step or several: charged before (budget.py).
            budget.charge(budget.PER_NAME_WORD * (1 + run.group().count(" ")))
            # Tokenise only the run of capitalised words plus the word before it (a title or
            # greeting cue): prose in lowercase never reaches Python code, which keeps a 2 KB
            # prompt well under budget.
            start = run.start()
            ws = text.rfind(" ", max(0, start - 40), max(0, start - 1)) + 1
            if run.end() - start == len(run.group().split(None, 1)[0]):
                # A lone capitalised word (sentence start, place) is a name only after a cue,
                # or if it is a first name in mid-sentence or before "and <first name>".
                cue = text[ws:start].strip()
                if cue not in TITLES and cue not in GREETINGS:
                    if self._lone_first_name(text, start, run.end()):
                        spans.append((start, run.end() - text.endswith(".", start, run.end())))
                    continue
            toks: list[_Tok] = []
            prev = ws
            for m in WORD.finditer(text, ws, run.end()):
                s, e = m.span()
                toks.append(_Tok(s, e, m.group(), text[prev:s]))
                prev = e
            self._scan(text, toks, int(bool(toks) and toks[0].start < start), spans)
        return [Finding(s, e, "person", text[s:e]) for s, e in spans]

    def _lone_first_name(self, text: str, start: int, end: int) -> bool:
        """A first name on its own: "Merci à Benoît", "laut Uwe", "Ingrid und Rüdiger Berger"."""
        word = text[start:end].rstrip(".")
        if self._first(word, strict=True) < LONE_MIN_FREQUENCY or word in NOT_SURNAME:
            return False  # a rare name alone is more often a brand; months, cities
        if self._guarded(text, start, end):
            return False
        if text[max(0, start - 3) : start].rstrip(" \t").endswith("&"):
            return False  # "Marks & Spencer", "Dolce & Gabbana": a firm
        if not self._starts_sentence(text, start):
            return True
        after = AND_FIRST.match(text, end)
        return after is not None and self._first(after.group(1), strict=True) > 0

    @staticmethod
    def _starts_sentence(text: str, start: int) -> bool:
        before = text[max(0, start - 3) : start].rstrip(" \t")
        return not before or before[-1] in SENTENCE_START

    def _scan(self, text: str, toks: list[_Tok], i: int, spans: list[tuple[int, int]]) -> None:
        while i < len(toks):
            t = toks[i]
            if not t.text[0].isupper():  # every rule starts on a capital: skip the rest cheaply
                i += 1
                continue
            end = self._match_at(text, toks, i)
            if end > i:
                s, e = t.start, toks[end - 1].end
                e -= text.endswith(".", s, e)
                if text.endswith(("'s", "\u2019s"), s, e):  # "Sarah Connolly's leave"
                    e -= 2
                if not self._guarded(text, s, e):
                    spans.append((s, e))
                i = end
            else:
                i += 1

    def _match_at(self, text: str, toks: list[_Tok], i: int) -> int:
        """End index (exclusive) of a name whose first token is toks[i], else i."""
        w = toks[i].text
        prev = toks[i - 1].text if i else ""
        gap = toks[i].gap.strip(" ")
        cue = (prev in TITLES or prev in GREETINGS) and gap in ("", ",")
        if prev in TITLES and gap == "" and _cap(w) and w not in TITLES:
            # After a title every capitalised token belongs to the name: "Frau Dr. Anna Weber".
            return self._tail(toks, i, 3)
        if w in TITLES:
            return i
        if not _cap(w):
            return self._initials_at(text, toks, i)
        if (
            w.isupper()
            and len(w) > 2
            and w not in ACRONYMS
            and i + 1 < len(toks)
            and not _ends_sentence(w)
        ):
            # "MARCHAND Yannick" in forms: an upper-case surname, then the first name.
            nxt = toks[i + 1]
            if nxt.gap == " " and not nxt.text.isupper() and self._first(nxt.text, True):
                return i + 2
        if self._first(w, strict=not cue):
            j = i + 1
            # Up to two more given names: "Jean Paul Dupont", "Maria Luisa Fernández".
            while (
                j < min(i + 3, len(toks))
                and toks[j].gap == " "
                and self._first(toks[j].text, strict=True)
            ):
                j += 1
            if j < len(toks) and toks[j].gap == " " and INITIAL.fullmatch(toks[j].text):
                j += 1  # a middle initial: "Franklin D. Roosevelt"
            end = self._tail(toks, j, 2)
            if end > j:
                return end
            if INITIAL.fullmatch(toks[j - 1].text):
                j -= 1  # an initial with no surname after it is not part of the name
            if j > i + 1 and toks[j - 1].text not in AMBIGUOUS:
                return j  # "Anna Maria": the last given name doubles as surname
            if cue and prev in GREETINGS:
                return j  # "Liebe Sabine," - a bare first name after a greeting
        # "Dupont, Marie" in lists and headers: a surname, a comma, a known first name ending
        # the item. Needs the item boundary after it so "In Paris, Anna said" does not match.
        if (
            i + 1 < len(toks)
            and toks[i + 1].gap == ", "
            and self._surname(w)
            and self._first(toks[i + 1].text, strict=True)
            and text[toks[i + 1].end :].lstrip(" ")[:1] in ("", ";", "\n", ")", "|")
            and not (i and toks[i].gap.strip(" ") in ("", ","))
        ):
            return i + 2
        if self._alone(text, toks, i):
            return i + 1  # "Secondo Franco, il ...": a first name alone, mid-sentence
        return i

    def _alone(self, text: str, toks: list[_Tok], i: int) -> bool:
        """toks[i] is a first name with no capitalised word glued to it on either side."""
        # Glued to a capitalised word, it is part of a longer name or title, unless that word
        # merely starts the sentence and is no name ("Selon Jacqueline", "Laut Uwe ist").
        prev = toks[i - 1].text if i else ""
        glued_before = (
            toks[i].gap == " "
            and _cap(prev)
            and (self._first(prev, False) > 0 or not self._starts_sentence(text, toks[i - 1].start))
        )
        glued_after = (
            i + 1 < len(toks)
            and toks[i + 1].gap.strip(" ") in ("", "-")
            and "  " not in toks[i + 1].gap  # two spaces part the fields of a form
            and not _ends_sentence(toks[i].text)
        )
        if glued_before or glued_after:
            return False
        return self._lone_first_name(text, toks[i].start, toks[i].end)

    def _initials_at(self, text: str, toks: list[_Tok], i: int) -> int:
        """ "A. Herrero", "J. K. Rowling": one or two initials, then a surname, not at the start
        of a line (where "A. Introduction" numbers a section)."""
        j = i
        while j < min(i + 2, len(toks)) and INITIAL.fullmatch(toks[j].text):
            if j > i and toks[j].gap != " ":
                return i
            j += 1
        if j == i or j >= len(toks) or toks[j].gap != " " or not self._surname(toks[j].text):
            return i
        line = text[text.rfind("\n", 0, toks[i].start) + 1 : toks[i].start]
        if not line.strip() or toks[j].text.isupper() or SECTION.search(line[-24:]):
            return i
        return self._tail(toks, j, 2)

    def _guarded(self, text: str, start: int, end: int) -> bool:
        """True when context shows the span is a street, venue, saint or company."""
        return bool(PLACE_CUE.search(text, max(0, start - 16), start)) or bool(
            AFTER.match(text, end)
        )
