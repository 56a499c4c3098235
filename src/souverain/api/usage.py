"""`GET /admin/v1/usage`: usage aggregated by tenant/team/key/user/model/day.

`?group_by=team,model&start=2026-11-01&end=2026-11-30` (UTC days, inclusive). Admins and
auditors see their tenant; the owner sees every tenant, or one with `?tenant=`.
"""

from __future__ import annotations

import asyncio

from starlette.requests import Request
from starlette.responses import Response

from ..errors import InvalidRequest
from ..usage.report import GROUPS, usage_report
from .admin_access import admin_call
from .http import JSON, query_date


async def usage(request: Request) -> Response:
    call = await admin_call(request, "usage.read")
    params = request.query_params
    group_by = [name.strip() for name in params.get("group_by", "").split(",") if name.strip()]
    unknown = [name for name in group_by if name not in GROUPS]
    if unknown:
        raise InvalidRequest(
            f"cannot group by {', '.join(unknown)}; choose from {', '.join(GROUPS)}",
            param="group_by",
        )
    tenant = call.principal.tenant if call.scope is not None else params.get("tenant")
    start, end = query_date(request, "start"), query_date(request, "end")
    if call.state.usage is not None:
        await call.state.usage.flush()  # the rows of the last fraction of a second too
    rows = await asyncio.to_thread(
        lambda: usage_report(
            call.state.database, group_by=group_by, tenant=tenant, start=start, end=end
        )
    )
    return JSON({"object": "list", "group_by": group_by, "data": rows})
