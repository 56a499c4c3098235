"""The `document_library` tool: an agent searches the libraries it names, as its caller.

An agent's tools may hold Mistral's entry

    {"type": "document_library", "library_ids": ["<id>", ...]}

which binds (`library_tools`, a ToolBinder) to ONE server-side tool, `search_library`,
taking a `query` string. Binding happens before any model step, for the caller of the
turn: each library must be one that caller may read (library/acl.py), else 404 naming
it, exactly as the library routes answer (another tenant's library does not exist for
it); the auditor role reads no library (403). A key whose endpoint scopes leave out
`libraries` may not reach them through an agent either (403).

Running the tool is the library's hybrid search (library/service.py) as that caller,
so the access filter is applied again inside the query (a share revoked since the bind
is a failed call, not a leak), and the query's embedding is a pipeline call of its own
(quotas, DLP, policy, usage, audit). The best chunks come back as numbered text the
model can cite ([1], [2], ...; bounded in total) and as citations shaped like Mistral's
`tool_reference` chunks (`type`, `tool`, `title`, `description`) plus where the passage
is: library, document, page, chunk and character offsets.

Classification. library/ keeps no classification per document (the level claimed at
upload only travels with the ingest job and is dropped once it is processed). So the
level of an outcome is the highest of, for each passage returned:
  - the claim in its document's `attributes` (`{"classification": "restricted"}`, set
    with the documents API; a level the policy does not know counts as its highest:
    an unreadable claim fails closed), and
  - what data-loss prevention finds in the passage's text as sent (`dlp.raises`).
Passages above the caller's `max_classification` are withheld (the call fails, nothing
of them reaches the conversation). See agents/library_sources.py.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from ..context import Principal, RequestContext
from ..errors import InvalidRequest, PermissionDenied, SouverainError
from ..library.search import Searchable, SearchHit
from .library_sources import classify_sources
from .tools import BoundTool, ToolInvocation, ToolOutcome, ToolSpec

if TYPE_CHECKING:
    from ..state import AppState

log = logging.getLogger("souverain.agents.library_tool")

KIND = "document_library"
TOOL_NAME = "search_library"
ENDPOINT = "libraries"  # the key scope the tool needs, as the library routes do
MAX_ID_CHARS = 64  # library ids are uuid4s (36): longer is no id of ours
MAX_LIBRARIES = 32  # per entry, as agents accept them (protocol/agents.py)
MAX_QUERY_CHARS = 200  # in the schema too: it bounds what a constrained model writes
TOP_K = 5
MAX_OUTPUT_CHARS = 6000  # the passages' share of the next model step, whatever the chunks
MAX_NAME_CHARS = 80  # a library's name in the tool description


async def library_tools(
    state: AppState, principal: Principal, entry: dict[str, Any]
) -> list[BoundTool]:
    """The `search_library` tool over the entry's libraries, bound to `principal`.

    Raises InvalidRequest (400) for a malformed entry or libraries disabled,
    PermissionDenied (403) for a caller that may not read libraries at all, and
    NotFound (404, naming the id) for a library the caller cannot see."""
    library_ids = _library_ids(entry)
    service = state.libraries
    if service is None:
        raise InvalidRequest(
            "document libraries are disabled on this server (libraries.enabled): the "
            "agent's document_library tool cannot run",
            param="tools",
        )
    if principal.endpoints is not None and ENDPOINT not in principal.endpoints:
        raise PermissionDenied(
            f"this key may not use the {ENDPOINT} endpoints, which the agent's "
            "document_library tool searches"
        )
    caller = await service.caller(_context(principal))  # the auditor role: 403
    found = await asyncio.to_thread(service.searcher.libraries, caller, library_ids)
    search = LibrarySearch(state, principal, found)
    return [BoundTool(spec=search.spec(), kind=KIND, run=search.run)]


def _library_ids(entry: dict[str, Any]) -> list[str]:
    ids = entry.get("library_ids")
    if not isinstance(ids, list) or not ids:
        raise InvalidRequest(
            "a document_library tool needs library_ids: a non-empty list of library ids",
            param="tools.library_ids",
        )
    if len(ids) > MAX_LIBRARIES:
        raise InvalidRequest(
            f"a document_library tool names at most {MAX_LIBRARIES} libraries ({len(ids)} given)",
            param="tools.library_ids",
        )
    unique: list[str] = []
    for library_id in ids:
        if not isinstance(library_id, str) or not library_id or len(library_id) > MAX_ID_CHARS:
            raise InvalidRequest(
                f"library_ids must hold library ids (strings of 1 to {MAX_ID_CHARS} characters)",
                param="tools.library_ids",
            )
        if library_id not in unique:
            unique.append(library_id)
    return unique


def _context(principal: Principal) -> RequestContext:
    return RequestContext(endpoint=ENDPOINT, principal=principal)


class LibrarySearch:
    """One bound `search_library` tool: the caller and the libraries it was bound to."""

    def __init__(
        self, state: AppState, principal: Principal, libraries: Sequence[Searchable]
    ) -> None:
        self.state = state
        self.principal = principal
        self.libraries = list(libraries)
        self.library_ids = [library.id for library in self.libraries]

    def spec(self) -> ToolSpec:
        names = ", ".join(f'"{_short(library.name)}"' for library in self.libraries)
        plural = "libraries" if len(self.libraries) > 1 else "library"
        return ToolSpec(
            name=TOOL_NAME,
            description=(
                f"Search the document {plural} {names} and return the most relevant "
                "passages, numbered so that the answer can cite them like [1]."
            ),
            parameters={
                "type": "object",
                "properties": {
                    "query": {
                        "type": "string",
                        "description": "What to look for, in a few words or a question.",
                        "minLength": 1,
                        "maxLength": MAX_QUERY_CHARS,
                    }
                },
                "required": ["query"],
                "additionalProperties": False,
            },
        )

    async def run(self, invocation: ToolInvocation) -> ToolOutcome:
        started = time.perf_counter()
        query = invocation.arguments.get("query")
        problem = _query_problem(query)
        if problem is not None:
            return self._failed(problem, started, "bad_query")
        assert isinstance(query, str)
        service = self.state.libraries
        if service is None:  # disabled since the bind (a reload): nothing to search
            return self._failed("document libraries are disabled on this server", started)
        try:
            hits = await service.search(
                _context(self.principal), query, library_ids=self.library_ids, top_k=TOP_K
            )
        except SouverainError as exc:  # a share revoked since, a quota, the embedder...
            return self._failed(f"the library search failed: {exc.message}", started, "error")
        if not hits:
            return self._failed(
                f"no passage of the {self._named()} matches {query!r}", started, "no_result"
            )
        try:
            passages = _passages(hits)
            output = _render(hits, [text for _, text in passages])
            sources = await classify_sources(self.state, self.principal, passages, output)
        except SouverainError as exc:  # over the key's ceiling, DLP could not scan: withheld
            return self._failed(exc.message, started, "withheld")
        return ToolOutcome(
            output=output,
            classification=sources.classification,
            citations=tuple(
                _citation(index, hit, level)
                for index, (hit, level) in enumerate(
                    zip(hits, sources.levels, strict=True), start=1
                )
            ),
            audit=self._audit(started, "ok", hits=len(hits)),
        )

    def _named(self) -> str:
        names = ", ".join(repr(_short(library.name)) for library in self.libraries)
        return f"{'libraries' if len(self.libraries) > 1 else 'library'} {names}"

    def _failed(self, reason: str, started: float, outcome: str = "error") -> ToolOutcome:
        return ToolOutcome(output=reason, ok=False, audit=self._audit(started, outcome))

    def _audit(self, started: float, outcome: str, **more: Any) -> dict[str, Any]:
        """What the audit leaf may say: which libraries, how it went; never the query or
        the passages."""
        return {
            "tool": TOOL_NAME,
            "libraries": list(self.library_ids),
            "outcome": outcome,
            "latency_ms": round((time.perf_counter() - started) * 1000, 1),
            **more,
        }


def _query_problem(query: object) -> str | None:
    if not isinstance(query, str):
        return f"{TOOL_NAME} needs a `query` string"
    if not query.strip():
        return f"{TOOL_NAME} needs a non-empty `query`"
    if len(query) > MAX_QUERY_CHARS:
        return (
            f"the query is {len(query)} characters long; {TOOL_NAME} takes at most "
            f"{MAX_QUERY_CHARS}: search for a few words or one question"
        )
    return None


def _passages(hits: list[SearchHit]) -> list[tuple[str, str]]:
    """(document id, text as sent) per hit: each gets an equal share of the output."""
    budget = MAX_OUTPUT_CHARS // len(hits)
    return [(hit.document_id, hit.text[:budget]) for hit in hits]


def _render(hits: list[SearchHit], texts: list[str]) -> str:
    parts = []
    for index, (hit, text) in enumerate(zip(hits, texts, strict=True), start=1):
        parts.append(f"[{index}] {_where(hit)}\n{text}")
    return "Passages found (cite them by number, like [1]):\n\n" + "\n\n".join(parts)


def _where(hit: SearchHit) -> str:
    page = f", page {hit.page}" if hit.page is not None else ""
    return f"{hit.document_name}{page} (library {_short(hit.library_name)!r})"


def _citation(index: int, hit: SearchHit, classification: str) -> dict[str, Any]:
    """Mistral's `tool_reference` chunk, with where the passage is."""
    return {
        "type": "tool_reference",
        "tool": KIND,
        "title": hit.document_name,
        "description": _where(hit),
        "index": index,
        "library_id": hit.library_id,
        "library_name": hit.library_name,
        "document_id": hit.document_id,
        "document_name": hit.document_name,
        "chunk_id": hit.chunk_id,
        "page": hit.page,
        "char_start": hit.char_start,
        "char_end": hit.char_end,
        "score": round(hit.score, 6),
        "classification": classification,
    }


def _short(name: str) -> str:
    name = " ".join(name.split())
    return name if len(name) <= MAX_NAME_CHARS else name[: MAX_NAME_CHARS - 1] + "…"
