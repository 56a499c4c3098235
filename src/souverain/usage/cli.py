"""`souverain usage`: usage aggregated by tenant, team, key, model and day."""

from __future__ import annotations

from urllib.parse import urlencode

import click

from ..cli_options import admin_request, server_options, with_options
from ..identity.cli import print_table


@click.command()
@with_options(server_options)
@click.option(
    "--group-by",
    default="day,model",
    show_default=True,
    help="Comma-separated: tenant,team,key,user,model,deployment,day,endpoint.",
)
@click.option("--start", help="First UTC day, e.g. 2026-11-01.")
@click.option("--end", help="Last UTC day (inclusive).")
@click.option("--tenant", help="Platform owner only: one tenant.")
def usage(
    url: str, key: str, group_by: str, start: str | None, end: str | None, tenant: str | None
) -> None:
    """Requests, tokens, cost and errors, grouped.

    Example: souverain usage --group-by team,model --start 2026-11-01
    """  # fmt: skip
    params = {"group_by": group_by, "start": start, "end": end, "tenant": tenant}
    query = urlencode({k: v for k, v in params.items() if v})
    report = admin_request(url, key, "GET", f"/admin/v1/usage?{query}")
    groups = report["group_by"]
    totals = ["requests", "errors", "prompt_tokens", "completion_tokens", "cost"]
    print_table(report["data"], [*groups, *totals])
