"""DLP text transformations: redaction, pseudonymization, whole and streamed restoration.

`hypothesis` is not installed, so the property tests are seeded `random` loops.
"""

from __future__ import annotations

import json
import random
import re
from dataclasses import dataclass

import pytest

from souverain.dlp.transform import (
    CLOSE,
    OPEN,
    Pseudonymizer,
    StreamRestorer,
    redact,
    restore,
    restore_json_arguments,
)

SECRET = b"tenant-key-0123456789abcdef"
PLACEHOLDER = re.compile(r"⟦[A-Z][A-Z0-9_]*_[A-Z2-7]{16}⟧")


@dataclass(frozen=True)
class F:  # structurally a Span, like the detectors' Finding
    start: int
    end: int
    type: str
    value: str


def find(text: str, value: str, kind: str, after: int = 0) -> F:
    start = text.index(value, after)
    return F(start, start + len(value), kind, value)


# Characters chosen to stress the scanner: delimiters, placeholder alphabet, unicode, newlines.
ALPHABET = [OPEN, CLOSE, *'_AEZ279a \n-.é€😀"\\']
TYPES = ["email", "IBAN", "phone", "person", "credit-card", "X"]


def random_text(rng: random.Random, p: Pseudonymizer) -> str:
    pieces = []
    for _ in range(rng.randrange(0, 12)):
        roll = rng.random()
        if roll < 0.2:  # a real placeholder already in the user's text
            pieces.append(p.placeholder(rng.choice(TYPES), rng.choice(["a", "b@c.d", "FR76 1"])))
        elif roll < 0.3:  # a truncated one
            whole = p.placeholder("EMAIL", str(rng.random()))
            pieces.append(whole[: rng.randrange(1, len(whole))])
        else:
            pieces.append("".join(rng.choice(ALPHABET) for _ in range(rng.randrange(0, 8))))
    return "".join(pieces)


def random_findings(rng: random.Random, text: str) -> list[F]:
    cuts = sorted(rng.sample(range(len(text) + 1), min(len(text) + 1, rng.randrange(0, 9))))
    spans = [(a, b) for a, b in zip(cuts[::2], cuts[1::2], strict=False) if a < b]
    return [F(a, b, rng.choice(TYPES), text[a:b]) for a, b in spans]


def random_chunks(rng: random.Random, text: str) -> list[str]:
    chunks, i = [], 0
    while i < len(text):
        size = rng.choice([0, 1, 1, 2, 3, 5, 20])
        chunks.append(text[i : i + size])
        i += size
    return [*chunks, ""]


def stream(mapping: dict[str, str], chunks: list[str]) -> str:
    restorer = StreamRestorer(mapping)
    return "".join(restorer.feed(c) for c in chunks) + restorer.flush()


def test_redact_replaces_spans_by_typed_markers() -> None:
    text = "Mail jo@ex.fr, IBAN FR76 3000 6000 0112 3456 7890 189."
    findings = [
        find(text, "jo@ex.fr", "email"),
        find(text, "FR76 3000 6000 0112 3456 7890 189", "iban"),
    ]
    assert redact(text, findings) == "Mail [EMAIL], IBAN [IBAN]."
    assert redact(text, []) == text


@pytest.mark.parametrize(
    "spans", [[(0, 5), (3, 8)], [(5, 8), (0, 2)], [(0, 0)], [(2, 99)], [(-1, 2)]]
)
def test_bad_findings_are_rejected(spans: list[tuple[int, int]]) -> None:
    findings = [F(a, b, "email", "") for a, b in spans]
    with pytest.raises(ValueError):
        redact("0123456789", findings)
    with pytest.raises(ValueError):
        Pseudonymizer(SECRET).pseudonymize("0123456789", findings)


def test_short_secret_and_bad_type_are_rejected() -> None:
    with pytest.raises(ValueError):
        Pseudonymizer(b"short")
    with pytest.raises(ValueError):
        Pseudonymizer(SECRET).placeholder("--", "x")


def test_pseudonymize_normalizes_spellings_and_keeps_the_first() -> None:
    text = "FR76 3000 6000 0112 and FR7630006000-0112; Jo@Ex.FR then jo@ex.fr"
    findings = [
        find(text, "FR76 3000 6000 0112", "iban"),
        find(text, "FR7630006000-0112", "iban"),
        find(text, "Jo@Ex.FR", "email"),
        find(text, "jo@ex.fr", "email"),
    ]
    out, mapping = Pseudonymizer(SECRET).pseudonymize(text, findings)
    iban, email = sorted(mapping, key=out.index)
    assert out == f"{iban} and {iban}; {email} then {email}"
    assert PLACEHOLDER.fullmatch(iban) and iban.startswith("⟦IBAN_")
    assert email.startswith("⟦EMAIL_")
    assert mapping == {iban: "FR76 3000 6000 0112", email: "Jo@Ex.FR"}


def test_free_text_types_keep_separators_meaningful() -> None:
    p = Pseudonymizer(SECRET)
    assert p.placeholder("person", "Jean-Marie") != p.placeholder("person", "JeanMarie")
    assert p.placeholder("person", "Jean  Marie") == p.placeholder("person", "Jean Marie")


def test_placeholders_are_stable_per_secret_and_distinct_per_value() -> None:
    a, b, other = (
        Pseudonymizer(SECRET),
        Pseudonymizer(bytes(SECRET)),
        Pseudonymizer(b"another-tenant-key-xyz"),
    )
    values = [f"user{i}@example.com" for i in range(2000)]
    placeholders = {a.placeholder("email", v) for v in values}
    assert len(placeholders) == len(values)
    for v in values[:50]:
        assert a.placeholder("email", v) == b.placeholder("EMAIL", v) == a.placeholder("email", v)
        assert a.placeholder("email", v) != other.placeholder("email", v)
    # The type is part of the HMAC input, not just the label.
    assert (
        a.placeholder("phone", "0601").split("_")[1] != a.placeholder("iban", "0601").split("_")[1]
    )


def test_delimiters_in_input_are_escaped_and_round_trip() -> None:
    p = Pseudonymizer(SECRET)
    fake = p.placeholder("email", "a@b.c")  # the user pasted a real-looking placeholder
    text = f"see {fake} or ⟦⟦ ⟧ and a@b.c⟦"
    out, mapping = p.pseudonymize(text, [find(text, "a@b.c", "email", after=len(fake) + 4)])
    assert out == f"see {OPEN}{fake} or ⟦⟦⟦⟦ ⟧ and {fake}⟦⟦"
    assert restore(out, mapping) == text


def test_restore_leaves_unknown_and_incomplete_placeholders() -> None:
    unknown = "⟦EMAIL_AAAAAAAAAAAAAAAA⟧"
    assert restore(f"x {unknown} ⟦EMAIL_AB ⟦", {}) == f"x {unknown} ⟦EMAIL_AB ⟦"


def test_round_trip_for_arbitrary_text_and_findings() -> None:
    rng = random.Random(1234)
    p = Pseudonymizer(SECRET)
    for _ in range(3000):
        text = random_text(rng, p)
        findings = random_findings(rng, text)
        out, mapping = p.pseudonymize(text, findings)
        # Every finding restores to the first spelling of its placeholder: the text itself when
        # no two findings are different spellings of one value.
        expected, position = [], 0
        for f in findings:
            expected += [text[position : f.start], mapping[p.placeholder(f.type, f.value)]]
            position = f.end
        expected.append(text[position:])
        assert restore(out, mapping) == "".join(expected)
        first = {p.placeholder(f.type, f.value): f.value for f in reversed(findings)}
        if all(first[p.placeholder(f.type, f.value)] == f.value for f in findings):
            assert restore(out, mapping) == text


def test_streamed_restore_equals_whole_restore() -> None:
    rng = random.Random(99)
    p = Pseudonymizer(SECRET)
    for i in range(2000):
        text = random_text(rng, p)
        out, mapping = p.pseudonymize(text, random_findings(rng, text))
        # Also stream raw model-like text that was never escaped.
        subject = out if i % 2 else text
        whole = restore(subject, mapping)
        assert stream(mapping, random_chunks(rng, subject)) == whole
        assert stream(mapping, list(subject)) == whole


def test_stream_holds_back_only_possible_placeholder_starts() -> None:
    p = Pseudonymizer(SECRET)
    ph = p.placeholder("email", "jo@ex.fr")
    r = StreamRestorer({ph: "jo@ex.fr"})
    assert r.feed("Hello, no brackets here ⟧ [x] ") == "Hello, no brackets here ⟧ [x] "
    assert r.feed("write to " + ph[:3]) == "write to "
    assert "".join(r.feed(c) for c in ph[3:-1]) == ""
    assert r.feed(ph[-1] + " now") == "jo@ex.fr now"
    assert r.feed("⟦lower") == "⟦lower"  # cannot start a placeholder: no latency
    assert r.feed("⟦") == ""
    assert r.feed("⟦") == "⟦"  # the escape
    assert r.feed("end ⟦EMAIL_K7") == "end "
    assert r.flush() == "⟦EMAIL_K7"
    assert r.flush() == ""


def test_tool_call_arguments_restore_to_valid_json() -> None:
    p = Pseudonymizer(SECRET)
    originals = {
        "email": 'jo"hn\\@ex.fr',
        "person": 'Zoë\n"O\'Hara"\t\\',
        "iban": "FR76 3000 ⟦ 6000",
    }
    mapping = {p.placeholder(k, v): v for k, v in originals.items()}
    ph = {k: p.placeholder(k, v) for k, v in originals.items()}
    args = {
        "to": ph["email"],
        "body": f"Dear {ph['person']}, pay {ph['iban']}.",
        ph["email"]: [ph["person"], 3, None],
    }
    expected = {
        "to": originals["email"],
        "body": f"Dear {originals['person']}, pay {originals['iban']}.",
        originals["email"]: [originals["person"], 3, None],
    }
    for ensure_ascii in (False, True):  # models sometimes write \u27e6 escapes
        restored = restore_json_arguments(json.dumps(args, ensure_ascii=ensure_ascii), mapping)
        assert json.loads(restored) == expected
    untouched = '{"a":  1, "b": "plain ⟧"}'
    assert restore_json_arguments(untouched, mapping) is untouched


def test_tool_call_arguments_not_yet_json_are_restored_escaped() -> None:
    p = Pseudonymizer(SECRET)
    ph = p.placeholder("email", 'a"b\\c')
    partial = '{"to": "' + ph + '", "cc": '
    restored = restore_json_arguments(partial, {ph: 'a"b\\c'})
    assert json.loads(restored + "null}") == {"to": 'a"b\\c', "cc": None}


def test_json_round_trip_random() -> None:
    rng = random.Random(7)
    p = Pseudonymizer(SECRET)
    for _ in range(500):
        text = random_text(rng, p) + '"\\'
        findings = random_findings(rng, text)
        out, mapping = p.pseudonymize(text, findings)
        restored = json.loads(restore_json_arguments(json.dumps({"t": out, "n": [out]}), mapping))
        assert restored == {"t": restore(out, mapping), "n": [restore(out, mapping)]}
