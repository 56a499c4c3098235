"""Data-loss prevention text transformations: redaction, pseudonymization and restoration.

Placeholders look like ``⟦EMAIL_K7Q2M4XAB3C5D6EF⟧``:

* The delimiters are U+27E6 / U+27E7 (mathematical white square brackets). They are single
  code points that practically never occur in prose, code, Markdown, JSON or templates (unlike
  ``[]``, ``<>``, ``{{}}``), so a placeholder cannot be confused with the user's own syntax; they
  look like brackets, so models treat the whole thing as one opaque token and copy it; and JSON
  does not escape them, so they survive tool-call arguments verbatim.
* The type label tells the model what the hidden value is (it can still write "send a mail to
  ⟦EMAIL_…⟧"); the 16 base32 characters (80 bits of HMAC-SHA256) make collisions between two
  values of one type under one tenant key astronomically unlikely (~1e-13 for a million values).

Input that already contains ``⟦`` is escaped by the pseudonymizer as ``⟦⟦`` (the only character
that can start a placeholder; ``⟧`` alone is harmless). Restoration reads left to right, turning
``⟦⟦`` back into ``⟦`` before looking for placeholders, so a pasted placeholder-like string in the
user's text is never mistaken for a real one and every text round-trips exactly.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Protocol

from ..jsonsafe import parse_json_bounded

__all__ = [
    "CLOSE",
    "OPEN",
    "Pseudonymizer",
    "Span",
    "StreamRestorer",
    "redact",
    "restore",
    "restore_json_arguments",
]

OPEN = "\u27e6"  # ⟦
CLOSE = "\u27e7"  # ⟧
_HASH_CHARS = 16  # base32 characters: 80 bits
_MAX_LABEL = 32  # bounds how much a stream may hold back while waiting for a placeholder's end

_LABEL = re.compile(rf"[A-Z][A-Z0-9_]{{0,{_MAX_LABEL - 1}}}")
_PLACEHOLDER = re.compile(rf"{OPEN}{_LABEL.pattern}_[A-Z2-7]{{{_HASH_CHARS}}}{CLOSE}")
# Everything that may follow ⟦ in a placeholder not yet complete (empty included): exact, so a
# stream holds back only what could really become a placeholder.
_PARTIAL = re.compile(rf"(?:{_LABEL.pattern}(?:_[A-Z2-7]{{0,{_HASH_CHARS}}})?)?")

# Types whose values are free text rather than identifiers: separators there carry meaning
# ("Jean-Marie" is not "JeanMarie"), so only runs of whitespace are unified.
_FREE_TEXT_TYPES = frozenset({"PERSON", "NAME", "ADDRESS", "LOCATION", "ORGANIZATION", "ORG"})
_IDENTIFIER_SEPARATORS = re.compile(r"[\s.\-]+")


class Span(Protocol):
    """What a detector reports: ``text[start:end]`` is a ``type`` value (e.g. a Finding)."""

    @property
    def start(self) -> int: ...
    @property
    def end(self) -> int: ...
    @property
    def type(self) -> str: ...
    @property
    def value(self) -> str: ...


def _checked(text: str, findings: Sequence[Span]) -> Sequence[Span]:
    # Raised rather than `assert`ed: a bad span silently leaking data under `python -O` is worse
    # than a loud error.
    previous_end = 0
    for f in findings:
        if not previous_end <= f.start < f.end <= len(text):
            raise ValueError(f"findings must be sorted, non-overlapping, non-empty: {f!r}")
        previous_end = f.end
    return findings


def redact(text: str, findings: Sequence[Span]) -> str:
    """Replace every finding by ``[TYPE]``; irreversible, for logs and untrusted sinks."""
    parts: list[str] = []
    position = 0
    for f in _checked(text, findings):
        parts += [text[position : f.start], f"[{f.type.upper()}]"]
        position = f.end
    parts.append(text[position:])
    return "".join(parts)


def _label(kind: str) -> str:
    label = re.sub(r"[^A-Z0-9]+", "_", kind.upper()).strip("_")
    if not _LABEL.fullmatch(label):
        raise ValueError(f"cannot make a placeholder label from finding type {kind!r}")
    return label


def _normalize(label: str, value: str) -> str:
    """The form two spellings of one value share, so they get one placeholder."""
    if label == "EMAIL":
        return value.strip().lower()
    if label in _FREE_TEXT_TYPES:
        return " ".join(value.split())
    # Identifiers (IBAN, phone, card, SIRET, ...) are written with arbitrary grouping.
    return _IDENTIFIER_SEPARATORS.sub("", value)


class Pseudonymizer:
    """Replaces findings by placeholders that are stable for one secret (the tenant key)."""

    def __init__(self, secret: bytes) -> None:
        # A short key would let anyone who sees placeholders confirm guesses by brute force.
        if len(secret) < 16:
            raise ValueError("the pseudonymization secret must be at least 16 bytes")
        self._secret = secret

    def placeholder(self, kind: str, value: str) -> str:
        """The placeholder standing for ``value`` of type ``kind``."""
        label = _label(kind)
        # The 0x00 separator keeps (type, value) pairs unambiguous: "A"+"BC" differs from "AB"+"C".
        message = label.encode() + b"\x00" + _normalize(label, value).encode()
        digest = hmac.new(self._secret, message, hashlib.sha256).digest()
        return f"{OPEN}{label}_{base64.b32encode(digest).decode()[:_HASH_CHARS]}{CLOSE}"

    def pseudonymize(self, text: str, findings: Sequence[Span]) -> tuple[str, dict[str, str]]:
        """Return the text with placeholders and the mapping placeholder -> first original spelling.

        The original is read from ``text[start:end]`` (authoritative for the round trip).
        Two spellings of one value share a placeholder, so both restore to the first spelling.
        """
        return self.apply(text, findings, lambda _type: "pseudonymize")

    def apply(
        self, text: str, findings: Sequence[Span], action: Callable[[str], str]
    ) -> tuple[str, dict[str, str]]:
        """One pass over the text: each finding is pseudonymized, redacted or kept, as
        `action(type)` says ("pseudonymize", "redact", anything else: kept)."""
        parts: list[str] = []
        mapping: dict[str, str] = {}
        position = 0
        for f in _checked(text, findings):
            parts.append(_escape(text[position : f.start]))
            original = text[f.start : f.end]
            what = action(f.type)
            if what == "pseudonymize":
                placeholder = self.placeholder(f.type, original)
                mapping.setdefault(placeholder, original)
                parts.append(placeholder)
            elif what == "redact":
                parts.append(f"[{_label(f.type)}]")
            else:
                parts.append(_escape(original))
            position = f.end
        parts.append(_escape(text[position:]))
        return "".join(parts), mapping


def _escape(plain: str) -> str:
    return plain.replace(OPEN, OPEN + OPEN)


def _scan(text: str, mapping: Mapping[str, str], final: bool) -> tuple[str, str]:
    """Restore ``text`` left to right; return (restored, held-back suffix).

    Unless ``final``, a suffix from a ⟦ that could still grow into a placeholder or an escape is
    held back instead of emitted. Decisions at each ⟦ depend only on the characters after it, so
    scanning in pieces gives exactly what scanning the whole text gives.
    """
    parts: list[str] = []
    position = 0
    while (at := text.find(OPEN, position)) >= 0:
        parts.append(text[position:at])
        if text.startswith(OPEN, at + 1):  # an escaped literal ⟦
            parts.append(OPEN)
            position = at + 2
        elif match := _PLACEHOLDER.match(text, at):
            parts.append(mapping.get(match.group(), match.group()))  # unknown ones stay
            position = match.end()
        elif not final and _PARTIAL.fullmatch(text, at + 1):
            return "".join(parts), text[at:]
        else:  # a ⟦ that starts nothing: plain text
            parts.append(OPEN)
            position = at + 1
    parts.append(text[position:])
    return "".join(parts), ""


def restore(text: str, mapping: Mapping[str, str]) -> str:
    """Put the originals back for every known placeholder and undo the ⟦⟦ escape."""
    return _scan(text, mapping, final=True)[0]


class StreamRestorer:
    """Restores a streamed response chunk by chunk, with latency only inside placeholders."""

    def __init__(self, mapping: Mapping[str, str]) -> None:
        self._mapping = mapping
        self._held = ""  # at most one partial placeholder: under 60 characters

    def feed(self, chunk: str) -> str:
        """Return what can be emitted now; hold back only a possible placeholder start."""
        emitted, self._held = _scan(self._held + chunk, self._mapping, final=False)
        return emitted

    def flush(self) -> str:
        """Return the rest at the end of the stream (an incomplete placeholder as is)."""
        emitted, self._held = _scan(self._held, self._mapping, final=True)
        return emitted


def _restore_json_value(value: object, mapping: Mapping[str, str]) -> object:
    if isinstance(value, str):
        return restore(value, mapping)
    if isinstance(value, list):
        return [_restore_json_value(item, mapping) for item in value]
    if isinstance(value, dict):
        return {
            restore(key, mapping): _restore_json_value(item, mapping) for key, item in value.items()
        }
    return value


def restore_json_arguments(arguments: str, mapping: Mapping[str, str]) -> str:
    """Restore placeholders inside the JSON text of tool-call arguments, keeping it valid JSON.

    Parsing first (rather than replacing in the raw text) also catches placeholders the model
    wrote with ``\\u27e6`` escapes, and lets the encoder escape quotes and backslashes in originals.
    """
    try:
        parsed = parse_json_bounded(arguments)  # a model's answer nested too deep: as text
    except ValueError:
        # Not JSON (yet): restore textually with JSON-escaped originals, the best that can be
        # done for a string the client will have to cope with anyway.
        escaped = {
            key: json.dumps(value, ensure_ascii=False)[1:-1] for key, value in mapping.items()
        }
        return restore(arguments, escaped)
    restored = _restore_json_value(parsed, mapping)
    if restored == parsed:
        return arguments  # nothing to restore: keep the model's exact formatting
    return json.dumps(restored, ensure_ascii=False)
