"""Which texts of a request the DLP stage reads, and how replacing them keeps the request valid."""

from __future__ import annotations

import json
from typing import Any

from souverain.dlp.detectors import Scanner
from souverain.dlp.fields import read_texts, with_texts
from souverain.protocol.chat import ChatCompletionRequest

PASSWORD_LINE = 'password: "Azur2000?"\nuser: admin'


def chat(*messages: dict[str, Any]) -> ChatCompletionRequest:
    return ChatCompletionRequest.model_validate({"model": "m", "messages": list(messages)})


def call(arguments: Any) -> dict[str, Any]:
    function = {"name": "f", "arguments": arguments}
    return {"role": "assistant", "content": None,
            "tool_calls": [{"id": "c1", "type": "function", "function": function}]}  # fmt: skip


def test_json_arguments_are_read_as_their_strings_numbers_and_keys() -> None:
    arguments = json.dumps(
        {"note": PASSWORD_LINE, "card": 4111111111111111, "to": {"a@b.fr": True}}
    )
    texts = read_texts(chat(call(arguments)))
    # The call's id and function name are read too (every string of the request is).
    assert texts == ["c1", "f", PASSWORD_LINE, "note", "4111111111111111", "card", "a@b.fr", "to"]


def test_escaping_no_longer_hides_a_secret() -> None:
    # Scanned as JSON text, the password runs into the escaped newline and is cut wrong.
    arguments = json.dumps({"config": PASSWORD_LINE})
    findings = [
        f.value for text in read_texts(chat(call(arguments))) for f in Scanner.default().scan(text)
    ]
    assert findings == ["Azur2000?"]


def test_replacing_keeps_valid_json_and_the_untouched_formatting() -> None:
    arguments = '{"note":  "x", "n": 4111111111111111, "keep": [1, "y"]}'
    request = chat(
        call(arguments), {"role": "tool", "tool_call_id": "c1", "content": '["a", {"b": "c"}]'}
    )
    same = with_texts(request, read_texts(request))
    assert same.messages[0].tool_calls[0].function.arguments == arguments  # type: ignore[index]
    assert same.messages[1].content == '["a", {"b": "c"}]'
    changed = with_texts(
        request, [t.replace("4111111111111111", "⟦CARD_1⟧").upper() for t in read_texts(request)]
    )
    assert json.loads(changed.messages[0].tool_calls[0].function.arguments) == {  # type: ignore[index,arg-type]
        "NOTE": "X", "N": "⟦CARD_1⟧", "KEEP": [1, "Y"]}  # fmt: skip
    assert json.loads(changed.messages[1].content) == ["A", {"B": "C"}]  # type: ignore[arg-type]


def test_object_arguments_stay_objects_and_plain_text_stays_text() -> None:
    request = chat(
        call({"iban": "DE89 3704 0044 0532 0130 00"}),
        call("not json: DE89 3704 0044 0532 0130 00"),
        {"role": "tool", "tool_call_id": "c1", "content": "plain {result}"},
        {"role": "user", "content": '{"pasted": "json in a user message stays text"}'},
    )
    texts = read_texts(request)
    assert texts == ["c1", "f", "DE89 3704 0044 0532 0130 00", "iban",
                     "c1", "f", "not json: DE89 3704 0044 0532 0130 00",
                     "plain {result}", "c1", '{"pasted": "json in a user message stays text"}']  # fmt: skip
    changed = with_texts(
        request, [t.replace("DE89 3704 0044 0532 0130 00", "⟦IBAN_1⟧") for t in texts]
    )
    assert changed.messages[0].tool_calls[0].function.arguments == {"iban": "⟦IBAN_1⟧"}  # type: ignore[index]
    assert changed.messages[1].tool_calls[0].function.arguments == "not json: ⟦IBAN_1⟧"  # type: ignore[index]
