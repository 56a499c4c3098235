"""Schemathesis over /openapi.json against a real `souverain serve` with the embedded models:
every operation, generated from the document (valid and invalid inputs, boundary values),
called with a key that may call it. The server must never answer 5xx, and every answer
must agree with the document: its status, content type, headers and schema.

The run is bounded (SCHEMATHESIS_EXAMPLES per operation, 6 by default, plus the coverage
phase's boundary cases; a fixed seed, so a failure replays): generated model calls are
sent to the real models with `max_tokens` capped at 8 and a served model's name, so they
reach generation rather than stopping at "no such model".

A server of its own, not the session's: the run creates and deletes tenants, users, keys
and libraries and cuts providers (each cut is lifted at once), which other modules' tests
must not see. Objects the run's own keys depend on are swapped for expendable ones before
a request could change or delete them.
"""

from __future__ import annotations

import os
import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, TypeGuard

import httpx
import pytest
import schemathesis
from schemathesis import Case
from schemathesis.config import SchemathesisConfig
from schemathesis.core.result import Err
from schemathesis.pytest.lazy import get_all_tests
from schemathesis.specs.openapi.checks import positive_data_acceptance
from schemathesis.specs.openapi.schemas import OpenApiSchema

from .conftest import ADMIN_KEY, Server, start_server, stop_server

pytestmark = pytest.mark.model

# Every check schemathesis has runs, "positive data acceptance" (a request the document
# allows is not refused) and "negative data rejection" (one it forbids is) included: the
# protocol models validate strictly, so the document generated from them says what is
# accepted. Some rules are beyond JSON Schema: a relation between two values, the server's
# state, a model's capability, a document's content. A request the document allows may be
# refused for one of these, with a 400 naming the parameter listed here; any other refusal
# of a valid request fails the run. docs/api.md lists them.
BEYOND_JSON_SCHEMA: dict[str, frozenset[str]] = {
    # the model named cannot fill in the middle (no served model can, here)
    "POST /v1/fim/completions": frozenset({"model"}),
    # echo and logprobs together (the prompt's log probabilities need a second pass)
    "POST /v1/completions": frozenset({"echo"}),
    # grounding on libraries searches with the last user message: there must be one; a
    # named or required tool_choice needs the tools it names
    "POST /v1/chat/completions": frozenset({"messages", "tool_choice"}),
    # an empty input needs instructions or a previous response to continue; the parts a
    # message may hold depend on its role (an assistant's: text only; others' may add
    # images, but then no refusal parts): "input[" names any item's part
    "POST /v1/responses": frozenset({"input", "input["}),
    # the data URL's content is not a PDF or an image, or is empty
    # (and the local OCR engine scores lines, not words, and has no vision model for bbox)
    "POST /v1/ocr": frozenset(
        {
            "document",
            "document.document_url",
            "document.image_url",
            "confidence_scores_granularity",
            "bbox_annotation_format",
            "pages",  # page ranges as text ("0,2-4"): their grammar is not in the document
        }
    ),
    # a model that cannot shorten its vectors (dimensions, output_dimension)
    "POST /v1/embeddings": frozenset({"dimensions"}),
    # classification levels are the configuration's (dlp.classifications)
    "POST /admin/v1/keys": frozenset({"classification"}),
    # a page token this server gave (an opaque cursor)
    "GET /v1/libraries": frozenset({"page_token"}),
    "GET /v1/agents/pages": frozenset({"page_token"}),
    # a file id of the caller's (OpenAI's cursor); expires_after's anchor and seconds go
    # together (dependentRequired, which generators may not follow)
    "GET /v1/files": frozenset({"after"}),
    "POST /v1/files": frozenset({"expires_after"}),
    # a batch's window and its files are at most the configuration's
    # (batch.max_timeout_hours, batch.max_input_files); `after` is a batch id the caller has
    "POST /v1/batches": frozenset({"completion_window"}),
    "POST /v1/batch/jobs": frozenset({"timeout_hours", "input_files"}),
    "GET /v1/batches": frozenset({"after"}),
    # a conversation starts with an agent or a model (not both), instructions and tools go
    # with a model, a version with an agent; entries must follow the conversation's state
    "POST /v1/conversations": frozenset(
        {"model", "instructions", "tools", "agent_version", "agent_id", "inputs"}
    ),
    # inputs or tool_confirmations (one is needed); confirmations name pending calls
    "POST /v1/conversations/{conversation_id}": frozenset({"inputs", "tool_confirmations"}),
    "POST /v1/conversations/{conversation_id}/restart": frozenset(
        {"inputs", "from_entry_id", "agent_version", "tool_confirmations"}
    ),
    # an http connector needs its url, a stdio one its command (and headers, env, args
    # each belong to one transport); header names and url shapes are checked by rule
    "POST /admin/v1/connectors": frozenset({"url", "command", "args", "headers", "env"}),
    # index < size, and 0 < old_size <= new_size <= the log's size
    "GET /admin/v1/audit/proof/inclusion": frozenset({"index", "size"}),
    # ... and a size is one of a signed checkpoint
    "GET /admin/v1/audit/proof/consistency": frozenset({"old_size", "new_size", "size"}),
}


EXAMPLES = int(os.environ.get("SCHEMATHESIS_EXAMPLES", "6"))
SEED = int(os.environ.get("SCHEMATHESIS_SEED", "20261203"))
# A regular expression over "METHOD /path": only the operations it matches are run.
ONLY = os.environ.get("SCHEMATHESIS_ONLY", "")
MAX_TOKENS = 8
# Calls per model route that name a served model (the rest name none: a quick 404). On a
# shared 2-core machine one generation can take tens of seconds, so this bounds the run.
GENERATIONS = int(os.environ.get("SCHEMATHESIS_GENERATIONS", "6"))
SHORT_TEXT = 120
CHAT_MODEL, EMBEDDING_MODEL = "smollm2-135m-instruct", "multilingual-e5-small"
# The least privileged role first: each operation is called by the weakest key it allows.
WEAKEST_FIRST = ("user", "developer", "auditor", "admin", "owner")
# Each generating route's length limit, set when absent and capped when valid.
LENGTH_LIMITS = {"/v1/chat/completions": "max_tokens", "/v1/fim/completions": "max_tokens",
                 "/v1/completions": "max_tokens", "/v1/responses": "max_output_tokens"}  # fmt: skip
# Path parameters naming objects the run's keys hang on, by the parameter's name.
PROTECTED_PARAMS = {"tenant_id": "tenants", "user_id": "users", "key_id": "keys"}


@dataclass
class Gateway:
    server: Server
    keys: dict[str, str] = field(default_factory=dict)  # role -> secret
    protected: dict[str, set[int]] = field(default_factory=dict)  # collection -> ids
    victims: dict[str, int] = field(default_factory=dict)  # collection -> expendable id
    statuses: Counter[str] = field(default_factory=Counter)
    generations: Counter[str] = field(default_factory=Counter)  # path -> served-model calls

    def ok(self, method: str, path: str, body: Any = None) -> Any:
        response = httpx.request(method, self.server.url + path, json=body, timeout=60,
                                 headers={"Authorization": f"Bearer {ADMIN_KEY}"})  # fmt: skip
        assert response.status_code in (200, 201), (method, path, response.text)
        return response.json()

    def key_for(self, operation: dict[str, Any]) -> str | None:
        if not operation.get("security"):
            return None  # public routes, and /metrics (loopback): no credentials
        roles = operation.get("x-roles") or WEAKEST_FIRST
        return self.keys[next(role for role in WEAKEST_FIRST if role in roles)]


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    server = start_server(tmp_path_factory.mktemp("schemathesis"))
    try:
        yield populate(Gateway(server))
    finally:
        stop_server(server)


def populate(gateway: Gateway) -> Gateway:
    """A tenant with a key per role; the ids they depend on; expendable objects."""
    gateway.keys["owner"] = ADMIN_KEY
    gateway.ok("POST", "/admin/v1/tenants", {"name": "fuzzed"})
    for role in WEAKEST_FIRST[:-1]:
        user = gateway.ok("POST", "/admin/v1/users",
                          {"name": f"st-{role}", "role": role, "tenant": "fuzzed"})  # fmt: skip
        key = gateway.ok("POST", "/admin/v1/keys", {"name": f"st-{role}", "user_id": user["id"]})
        gateway.keys[role] = key["key"]
    for collection in ("tenants", "users", "keys"):
        listed = gateway.ok("GET", f"/admin/v1/{collection}")["data"]
        gateway.protected[collection] = {int(item["id"]) for item in listed}
    gateway.victims = {
        "tenants": gateway.ok("POST", "/admin/v1/tenants", {"name": "expendable"})["id"],
        "users": gateway.ok("POST", "/admin/v1/users", {"name": "expendable", "tenant": "fuzzed"})["id"],
        "keys": gateway.ok("POST", "/admin/v1/keys", {"name": "expendable", "tenant": "fuzzed"})["id"],
    }  # fmt: skip
    return gateway


@pytest.fixture(scope="module")
def api_schema(gateway: Gateway) -> OpenApiSchema:
    config = SchemathesisConfig.from_dict(
        {
            "seed": SEED,
            "suppress-health-check": ["too_slow", "filter_too_much", "data_too_large"],
            # U+0000 in any string is refused (400): PostgreSQL text cannot hold it
            # (docs/api.md); the run does not send it where the document allows text.
            "generation": {"max-examples": EXAMPLES, "database": "none", "allow-x00": False},
            "phases": {"stateful": {"enabled": False}},
            "request-timeout": 120,
        }
    )
    schema = schemathesis.openapi.from_url(gateway.server.url + "/openapi.json", config=config)
    if ONLY:  # a quicker run over some operations, while fixing what the full run found
        return schema.include(name_regex=ONLY)  # type: ignore[return-value]
    return schema


def test_every_answer_agrees_with_the_document(api_schema: OpenApiSchema, gateway: Gateway) -> None:
    """One Hypothesis test per operation (schemathesis builds them: its examples, coverage
    and fuzzing phases), all run here; every operation's failures are collected and
    reported together. (Run outside schemathesis's pytest plugin, which does not work
    with pytest 9's node ids.)"""
    examples: Counter[str] = Counter()
    failures: dict[str, str] = {}

    def call(case: Case) -> None:
        examples[case.operation.label] += 1
        _check(case, gateway)

    operations, ran = 0, set()
    documented = {f"{method.upper()} {path}" for path, item in api_schema.raw_schema["paths"].items()
                  for method in item if not ONLY or re.search(ONLY, f"{method.upper()} {path}")}  # fmt: skip
    for result in get_all_tests(schema=api_schema, test_func=call, settings=None,
                                given_kwargs=None):  # fmt: skip
        if isinstance(result, Err):  # an operation it cannot build tests for
            error = result.err()
            failures[getattr(error, "path", None) or repr(error)[:80]] = f"not built: {error}"
            continue
        operation, run = result.ok()
        operations += 1
        ran.add(operation.label)
        try:
            run()
        except (Exception, BaseExceptionGroup) as exc:  # schemathesis's FailureGroup is a
            # BaseExceptionGroup; anything else is reported the same way
            failures[operation.label] = f"{type(exc).__name__}: {exc}"[:3000]
    summary = (f"{operations} operations, {sum(examples.values())} requests, "
               f"statuses {dict(sorted(gateway.statuses.items()))}, "
               f"served-model calls {dict(gateway.generations)}")  # fmt: skip
    print(summary)
    # Schemathesis leaves out the URL it read the document from (it answered 200 then;
    # test_openapi.py validates it): every other operation is run.
    missed = sorted(documented - ran - {"GET /openapi.json"} - failures.keys())
    if missed:
        failures["operations not run"] = f"{missed}; {summary}"
    assert not failures, "\n\n".join(f"{label}\n{text}" for label, text in failures.items())


def _check(case: Case, gateway: Gateway) -> None:
    operation = case.operation.definition.raw
    _spare_what_the_run_needs(case, gateway)
    _bound_model_calls(case, gateway)
    key = gateway.key_for(operation)
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    response = case.call(base_url=gateway.server.url, headers=headers)
    gateway.statuses[str(response.status_code)] += 1
    excluded = [positive_data_acceptance] if _beyond_json_schema(case, response) else []
    try:
        case.validate_response(response, headers=headers, excluded_checks=excluded)
    finally:
        if case.path == "/admin/v1/providers/cut" and response.status_code == 200:
            httpx.post(gateway.server.url + "/admin/v1/providers/restore", json=case.body,
                       headers={"Authorization": f"Bearer {ADMIN_KEY}"}, timeout=60)  # fmt: skip


def _beyond_json_schema(case: Case, response: Any) -> bool:
    """A 400 for a rule the document cannot state (BEYOND_JSON_SCHEMA), naming its parameter."""
    params = BEYOND_JSON_SCHEMA.get(case.operation.label)
    if not params or response.status_code != 400:
        return False
    try:
        error = response.json()["error"]
    except (ValueError, KeyError, TypeError):
        return False
    param = error.get("param") if isinstance(error, dict) else None
    if not isinstance(param, str):
        return False
    return param in params or any(p.endswith("[") and param.startswith(p) for p in params)


def _spare_what_the_run_needs(case: Case, gateway: Gateway) -> None:
    """A change to a tenant, user or key the run's keys depend on goes to an expendable
    one instead: the request is the same kind, the run keeps its keys."""
    if case.method.upper() == "GET" or not case.path_parameters:
        return
    for name, collection in PROTECTED_PARAMS.items():
        value = str(case.path_parameters.get(name, "")).strip()
        if value.isdigit() and int(value) in gateway.protected[collection]:
            case.path_parameters[name] = gateway.victims[collection]


def _bound_model_calls(case: Case, gateway: Gateway) -> None:
    """Generation stays short, and a valid model name names a served model. A value the
    document allows is only swapped for another it allows, so a case generated to be
    invalid stays invalid."""
    body = case.body
    if not isinstance(body, dict) or _negative(case):
        return  # a request generated to be refused is sent as generated
    model = body.get("model")
    if isinstance(model, str) and model and gateway.generations[case.path] < GENERATIONS:
        gateway.generations[case.path] += 1  # past the budget: "no such model", a quick 404
        body["model"] = EMBEDDING_MODEL if case.path == "/v1/embeddings" else CHAT_MODEL
    limit = LENGTH_LIMITS.get(case.path)
    if limit is not None:
        for name in (limit, "max_completion_tokens"):
            value = body.get(name)
            if value is None and name == limit:  # absent or null: the model's whole context
                value = MAX_TOKENS
            if _positive_int(value):
                body[name] = min(value, MAX_TOKENS)
    if case.path == "/v1/conversations" and body.get("model") == CHAT_MODEL:
        # a turn's generation is bounded like a chat call's (else the turn's time limit)
        args = body.get("completion_args")
        args = dict(args) if isinstance(args, dict) else {}
        args["max_tokens"] = (
            min(args["max_tokens"], MAX_TOKENS)
            if _positive_int(args.get("max_tokens"))
            else MAX_TOKENS
        )
        body["completion_args"] = args
    if case.path == "/v1/embeddings" and isinstance(body.get("input"), list):
        body["input"] = body["input"][:8] or body["input"]
    # Prompts stay small: the run checks what the server answers, not how fast a long
    # prompt is read on a shared CPU (a few messages, short texts, two tools at most).
    for name in ("messages", "tools", "input"):
        if isinstance(body.get(name), list) and len(body[name]) > 2:
            body[name] = body[name][:2]
    _shorten_texts(body)


def _shorten_texts(value: Any, depth: int = 0) -> None:
    """Every string of a generated body cut to SHORT_TEXT characters, in place."""
    items = value.items() if isinstance(value, dict) else enumerate(value)
    for key, item in list(items):
        if isinstance(item, str) and len(item) > SHORT_TEXT:
            value[key] = item[:SHORT_TEXT]
        elif isinstance(item, dict | list) and depth < 8:
            _shorten_texts(item, depth + 1)


def _negative(case: Case) -> bool:
    return case.meta is not None and case.meta.generation.mode.is_negative


def _positive_int(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1
