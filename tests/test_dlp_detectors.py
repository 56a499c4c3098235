"""DLP detection: a labelled set of positives (exact spans) and decoys (nothing found).

Identifiers are generated with python-stdnum's check-digit helpers from a fixed seed, so
the set is the same on every run and carries no real person's data. Numbers that happen
to be valid under two schemes (an 11-digit PESEL that is also a valid Steuer-ID) are left
out of the labelled set: no detector can tell them apart.
"""

from __future__ import annotations

import base64
import importlib
import json
import random
import string
from collections import Counter
from collections.abc import Callable

import pytest
from stdnum import luhn
from stdnum.be import nn
from stdnum.es import dni, nie
from stdnum.fr import nir
from stdnum.it import codicefiscale
from stdnum.pl import pesel

from souverain.dlp import detectors
from souverain.dlp.detectors import (
    STDNUM_TABLE,
    DictionaryDetector,
    Finding,
    RegexDetector,
    Scanner,
    merge,
)

SCANNER = Scanner.default()
RNG = random.Random(20260312)
ALNUM = string.ascii_letters + string.digits
TEMPLATES = (  # one per language; "{}" is where the snippet goes
    "Voici mes informations : {}, merci de les garder pour vous.",
    "Meine Daten lauten {} und sind vertraulich.",
    "Il dato richiesto è {}, grazie mille.",
    "El número es {} según el formulario.",
    "Het nummer is {} volgens het formulier.",
    "Numer to {} zgodnie z formularzem.",
    "Here is what you asked for: {} (please keep it to yourself).",
)
VALIDATORS = {row.type: importlib.import_module(row.module).is_valid for row in STDNUM_TABLE}


def _listed(block: str) -> list[str]:
    """Values one per line or separated by " | "."""
    return [v.strip() for v in block.replace("\n", "|").split("|") if v.strip()]


def _d(n: int) -> str:
    return "".join(RNG.choice(string.digits) for _ in range(n))


def _r(alphabet: str, n: int) -> str:
    return "".join(RNG.choice(alphabet) for _ in range(n)) + RNG.choice(string.digits)


def _unique(kind: str, compact: str) -> bool:
    return all(t == kind or not ok(compact) for t, ok in VALIDATORS.items())


def _gen(kind: str, make: Callable[[], str], count: int = 15) -> list[str]:
    out: list[str] = []
    while len(out) < count:
        value = make()
        if VALIDATORS[kind](value) and _unique(kind, value) and value not in out:
            out.append(value)
    return out


def _spaced(value: str, groups: tuple[int, ...], sep: str = " ") -> str:
    parts, i = [], 0
    for g in groups:
        parts.append(value[i : i + g])
        i += g
    return sep.join(parts)


def _fmt(values: list[str], *formats: Callable[[str], str]) -> list[str]:
    return [formats[i % len(formats)](v) for i, v in enumerate(values)]


def _nir() -> str:
    body = RNG.choice("12") + f"{RNG.randint(40, 99)}{RNG.randint(1, 12):02d}"
    body += RNG.choice([f"{RNG.randint(1, 95):02d}", "2A", "2B"]) + _d(6)
    return body + nir.calc_check_digits(body)


def _cf() -> str:
    day = RNG.randint(1, 28) + RNG.choice((0, 40))
    body = "".join(RNG.choice(string.ascii_uppercase) for _ in range(6)) + _d(2)
    body += RNG.choice("ABCDEHLMPRST") + f"{day:02d}" + RNG.choice("ADFGHLMZ") + _d(3)
    return body + codicefiscale.calc_check_digit(body)


def _be() -> str:
    body = f"{RNG.randint(40, 99)}{RNG.randint(1, 12):02d}{RNG.randint(1, 28):02d}{_d(3)}"
    return body + RNG.choice([f"{k:02d}" for k in range(100) if nn.is_valid(f"{body}{k:02d}")])


def _pesel() -> str:
    body = f"{RNG.randint(40, 99)}{RNG.randint(1, 12):02d}{RNG.randint(1, 28):02d}{_d(4)}"
    return body + pesel.calc_check_digit(body)


def _vat() -> str:
    return RNG.choice(
        [
            lambda: "DE" + str(RNG.randint(1, 9)) + _d(8),
            lambda: "FR" + _d(11),
            lambda: "IT" + _d(11),
            lambda: "NL" + _d(9) + "B" + _d(2),
            lambda: "BE0" + _d(9),
            lambda: "ATU" + _d(8),
            lambda: "PL" + _d(10),
            lambda: "PT" + _d(9),
        ]
    )()


def _dni() -> str:
    n = _d(8)
    return n + dni.calc_check_digit(n)


def _nie() -> str:
    n = RNG.choice("XYZ") + _d(7)
    return n + nie.calc_check_digit(n)


GENERATED = {
    "fr_nir": _fmt(_gen("fr_nir", _nir), lambda v: _spaced(v, (1, 2, 2, 2, 3, 3, 2)), str),
    "de_steuer_id": _fmt(
        _gen("de_steuer_id", lambda: str(RNG.randint(1, 9)) + _d(10)),
        lambda v: _spaced(v, (2, 3, 3, 3)),
        str,
    ),
    "it_codice_fiscale": _gen("it_codice_fiscale", _cf),
    "es_dni": _fmt(
        _gen("es_dni", _dni),
        str,
        lambda v: v[:8] + "-" + v[8],
        lambda v: f"{v[:2]}.{v[2:5]}.{v[5:8]}-{v[8]}",
    ),
    "es_nie": _fmt(_gen("es_nie", _nie), str, lambda v: f"{v[0]}-{v[1:8]}-{v[8]}"),
    "nl_bsn": _fmt(
        _gen("nl_bsn", lambda: str(RNG.randint(1, 9)) + _d(8)),
        str,
        lambda v: f"{v[:4]}.{v[4:6]}.{v[6:]}",
        lambda v: _spaced(v, (3, 3, 3)),
    ),
    "be_national_number": _fmt(
        _gen("be_national_number", _be),
        str,
        lambda v: f"{v[:2]}.{v[2:4]}.{v[4:6]}-{v[6:9]}.{v[9:]}",
    ),
    "pl_pesel": _gen("pl_pesel", _pesel),
    "eu_vat": _fmt(_gen("eu_vat", _vat), str, lambda v: v[:2] + " " + v[2:]),
}
FIXED = {
    "iban": _listed(
        """
        DE89 3704 0044 0532 0130 00 | FR14 2004 1010 0505 0001 3M02 606
        FR7630006000011234567890189 | IT60 X054 2811 1010 0000 0123 456
        ES91 2100 0418 4502 0005 1332 | NL91 ABNA 0417 1643 00 | BE71 0961 2345 6769
        PL61 1090 1014 0000 0712 1981 2874 | AT61 1904 3002 3457 3201 | LU28 0019 4006 4475 0000
        IE29 AIBK 9311 5212 3456 78 | DE89370400440532013000 | PT50 0002 0123 1234 5678 9015 4
        GB82 WEST 1234 5698 7654 32 | CH93 0076 2011 6238 5295 7 | SE45 5000 0000 0583 9825 7466
        FI21 1234 5600 0007 85
        """
    ),
    "payment_card": _listed(
        """
        4111 1111 1111 1111 | 4012 8888 8888 1881 | 5555 5555 5555 4444 | 5105105105105100
        3782 822463 10005 | 3714-496353-98431 | 6011 1111 1111 1117 | 6011 0009 9013 9424
        3530 1113 3330 0000 | 3566 0020 2036 0505 | 3056 9309 0259 04 | 3852 0000 0232 37
        2223 0031 2200 3222 | 4000-0566-5566-5556 | 5200 8282 8282 8210 | 6200 0000 0000 0005
        4242424242424242
        """
    ),
    "phone": _listed(
        """
        06 12 34 56 78 | +33 6 12 34 56 78 | 01.42.68.53.00 | +33 (0)6 12 34 56 78 | +49 30 12345678
        030 1234567 | 0151 23456789 | +39 06 6982 1234 | 347 123 4567 | +34 612 34 56 78
        91 123 45 67 | 06-12345678 | +31 20 123 4567 | 0470 12 34 56 | +32 2 555 12 12 | 512 345 678
        +48 22 123 45 67 | 0664 1234567 | +43 1 23456789 | +352 621 123 456 | 087 123 4567
        912 345 678 | +351 21 123 4567 | 0033 6 12 34 56 78 | +44 20 7946 0958
        """
    ),
    "email": _listed(
        """
        jean.dupont@example.fr | m.mueller+newsletter@firma.de | giulia_rossi@posta.it
        ana.garcia@correo.es | j.devries@bedrijf.nl | k.nowak@firma.com.pl | support@souverain.eu
        élodie.martin@exemple.fr | ops-team@sub.domain.example.org | x@y.io
        first.last@company.co.uk | dpo@ministere.gouv.fr | a.b.c@d-e.de | sales2026@acme.com
        O.Connor@mail.ie
        """
    ),
    "ip_address": _listed(
        """
        192.168.1.10 | 10.0.0.1 | 8.8.8.8 | 172.16.254.3 | 203.0.113.7 | 0.0.0.0 | fe80::1
        2001:db8::8a2e:370:7334 | ::1 | 2001:0db8:85a3:0000:0000:8a2e:0370:7334 | ::ffff:192.0.2.128
        2a01:cb00:1234:5600::42 | fd00::abcd | 255.255.255.255 | 100.64.0.1
        """
    ),
}


def _jwt() -> str:
    def part(obj: object) -> str:
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).decode().rstrip("=")

    return f"{part({'alg': 'HS256', 'typ': 'JWT'})}.{part({'sub': '42', 'iat': 1})}" + (
        "." + _r(ALNUM + "-_", 42)
    )


_PEM = (
    "-----BEGIN PRIVATE KEY-----\n"
    + "\n".join(_r(ALNUM + "+/", 63) for _ in range(3))
    + "\n-----END PRIVATE KEY-----"
)
_GCP_KEY = (
    "-----BEGIN PRIVATE KEY-----\\n" + _r(ALNUM + "+/", 63) + "\\n-----END PRIVATE KEY-----\\n"
)
_AZURE = (
    "DefaultEndpointsProtocol=https;AccountName=souverainstore;AccountKey="
    + _r(ALNUM + "+/", 85)
    + "==;EndpointSuffix=core.windows.net"
)
SECRETS: list[tuple[str, str]] = [  # (snippet, secret inside it)
    (f"aws_access_key_id = {(k := 'AKIA' + _r(string.ascii_uppercase, 15))}", k),
    (f"session key {(k := 'ASIA' + _r(string.ascii_uppercase + '234567', 15))}", k),
    (f"aws_secret_access_key = {(k := _r(ALNUM + '/+', 39))}", k),
    (f"export GITHUB_TOKEN={(k := 'ghp_' + _r(ALNUM, 35))}", k),
    (f"token {(k := 'github_pat_' + _r(ALNUM, 21) + '_' + _r(ALNUM, 58))}", k),
    (f"git remote uses {(k := 'glpat-' + _r(ALNUM, 19))}", k),
    (f"slack bot {(k := 'xoxb-' + _d(12) + '-' + _d(13) + '-' + _r(ALNUM, 23))}", k),
    (f"OPENAI_API_KEY={(k := 'sk-proj-' + _r(ALNUM + '_-', 47))}", k),
    (f"MISTRAL_API_KEY={(k := _r(ALNUM, 31))}", k),
    (f"Mistral API key: {(k := _r(ALNUM, 31))}", k),
    (f"Authorization: Bearer {(k := _jwt())}", k),
    (f"header {(k := _jwt())}", k),
    (_PEM, _PEM),
    (
        f'{{"type": "service_account", "private_key_id": "ab12", "private_key": "{_GCP_KEY}"}}',
        _GCP_KEY,
    ),
    (_AZURE, _AZURE),
    ("DB_PASSWORD=hunter2", "hunter2"),
    ('{"password": "S3cr3t!pass"}', "S3cr3t!pass"),
    ("Passwort: Sommer2024!", "Sommer2024!"),
    ("mot_de_passe = Azerty123", "Azerty123"),
    ("contraseña: Verano2025$", "Verano2025$"),
    (f"token: {(k := _r(ALNUM, 31))}", k),
    (f"Authorization: Bearer {(k := _r(ALNUM, 39))}", k),
    (f"client_secret='{(k := _r(ALNUM + '-_', 29))}'", k),
]

POSITIVES: list[tuple[str, str, int, int]] = []  # (type, sentence, start, end)
for _kind, _values in [*GENERATED.items(), *FIXED.items()]:
    for _i, _v in enumerate(_values):
        _t = TEMPLATES[_i % len(TEMPLATES)]
        POSITIVES.append((_kind, _t.format(_v), _t.index("{}"), _t.index("{}") + len(_v)))
for _i, (_snippet, _secret) in enumerate(SECRETS):
    _t = TEMPLATES[_i % len(TEMPLATES)]
    _s = _t.index("{}") + _snippet.index(_secret)
    POSITIVES.append(("secret", _t.format(_snippet), _s, _s + len(_secret)))


def _broken(kind: str, value: str) -> str:
    """The same identifier with a wrong check character: valid for no detector."""
    for c in string.digits + "ABCDEFGHJKLMNPQRSTVWXYZ":
        wrong = value[:-1] + c
        if wrong != value and not any(ok(detectors._compact(wrong)) for ok in VALIDATORS.values()):
            return wrong
    raise AssertionError(kind)


DECOYS = (
    [f"Numer kontrolny {_broken(k, v[0])} jest błędny." for k, v in GENERATED.items()]
    + [f"Bitte prüfen: {_broken('fr_nir', v)}" for v in _gen("fr_nir", _nir, 3)]
    + _listed(
        """
        IBAN mal recopié : DE88 3704 0044 0532 0130 00. | Card 4111 1111 1111 1112 was declined.
        Appelez le 06 12 34. | Call +33 6 12 34 56 7 now. | Bestellnummer 4711-0815-2026
        Rechnung Nr. 2026-004512 vom Januar | facture n° FA-2026-00123 réglée
        invoice INV-2026-0042 is overdue | ordine n. 558812 del 12/03/2026 | pedido 2026/00457
        Upgrade to 1.2.3 or v2.0.1 first. | Release 2.0.1.4-beta is out. | version 10.4.12.7
        Python 3.11.9 ships today | Réunion le 12.03.2026 à 14:30. | Termin am 2026-03-12.
        La scadenza è il 03/12/2026 alle 9h30. | Vergadering om 14:30:15 in zaal 4B.
        Le prix est de 1 299,00 € TTC. | Preis: € 1.299,99 netto | Total: $12,345.67
        Kwota 12 345 678,90 zł brutto | Budget 1 234 567 890 EUR | Budget 67 000 000 EUR
        Logged at 2026-03-12T14:30:15Z | Created 2026-03-12T14:30:15.123+01:00.
        request id: 550e8400-e29b-41d4-a716-446655440000
        See commit 9fceb02d0ae598e95dc970b74767f19372d61af8 for the fix.
        git checkout 3f9a1c2 && make | Use std::vector<int> and a[1::2] in the code.
        MAC 00:1A:2B:3C:4D:5E on port 8080 | ISBN 978-3-16-148410-0 | Postleitzahl 10115 Berlin
        The secret to a good sauce is patience. | Forgot your password: click the link below.
        max_tokens: 4096 | password: required | Le mot de passe doit contenir 12 caractères.
        Use sk-learn for the task-force analysis. | user@localhost and @handle on the forum
        AWS region: eu-west-3 | API key rotation: every 90 days | session token expires: 3600
        Authorization header must be set.
        Please summarise the quarterly report in three bullet points.
        """
    )
)


@pytest.mark.parametrize(("kind", "sentence", "start", "end"), POSITIVES)
def test_positive_found_with_exact_span(kind: str, sentence: str, start: int, end: int) -> None:
    assert SCANNER.scan(sentence) == [Finding(start, end, kind, sentence[start:end])]


@pytest.mark.parametrize("sentence", DECOYS)
def test_decoy_not_found(sentence: str) -> None:
    assert SCANNER.scan(sentence) == []


def test_labelled_set_recall_and_false_positives() -> None:
    counts = Counter(kind for kind, *_ in POSITIVES)
    assert min(counts.values()) >= 15 and len(counts) == 15, counts
    assert len(DECOYS) >= 40
    found = sum(Finding(s, e, k, t[s:e]) in SCANNER.scan(t) for k, t, s, e in POSITIVES)
    false_positives = sum(len(SCANNER.scan(t)) for t in DECOYS)
    assert (found / len(POSITIVES), false_positives) == (1.0, 0)


def test_repr_hides_value() -> None:
    card = "4111 1111 1111 1111"
    finding = SCANNER.scan(f"Carte {card}")[0]
    assert card not in repr(finding) and card not in str(finding)
    assert repr(finding) == "Finding(start=6, end=25, type='payment_card')"
    assert finding.value == card


def test_merge_keeps_longest_then_most_specific() -> None:
    a, b = Finding(0, 11, "pl_pesel", "x" * 11), Finding(0, 11, "be_national_number", "x" * 11)
    long, inner = Finding(5, 30, "secret", "y" * 25), Finding(10, 20, "phone", "z" * 10)
    assert merge([a, b]) == [b] and merge([b, a]) == [b]
    assert merge([inner, long]) == [long] and merge([a, b, inner, long]) == [long]
    assert merge([Finding(40, 45, "email", "e"), a]) == [a, Finding(40, 45, "email", "e")]


def test_several_findings_sorted() -> None:
    text = "Mail jean.dupont@example.fr, IBAN FR76 3000 6000 0112 3456 7890 189 BIC, tel 06 12 34 56 78."
    assert [(f.type, f.value) for f in SCANNER.scan(text)] == [
        ("email", "jean.dupont@example.fr"),
        ("iban", "FR76 3000 6000 0112 3456 7890 189"),
        ("phone", "06 12 34 56 78"),
    ]


@pytest.mark.parametrize("accelerated", [True, False])
def test_dictionary_detector(monkeypatch: pytest.MonkeyPatch, accelerated: bool) -> None:
    if not accelerated:
        monkeypatch.setattr(detectors, "_AHOCORASICK", None)
    d = DictionaryDetector(["Projet Phénix", "ACME Corp", "Müller"], type_="client")
    text = "Le projet phénix pour acme corp, avec MÜLLER; pas Müllers ni ACME Corporation."
    assert [(f.start, f.value) for f in d.find(text)] == [
        (3, "projet phénix"),
        (22, "acme corp"),
        (38, "MÜLLER"),
    ]
    assert d.types == ("client",) and DictionaryDetector([]).find(text) == []
    assert d.find("İstanbul: Müller") == [Finding(10, 16, "client", "Müller")]


def test_regex_detector_and_custom_scanner() -> None:
    d = RegexDetector(r"\bPRJ-(\d{4})\b", "project_code", group=1)
    scanner = Scanner([d, *detectors.default_detectors()])
    assert scanner.scan("Ticket PRJ-2044 and PRJ-99") == [Finding(11, 15, "project_code", "2044")]
    assert "project_code" in scanner.types and "iban" in scanner.types


def test_card_needs_plausible_issuer() -> None:
    luhn_ok = "9" + _d(14)
    luhn_ok += luhn.calc_check_digit(luhn_ok)
    assert SCANNER.scan(f"Ref {luhn_ok}") == []
