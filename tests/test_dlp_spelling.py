"""Spelling matrix: no way of writing an identifier gets it past data-loss prevention.

Each variant goes through the real gateway to `RecordingUpstream` (a fake that records every
body and echoes the last user message), declared as a US cloud whose DLP rule is
`pseudonymize`. For each: neither the value as written nor its letters-and-digits form
(after NFKC, format characters dropped, case folded) is in anything the upstream received,
and the echo comes back to the client restored, exactly as sent. Copy-paste from PDFs and
web pages produces most of these spellings by accident; the split variants put one value
across two messages, two content parts or two strings of tool-call arguments.
"""

from __future__ import annotations

import contextlib
import json
import unicodedata
from collections.abc import Iterator
from typing import Any

import openai
import pytest

from .conftest import Server, start_server, stop_server
from .recording_upstream import RecordingUpstream

IBAN = "FR7630006000011234567890189"
CARD = "4111111111111111"
NIR = "284057505602390"
EMAIL = "jeanne.dupont@example.fr"
PHONE = "+33 6 12 34 56 78"
AWS = "AKIAIOSFODNN7EXAMPLE"
GITHUB = "ghp_A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8"
# Full-width forms sit at a fixed offset from ASCII (U+FF01-FF5E for "!"-"~").
FULL_WIDTH = {c: c + 0xFEE0 for c in range(ord("!"), ord("~") + 1)}
ARABIC_INDIC = {ord("0") + d: 0x0660 + d for d in range(10)}


def groups(value: str, separator: str, size: int = 4) -> str:
    return separator.join(value[i : i + size] for i in range(0, len(value), size))


# name -> the value as the variant writes it
SPELLINGS: dict[str, str] = {
    "iban dots": groups(IBAN, "."),
    "iban slashes": groups(IBAN, "/"),
    "iban underscores": groups(IBAN, "_"),
    "iban no-break spaces": groups(IBAN, "\u00a0"),
    "iban double spaces": groups(IBAN, "  "),
    "iban tabs": groups(IBAN, "\t"),
    "iban newline": groups(IBAN[:12], " ") + "\n" + groups(IBAN[12:], " "),
    "iban lower case": groups(IBAN, " ").lower(),
    "iban mixed case": "Fr76 3000 6000 0112 3456 7890 189",
    "iban full-width": groups(IBAN, " ").translate(FULL_WIDTH),
    "iban arabic-indic digits": groups(IBAN, " ").translate(ARABIC_INDIC),
    "iban zero-width space": groups(IBAN, "\u200b"),
    "iban zero-width joiner": IBAN[:10] + "\u200d" + IBAN[10:],
    "iban soft hyphens": groups(IBAN, "\u00ad"),
    "iban word joiners": groups(IBAN, "\u2060"),
    "iban glued between letters": f"ref{IBAN}x",
    "card dots": groups(CARD, "."),
    "card one digit per group": " ".join(CARD),
    "card full-width": groups(CARD, " ").translate(FULL_WIDTH),
    "card zero-width space": groups(CARD, "\u200b"),
    "card newlines": groups(CARD, "\n"),
    "jcb 15 digits": "2131 1234 5678 904",
    "jcb 16 digits": "3530 1113 3330 0000",
    "maestro 12 digits": "6759 6498 2648",
    "unionpay": "6200 0000 0000 0005",
    "diners": "3622 720627 1667",
    "nir dashes": "2-84-05-75-056-023-90",
    "nir full-width": "2 84 05 75 056 023 90".translate(FULL_WIDTH),
    "nir zero-width spaces": "\u200b".join(["2", "84", "05", "75", "056", "023", "90"]),
    "email full-width at": EMAIL.replace("@", "\uff20"),
    "email [at] [dot]": "jeanne.dupont [at] example [dot] fr",
    "email percent-encoded": "jeanne.dupont%40example.fr",
    "phone full-width": PHONE.translate(FULL_WIDTH),
    "phone zero-width spaces": PHONE.replace(" ", "\u200b"),
    "phone dutch trunk prefix": "+31(0)6 12345678",
    "phone belgian trunk prefix": "+32 (0)470 12 34 56",
    "phone italian mobile, no prefix": "347 1234567",
    "aws zero-width space": AWS[:8] + "\u200b" + AWS[8:],
    "aws split by a space": AWS[:10] + " " + AWS[10:],
    "aws lower case": AWS.lower(),
    "github zero-width space": GITHUB[:12] + "\u200b" + GITHUB[12:],
    "github split by a space": GITHUB[:20] + " " + GITHUB[20:],
    "github lower case": GITHUB.lower(),
}


def folded(text: str) -> str:
    """Letters and digits only, after NFKC, without format characters, case folded."""
    text = "".join(c for c in text if unicodedata.category(c) != "Cf")
    text = unicodedata.normalize("NFKC", text).casefold()
    return "".join(str(unicodedata.decimal(c)) if c.isdecimal() else c for c in text if c.isalnum())


@pytest.fixture(scope="module")
def gateway(
    upstream: RecordingUpstream, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    us = upstream.deployment(name="us-cloud", jurisdiction="US", operator="US Cloud")
    config = {
        "models": [{"id": "us", "deployments": [us]}],
        # Findings raise the request to "internal" only, which the default policy lets reach
        # a US cloud that keeps nothing: the DLP rule alone decides what the upstream sees.
        "dlp": {"raises": {"*": "internal"},
                "destinations": [{"jurisdictions": ["US"], "actions": {"*": "pseudonymize"}}]},
    }  # fmt: skip
    server = start_server(tmp_path_factory.mktemp("dlp-spelling"), config)
    yield server
    stop_server(server)


def _client(gateway: Server) -> openai.OpenAI:
    return openai.OpenAI(base_url=gateway.v1, api_key=gateway.key, max_retries=0)


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield key
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


def assert_not_sent(bodies: list[Any], value: str) -> None:
    """Neither `value` as written nor its letters-and-digits form in any string received;
    JSON-encoded strings (tool arguments) are read as their content too."""
    assert bodies, "the upstream received nothing"
    strings = list(_strings(bodies))
    for s in list(strings):
        with contextlib.suppress(ValueError):
            strings += list(_strings(json.loads(s)))
    sent = "\x00".join(strings)
    assert value not in sent
    assert folded(value) not in "\x00".join(folded(s) for s in strings)
    assert folded(value) not in folded(sent)  # nor across two strings


@pytest.mark.parametrize("name", list(SPELLINGS))
def test_spelling_never_reaches_the_upstream(
    gateway: Server, upstream: RecordingUpstream, name: str
) -> None:
    value = SPELLINGS[name]
    prompt = f"Merci de traiter {value} aujourd'hui."
    before = len(upstream.received)
    answer = _client(gateway).chat.completions.create(
        model="us", messages=[{"role": "user", "content": prompt}]
    )
    assert_not_sent(upstream.received[before:], value)
    assert answer.choices[0].message.content == prompt  # the echo, restored


# name -> (text before, first half of the value, second half, text after)
SPLITS = {
    "iban": ("Virement vers ", "FR76 3000 6000 ", "0112 3456 7890 189", ", merci."),
    "iban no separator": ("IBAN: ", "FR763000600001", "1234567890189", ""),
    "card": ("Carte ", "4111 1111", " 1111 1111", " expirée."),
    "email": ("Écrire à ", "jeanne.dupont@", "example.fr", " demain."),
    "aws": ("key ", "AKIAIOSFOD", "NN7EXAMPLE", " in the config"),
}


def split(name: str) -> tuple[str, str]:
    before, head, tail, after = SPLITS[name]
    return before + head, tail + after


def assert_halves_not_sent(bodies: list[Any], name: str) -> None:
    """Neither half of the value in anything received (nor, so, the whole)."""
    _, head, tail, _ = SPLITS[name]
    for half in (head, tail):
        assert_not_sent(bodies, half.strip())


@pytest.mark.parametrize("name", list(SPLITS))
def test_split_across_two_messages(gateway: Server, upstream: RecordingUpstream, name: str) -> None:
    first, second = split(name)
    before = len(upstream.received)
    messages: list[Any] = [
        {"role": "user", "content": first},
        {"role": "user", "content": second},
    ]
    answer = _client(gateway).chat.completions.create(model="us", messages=messages)
    assert_halves_not_sent(upstream.received[before:], name)
    assert answer.choices[0].message.content == second  # the echo of the last message


@pytest.mark.parametrize("name", list(SPLITS))
def test_split_across_two_content_parts(
    gateway: Server, upstream: RecordingUpstream, name: str
) -> None:
    first, second = split(name)
    before = len(upstream.received)
    parts = [{"type": "text", "text": first}, {"type": "text", "text": second}]
    answer = _client(gateway).chat.completions.create(
        model="us",
        messages=[{"role": "user", "content": parts}],  # type: ignore[list-item,misc]
    )
    assert_halves_not_sent(upstream.received[before:], name)
    assert answer.choices[0].message.content == first + second  # the parts, echoed joined


@pytest.mark.parametrize("name", list(SPLITS))
def test_split_across_two_strings_of_tool_arguments(
    gateway: Server, upstream: RecordingUpstream, name: str
) -> None:
    first, second = split(name)
    before = len(upstream.received)
    arguments = json.dumps({"head": first, "tail": second})
    messages: list[Any] = [
        {"role": "user", "content": "Archive this."},
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "call_1", "type": "function", "function": {"name": "archive", "arguments": arguments}}]},
        {"role": "tool", "tool_call_id": "call_1", "content": "done"},
        {"role": "user", "content": "Thanks."},
    ]  # fmt: skip
    answer = _client(gateway).chat.completions.create(model="us", messages=messages)
    assert_halves_not_sent(upstream.received[before:], name)
    assert answer.choices[0].message.content == "Thanks."
