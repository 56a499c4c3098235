"""Response formats as llama.cpp grammars, checked before a generation may use them.

llama.cpp returns no grammar (a null pointer) when it cannot parse one, and
llama-cpp-python adds that null to the sampler chain: the first sampled token then
dereferences it and the whole process dies. So every grammar is parsed here once, off
the event loop, before it is queued; only a checked grammar reaches a generation, and
a schema that does not parse is a 400. The schema's size is bounded before conversion
(schema_limits.py), and the converted text once more here.

Bounded numbers reach the converter as placeholder constants (json_schema.py); every
grammar passes through `checked_grammar`, which swaps each for its range's rule
(numeric_grammar.py), so tool-call grammars get the same bounds as response formats.
"""

from __future__ import annotations

import functools
import json
import re
from typing import Any

from ..errors import InvalidRequest
from .json_schema import PARAM, RANGE_MARKER, enforceable_schema
from .numeric_grammar import integer_rule, number_rule

MAX_GRAMMAR_CHARS = 256 * 1024
# A placeholder constant as the converter writes it: `"\"MARKER/kind/low/high\""`.
_RANGE = re.compile(
    r'"\\"' + re.escape(RANGE_MARKER) + r'/(integer|number)/([^/"\\]*)/([^/"\\]*)\\""'
)


def response_grammar(schema: dict[str, Any] | None, vocab: Any) -> Any:
    """None for free text, else a CheckedGrammar for `schema` (`{}`: any JSON object)."""
    if schema is None:
        return None
    param = f"{PARAM}.schema" if schema else "response_format"
    return checked_grammar(grammar_text(schema), vocab, param=param)


def grammar_text(schema: dict[str, Any]) -> str:
    """`schema` as GBNF text, its numeric bounds written as rules, not yet parsed.

    The local engine parses it (`checked_grammar`); an `openai` deployment with
    `json_schema_as: grammar` sends it to llama.cpp's server, whose own schema converter
    drops numeric bounds, so the answer keeps them there too."""
    from llama_cpp.llama_grammar import JSON_GBNF, LlamaGrammar

    if not schema:
        return JSON_GBNF
    enforceable = enforceable_schema(schema)
    try:
        text = LlamaGrammar.from_json_schema(json.dumps(enforceable), verbose=False)._grammar
    except RecursionError:
        raise _unenforceable("it nests too deeply to convert") from None
    except Exception as exc:  # the converter raises bare exceptions on schemas it can't express
        raise _unenforceable(f"{type(exc).__name__}: {exc}") from None
    text = _RANGE.sub(_range_rule, text)
    if len(text) > MAX_GRAMMAR_CHARS:
        why = f"its grammar would be {len(text)} characters, over {MAX_GRAMMAR_CHARS}"
        raise _unenforceable(why)
    return text


def checked_grammar(text: str, vocab: Any, *, param: str) -> Any:
    """A grammar llama.cpp has parsed once already, or InvalidRequest."""
    from llama_cpp import llama_cpp as low

    text = _RANGE.sub(_range_rule, text)
    if len(text) > MAX_GRAMMAR_CHARS:
        raise _unenforceable(
            f"its grammar would be {len(text)} characters, over {MAX_GRAMMAR_CHARS}", param
        )
    try:
        data = text.encode("utf-8")  # a lone surrogate (JSON "\\ud800") has no UTF-8
    except UnicodeEncodeError:
        raise _unenforceable("it holds a character that is not valid Unicode", param) from None
    if b"\x00" in data:  # llama.cpp reads a C string: it would see a shorter grammar
        raise _unenforceable("it holds a NUL character", param)
    sampler = low.llama_sampler_init_grammar(vocab, data, b"root")
    if not sampler:  # llama.cpp logged why on stderr; the client gets the gist
        raise _unenforceable("llama.cpp could not build a grammar from it", param)
    low.llama_sampler_free(sampler)
    return checked_type()(_grammar=text)


def _range_rule(match: re.Match[str]) -> str:
    kind, low, high = match.groups()
    if kind == "integer":
        rule = integer_rule(int(low) if low else None, int(high) if high else None)
    else:
        rule = number_rule(float(low) if low else None, float(high) if high else None)
    if rule is None:  # json_schema.py passes no empty range; fail closed all the same
        raise _unenforceable(f"no {kind} lies between {low or '-inf'} and {high or 'inf'}")
    return f"({rule}) space"


def _unenforceable(why: str, param: str = f"{PARAM}.schema") -> InvalidRequest:
    return InvalidRequest(
        f"response_format: this JSON schema cannot be enforced by the local engine: {why}",
        param=param,
    )


@functools.cache
def checked_type() -> type[Any]:
    """The LlamaGrammar subclass that marks a parsed grammar; `LocalLlamaBackend._run`
    accepts no other (llama_cpp is imported lazily, hence a function)."""
    from llama_cpp.llama_grammar import LlamaGrammar

    class CheckedGrammar(LlamaGrammar):
        pass

    return CheckedGrammar
