"""Cheap necessary conditions, checked before the real validators run.

python-stdnum and phonenumbers have the final word on every candidate, but one call costs
5-20 µs (input cleaning, registry and metadata look-ups), and most candidates in a PII-dense
prompt are invalid: shorter cuts of a greedy match, look-alikes, invoice numbers. Each check
here rejects, in about a microsecond, only candidates the real validator rejects too, and is
taken from that validator: the IBAN lengths from stdnum's own registry file, the mod-97 test
that stdnum.iban runs first, the length checks of stdnum's VAT modules, and libphonenumber's
general description of each region (the test phonenumbers runs before any other). Anything
unusual (non-ASCII digits, a region without a simple national prefix) is left to the
validator. tests/test_dlp_checks.py compares each check with its validator.
"""

from __future__ import annotations

import re
import string
from collections.abc import Callable
from importlib import resources

import phonenumbers
from stdnum import iban
from stdnum.util import get_cc_module


def _iban_lengths() -> dict[str, int]:
    """Country code -> IBAN length, from stdnum's IBAN registry (bban="4!a6!n8!n" ...)."""
    lengths: dict[str, int] = {}
    registry = resources.files("stdnum").joinpath("iban.dat").read_text("utf-8")
    for m in re.finditer(r'^([A-Z]{2}) .*bban="((?:\d+![nac])+)"$', registry, re.M):
        lengths[m[1]] = 4 + sum(map(int, re.findall(r"(\d+)!", m[2])))
    return lengths


IBAN_LENGTHS = _iban_lengths()
_BASE36 = str.maketrans({c: str(i) for i, c in enumerate(string.ascii_uppercase, 10)})


def iban_plausible(compact: str) -> bool:
    """The registry length of its country and ISO 7064 mod 97-10, as stdnum.iban checks."""
    if not compact.isascii():
        return True
    if IBAN_LENGTHS.get(compact[:2]) != len(compact) or not compact.isalnum():
        return False
    return int((compact[4:] + compact[:4]).translate(_BASE36)) % 97 == 1


_Validator = Callable[[str], bool]
_iban_modules: dict[str, _Validator] = {}


def iban_valid(compact: str) -> bool:
    """stdnum's verdict, asked of the country's module where stdnum has one.

    stdnum.iban.is_valid runs its generic checks, then the country module (BE, ES, ME, NO),
    which runs the generic checks again before its own: calling the module directly gives
    the same answer for half the work.
    """
    if not iban_plausible(compact):
        return False
    cc = compact[:2]
    check = _iban_modules.get(cc)
    if check is None:
        module = get_cc_module(cc, "iban") if cc.isalpha() else None
        check = _iban_modules[cc] = module.is_valid if module is not None else iban.is_valid
    return bool(check(compact))


# Lengths of the part after the country code that each country's stdnum VAT module accepts,
# read from their validate() and compact() (which zero-pad short BE, EL and NL numbers).
VAT_BODY_LENGTHS: dict[str, tuple[int, int]] = {
    "AT": (9, 9),  # at.uid: "U" + 8 digits
    "BE": (9, 10),  # be.vat: 9 digits padded to 10
    "BG": (9, 10),
    "CY": (9, 9),
    "CZ": (8, 10),
    "DE": (9, 9),
    "DK": (8, 8),
    "EE": (9, 9),
    "EL": (8, 9),  # gr.vat: 8 digits padded to 9
    "ES": (9, 9),
    "FI": (8, 8),
    "FR": (11, 11),
    "HR": (11, 11),
    "HU": (8, 8),
    "IE": (8, 9),
    "IT": (11, 11),
    "LT": (9, 12),
    "LU": (8, 8),
    "LV": (11, 11),
    "MT": (8, 8),
    "NL": (4, 12),  # nl.btw: the part before "B01" is zero-filled to 9 digits
    "PL": (10, 10),
    "PT": (9, 9),
    "RO": (2, 13),  # ro.cf: 2-10 digits (CUI) or 13 (CNP)
    "SE": (12, 12),
    "SI": (8, 8),
    "SK": (10, 10),
    "XI": (5, 12),  # gb.vat: 5 (GD/HA + 3), 9, 11 or 12
}


def vat_plausible(compact: str) -> bool:
    bounds = VAT_BODY_LENGTHS.get(compact[:2])
    return bounds is None or bounds[0] <= len(compact) - 2 <= bounds[1]


_VAT_MODULE_NAMES = {"EL": "gr", "XI": "gb"}  # as stdnum.eu.vat maps them
_vat_modules: dict[str, _Validator] = {}


def vat_valid(compact: str) -> bool:
    """stdnum's verdict from the country's VAT module, which stdnum.eu.vat would call."""
    cc = compact[:2]
    if cc not in VAT_BODY_LENGTHS or not vat_plausible(compact):
        return False
    check = _vat_modules.get(cc)
    if check is None:
        module = get_cc_module(_VAT_MODULE_NAMES.get(cc, cc), "vat")
        assert module is not None, cc  # every key of VAT_BODY_LENGTHS has one
        check = _vat_modules[cc] = module.is_valid
    return bool(check(compact))


_Desc = tuple[frozenset[int], re.Pattern[str]]


def _metadata(region: str) -> phonenumbers.PhoneMetadata:
    metadata = phonenumbers.PhoneMetadata.metadata_for_region(region)
    assert metadata is not None, region
    return metadata


def _general_descs(code: int) -> tuple[_Desc, ...]:
    """libphonenumber's general description of every region using the country code."""
    descs = []
    for region in phonenumbers.region_codes_for_country_code(code):
        desc = _metadata(region).general_desc
        assert desc is not None and desc.national_number_pattern is not None, region
        pattern = re.compile(desc.national_number_pattern)
        descs.append((frozenset(desc.possible_length or ()), pattern))
    return tuple(descs)


class NationalNumberCheck:
    """Could `digits`, written in a region's national format, be a valid number there?

    phonenumbers.is_valid_number(phonenumbers.parse(digits, region)) first requires the
    national significant number to have a possible length and to match the general pattern
    of its region. parse() takes that number to be the digits, minus the trunk "0" where the
    region has one, or minus the region's country code when they start with it: every one of
    these is tried. Digits starting with the international prefix ("00"), and regions whose
    national prefix is anything but a plain "0" (LU strips carrier codes), are left to
    phonenumbers.
    """

    def __init__(self, regions: tuple[str, ...]) -> None:
        self._regions: dict[str, tuple[bool, str, tuple[_Desc, ...]]] = {}
        for region in regions:
            metadata = _metadata(region)
            prefix = metadata.national_prefix_for_parsing
            if prefix in (None, "0") and metadata.international_prefix == "00":
                code = metadata.country_code
                assert code is not None, region
                self._regions[region] = (prefix == "0", str(code), _general_descs(code))

    def __call__(self, digits: str, region: str) -> bool:
        entry = self._regions.get(region)
        if entry is None or not digits.isascii() or digits.startswith("00"):
            return True
        trunk, code, descs = entry
        numbers = [digits]
        if trunk and digits.startswith("0"):
            numbers.append(digits[1:])
        if digits.startswith(code):  # after a code, parse() may strip a trunk "0" twice
            rest = digits[len(code) :]
            numbers.append(rest)
            for _ in range(2 if trunk else 0):
                if rest.startswith("0"):
                    rest = rest[1:]
                    numbers.append(rest)
        return any(
            (not lengths or len(nsn) in lengths) and pattern.fullmatch(nsn) is not None
            for nsn in numbers
            for lengths, pattern in descs
        )
