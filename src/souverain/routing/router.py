"""The routing stage: the ordered deployments a call may go to."""

from __future__ import annotations

from ..backends.base import Backend
from ..context import RequestContext
from ..errors import EngineUnavailable
from .models import ServedModel


class Router:
    """Priority order, skipping deployments that are not ready.

    Policy (which jurisdictions may receive this classification), circuit breakers and
    the kill switch narrow this list in the sovereignty issue; the dispatcher only ever
    sends to what `candidates` returns.
    """

    def candidates(self, ctx: RequestContext, model: ServedModel) -> list[Backend]:
        ready = [backend for backend in model.backends if backend.ready()]
        if not ready:
            raise EngineUnavailable(
                f"no deployment of model {model.id!r} is available right now", retry_after=5
            )
        return ready
