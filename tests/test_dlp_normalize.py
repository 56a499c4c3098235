"""Respelled views and their way back, cross-text findings, card schemes and phone forms."""

from __future__ import annotations

import random

import pytest
from stdnum import luhn

from souverain.dlp.cards import card_valid
from souverain.dlp.crosstext import scan_texts
from souverain.dlp.detectors import Scanner
from souverain.dlp.normalize import compact, plain
from souverain.dlp.transform import Pseudonymizer, restore

SCANNER = Scanner.default()
IBAN = "FR76 3000 6000 0112 3456 7890 189"


def spans(text: str) -> set[tuple[str, str]]:
    return {(text[f.start : f.end], f.type) for f in SCANNER.scan(text)}


def test_plain_is_absent_when_nothing_changes() -> None:
    assert plain("ordinary ASCII text, 12 34") is None
    assert plain("réglé à Zürich, «guillemets» et \u2019apostrophes\u2019") is None


def test_plain_maps_every_spelling_back() -> None:
    text = "a\u200bb\tc\u00a0d\u00ad e \uff21\uff11\u0663-\u2013"
    view = plain(text)
    assert view is not None
    assert view.text == "ab c d e A13--"
    for start in range(len(view.text)):
        for end in range(start + 1, len(view.text) + 1):
            s, e = view.original_span(start, end)
            # The original span holds what the view span shows, and nothing outside it.
            inside = plain(text[s:e])
            assert (inside.text if inside else text[s:e]) == view.text[start:end]


def test_compact_drops_separators_and_folds_case() -> None:
    text = "iban: fr76.3000_6000/0112\n3456-7890 189!"
    view = compact(text)
    assert view.text == "IBAN:FR7630006000011234567890189!"
    s, e = view.original_span(5, 32)
    assert text[s:e] == "fr76.3000_6000/0112\n3456-7890 189"


def test_mapping_is_right_on_random_texts() -> None:
    rng = random.Random(12)
    alphabet = "ab1 \t\n.\u200b\u00ad\uff11\u0661\u00a0_-/"
    for _ in range(300):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 60)))
        compact_view = compact(text)
        for view in (plain(text), compact_view):
            if view is None or not view.text:
                continue
            for _ in range(10):
                start = rng.randrange(len(view.text))
                end = rng.randint(start + 1, len(view.text))
                s, e = view.original_span(start, end)
                # The original span, seen through the same view, is the view's span.
                assert 0 <= s < e <= len(text)
                assert _seen(text[s:e], view is compact_view) == view.text[start:end]


def _seen(text: str, compacted: bool) -> str:
    if compacted:
        return compact(text).text
    view = plain(text)
    return text if view is None else view.text


def test_a_long_text_maps_through_its_checkpoints() -> None:
    text = ("x\u200b" * 10_000) + f"IBAN {IBAN.replace(' ', chr(0x200B))}" + ("y\u200b" * 10_000)
    found = [f for f in SCANNER.scan(text) if f.type == "iban"]
    assert [f.value.replace("\u200b", " ") for f in found] == [IBAN]


@pytest.mark.parametrize(
    "value",
    [
        "jeanne [at] example [dot] fr",
        "jeanne(at)example(dot)fr",
        "jeanne [AT] example.fr",
        "jeanne%40example.fr",
    ],
)
def test_obfuscated_addresses(value: str) -> None:
    assert (value, "email") in spans(f"Écrire à {value} demain.")


def test_base64_is_not_decoded() -> None:
    # Deliberate encodings are out of scope (docs/dlp.md): the base64 of an IBAN is no IBAN.
    assert spans("payload RlI3NjMwMDA2MDAwMDExMjM0NTY3ODkwMTg5") == set()


@pytest.mark.parametrize(
    "body",
    [
        "3530111333300000",  # JCB 16
        "213112345678904",  # JCB 15
        "180012345678902",  # JCB 15
        "675964982648",  # Maestro 12
        "6759649826438453",  # Maestro 16
        "6759649826438453004",  # Maestro 19
        "6200000000000005",  # UnionPay
        "8100000000000009",  # UnionPay 81
        "36227206271667",  # Diners 14
        "30569309025904",  # Diners 300-305
        "2200000000000004",  # Mir
        "5019717010103742",  # Dankort
    ],
)
def test_card_schemes(body: str) -> None:
    number = body[:-1] + luhn.calc_check_digit(body[:-1])
    assert card_valid(number)
    spaced = " ".join(number[i : i + 4] for i in range(0, len(number), 4))
    assert (spaced, "payment_card") in spans(f"Carte {spaced} refusée.")


def test_card_lookalikes() -> None:
    assert not card_valid("1234567890123452")  # Luhn-valid, no issuer
    assert not card_valid("4111111111111112")  # Visa prefix, wrong check digit
    # A number glued to letters is part of a word (an IBAN's digits), not a card.
    assert not any(t == "payment_card" for _, t in spans("FR57 1186 5190 13VP L15Z MD1J E97"))
    # Digits with many dots are a version, however Luhn reads them once the dots are gone.
    assert spans("Version 4.1.1.1.1.1.1.1.1.1.1.1.1.1.1.1") == set()


@pytest.mark.parametrize(
    "phone",
    [
        "+31(0)6 12345678",
        "+31 (0)6 12345678",
        "+32 (0)470 12 34 56",
        "+44 (0)20 7946 0958",
        "347 1234567",
        "347/1234567",
        "347.123.4567",
        "347 123 4567",
    ],
)
def test_phone_forms(phone: str) -> None:
    assert (phone, "phone") in spans(f"Bel me op {phone} morgen.")


def test_a_value_split_across_texts_is_reported_in_each() -> None:
    texts = ["Virement vers FR76 3000 6000 ", "0112 3456 7890 189, merci."]
    first, second = scan_texts(SCANNER, texts)
    assert [(f.value, f.type) for f in first] == [("FR76 3000 6000", "iban")]
    assert [(f.value, f.type) for f in second] == [("0112 3456 7890 189", "iban")]
    pseudonymizer = Pseudonymizer(b"k" * 32)
    for text, found in zip(texts, (first, second), strict=True):
        replaced, mapping = pseudonymizer.pseudonymize(text, found)
        assert "3000" not in replaced and "3456" not in replaced
        assert restore(replaced, mapping) == text


def test_split_between_every_other_text_and_across_empty_ones() -> None:
    # JSON strings come key, value, key, value: the halves sit two texts apart.
    texts = ["head", "jeanne.dupont@", "tail", "example.fr", "", "x"]
    found = scan_texts(SCANNER, texts)
    assert [f.value for f in found[1]] == ["jeanne.dupont@"]
    assert [f.value for f in found[3]] == ["example.fr"]
    assert found[0] == found[2] == found[4] == found[5] == []


def test_no_finding_is_made_up_at_a_junction() -> None:
    texts = ["The total is 1234", "5678 units.", "Call 06", "12 34 56 78 tomorrow."]
    found = scan_texts(SCANNER, texts)
    assert found[0] == found[1] == []  # 12345678 is no identifier
    assert [f.type for f in found[2]] == [f.type for f in found[3]] == ["phone"]
