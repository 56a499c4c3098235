"""Person-name detector: labelled sentences in seven languages, per-language quality floors.

Print the table with:  .venv/bin/python -m tests.test_dlp_names
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from souverain.dlp.detectors import Detector
from souverain.dlp.names import PersonNameDetector

DATA = json.loads((Path(__file__).parent / "data" / "dlp_names.json").read_text("utf-8"))
LANGS = ("fr", "de", "it", "es", "nl", "pl", "en")
# A little below the measured scores (see docs/dlp-names.md), so a regression fails.
FLOORS = {  # lang: (precision, recall); measured 1.00/0.96-1.00 on this (development) set
    "fr": (0.9, 0.9),
    "de": (0.9, 0.9),
    "it": (0.9, 0.9),
    "es": (0.9, 0.9),
    "nl": (0.9, 0.9),
    "pl": (0.9, 0.9),
    "en": (0.9, 0.9),
}


def _gold(text: str, names: list[str]) -> set[tuple[int, int]]:
    spans = set()
    for name in names:
        start = text.index(name)
        spans.add((start, start + len(name)))
    return spans


def _counts(detector: PersonNameDetector, rows: list[dict[str, Any]]) -> tuple[int, int, int]:
    """Exact-span true positives, false positives and false negatives over `rows`."""
    tp = fp = fn = 0
    for row in rows:
        gold = _gold(row["text"], row["names"])
        found = {(f.start, f.end) for f in detector.find(row["text"])}
        tp, fp, fn = tp + len(gold & found), fp + len(found - gold), fn + len(gold - found)
    return tp, fp, fn


def evaluate(detector: PersonNameDetector) -> dict[str, tuple[float, float, float]]:
    """Exact-span precision, recall and F1 per language."""
    scores = {}
    for lang in LANGS:
        tp, fp, fn = _counts(detector, [r for r in DATA if r["lang"] == lang])
        p = tp / (tp + fp) if tp + fp else 1.0
        r = tp / (tp + fn) if tp + fn else 1.0
        scores[lang] = (p, r, 2 * p * r / (p + r) if p + r else 0.0)
    return scores


def print_table(detector: PersonNameDetector) -> None:
    print("| lang | precision | recall | F1 |\n|---|---|---|---|")
    for lang, (p, r, f) in evaluate(detector).items():
        print(f"| {lang} | {p:.2f} | {r:.2f} | {f:.2f} |")


@pytest.fixture(scope="module")
def detector() -> PersonNameDetector:
    return PersonNameDetector()


def test_dataset_is_large_enough() -> None:
    for lang in LANGS:
        rows = [r for r in DATA if r["lang"] == lang]
        assert len(rows) >= 25
        assert sum(not r["names"] for r in rows) >= 5  # hard negatives


@pytest.mark.parametrize(("name", "per_lang"), [("dlp_names_heldout.json", 30), ("dlp_names_blind.json", 40)])  # fmt: skip
def test_other_sets_are_well_formed(name: str, per_lang: int) -> None:
    # Scored by bench/dlp_names_eval.py (docs/dlp-names.md). The blind set gets no quality
    # floor here on purpose: tuning against it would make it one more development set.
    rows = json.loads((Path(__file__).parent / "data" / name).read_text())
    assert sorted({r["lang"] for r in rows}) == sorted(LANGS)
    for lang in LANGS:
        assert sum(r["lang"] == lang for r in rows) == per_lang
    for r in rows:
        for value in r["names"] + r["decoys"]:
            assert r["text"].count(value) == 1, (value, r["text"])


def test_second_development_set_floor(detector: PersonNameDetector) -> None:
    # dlp_names_heldout.json was tuned on from 2026-12-02 (P 0.95, R 0.91 then).
    rows = json.loads((Path(__file__).parent / "data" / "dlp_names_heldout.json").read_text())
    tp, fp, fn = _counts(detector, rows)
    assert tp / (tp + fp) >= 0.9 and tp / (tp + fn) >= 0.85, (tp, fp, fn)


@pytest.mark.parametrize("lang", LANGS)
def test_quality_floor(detector: PersonNameDetector, lang: str) -> None:
    p, r, _ = evaluate(detector)[lang]
    floor_p, floor_r = FLOORS[lang]
    assert p >= floor_p and r >= floor_r, (lang, p, r)


@pytest.mark.parametrize("text", [r["text"] for r in DATA if not r["names"]], ids=lambda t: t[:40])
def test_hard_negatives_produce_nothing(detector: PersonNameDetector, text: str) -> None:
    assert detector.find(text) == []


def test_protocol_and_finding_shape(detector: PersonNameDetector) -> None:
    proto: Detector = detector
    assert proto.types == ("person",)
    text = "Rapport de Mme Claire Moreau, reçu par Herr Dr. Hans Weber."
    found = detector.find(text)
    assert [(f.type, f.value) for f in found] == [
        ("person", "Claire Moreau"),
        ("person", "Hans Weber"),
    ]
    assert all(text[f.start : f.end] == f.value for f in found)
    assert "Moreau" not in repr(found)  # the value never leaks through repr


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Jean-Pierre Dupont", ["Jean-Pierre Dupont"]),
        (
            "Ludwig van Beethoven und Karl zu Guttenberg",
            ["Ludwig van Beethoven", "Karl zu Guttenberg"],
        ),
        ("Lucía de la Cruz", ["Lucía de la Cruz"]),
        ("Umowa z Janem Kowalskim", ["Janem Kowalskim"]),
        ("Rue Victor Hugo, Via Giuseppe Verdi, San Francisco", []),
        ("Anna Schmidt GmbH und Jan de Vries B.V.", []),
        ("Rose Martin", []),  # "Rose" alone is a word; without a cue it is not a name
        ("Chère Rose,", ["Rose"]),
        # A common first name alone, mid-sentence or coordinated with a full name:
        ("Merci à Benoît pour la relecture.", ["Benoît"]),
        ("Laut Uwe ist der Server down.", ["Uwe"]),
        ("Ingrid und Rüdiger Berger haben unterschrieben.", ["Ingrid", "Rüdiger Berger"]),
        ("Wir treffen uns im Juli in Valencia.", []),  # months and cities are not names
        ("Compramos en Zara y en Mango.", []),  # rare as first names: brands more often
        ("Meet me at Marks & Spencer.", []),
        # Initials, possessives, maiden names, forms, Polish declension:
        ("Approved by T. Fenwick on 4 June.", ["T. Fenwick"]),
        ("See section A. Introduction.", []),
        ("A. Scope of the contract", []),
        ("La station Franklin D. Roosevelt est fermée.", []),
        ("Sarah Connolly's leave is approved.", ["Sarah Connolly"]),
        ("Gertrud Hahn, geb. Kaiser, wurde entlassen.", ["Gertrud Hahn", "Kaiser"]),
        ("Nom : MARCHAND Yannick ; service RH", ["MARCHAND Yannick"]),
        ("Le CEO Anna Weber", ["Anna Weber"]),
        ("przekazał klucze pani Jolancie Borkowskiej", ["Jolancie Borkowskiej"]),
        # Common first names of the countries residents come from, with a surname only:
        ("Die Patientin Fatma Arslan leidet an Morbus Crohn.", ["Fatma Arslan"]),
        ("présents : Mehmet Kaya et Wei Chen", ["Mehmet Kaya", "Wei Chen"]),
        ("Selon Karim, le dossier est complet.", []),  # alone: too rare in these countries
        ("Can Europe lead? Nur Gäste parken hier.", []),  # also words: never names
        ("An Introduction to Python", []),
        # A name ends at a full stop, at two spaces (form fields), and after a closing word:
        ("Signed by Mr Hughes. Copies go to HR.", ["Hughes"]),
        ("Prénom : Camille  Service : paie", ["Camille"]),
        ("See you on Monday. Cheers, Olivia", ["Olivia"]),
        ("", []),
    ],
)
def test_structures(detector: PersonNameDetector, text: str, expected: list[str]) -> None:
    assert [f.value for f in detector.find(text)] == expected


if __name__ == "__main__":
    print_table(PersonNameDetector())
