"""Payment card numbers of every scheme: issuer ranges and lengths, then Luhn.

A card number is only reported when its prefix belongs to a scheme, its length is one that
scheme issues, and its Luhn check digit is right: a random 16-digit run passes Luhn one time
in ten, an issuer range too far less often. Ranges from ISO/IEC 7812 registrations as the
schemes publish them (2026).
"""

from __future__ import annotations

import re

from stdnum import luhn

from souverain.dlp.detectors import _LB, _RB, NumberDetector, NumberSpec, _compact

# Scheme: prefixes, lengths. Prefixes shared by several schemes are listed once.
_SCHEMES = (
    r"4(?:\d{12}|\d{15}|\d{18})",  # Visa: 13, 16, 19
    r"(?:5[1-5]\d\d|222[1-9]|22[3-9]\d|2[3-6]\d\d|27[01]\d|2720)\d{12}",  # Mastercard: 16
    r"3[47]\d{13}",  # American Express: 15
    r"3(?:0[0-5]\d|095|[689]\d\d)\d{10,15}",  # Diners Club: 14-19
    r"(?:35(?:2[89]|[3-8]\d))\d{12,15}",  # JCB: 16-19
    r"(?:1800|2131)\d{11}",  # JCB's older 15-digit numbers
    r"(?:6011|64[4-9]\d|65\d\d)\d{12,15}",  # Discover: 16-19
    r"62\d{14,17}",  # UnionPay: 16-19
    r"81(?:0\d|1[0-7])\d{12,15}",  # UnionPay's 81 range: 16-19
    r"220[0-4]\d{12,15}",  # Mir: 16-19
    r"60\d{14}",  # RuPay: 16
    r"9792\d{12}",  # Troy: 16
    r"(?:5[0678]|6[37])\d{10,17}",  # Maestro (and Dankort, InstaPayment): 12-19
)
_IIN = re.compile("|".join(_SCHEMES))


def card_valid(digits: str) -> bool:
    """An issuer's prefix at one of its lengths, and Luhn."""
    return _IIN.fullmatch(digits) is not None and luhn.is_valid(digits)


def _card_ok(candidate: str) -> bool:
    return card_valid(_compact(candidate))


class PaymentCardDetector(NumberDetector):
    def __init__(self) -> None:
        pattern = _LB + r"\d{4}(?:[ \-]?\d{2,6}){2,4}" + _RB
        super().__init__(NumberSpec("payment_card", "", pattern, 12, greedy=True), _card_ok)
