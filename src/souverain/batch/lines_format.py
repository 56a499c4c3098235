"""One input line, read the same way by validation and by execution.

OpenAI's line: `{"custom_id": "…", "method": "POST", "url": "/v1/chat/completions",
"body": {…}}`; Mistral's: `{"custom_id": "…", "body": {…}}` (the job names the endpoint
and the model). An output line, in both: `{"id": "batch_req_…", "custom_id": "…",
"response": {"status_code": 200, "request_id": "…", "body": {…}}, "error": null}`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import orjson

from ..jsonsafe import JsonTooDeep, check_depth
from ..protocol.common import new_id

Api = Literal["openai", "mistral"]
MAX_CUSTOM_ID = 512


@dataclass(frozen=True, slots=True)
class Request:
    custom_id: str
    body: dict[str, Any]


class LineProblem(Exception):
    """Why a line cannot be a request: `code` as OpenAI names it, `param` the field."""

    def __init__(self, code: str, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.param = param


def parse_line(data: bytes, api: Api, endpoint: str) -> Request:
    try:
        line = orjson.loads(data)
        check_depth(line)
    except orjson.JSONDecodeError as exc:
        raise LineProblem("invalid_json_line", f"the line is not valid JSON ({exc})") from None
    except JsonTooDeep as exc:
        raise LineProblem("invalid_json_line", exc.message) from None
    if not isinstance(line, dict):
        raise LineProblem("invalid_json_line", "the line is not a JSON object")
    custom_id = line.get("custom_id")
    if not isinstance(custom_id, str) or not custom_id:
        raise LineProblem("missing_custom_id", "custom_id is missing or not a string", "custom_id")
    if len(custom_id) > MAX_CUSTOM_ID:
        raise LineProblem(
            "invalid_custom_id", f"custom_id is longer than {MAX_CUSTOM_ID} characters", "custom_id"
        )
    if api == "openai":
        if line.get("method") != "POST":
            raise LineProblem("invalid_method", 'method must be "POST"', "method")
        if line.get("url") != endpoint:
            raise LineProblem(
                "mismatched_url",
                f"url {str(line.get('url'))[:200]!r} is not the batch's endpoint {endpoint}",
                "url",
            )
    body = line.get("body")
    if not isinstance(body, dict):
        raise LineProblem("invalid_request", "body is missing or not a JSON object", "body")
    if body.get("stream"):
        raise LineProblem("invalid_request", "a batch line cannot stream (stream: true)", "body")
    return Request(custom_id, body)


def output_line(custom_id: str, status: int, request_id: str, body: dict[str, Any]) -> str:
    line = {
        "id": new_id("batch_req"),
        "custom_id": custom_id,
        "response": {"status_code": status, "request_id": request_id, "body": body},
        "error": None,
    }
    return orjson.dumps(line).decode()


def unanswered_line(custom_id: str, code: str, message: str) -> str:
    """A request that got no response at all (the window expired, it was given up)."""
    line = {
        "id": new_id("batch_req"),
        "custom_id": custom_id,
        "response": None,
        "error": {"code": code, "message": message},
    }
    return orjson.dumps(line).decode()
