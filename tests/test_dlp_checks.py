"""The scanner's shortcuts never change an answer.

- the pre-checks of dlp/checks.py may only reject what python-stdnum / phonenumbers reject;
- the run flags of number_clusters() may only skip windows where a pattern cannot match.
Each is compared with the slow path on many generated inputs (fixed seeds).
"""

from __future__ import annotations

import copy
import random
import re
import string
from importlib import resources

import phonenumbers
import pytest
from stdnum import iban
from stdnum.eu import vat
from stdnum.util import get_cc_module

from souverain.dlp import checks, detectors
from souverain.dlp.detectors import BARE_REGIONS, TRUNK_REGIONS, NumberDetector, Scanner

_FILL = {
    "n": string.digits,
    "a": string.ascii_uppercase,
    "c": string.digits + string.ascii_uppercase,
}


def _ibans(rng: random.Random) -> list[str]:
    """Per registry country: valid IBANs, the same with one character changed, and cuts."""
    registry = resources.files("stdnum").joinpath("iban.dat").read_text("utf-8")
    structures = dict(re.findall(r'^([A-Z]{2}) .*bban="([^"]*)"', registry, re.M))
    assert structures.keys() == checks.IBAN_LENGTHS.keys()
    out = []
    for cc, length in checks.IBAN_LENGTHS.items():
        bban_struct = structures[cc]
        for _ in range(6):
            bban = "".join(
                "".join(rng.choice(_FILL[kind]) for _ in range(int(n)))
                for n, kind in re.findall(r"(\d+)!([nac])", bban_struct)
            )
            number = cc + iban.calc_check_digits(cc + "00" + bban) + bban
            assert len(number) == length
            i = rng.randrange(2, length)
            typo = number[:i] + rng.choice(_FILL["c"]) + number[i + 1 :]
            out += [number, typo, number[:-1], number + "7"]
    return out


def test_iban_check_keeps_every_valid_iban() -> None:
    numbers = _ibans(random.Random(1))
    valid = [n for n in numbers if iban.is_valid(n)]
    assert len(valid) > len(checks.IBAN_LENGTHS) * 3  # the generator mostly works
    for n in numbers:
        assert checks.iban_valid(n) == iban.is_valid(n), n
    assert all(checks.iban_plausible(n) for n in valid)


def _vat_probes(rng: random.Random, cc: str) -> list[str]:
    """Bodies of every length a VAT candidate can have, in the shapes VAT numbers take; for
    digit runs every value of the last two digits, so that check digits come out right."""
    d, letters = string.digits, string.ascii_uppercase
    probes = []
    for length in range(1, 15):
        for prefix, suffix in (("", ""), ("U", ""), ("", "01"), ("", "B01")):
            head = "".join(rng.choice(d) for _ in range(length - 2 - len(prefix + suffix)))
            probes += [cc + prefix + head + f"{k:02d}" + suffix for k in range(100)]
        for shape in ("LdL", "dL", "LLd", "dLdL", "GD", "HA"):
            for _ in range(10):
                body = "".join(rng.choice(d) for _ in range(length))
                if shape == "LdL":
                    body = rng.choice("ABCNPQRSX") + body[1:-1] + rng.choice(letters)
                elif shape == "dL":
                    body = body[:-1] + rng.choice(letters)
                elif shape == "LLd":
                    body = rng.choice(letters) + rng.choice(letters) + body[2:]
                elif shape == "dLdL":
                    body = body[:1] + rng.choice(letters) + body[2:-1] + "W"
                else:
                    body = shape + body[2:]
                probes.append(cc + body[:length])
    return [p for p in probes if len(p) > 2]


def _vat_examples(cc: str) -> list[str]:
    """The numbers in the doctests of stdnum's module for the country, as cc + body."""
    module = get_cc_module({"EL": "gr", "XI": "gb"}.get(cc, cc), "vat")
    assert module is not None and module.__doc__ is not None
    examples = re.findall(r">>> (?:validate|compact)\('([^']+)'\)", module.__doc__)
    bodies = [re.sub(r"[^0-9A-Z]", "", e.upper()) for e in examples]
    return [cc + (b[2:] if b[:2] in (cc, "GB", "GR") else b) for b in bodies]


@pytest.mark.parametrize("cc", sorted(checks.VAT_BODY_LENGTHS))
def test_vat_check_keeps_every_valid_number(cc: str) -> None:
    rng = random.Random(cc)
    probes = _vat_examples(cc) + _vat_probes(rng, cc)
    valid = [p for p in probes if vat.is_valid(p)]
    assert valid, cc  # some probes are valid numbers of this country
    assert all(checks.vat_plausible(p) for p in valid)
    for p in valid + rng.sample(probes, 300):
        assert checks.vat_valid(p) == vat.is_valid(p), p


def _valid_in(digits: str, region: str) -> bool:
    try:
        return bool(phonenumbers.is_valid_number(phonenumbers.parse(digits, region)))
    except phonenumbers.NumberParseException:
        return False


@pytest.mark.parametrize("region", [*TRUNK_REGIONS, *BARE_REGIONS])
def test_national_number_check_keeps_every_valid_number(region: str) -> None:
    rng = random.Random(region)
    code = str(phonenumbers.country_code_for_region(region))
    check = checks.NationalNumberCheck((region,))
    valid = 0
    for _ in range(3000):
        length = rng.randint(6, 14)
        head = rng.choice(("0", "00", code, rng.choice("123456789")))
        digits = (head + "".join(rng.choice(string.digits) for _ in range(length)))[:length]
        if _valid_in(digits, region):
            valid += 1
            assert check(digits, region), (region, digits)
    assert valid > 20, region


# ------------------------------------------------------------------ gates of number_clusters
_PIECES = [
    "FR76 3000 6000 0112 3456 7890 189", "DE89370400440532013000", "NL91 ABNA 0417 1643 00",
    "FR40303265045", "ATU12345675", "ESX1234567L", "NL123456789B01", "IT12345678903",
    "RSSMRA85T10A562S", "X-1234567-L", "12.345.678-Z", "1 84 05 75 123 456 78", "2A", "85.07.30-033.28",
    "12345678901", "111 222 333", "1234.56.789", "4111 1111 1111 1111", "3714-496353-98431",
    "+33 (0)6 12 34 56 78", "0049 40 1234567", "06 12 34 56 78", "030 12345678", "612 345 678",
    "192.168.1.10", "10.0.0.1:8080", "version 1.2.3.4", "28.08.2023", "12/03/2026", "v2.0.1",
    "IBAN", "BIC", "Tel.", "n°", "ref", "AB", "é", "_", "@", "(0)", "GD001", "EL123456783",
]  # fmt: skip
_GLUE = [" ", "", "-", ".", "/", ":", ", ", "; ", "\n", "(", ")", "+", " - ", "x"]


def _texts(rng: random.Random, n: int) -> list[str]:
    chars = string.digits + string.ascii_uppercase + string.ascii_lowercase + " .-/"
    out = []
    for _ in range(n):
        parts = []
        for _ in range(rng.randint(1, 8)):
            piece = rng.choice(_PIECES)
            if rng.random() < 0.3:  # change a few characters
                listed = list(piece)
                for _ in range(rng.randint(1, 3)):
                    listed[rng.randrange(len(listed))] = rng.choice(chars)
                piece = "".join(listed)
            elif rng.random() < 0.2:
                piece = "".join(rng.choice(chars) for _ in range(rng.randint(1, 14)))
            parts += [piece, rng.choice(_GLUE)]
        out.append("".join(parts))
    return out


def test_cluster_flags_only_skip_windows_where_nothing_matches() -> None:
    gated = [d for d in Scanner.default().detectors if isinstance(d, NumberDetector)]
    ungated = [copy.copy(d) for d in gated]
    for d in ungated:
        d._needs = 0  # every window with enough digits
    found = 0
    for text in _texts(random.Random(7), 4000):
        for fast, slow in zip(gated, ungated, strict=True):
            expected = slow.find(text)
            assert fast.find(text) == expected, (fast.name, text)
            found += len(expected)
    assert found > 2000  # the texts do hold identifiers


def test_compact_removes_the_separators_it_always_did() -> None:
    assert detectors._compact("fr76 3000-6000.0112/3456") == "FR76300060000112" + "3456"
