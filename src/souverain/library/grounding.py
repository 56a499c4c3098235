"""Answers grounded on document libraries, with citations.

A chat request names libraries with Mistral's `document_library` tool or with the
`library_ids` extension. Before the model is called, the gateway searches those
libraries as the caller (their access rules apply inside the search), puts the chunks
found in a system message numbered [1], [2], … and returns them as `citations`
(document id and name, page, character offsets) next to the answer. The tool itself
never reaches an engine. The model call then goes through the pipeline like any other:
the sources it is shown pass data-loss prevention and the policy like the prompt does.
"""

from __future__ import annotations

from typing import Any

from ..context import RequestContext
from ..errors import InvalidRequest
from ..protocol.chat import ChatCompletionRequest, ChatMessage, DocumentLibraryTool
from ..state import AppState
from .search import SearchHit

TOP_K = 5
MAX_SOURCE_CHARS = 6000  # the sources' share of the prompt, whatever the chunk size

INSTRUCTIONS = (
    "Answer the user's question using the sources below. Cite each source you use with "
    "its number in square brackets, like [1]. If the sources do not contain the answer, "
    "say so.\n\n"
)


async def ground(
    state: AppState, ctx: RequestContext, request: ChatCompletionRequest
) -> tuple[ChatCompletionRequest, list[dict[str, Any]] | None]:
    """The request to send (sources in, library tools out) and its citations; the
    request unchanged and None when it names no library."""
    libraries = request.grounding_libraries
    if not libraries:
        return request, None
    if state.libraries is None:
        raise InvalidRequest("document libraries are disabled on this server", param="tools")
    query = _question(request)
    hits = await state.libraries.search(ctx, query, library_ids=libraries, top_k=TOP_K)
    sources = _sources(hits)
    tools = [tool for tool in request.tools or () if not isinstance(tool, DocumentLibraryTool)]
    grounded = request.model_copy(
        update={
            "messages": [ChatMessage(role="system", content=sources), *request.messages],
            "tools": tools or None,
            "tool_choice": request.tool_choice if tools else None,
            "library_ids": None,
        }
    )
    return grounded, [_citation(index, hit) for index, hit in enumerate(hits, start=1)]


def _question(request: ChatCompletionRequest) -> str:
    for message in reversed(request.messages):
        if message.role == "user" and message.text().strip():
            return message.text()
    raise InvalidRequest(
        "grounding on libraries needs a user message to search for", param="messages"
    )


def _sources(hits: list[SearchHit]) -> str:
    if not hits:
        return INSTRUCTIONS + "(No source matches the question.)"
    budget = MAX_SOURCE_CHARS // len(hits)
    parts = []
    for index, hit in enumerate(hits, start=1):
        where = f", page {hit.page}" if hit.page is not None else ""
        parts.append(f"[{index}] {hit.document_name}{where}\n{hit.text[:budget]}")
    return INSTRUCTIONS + "\n\n".join(parts)


def _citation(index: int, hit: SearchHit) -> dict[str, Any]:
    return {
        "index": index,
        "document_id": hit.document_id,
        "document_name": hit.document_name,
        "library_id": hit.library_id,
        "library_name": hit.library_name,
        "page": hit.page,
        "char_start": hit.char_start,
        "char_end": hit.char_end,
        "score": round(hit.score, 6),
    }
