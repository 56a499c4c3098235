"""One leaf for every refusal of an authenticated caller, and a true outcome for changes.

Model calls record their own leaf, whatever the outcome (pipeline.py `_accounting`);
admin routes record a change before making it. What neither covered: a refusal raised
anywhere else after the caller was authenticated (an endpoint scope, a role, a bad
body, a library the caller may not read...), and a change whose leaf was written and
which then failed. So each HTTP request carries a `RequestAudit` (set by the ASGI layer
in api/middleware.py): `opened` remembers the authenticated context, `AuditLog.append`
notes every leaf written for that context, and when the request ends with an error the
layer calls `leaf_for_failure`, which says what is missing:

- nothing, when a leaf with an outcome was already written for this request;
- a `refusal` leaf when none was;
- when a change was recorded and then failed, a leaf with the same action and target,
  the failure's outcome and the index of the leaf it corrects.

Unauthenticated requests leave no leaf: anyone could fill the log with them.
"""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from ..context import RequestContext

MAX_PATH_CHARS = 200


@dataclass(eq=False)
class RequestAudit:
    """What the audit log holds so far for one HTTP request."""

    ctx: RequestContext | None = None  # the first context `pipeline.open` authenticated
    leaves: list[tuple[int, dict[str, Any]]] = field(default_factory=list)


_current: ContextVar[RequestAudit | None] = ContextVar("souverain_request_audit", default=None)


def begin() -> RequestAudit:
    """A fresh record for the HTTP request starting in this context."""
    record = RequestAudit()
    _current.set(record)
    return record


def opened(ctx: RequestContext) -> None:
    """The caller is authenticated: from now on a refusal leaves a leaf."""
    record = _current.get()
    if record is not None and record.ctx is None:
        record.ctx = ctx


def noted(fields: dict[str, Any], index: int) -> None:
    """A leaf was written; it counts for the request whose context it names."""
    record = _current.get()
    if record is None or record.ctx is None:
        return
    if fields.get("request_id") == record.ctx.request_id:
        record.leaves.append((index, fields))


def leaf_for_failure(
    record: RequestAudit, *, outcome: str, code: str | None, status: int, method: str, path: str
) -> dict[str, Any] | None:
    """The leaf a request that ended in this error still needs, or None."""
    ctx = record.ctx
    if ctx is None or any("outcome" in leaf for _, leaf in record.leaves):
        return None
    base = {
        "tenant": ctx.principal.tenant,
        "principal": ctx.principal.label,
        "endpoint": ctx.endpoint,
        "outcome": outcome,
        "code": code,
        "status": status,
        "request_id": ctx.request_id,
    }
    changes = [(index, leaf) for index, leaf in record.leaves if leaf.get("kind") == "admin"]
    if changes:  # the change was logged as about to happen, and then it did not
        index, change = changes[-1]
        return {**base, "kind": "admin", "action": change.get("action"),
                "target": change.get("target"), "corrects": index}  # fmt: skip
    return {
        **base,
        "kind": "refusal",
        "model": ctx.model,
        "route": f"{method} {path[:MAX_PATH_CHARS]}",
    }
