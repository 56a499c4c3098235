"""`POST /v1/ocr`: Mistral's OCR endpoint, served by the local OCR engine (docs/ocr.md).

The route authenticates the caller and reads the body; the call itself (classification,
policy, quotas, the OCR in this process, accounting and audit, an optional annotation
through the pipeline) is ocr/call.py's, which batch lines on `/v1/ocr` make too.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from ..ocr.call import OcrCalls
from ..protocol.ocr import OCRRequest
from .completions import decision_headers
from .http import JSON, app_state, parse_body


async def ocr(request: Request) -> Response:
    state = app_state(request)
    ctx = await state.pipeline.open(request.headers, "ocr")
    body = await parse_body(request, OCRRequest)
    rendered = await ocr_calls(request).run(ctx, body)
    return JSON(rendered, headers=decision_headers(ctx))


def ocr_calls(request: Request) -> OcrCalls:
    """The app's OCR calls (one engine, one queue), made on first use if the app's state
    was built without them (the engine itself loads on the first page)."""
    state = app_state(request)
    if state.ocr is None:
        state.ocr = OcrCalls(state.settings, state.pipeline)
    return state.ocr
