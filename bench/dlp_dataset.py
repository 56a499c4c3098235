# ruff: noqa: E501
"""Deterministic, labelled, multilingual evaluation set for the DLP detectors.

    .venv/bin/python bench/dlp_dataset.py          # prints the counts, writes bench/results/dlp_dataset.json

100 documents per language (fr, de, it, es, nl, pl, en): invoices, HR notes, IT tickets and
hospital letters, a few sentences each, built from sentence templates whose slots are filled
by generators. Every filled slot is recorded with its exact character span:

- entities (must be found), typed with Souverain's type names: iban, payment_card, fr_nir,
  de_steuer_id, it_codice_fiscale, es_dni, es_nie, nl_bsn, be_national_number, pl_pesel,
  eu_vat, email, phone (national and international formats), ip_address (IPv4, IPv6) and
  secret (AWS AKIA keys and secret keys, GitHub ghp_ tokens, Slack xoxb- tokens, JWTs, PEM
  private key blocks, password values after `password=` and its translations).
  Identifiers are valid: built with python-stdnum's check-digit helpers or drawn at random
  until stdnum's is_valid() accepts them; phone numbers until libphonenumber accepts them.
- decoys (must NOT be found): a checksum-invalid look-alike of every identifier (one digit
  changed, then re-checked against every validator so it is invalid for all of them), order
  numbers, invoice numbers, version strings, dates, times, prices, UUIDs, git SHAs after
  "commit" and secret placeholders (`password=********`, `api_key=<YOUR_API_KEY>`).
  All-digit decoys are re-drawn when they happen to pass a checksum or a phone validation.

Only the span of the sensitive value is labelled (for `password=x`, the `x`). Everything is
drawn from one random.Random(SEED), so the set is identical on every run and machine
(given the same python-stdnum and phonenumbers versions).
"""

from __future__ import annotations

import base64
import json
import random
import re
import string
import sys
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import phonenumbers
from stdnum import iban as std_iban
from stdnum import luhn
from stdnum.be import nn as be_nn
from stdnum.de import idnr
from stdnum.es import dni, nie
from stdnum.eu import vat as eu_vat
from stdnum.fr import nir
from stdnum.it import codicefiscale
from stdnum.nl import bsn
from stdnum.pl import pesel

SEED = 20240611
LANGS = ("fr", "de", "it", "es", "nl", "pl", "en")
DOCS_PER_LANG = 100
KINDS = ("invoice", "hr", "ticket", "hospital")
OUT = Path(__file__).resolve().parent / "results" / "dlp_dataset.json"

ENTITY_TYPES = (
    "iban",
    "payment_card",
    "fr_nir",
    "de_steuer_id",
    "it_codice_fiscale",
    "es_dni",
    "es_nie",
    "nl_bsn",
    "be_national_number",
    "pl_pesel",
    "eu_vat",
    "email",
    "phone",
    "ip_address",
    "secret",
)


@dataclass
class Doc:
    id: str
    lang: str
    kind: str
    text: str = ""
    entities: list[dict[str, object]] = field(default_factory=list)
    decoys: list[dict[str, object]] = field(default_factory=list)


# --------------------------------------------------------------------------- validators
_SEP = re.compile(r"[ .\-/]")
_VALIDATORS = (
    std_iban.is_valid,
    codicefiscale.is_valid,
    nir.is_valid,
    eu_vat.is_valid,
    be_nn.is_valid,
    pesel.is_valid,
    idnr.is_valid,
    nie.is_valid,
    dni.is_valid,
    bsn.is_valid,
)


def _compact(value: str) -> str:
    return _SEP.sub("", value).upper()


def any_valid(value: str) -> bool:
    """True when `value` passes any identifier checksum (or Luhn at a card length)."""
    c = _compact(value)
    if any(v(c) for v in _VALIDATORS):
        return True
    return c.isdigit() and 13 <= len(c) <= 19 and luhn.is_valid(c)


def _phone_valid_anywhere(digits: str) -> bool:
    for region in ("FR", "DE", "IT", "ES", "NL", "PL", "BE", "IE", "GB", "AT", "PT", "LU"):
        try:
            if phonenumbers.is_valid_number(phonenumbers.parse(digits, region)):
                return True
        except phonenumbers.NumberParseException:
            continue
    return False


# --------------------------------------------------------------------------- generators
R = random.Random  # type alias for brevity


def _digits(rng: R, n: int) -> str:
    return "".join(rng.choice(string.digits) for _ in range(n))


def _fill(rng: R, pattern: str) -> str:
    """D: a digit, L: a capital letter, A: a capital or digit; anything else is literal."""
    out = []
    for ch in pattern:
        if ch == "D":
            out.append(rng.choice(string.digits))
        elif ch == "L":
            out.append(rng.choice(string.ascii_uppercase))
        elif ch == "A":
            out.append(rng.choice(string.ascii_uppercase + string.digits))
        else:
            out.append(ch)
    return "".join(out)


def _until(rng: R, make: Callable[[R], str], ok: Callable[[str], bool]) -> str:
    for _ in range(200_000):
        value = make(rng)
        if ok(value):
            return value
    raise RuntimeError("generator did not converge")


def gen_iban(rng: R, lang: str) -> str:
    country, bban = {
        "fr": ("FR", "DDDDDDDDDDAAAAAAAAAAADD"),
        "de": ("DE", "DDDDDDDDDDDDDDDDDD"),
        "it": ("IT", "LDDDDDDDDDDAAAAAAAAAAAA"),
        "es": ("ES", "DDDDDDDDDDDDDDDDDDDD"),
        "nl": ("NL", "LLLLDDDDDDDDDD"),
        "pl": ("PL", "DDDDDDDDDDDDDDDDDDDDDDDD"),
        "en": ("BE", "DDDDDDDDDDDD"),
    }[lang]

    def make(r: R) -> str:
        body = _fill(r, bban)
        return country + std_iban.calc_check_digits(country + "00" + body) + body

    value = _until(rng, make, std_iban.is_valid)
    return std_iban.format(value) if rng.random() < 0.7 else value


def gen_card(rng: R, lang: str) -> str:
    prefix, length, groups = rng.choice(
        [
            ("4", 16, (4, 4, 4, 4)),
            ("51", 16, (4, 4, 4, 4)),
            ("55", 16, (4, 4, 4, 4)),
            ("2221", 16, (4, 4, 4, 4)),
            ("37", 15, (4, 6, 5)),
            ("4", 16, (4, 4, 4, 4)),
        ]
    )
    body = prefix + _digits(rng, length - len(prefix) - 1)
    number = body + luhn.calc_check_digit(body)
    sep = rng.choice([" ", " ", "-", ""])
    parts, i = [], 0
    for g in groups:
        parts.append(number[i : i + g])
        i += g
    return sep.join(parts)


def gen_nir(rng: R, lang: str) -> str:
    def make(r: R) -> str:
        body = (
            r.choice("12")
            + f"{r.randint(40, 99):02d}"
            + f"{r.randint(1, 12):02d}"
            + r.choice(["75", "69", "13", "33", "59", "2A", "44", "31"])
            + f"{r.randint(1, 999):03d}"
            + f"{r.randint(1, 999):03d}"
        )
        return body + nir.calc_check_digits(body)

    v = _until(rng, make, nir.is_valid)
    if rng.random() < 0.6:
        return f"{v[0]} {v[1:3]} {v[3:5]} {v[5:7]} {v[7:10]} {v[10:13]} {v[13:]}"
    return v


def gen_idnr(rng: R, lang: str) -> str:
    v = _until(rng, lambda r: _fill(r, "DDDDDDDDDDD"), idnr.is_valid)
    return f"{v[:2]} {v[2:5]} {v[5:8]} {v[8:]}" if rng.random() < 0.5 else v


_OMO = "LMNPQRSTUV"


def gen_cf(rng: R, lang: str) -> str:
    def make(r: R) -> str:
        day = r.randint(1, 28) + (40 if r.random() < 0.5 else 0)
        body = (
            _fill(r, "LLLLLL")
            + f"{r.randint(40, 99):02d}"
            + r.choice("ABCDEHLMPRST")
            + f"{day:02d}"
            + r.choice("ADFHLGMZ")
            + _digits(r, 3)
        )
        return body + codicefiscale.calc_check_digit(body)

    return _until(rng, make, codicefiscale.is_valid)


def gen_dni(rng: R, lang: str) -> str:
    body = _digits(rng, 8)
    v = body + dni.calc_check_digit(body)
    if rng.random() < 0.3:
        return f"{v[:2]}.{v[2:5]}.{v[5:8]}-{v[8]}"
    return v


def gen_nie(rng: R, lang: str) -> str:
    first, body = rng.choice("XYZ"), _digits(rng, 7)
    v = first + body + nie.calc_check_digit(first + body)
    return f"{v[0]}-{v[1:8]}-{v[8]}" if rng.random() < 0.3 else v


def gen_bsn(rng: R, lang: str) -> str:
    v = _until(rng, lambda r: str(r.randint(1, 9)) + _digits(r, 8), bsn.is_valid)
    return f"{v[:4]}.{v[4:6]}.{v[6:]}" if rng.random() < 0.4 else v


def gen_nn(rng: R, lang: str) -> str:
    def make(r: R) -> str:
        yy, mm, dd = r.randint(50, 99), r.randint(1, 12), r.randint(1, 28)
        body = f"{yy:02d}{mm:02d}{dd:02d}{r.randint(1, 997):03d}"
        return body + f"{97 - int(body) % 97:02d}"

    v = _until(rng, make, be_nn.is_valid)
    return f"{v[:2]}.{v[2:4]}.{v[4:6]}-{v[6:9]}.{v[9:]}" if rng.random() < 0.6 else v


def gen_pesel(rng: R, lang: str) -> str:
    def make(r: R) -> str:
        year, mm, dd = r.randint(1950, 2009), r.randint(1, 12), r.randint(1, 28)
        mm += 20 if year >= 2000 else 0
        body = f"{year % 100:02d}{mm:02d}{dd:02d}{_digits(r, 4)}"
        return body + pesel.calc_check_digit(body)

    return _until(rng, make, pesel.is_valid)


_VAT_SHAPES = {  # (country prefix, body pattern)
    "fr": [("FR", "DDDDDDDDDDD")],
    "de": [("DE", "DDDDDDDDD")],
    "it": [("IT", "DDDDDDDDDDD")],
    "es": [("ES", "LDDDDDDDD"), ("ES", "DDDDDDDDL")],
    "nl": [("NL", "DDDDDDDDDBDD")],
    "pl": [("PL", "DDDDDDDDDD")],
    "en": [("BE", "0DDDDDDDDD"), ("IE", "DDDDDDDL")],
}


def gen_vat(rng: R, lang: str) -> str:
    cc, shape = rng.choice(_VAT_SHAPES[lang])
    return _until(rng, lambda r: cc + _fill(r, shape), eu_vat.is_valid)


_NATIONAL_PHONES = {
    "fr": [
        ("FR", "01 DD DD DD DD"),
        ("FR", "04 DD DD DD DD"),
        ("FR", "06 DD DD DD DD"),
        ("FR", "07 DD DD DD DD"),
    ],
    "de": [
        ("DE", "030 DDDDDDDD"),
        ("DE", "089 DDDDDDDD"),
        ("DE", "0151 DDDDDDDD"),
        ("DE", "0221 DDDDDDD"),
    ],
    "it": [
        ("IT", "02 DDDD DDDD"),
        ("IT", "06 DDDD DDDD"),
        ("IT", "347 DDD DDDD"),
        ("IT", "333 DDD DDDD"),
    ],
    "es": [
        ("ES", "6DD DDD DDD"),
        ("ES", "91 DDD DD DD"),
        ("ES", "93 DDD DD DD"),
        ("ES", "6DD DD DD DD"),
    ],
    "nl": [
        ("NL", "020 DDD DDDD"),
        ("NL", "06 DDDDDDDD"),
        ("NL", "06-DDDDDDDD"),
        ("NL", "010 DDD DDDD"),
    ],
    "pl": [
        ("PL", "5DD DDD DDD"),
        ("PL", "6DD DDD DDD"),
        ("PL", "22 DDD DD DD"),
        ("PL", "12 DDD DD DD"),
    ],
    "en": [
        ("IE", "01 DDD DDDD"),
        ("IE", "087 DDD DDDD"),
        ("BE", "02 DDD DD DD"),
        ("BE", "0475 DD DD DD"),
    ],
}
_INTL_PHONES = {
    "fr": ["+33 6 DD DD DD DD", "+33 1 DD DD DD DD", "+33 (0)6 DD DD DD DD", "0033 7 DD DD DD DD"],
    "de": ["+49 30 DDDDDDDD", "+49 151 DDDDDDDD", "+49 (0)89 DDDDDDDD", "0049 40 DDDDDDDD"],
    "it": ["+39 02 DDDD DDDD", "+39 347 DDD DDDD", "0039 06 DDDD DDDD"],
    "es": ["+34 6DD DDD DDD", "+34 91 DDD DD DD", "0034 6DD DD DD DD"],
    "nl": ["+31 6 DDDDDDDD", "+31 20 DDD DDDD", "+31 (0)10 DDD DDDD"],
    "pl": ["+48 5DD DDD DDD", "+48 22 DDD DD DD", "0048 6DD DDD DDD"],
    "en": ["+44 20 7DDD DDDD", "+353 87 DDD DDDD", "+32 475 DD DD DD", "+1 212 DDD DDDD"],
}


def _phone_ok(value: str, region: str | None) -> bool:
    digits = re.sub(r"\D", "", value.replace("(0)", ""))
    if value.startswith("00"):
        digits, region = "+" + digits[2:], None
    elif value.startswith("+"):
        digits = "+" + digits
    try:
        return bool(phonenumbers.is_valid_number(phonenumbers.parse(digits, region)))
    except phonenumbers.NumberParseException:
        return False


def gen_phone(rng: R, lang: str) -> str:
    region, pattern = rng.choice(_NATIONAL_PHONES[lang])
    return _until(rng, lambda r: _fill(r, pattern), lambda v: _phone_ok(v, region))


def gen_phone_intl(rng: R, lang: str) -> str:
    pattern = rng.choice(_INTL_PHONES[lang])
    return _until(rng, lambda r: _fill(r, pattern), lambda v: _phone_ok(v, None))


_NAMES = {
    "fr": (
        ["camille", "julien", "sophie", "nicolas", "claire", "thomas"],
        ["martin", "bernard", "dubois", "lefevre", "moreau", "girard"],
        ["exemple.fr", "societe-durand.fr", "chu-lyon.fr", "orange.fr"],
    ),
    "de": (
        ["lukas", "anna", "jonas", "lea", "felix", "marie"],
        ["mueller", "schmidt", "schneider", "fischer", "weber", "wagner"],
        ["beispiel.de", "klinikum-nord.de", "firma-gmbh.de", "web.de"],
    ),
    "it": (
        ["giulia", "marco", "francesca", "luca", "chiara", "matteo"],
        ["rossi", "russo", "ferrari", "esposito", "bianchi", "romano"],
        ["esempio.it", "ospedale-sanraffaele.it", "azienda.it", "libero.it"],
    ),
    "es": (
        ["lucia", "hugo", "martina", "pablo", "sofia", "daniel"],
        ["garcia", "fernandez", "lopez", "martinez", "sanchez", "perez"],
        ["ejemplo.es", "hospital-clinic.es", "empresa.com.es", "telefonica.net"],
    ),
    "nl": (
        ["daan", "emma", "sem", "julia", "lucas", "sophie"],
        ["de.jong", "jansen", "de.vries", "bakker", "visser", "smit"],
        ["voorbeeld.nl", "umcutrecht.nl", "bedrijf.nl", "ziggo.nl"],
    ),
    "pl": (
        ["jakub", "zuzanna", "antoni", "julia", "szymon", "maja"],
        ["nowak", "kowalski", "wisniewska", "wojcik", "kaminski", "lewandowska"],
        ["przyklad.pl", "szpital.waw.pl", "firma.com.pl", "wp.pl"],
    ),
    "en": (
        ["oliver", "amelia", "jack", "isla", "harry", "ava"],
        ["smith", "jones", "murphy", "walsh", "peeters", "obrien"],
        ["example.co.uk", "hse.ie", "acme-corp.eu", "gmail.com"],
    ),
}


def gen_email(rng: R, lang: str) -> str:
    first, last, domains = _NAMES[lang]
    f, lname, d = rng.choice(first), rng.choice(last), rng.choice(domains)
    local = rng.choice(
        [f"{f}.{lname}", f"{f[0]}{lname}", f"{f}.{lname}+rh", f"{f}_{lname}{rng.randint(1, 99)}"]
    )
    return f"{local}@{d}"


def gen_ipv4(rng: R, lang: str) -> str:
    kind = rng.randrange(4)
    if kind == 0:
        return f"10.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}"
    if kind == 1:
        return f"192.168.{rng.randint(0, 255)}.{rng.randint(1, 254)}"
    if kind == 2:
        return f"172.{rng.randint(16, 31)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}"
    return (
        f"{rng.randint(11, 223)}.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}"
    )


def gen_ipv6(rng: R, lang: str) -> str:
    import ipaddress

    if rng.random() < 0.3:
        tail = rng.getrandbits(64)
        return str(ipaddress.IPv6Address((0xFE80 << 112) | tail))
    groups = [
        0x2001,
        0x0DB8,
        rng.getrandbits(16),
        0,
        0,
        rng.getrandbits(16),
        rng.getrandbits(16),
        rng.getrandbits(16),
    ]
    addr = ipaddress.IPv6Address(int("".join(f"{g:04x}" for g in groups), 16))
    return addr.compressed if rng.random() < 0.8 else addr.exploded


_ALNUM = string.ascii_letters + string.digits


def gen_aws(rng: R, lang: str) -> str:
    return "AKIA" + "".join(rng.choice(string.ascii_uppercase + "234567") for _ in range(16))


def gen_aws_secret(rng: R, lang: str) -> str:
    return "".join(rng.choice(_ALNUM + "+/") for _ in range(40))


def gen_ghp(rng: R, lang: str) -> str:
    return "ghp_" + "".join(rng.choice(_ALNUM) for _ in range(36))


def gen_slack(rng: R, lang: str) -> str:
    return f"xoxb-{_digits(rng, 12)}-{_digits(rng, 13)}-" + "".join(
        rng.choice(_ALNUM) for _ in range(24)
    )


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def gen_jwt(rng: R, lang: str) -> str:
    head = _b64url(json.dumps({"alg": rng.choice(["HS256", "RS256"]), "typ": "JWT"}).encode())
    first = _NAMES[lang][0]
    payload = {
        "sub": str(rng.randint(1000, 99999)),
        "name": rng.choice(first),
        "iat": 1700000000 + rng.randint(0, 10**7),
    }
    body = _b64url(json.dumps(payload).encode())
    sig = _b64url(rng.randbytes(32))
    return f"{head}.{body}.{sig}"


def gen_pem(rng: R, lang: str) -> str:
    label = rng.choice(["RSA PRIVATE KEY", "PRIVATE KEY", "EC PRIVATE KEY", "OPENSSH PRIVATE KEY"])
    blob = base64.b64encode(rng.randbytes(48 * rng.randint(3, 6))).decode()
    lines = [blob[i : i + 64] for i in range(0, len(blob), 64)]
    return f"-----BEGIN {label}-----\n" + "\n".join(lines) + f"\n-----END {label}-----"


_PWD_WORDS = [
    "Sommer",
    "Soleil",
    "Estate",
    "Verano",
    "Zomer",
    "Lato",
    "Winter",
    "Dragon",
    "Kwiatek",
    "Azur",
]


def gen_pwd(rng: R, lang: str) -> str:
    if rng.random() < 0.5:
        return rng.choice(_PWD_WORDS) + str(rng.randint(1990, 2025)) + rng.choice("!#%&*?@")
    return "".join(rng.choice(_ALNUM + "!#%&*+-=?@^_~") for _ in range(rng.randint(10, 16)))


# ---- decoys -------------------------------------------------------------------------


def lookalike(rng: R, make: Callable[[R, str], str], lang: str) -> str:
    """A valid identifier with one digit changed, invalid for every validator."""
    for _ in range(1000):
        value = make(rng, lang)
        positions = [i for i, c in enumerate(value) if c.isdigit()]
        i = rng.choice(positions)
        new = rng.choice([d for d in string.digits if d != value[i]])
        bad = value[:i] + new + value[i + 1 :]
        if not any_valid(bad):
            return bad
    raise RuntimeError("no look-alike")


def _hashes(rng: R, shape: str) -> str:
    """'#' is a digit (order and invoice shapes hold capitals that _fill would replace)."""
    return re.sub("#", lambda _: rng.choice(string.digits), shape)


def _clean_digits(rng: R, make: Callable[[R], str]) -> str:
    def ok(v: str) -> bool:
        run = re.sub(r"\D", "", v)
        # A run with a trunk 0 could be a national phone number: keep those out too.
        return not any_valid(run) and not (run.startswith("0") and _phone_valid_anywhere(run))

    return _until(rng, make, ok)


def gen_order(rng: R, lang: str) -> str:
    y = rng.randint(2019, 2025)
    shapes = {
        "fr": [f"CMD-{y}-######", "C-#######"],
        "de": ["45########", f"A-{y}-#####"],
        "it": [f"######/{y}", "ORD-#######"],
        "es": ["PED-######", f"{y}-######"],
        "nl": ["########", "NL-ORD-######"],
        "pl": [f"ZAM/{y}/#####", "##########"],
        "en": ["PO-########", "########"],
    }[lang]
    shape = rng.choice(shapes)
    return _clean_digits(rng, lambda r: _hashes(r, shape))


def gen_invoice(rng: R, lang: str) -> str:
    y = rng.randint(2019, 2025)
    shapes = {
        "fr": [f"FA-{y}-#####", f"F{y}######"],
        "de": [f"RE-{y}-#####", "R########"],
        "it": [f"####/{y}", f"FT-{y}-#####"],
        "es": [f"F{y}-######", f"FAC-{y}/####"],
        "nl": [f"INV-{y}-#####", f"{y}######"],
        "pl": [f"FV/{y}/##/####", f"FV ####/{y}"],
        "en": [f"INV-{y}-#####", "INV-########"],
    }[lang]
    shape = rng.choice(shapes)
    return _clean_digits(rng, lambda r: _hashes(r, shape))


def gen_version(rng: R, lang: str) -> str:
    a, b, c = rng.randint(1, 12), rng.randint(0, 40), rng.randint(0, 30)
    return rng.choice(
        [
            f"v{a}.{b}.{c}",
            f"{a}.{b}.{c}",
            f"{a}.{b}.{c}.{rng.randint(100, 9999)}",
            f"{a}.{b}.{c}-rc{rng.randint(1, 5)}",
            f"{a}.{b}",
        ]
    )


def gen_date(rng: R, lang: str) -> str:
    y, m, d = rng.randint(2019, 2025), rng.randint(1, 12), rng.randint(1, 28)
    fmt = {
        "fr": f"{d:02d}/{m:02d}/{y}",
        "de": f"{d:02d}.{m:02d}.{y}",
        "it": f"{d:02d}/{m:02d}/{y}",
        "es": f"{d:02d}/{m:02d}/{y}",
        "nl": f"{d:02d}-{m:02d}-{y}",
        "pl": f"{d:02d}.{m:02d}.{y}",
        "en": f"{y}-{m:02d}-{d:02d}",
    }[lang]
    return fmt


def gen_time(rng: R, lang: str) -> str:
    h, m = rng.randint(0, 23), rng.randint(0, 59)
    return f"{h:02d}:{m:02d}" if rng.random() < 0.6 else f"{h:02d}:{m:02d}:{rng.randint(0, 59):02d}"


def gen_price(rng: R, lang: str) -> str:
    units, cents = rng.randint(10, 250000), rng.randint(0, 99)
    thousands = f"{units:,}"
    if lang in ("fr", "pl"):
        num = thousands.replace(",", "\u00a0" if rng.random() < 0.3 else " ") + f",{cents:02d}"
        return num + (" zł" if lang == "pl" else " €")
    if lang == "en":
        return rng.choice(["€", "£"]) + thousands + f".{cents:02d}"
    num = thousands.replace(",", ".") + f",{cents:02d}"
    return rng.choice([f"{num} €", f"€ {num}", f"{num} EUR"])


def gen_uuid(rng: R, lang: str) -> str:
    u = str(uuid.UUID(int=rng.getrandbits(128), version=4))
    return u.upper() if rng.random() < 0.2 else u


def gen_sha(rng: R, lang: str) -> str:
    return f"{rng.getrandbits(160):040x}"


def gen_placeholder(rng: R, lang: str) -> str:
    return rng.choice(["********", "<YOUR_PASSWORD>", "${DB_PASSWORD}", "xxxxxxxx", "<redacted>"])


def _natid(lang: str) -> list[tuple[str, Callable[[R, str], str]]]:
    return {
        "fr": [("fr_nir", gen_nir)],
        "de": [("de_steuer_id", gen_idnr)],
        "it": [("it_codice_fiscale", gen_cf)],
        "es": [("es_dni", gen_dni), ("es_nie", gen_nie)],
        "nl": [("nl_bsn", gen_bsn), ("nl_bsn", gen_bsn), ("be_national_number", gen_nn)],
        "pl": [("pl_pesel", gen_pesel)],
        "en": [
            ("be_national_number", gen_nn),
            ("fr_nir", gen_nir),
            ("de_steuer_id", gen_idnr),
            ("nl_bsn", gen_bsn),
        ],
    }[lang]


# slot -> (entity type or None, decoy kind or None, generator)
Slot = tuple[str | None, str | None, Callable[[R, str], str]]
_ENTITY_SLOTS: dict[str, tuple[str, Callable[[R, str], str]]] = {
    "iban": ("iban", gen_iban),
    "card": ("payment_card", gen_card),
    "vat": ("eu_vat", gen_vat),
    "email": ("email", gen_email),
    "phone": ("phone", gen_phone),
    "phone_intl": ("phone", gen_phone_intl),
    "ipv4": ("ip_address", gen_ipv4),
    "ipv6": ("ip_address", gen_ipv6),
    "aws": ("secret", gen_aws),
    "aws_secret": ("secret", gen_aws_secret),
    "ghp": ("secret", gen_ghp),
    "slack": ("secret", gen_slack),
    "jwt": ("secret", gen_jwt),
    "pem": ("secret", gen_pem),
    "pwd": ("secret", gen_pwd),
}
_DECOY_SLOTS: dict[str, Callable[[R, str], str]] = {
    "order": gen_order,
    "invoice": gen_invoice,
    "version": gen_version,
    "date": gen_date,
    "time": gen_time,
    "price": gen_price,
    "uuid": gen_uuid,
    "sha": gen_sha,
    "placeholder": gen_placeholder,
}
_LOOKALIKE_SLOTS: dict[str, tuple[str, Callable[[R, str], str]]] = {
    "x_iban": ("iban", gen_iban),
    "x_card": ("payment_card", gen_card),
    "x_vat": ("eu_vat", gen_vat),
}


# --------------------------------------------------------------------------- templates
# {natid} is the document language's national identifier; {x_natid} its look-alike.
TEMPLATES: dict[str, dict[str, list[str]]] = {
    "fr": {
        "invoice": [
            "Facture {invoice} du {date} : montant TTC {price}, à régler avant le {date}.",
            "Merci d'effectuer le virement sur l'IBAN {iban} en rappelant la commande {order}.",
            "Notre numéro de TVA intracommunautaire est {vat} ; l'ancien numéro {x_vat} n'est plus valable.",
            "Le paiement par carte {card} a été refusé, la carte {x_card} est expirée.",
            "Pour toute question, contactez la comptabilité au {phone} ou par courriel à {email}.",
            "Attention, l'IBAN {x_iban} figurant sur l'ancien devis est erroné.",
        ],
        "hr": [
            "Dossier salarié : numéro de sécurité sociale {natid}, date d'embauche le {date}.",
            "Le numéro {x_natid} saisi dans le logiciel de paie contient une faute de frappe.",
            "Joignable au {phone_intl} ou à l'adresse {email} pendant son congé.",
            "Salaire brut annuel : {price}, versé sur le compte {iban}.",
            "Entretien annuel prévu le {date} à {time}, salle B.",
        ],
        "ticket": [
            "Ticket {order} : le serveur {ipv4} ne répond plus depuis {time}.",
            "Bonjour, après la mise à jour vers la version {version}, l'application plante au démarrage.",
            "L'adresse IPv6 {ipv6} est bloquée par le pare-feu, voir le commit {sha}.",
            "Rappel à l'utilisateur {email} : ne jamais coller de mot de passe dans un ticket.",
        ],
        "hospital": [
            "Madame, nous avons reçu en consultation le patient né le {date}, NIR {natid}.",
            "Le rendez-vous de contrôle est fixé au {date} à {time} ; secrétariat : {phone}.",
            "Le résultat du bilan (réf. {uuid}) a été transmis au médecin traitant {email}.",
            "Le numéro {x_natid} indiqué sur l'ordonnance ne correspond à aucun assuré.",
            "Reste à charge : {price}, réglé par carte {card}.",
        ],
    },
    "de": {
        "invoice": [
            "Rechnung {invoice} vom {date}: Gesamtbetrag {price}, zahlbar innerhalb von 14 Tagen.",
            "Bitte überweisen Sie den Betrag auf IBAN {iban} unter Angabe der Bestellnummer {order}.",
            "Unsere USt-IdNr. lautet {vat}; die Nummer {x_vat} auf dem Angebot war fehlerhaft.",
            "Die Kreditkarte {card} wurde belastet, die Karte {x_card} wurde abgelehnt.",
            "Rückfragen bitte an {email} oder telefonisch unter {phone}.",
            "Die IBAN {x_iban} aus der alten Rechnung ist ungültig.",
        ],
        "hr": [
            "Personalakte: Steuer-ID {natid}, Eintritt am {date}.",
            "Die in der Lohnabrechnung erfasste Nummer {x_natid} ist ein Tippfehler.",
            "Frau Müller ist während der Elternzeit unter {phone_intl} oder {email} erreichbar.",
            "Jahresgehalt brutto {price}, Auszahlung auf das Konto {iban}.",
            "Das Mitarbeitergespräch findet am {date} um {time} statt.",
        ],
        "ticket": [
            "Ticket {order}: Der Server {ipv4} ist seit {time} nicht erreichbar.",
            "Nach dem Update auf Version {version} startet der Dienst nicht mehr.",
            "Die IPv6-Adresse {ipv6} wird von der Firewall blockiert, siehe commit {sha}.",
            "Hinweis an {email}: bitte keine Passwörter in Tickets posten.",
        ],
        "hospital": [
            "Sehr geehrte Kollegin, wir berichten über Ihren Patienten, geb. {date}, Steuer-ID {natid}.",
            "Der Kontrolltermin ist am {date} um {time}; Sekretariat: {phone}.",
            "Der Laborbefund (Ref. {uuid}) wurde an {email} übermittelt.",
            "Die auf dem Überweisungsschein angegebene Nummer {x_natid} ist ungültig.",
            "Eigenanteil: {price}, bezahlt mit Karte {card}.",
        ],
    },
    "it": {
        "invoice": [
            "Fattura n. {invoice} del {date}: totale {price}, pagamento a 30 giorni.",
            "Si prega di effettuare il bonifico sull'IBAN {iban} indicando l'ordine {order}.",
            "La nostra partita IVA è {vat}; il numero {x_vat} riportato nel preventivo è errato.",
            "Il pagamento con la carta {card} è andato a buon fine, la carta {x_card} è stata rifiutata.",
            "Per informazioni contattare l'amministrazione al {phone} oppure scrivere a {email}.",
            "L'IBAN {x_iban} della vecchia fattura non è valido.",
        ],
        "hr": [
            "Scheda dipendente: codice fiscale {natid}, assunzione in data {date}.",
            "Il codice {x_natid} inserito nel gestionale paghe contiene un errore.",
            "Durante le ferie è raggiungibile al {phone_intl} o all'indirizzo {email}.",
            "Retribuzione annua lorda {price}, accreditata sul conto {iban}.",
            "Il colloquio annuale è fissato per il {date} alle {time}.",
        ],
        "ticket": [
            "Ticket {order}: il server {ipv4} non risponde dalle {time}.",
            "Dopo l'aggiornamento alla versione {version} l'applicazione non si avvia.",
            "L'indirizzo IPv6 {ipv6} è bloccato dal firewall, vedi commit {sha}.",
            "Avviso per {email}: non incollare mai password nei ticket.",
        ],
        "hospital": [
            "Gentile collega, le inviamo il paziente nato il {date}, codice fiscale {natid}.",
            "La visita di controllo è fissata il {date} alle {time}; segreteria: {phone}.",
            "Il referto (rif. {uuid}) è stato inviato al medico curante {email}.",
            "Il codice fiscale {x_natid} riportato sull'impegnativa non è corretto.",
            "Ticket sanitario: {price}, pagato con carta {card}.",
        ],
    },
    "es": {
        "invoice": [
            "Factura {invoice} con fecha {date}: importe total {price}, a pagar en 30 días.",
            "Rogamos realicen la transferencia al IBAN {iban} indicando el pedido {order}.",
            "Nuestro NIF-IVA es {vat}; el número {x_vat} del presupuesto era incorrecto.",
            "El cargo en la tarjeta {card} se realizó, la tarjeta {x_card} fue rechazada.",
            "Para cualquier consulta llame al {phone} o escriba a {email}.",
            "El IBAN {x_iban} de la factura anterior no es válido.",
        ],
        "hr": [
            "Ficha del empleado: documento {natid}, alta el {date}.",
            "El documento {x_natid} introducido en la nómina tiene una errata.",
            "Durante sus vacaciones está disponible en el {phone_intl} o en {email}.",
            "Salario bruto anual {price}, abonado en la cuenta {iban}.",
            "La entrevista anual será el {date} a las {time}.",
        ],
        "ticket": [
            "Incidencia {order}: el servidor {ipv4} no responde desde las {time}.",
            "Tras actualizar a la versión {version} la aplicación no arranca.",
            "La dirección IPv6 {ipv6} está bloqueada por el cortafuegos, ver commit {sha}.",
            "Aviso a {email}: no pegue contraseñas en las incidencias.",
        ],
        "hospital": [
            "Estimado colega, le remitimos al paciente nacido el {date}, documento {natid}.",
            "La revisión está programada el {date} a las {time}; secretaría: {phone}.",
            "El informe (ref. {uuid}) se ha enviado al médico de cabecera {email}.",
            "El documento {x_natid} que figura en el volante no es válido.",
            "Copago: {price}, abonado con la tarjeta {card}.",
        ],
    },
    "nl": {
        "invoice": [
            "Factuur {invoice} van {date}: totaalbedrag {price}, te betalen binnen 30 dagen.",
            "Gelieve het bedrag over te maken naar IBAN {iban} onder vermelding van order {order}.",
            "Ons btw-nummer is {vat}; het nummer {x_vat} op de offerte was onjuist.",
            "De betaling met creditcard {card} is gelukt, kaart {x_card} werd geweigerd.",
            "Vragen kunt u stellen via {phone} of per e-mail aan {email}.",
            "Het IBAN {x_iban} op de oude factuur is ongeldig.",
        ],
        "hr": [
            "Personeelsdossier: BSN {natid}, in dienst sinds {date}.",
            "Het nummer {x_natid} in de salarisadministratie bevat een tikfout.",
            "Tijdens het verlof bereikbaar op {phone_intl} of via {email}.",
            "Bruto jaarsalaris {price}, uitbetaald op rekening {iban}.",
            "Het functioneringsgesprek is op {date} om {time}.",
        ],
        "ticket": [
            "Ticket {order}: server {ipv4} reageert niet meer sinds {time}.",
            "Na de update naar versie {version} start de applicatie niet meer.",
            "Het IPv6-adres {ipv6} wordt door de firewall geblokkeerd, zie commit {sha}.",
            "Let op, {email}: plak nooit wachtwoorden in een ticket.",
        ],
        "hospital": [
            "Geachte collega, hierbij de patiënt geboren op {date}, identificatienummer {natid}.",
            "De controleafspraak is op {date} om {time}; secretariaat: {phone}.",
            "De uitslag (ref. {uuid}) is verstuurd naar de huisarts {email}.",
            "Het nummer {x_natid} op de verwijsbrief is ongeldig.",
            "Eigen bijdrage: {price}, betaald met kaart {card}.",
        ],
    },
    "pl": {
        "invoice": [
            "Faktura {invoice} z dnia {date}: kwota brutto {price}, termin płatności 14 dni.",
            "Prosimy o przelew na rachunek IBAN {iban} z dopiskiem zamówienia {order}.",
            "Nasz numer VAT UE to {vat}; numer {x_vat} z oferty był błędny.",
            "Płatność kartą {card} została przyjęta, karta {x_card} została odrzucona.",
            "W razie pytań prosimy dzwonić pod {phone} lub pisać na {email}.",
            "Numer IBAN {x_iban} ze starej faktury jest nieprawidłowy.",
        ],
        "hr": [
            "Karta pracownika: PESEL {natid}, data zatrudnienia {date}.",
            "Numer {x_natid} wpisany w systemie kadrowym zawiera literówkę.",
            "W czasie urlopu dostępna pod numerem {phone_intl} lub {email}.",
            "Roczne wynagrodzenie brutto {price}, wypłacane na konto {iban}.",
            "Rozmowa okresowa odbędzie się {date} o {time}.",
        ],
        "ticket": [
            "Zgłoszenie {order}: serwer {ipv4} nie odpowiada od {time}.",
            "Po aktualizacji do wersji {version} aplikacja się nie uruchamia.",
            "Adres IPv6 {ipv6} jest blokowany przez zaporę, zob. commit {sha}.",
            "Uwaga dla {email}: nie wklejaj haseł do zgłoszeń.",
        ],
        "hospital": [
            "Szanowni Państwo, kierujemy pacjenta urodzonego {date}, PESEL {natid}.",
            "Wizyta kontrolna wyznaczona na {date} o {time}; rejestracja: {phone}.",
            "Wynik badania (nr ref. {uuid}) przesłano do lekarza rodzinnego {email}.",
            "Numer PESEL {x_natid} podany na skierowaniu jest nieprawidłowy.",
            "Dopłata: {price}, zapłacono kartą {card}.",
        ],
    },
    "en": {
        "invoice": [
            "Invoice {invoice} dated {date}: total due {price}, payable within 30 days.",
            "Please transfer the amount to IBAN {iban} quoting order {order}.",
            "Our VAT number is {vat}; the number {x_vat} on the quote was wrong.",
            "Card {card} was charged successfully, card {x_card} was declined.",
            "For questions call accounts on {phone} or email {email}.",
            "The IBAN {x_iban} printed on the old invoice is invalid.",
        ],
        "hr": [
            "Employee file (Brussels office): national number {natid}, start date {date}.",
            "The number {x_natid} entered in payroll has a typo.",
            "While on leave she can be reached on {phone_intl} or at {email}.",
            "Gross annual salary {price}, paid into account {iban}.",
            "The annual review is scheduled for {date} at {time}.",
        ],
        "ticket": [
            "Ticket {order}: host {ipv4} has been unreachable since {time}.",
            "After upgrading to version {version} the service fails to start.",
            "IPv6 address {ipv6} is blocked by the firewall, see commit {sha}.",
            "Reminder to {email}: never paste passwords into tickets.",
        ],
        "hospital": [
            "Dear colleague, we saw your patient born {date}, identification number {natid}.",
            "The follow-up appointment is on {date} at {time}; secretary: {phone}.",
            "The lab report (ref. {uuid}) was sent to the GP at {email}.",
            "The number {x_natid} on the referral letter is not valid.",
            "Patient contribution: {price}, paid by card {card}.",
        ],
    },
}
# Language-neutral lines pasted into IT tickets (and a few HR notes).
PASSWORD_NAMES = {
    "fr": "mot_de_passe",
    "de": "Passwort",
    "it": "password",
    "es": "contraseña",
    "nl": "wachtwoord",
    "pl": "hasło",
    "en": "password",
}
TECH_LINES = [
    "```\nAWS_ACCESS_KEY_ID={aws}\nAWS_SECRET_ACCESS_KEY={aws_secret}\nAWS_REGION=eu-west-3\n```",
    "export GITHUB_TOKEN={ghp}",
    "SLACK_BOT_TOKEN={slack}",
    "curl -H 'Authorization: Bearer {jwt}' https://api.internal.example/v2/users",
    "Key found in the repository:\n{pem}",
    "DB_HOST={ipv4}\nDB_USER=app\nDB_PASSWORD={pwd}",
    "{pwdname}: {pwd}",
    "password={placeholder}",
    "api_key=<YOUR_API_KEY>  # request_id {uuid}",
    "[{date} {time}] WARN upstream {ipv6} timed out, build {version}",
    "git log: commit {sha}\n    Bump dependency to {version}",
    "listen {ipv4}:8443; allow {ipv4}/24;",
]

_SLOT = re.compile(r"\{(\w+)\}")


def _render(rng: R, lang: str, template: str, doc: Doc) -> None:
    pos = 0
    natid = rng.choice(_natid(lang))
    for m in _SLOT.finditer(template):
        doc.text += template[pos : m.start()]
        name = m.group(1)
        start = len(doc.text)
        if name == "pwdname":
            doc.text += PASSWORD_NAMES[lang]
            pos = m.end()
            continue
        if name == "natid":
            etype, value = natid[0], natid[1](rng, lang)
            doc.entities.append(
                {"start": start, "end": start + len(value), "type": etype, "value": value}
            )
        elif name == "x_natid":
            value = lookalike(rng, natid[1], lang)
            doc.decoys.append(
                {
                    "start": start,
                    "end": start + len(value),
                    "kind": "lookalike_" + natid[0],
                    "value": value,
                }
            )
        elif name in _ENTITY_SLOTS:
            etype, gen = _ENTITY_SLOTS[name]
            value = gen(rng, lang)
            doc.entities.append(
                {"start": start, "end": start + len(value), "type": etype, "value": value}
            )
        elif name in _LOOKALIKE_SLOTS:
            etype, gen = _LOOKALIKE_SLOTS[name]
            value = lookalike(rng, gen, lang)
            doc.decoys.append(
                {
                    "start": start,
                    "end": start + len(value),
                    "kind": "lookalike_" + etype,
                    "value": value,
                }
            )
        else:
            value = _DECOY_SLOTS[name](rng, lang)
            doc.decoys.append(
                {"start": start, "end": start + len(value), "kind": name, "value": value}
            )
        doc.text += value
        pos = m.end()
    doc.text += template[pos:]


def build(seed: int = SEED, per_lang: int = DOCS_PER_LANG) -> list[Doc]:
    rng = random.Random(seed)
    docs: list[Doc] = []
    for lang in LANGS:
        for i in range(per_lang):
            kind = KINDS[i % len(KINDS)]
            doc = Doc(id=f"{lang}-{i:03d}", lang=lang, kind=kind)
            pool = TEMPLATES[lang][kind]
            chosen = rng.sample(pool, k=rng.randint(3, min(5, len(pool))))
            if kind == "ticket":
                chosen += rng.sample(TECH_LINES, k=rng.randint(2, 3))
            elif kind == "hr" and rng.random() < 0.3:
                chosen.append(rng.choice(TECH_LINES[:7]))
            for j, template in enumerate(chosen):
                if j:
                    doc.text += "\n" if template in TECH_LINES or doc.text.endswith("`") else " "
                _render(rng, lang, template, doc)
            docs.append(doc)
    _check(docs)
    return docs


def _check(docs: list[Doc]) -> None:
    for d in docs:
        for e in d.entities + d.decoys:
            assert d.text[e["start"] : e["end"]] == e["value"], (d.id, e)  # type: ignore[misc]


def counts(docs: list[Doc]) -> tuple[dict[str, Counter[str]], dict[str, Counter[str]]]:
    ents: dict[str, Counter[str]] = {lang: Counter() for lang in LANGS}
    decs: dict[str, Counter[str]] = {lang: Counter() for lang in LANGS}
    for d in docs:
        ents[d.lang].update(str(e["type"]) for e in d.entities)
        decs[d.lang].update(str(e["kind"]) for e in d.decoys)
    return ents, decs


def count_table(per_lang: dict[str, Counter[str]], rows: list[str] | None = None) -> str:
    rows = rows or sorted({k for c in per_lang.values() for k in c})
    head = "| type | " + " | ".join(LANGS) + " | total |"
    lines = [head, "|" + "---|" * (len(LANGS) + 2)]
    for r in rows:
        vals = [per_lang[lang][r] for lang in LANGS]
        lines.append(f"| {r} | " + " | ".join(map(str, vals)) + f" | {sum(vals)} |")
    totals = [sum(per_lang[lang].values()) for lang in LANGS]
    lines.append("| **all** | " + " | ".join(map(str, totals)) + f" | {sum(totals)} |")
    return "\n".join(lines)


def to_json(docs: list[Doc]) -> dict[str, object]:
    return {"seed": SEED, "langs": list(LANGS), "docs": [asdict(d) for d in docs]}


def write(docs: list[Doc], path: Path = OUT) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(to_json(docs), ensure_ascii=False, indent=1), encoding="utf-8")
    return path


def main() -> int:
    docs = build()
    ents, decs = counts(docs)
    print(
        f"{len(docs)} documents, {sum(len(d.text) for d in docs) / len(docs):.0f} chars on average\n"
    )
    print("Entities (must be found):")
    print(count_table(ents, [t for t in ENTITY_TYPES if any(ents[lang][t] for lang in LANGS)]))
    print("\nDecoys (must not be found):")
    print(count_table(decs))
    print(f"\nwritten to {write(docs)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
