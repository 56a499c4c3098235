"""Secret detector: credentials, API keys and passwords pasted into prompts (type `secret`).

Two kinds of rules, both cheap on clean text:
- token rules with a distinctive literal ("AKIA", "ghp_", "eyJ"...): the regex only runs
  when a plain substring test finds the literal;
- name rules: a secret-ish name ("password", "api_key", "token"...) followed by a value,
  judged by the name (password-like or key-like) and by the value (placeholder, entropy).
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
from collections import Counter
from collections.abc import Callable, Iterator

from souverain.dlp import budget
from souverain.dlp.detectors import Finding


def shannon_entropy(value: str) -> float:
    """Bits per character: random keys score ~4-6, words and identifiers score lower."""
    n = len(value)
    return -sum(c / n * math.log2(c / n) for c in Counter(value).values()) if n else 0.0


def _jwt_header_ok(token: str) -> bool:
    # A JWT's first part is base64url JSON with an "alg": this rejects dotted look-alikes.
    head = token.split(".", 1)[0]
    try:
        decoded = json.loads(base64.urlsafe_b64decode(head + "=" * (-len(head) % 4)))
    except (binascii.Error, ValueError):
        return False
    return isinstance(decoded, dict) and "alg" in decoded


def _has_digit_and_letter(token: str) -> bool:
    return any(c.isdigit() for c in token) and any(c.isalpha() for c in token)


def _azure_connection(value: str) -> bool:
    return "AccountKey=" in value or "SharedAccessSignature=" in value


_AWS_PREFIXES = ("AKIA", "ASIA", "AGPA", "AIDA", "AROA", "AIPA", "ANPA", "ANVA", "ABIA")
_Check = Callable[[str], bool] | None

# (gate, pattern, extra check). The gate is one character the token contains: a single
# character `in` test is a memchr, far cheaper than a regex pass over clean text. Every
# pattern starts with a literal so the regex engine can jump to it; the left boundary is
# checked in code for the same reason. The span is group "v" if present, else the match.
_TOKEN_RULES: tuple[tuple[str, re.Pattern[str], _Check], ...] = (
    (
        "A",
        re.compile(
            r"A(?:" + "|".join(p[1:] for p in _AWS_PREFIXES) + r")[A-Z0-9]{16}"
            r"(?![A-Za-z0-9])"
        ),
        None,
    ),
    ("_", re.compile(r"gh(?:[pousr]_[A-Za-z0-9]{36,251}|ithub_pat_\w{22,244})(?!\w)"), None),
    ("-", re.compile(r"glpat-[\w\-]{20,}(?![\w\-])"), None),
    ("-", re.compile(r"xox[abprs]-[A-Za-z0-9\-]{10,}(?![\w\-])"), None),
    ("-", re.compile(r"sk-(?:proj-|svcacct-|admin-)?[\w\-]{20,}(?![\w\-])"), _has_digit_and_letter),
    (".", re.compile(r"eyJ[\w\-]{5,}\.[\w\-]{5,}\.[\w\-]*(?![\w\-]|\.[\w\-])"), _jwt_header_ok),
    # PEM block; an unterminated (truncated) paste still counts up to the end of its body.
    (
        "-",
        re.compile(
            r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY-----(?:(?s:.*?)-----END "
            r"(?:[A-Z0-9]+ )*PRIVATE KEY-----|[A-Za-z0-9+/=\s\\]*)"
        ),
        None,
    ),
    ('"', re.compile(r'"private_key"\s*:\s*"(?P<v>[^"]{20,})"'), None),
    ("=", re.compile(r"DefaultEndpointsProtocol=[^\s\"'<>,]*[^\s\"'<>,.]"), _azure_connection),
    ("=", re.compile(r"AccountKey=(?P<v>[A-Za-z0-9+/]{20,}={0,2})"), None),
    ("=", re.compile(r"SharedAccessKey=(?P<v>[A-Za-z0-9+/]{20,}={0,2})"), None),
)

# Name rules. Password names take any non-placeholder value after "=" or ":"; config names
# take values of 8+ characters there; key names need a value that looks generated.
_PASSWORD_NAMES = (
    "password",
    "passwd",
    "passwort",
    "pwd",
    "mot_de_passe",
    "mot de passe",
    "contraseña",
    "wachtwoord",
    "hasło",
    "haslo",
)
_CONFIG_NAMES = ("secret", "token", "api_key", "apikey", "api-key")
_KEY_NAMES = (
    "api key",
    "access_key",
    "accesskey",
    "private_key",
    "auth",
    "credential",
    "bearer",
    "mistral",
    "aws",
)
# Substring gates tested on the lowercased ASCII characters of the text, the others dropped
# (cheap: a body of zero-width spaces gives nothing to test; "hasło" gives "haso");
# only the names behind a gate that hits are searched for in the text itself.
_NAME_GATES: tuple[tuple[bytes, tuple[str, ...]], ...] = (
    (b"pass", ("password", "passwd", "passwort", "mot_de_passe", "mot de passe")),
    (b"pwd", ("pwd",)),
    (b"secret", ("secret",)),
    (b"token", ("token",)),
    (b"api", ("api_key", "apikey", "api-key", "api key")),
    (b"access", ("access_key", "accesskey")),
    (b"private", ("private_key",)),
    (b"auth", ("auth",)),
    (b"credential", ("credential",)),
    (b"bearer", ("bearer",)),
    (b"mistral", ("mistral",)),
    (b"aws", ("aws",)),
    (b"contrase", ("contraseña",)),
    (b"wachtwoord", ("wachtwoord",)),
    (b"haso", ("hasło",)),
    (b"haslo", ("haslo",)),
)
_NAMES = _PASSWORD_NAMES + _CONFIG_NAMES + _KEY_NAMES
_NAMES_RX = re.compile("|".join(map(re.escape, _NAMES)), re.IGNORECASE)  # rare slow path
_IDENT_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-")
# A name inside these identifiers is a setting about the secret, not the secret itself.
_NOT_SECRET_WORDS = frozenset(
    {
        "max",
        "min",
        "num",
        "count",
        "limit",
        "len",
        "length",
        "size",
        "usage",
        "budget",
        "ttl",
        "expiry",
        "expires",
        "type",
        "url",
        "uri",
        "endpoint",
        "file",
        "path",
        "name",
        "hint",
        "policy",
        "reset",
        "tokens",
        "tokenizer",
        "required",
        "field",
        "id",
    }
)
_WORD_SPLIT = re.compile(r"[\s_.\-]+")

# A value: quoted, an <angle placeholder> (whole, so it is recognized as one), or a word.
_VALUE = (
    r"""(?:(?P<q>["'`])(?P<qv>[^"'`\r\n]{1,200})(?P=q)"""
    r"""|(?P<v><[^<>\r\n]{1,200}>|[^\s"'`,;)\]}>]{1,200}))"""
)
# name [up to two more words] [quote] separator value: `DB_PASSWORD=x`, `"token": "x"`,
# `AWS secret access key = x`, `Passwort: x`.
_ASSIGN = re.compile(
    r"""(?:[ \t]+[A-Za-z][\w\-]{0,15}){0,2}?["']?[ \t]*(?P<sep>:=|=>|[:=])[ \t]*""" + _VALUE
)
# name then the value with no separator ("Bearer x", "the key is x"): generated values only.
_NEAR = re.compile(r"[ \t]+(?:(?:is|est|ist|è|es)[ \t]+)?" + _VALUE)
_PLACEHOLDER = re.compile(
    r"(?i)\*+|x{3,}|\.{3,}|<[^>]*>|\$\{?[\w.]+\}?|\{\{.*\}\}|%\(?\w+\)?s?|null|none|nil|true"
    r"|false|undefined|required|optional|string|str|your[_\-]?\w*|example|redacted"
)
_GENERATED = re.compile(r"[A-Za-z0-9+/_\-.=~]{20,}")
_MISTRAL = re.compile(r"[A-Za-z0-9]{32}")
_AWS_SECRET = re.compile(r"[A-Za-z0-9/+]{40}")
ENTROPY_THRESHOLD = 3.5  # bits/char; random base64/hex keys of 20+ chars clear it


def _name_hits(text: str) -> Iterator[tuple[int, int]]:
    """(start, end) of secret-ish names in `text`."""
    gated = text.encode("ascii", "ignore").lower()
    names = [n for gate, group in _NAME_GATES if gate in gated for n in group]
    if not names:
        return
    lower = text.lower()
    if len(lower) != len(text):  # lower() lengthened a rare character: offsets differ
        for m in _NAMES_RX.finditer(text):
            yield m.span()
        return
    for name in names:
        i = lower.find(name)
        while i != -1:
            if _word_bounded(text, i, i + len(name)):
                yield i, i + len(name)
            i = lower.find(name, i + 1)


def _word_bounded(text: str, start: int, end: int) -> bool:
    """A name, not part of a longer word: "secretariaat" is no secret. `DB_PASSWORD`,
    `api-key` and camelCase `clientSecret`/`secretKey` still count."""
    before = text[start - 1] if start else " "
    after = text[end] if end < len(text) else " "
    head_ok = not before.isalpha() or (before.islower() and text[start].isupper())
    tail_ok = not after.isalpha() or (after.isupper() and text[end - 1].islower())
    return head_ok and tail_ok


def _key_value_ok(key: str, value: str) -> bool:
    """A value next to a key-like name: a known key shape, or long, mixed and high-entropy."""
    k = key.lower()
    if ("mistral" in k or "api" in k) and _MISTRAL.fullmatch(value):
        return True
    if "aws" in k and _AWS_SECRET.fullmatch(value):
        return True
    return (
        _GENERATED.fullmatch(value) is not None
        and _has_digit_and_letter(value)
        and shannon_entropy(value) >= ENTROPY_THRESHOLD
    )


def _assigned_value_ok(name: str, sep: str, value: str, quoted: bool) -> bool:
    """A value after `name =` / `name:` in a config line."""
    if _PLACEHOLDER.fullmatch(value) or "(" in value:  # template or code: os.getenv(...)
        return False
    if sep == ":" and not quoted and value.isalpha() and (value.islower() or value.istitle()):
        return False  # prose: "Forgot your password: click here"
    if name in _PASSWORD_NAMES:
        return True
    # "token: 4096" is a count, not a credential.
    return name in _CONFIG_NAMES and len(value) >= 8 and not value.isdigit()


class SecretDetector:
    name = "secrets"
    types = ("secret",)

    def find(self, text: str) -> list[Finding]:
        spans: dict[tuple[int, int], None] = {}  # ordered set: rules may agree on a span
        for gate, pattern, check in _TOKEN_RULES:
            if gate not in text:
                continue
            group = "v" if "v" in pattern.groupindex else 0
            for m in pattern.finditer(text):
                budget.charge(budget.PER_CANDIDATE)
                s = m.start()
                if s > 0 and (text[s - 1].isalnum() or text[s - 1] in "_-"):
                    continue  # inside a longer word: "task-force", "...xAKIA..."
                if check is None or check(m.group(group)):
                    spans[m.span(group)] = None
        for span in self._named_values(text):
            spans[span] = None
        return [Finding(s, e, "secret", text[s:e]) for s, e in spans]

    @staticmethod
    def _named_values(text: str) -> Iterator[tuple[int, int]]:
        n = len(text)
        # A name inside a value already taken is part of that value: skipping it keeps a
        # body of "password=password=..." linear (each hit would read 200 characters on).
        taken = bytearray(0)
        for ns, ne in _name_hits(text):
            budget.charge(budget.PER_SECRET_NAME)
            if ns < len(taken) and taken[ns]:
                continue
            s, e = ns, ne
            while s > 0 and text[s - 1] in _IDENT_CHARS:
                s -= 1
            while e < n and text[e] in _IDENT_CHARS:
                e += 1
            key = text[s:e]
            words = {w.lower() for w in _WORD_SPLIT.split(key) if w}
            if words & _NOT_SECRET_WORDS:
                continue
            name = text[ns:ne].lower()
            m = _ASSIGN.match(text, e)
            if m is not None:
                quoted = m.group("qv") is not None
                group = "qv" if quoted else "v"
                value = m.group(group)
                if _assigned_value_ok(name, m.group("sep"), value, quoted) or _key_value_ok(
                    text[s : m.start(group)], value
                ):
                    taken = _take(taken, n, *m.span(group))
                    yield m.span(group)
                    continue
            m = _NEAR.match(text, e)
            if m is not None:
                group = "qv" if m.group("qv") is not None else "v"
                if _key_value_ok(key, m.group(group)):
                    taken = _take(taken, n, *m.span(group))
                    yield m.span(group)


def _take(taken: bytearray, n: int, start: int, end: int) -> bytearray:
    """Marks text[start:end] taken (the bytearray is made on the first value found)."""
    if not taken:
        taken = bytearray(n)
    taken[start:end] = b"\x01" * (end - start)
    return taken
