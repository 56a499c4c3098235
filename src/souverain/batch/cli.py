"""`souverain batch submit|list|get|cancel`: batch jobs from the command line.

Each command calls a running server (`--url`, `--key` or SOUVERAIN_URL/SOUVERAIN_API_KEY)
through Mistral's batch jobs API, so the batch runs as that key, under its scopes,
quotas and audit, like any other. `submit` streams the file up (purpose `batch`), creates
the job and, with `--wait`, shows its progress until it ends.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote

import click
import httpx

from ..cli_options import server_options, with_options
from ..identity.cli import print_table
from .settings import BATCH_ENDPOINTS

JOBS = "/v1/batch/jobs"
ENDED = {"SUCCESS", "FAILED", "TIMEOUT_EXCEEDED", "CANCELLED"}
POLL_S = 1.0


def _client(url: str, key: str) -> httpx.Client:
    return httpx.Client(base_url=url.rstrip("/"), timeout=120,
                        headers={"Authorization": f"Bearer {key}"})  # fmt: skip


def _answer(response: httpx.Response) -> Any:
    if response.status_code >= 400:
        try:
            message = response.json()["error"]["message"]
        except (ValueError, KeyError, TypeError):
            message = response.text[:500]
        raise click.ClickException(f"{response.status_code}: {message}")
    return response.json()


def _call(url: str, key: str, method: str, path: str, **kwargs: Any) -> Any:
    try:
        with _client(url, key) as client:
            return _answer(client.request(method, path, **kwargs))
    except httpx.HTTPError as exc:
        raise click.ClickException(f"cannot reach {url}: {exc}") from None


@click.group()
def batch() -> None:
    """Submit JSONL files of requests as batch jobs, and follow them.

    \b
    souverain batch submit invoices.jsonl --model mistral-small --wait --output out.jsonl
    souverain batch list
    """


@batch.command("submit")
@with_options(server_options)
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--model", required=True, help="The model every line is sent to.")
@click.option("--endpoint", type=click.Choice(sorted(BATCH_ENDPOINTS)),
              default="/v1/chat/completions", show_default=True)  # fmt: skip
@click.option("--timeout-hours", type=click.IntRange(1, 8760), default=24, show_default=True)
@click.option("--wait", is_flag=True, help="Show progress until the job ends.")
@click.option("--output", type=click.Path(dir_okay=False, path_type=Path),
              help="With --wait: write the output file here.")  # fmt: skip
def submit(url: str, key: str, file: Path, model: str, endpoint: str, timeout_hours: int,
           wait: bool, output: Path | None) -> None:  # fmt: skip
    """Upload FILE (one request per line) and run it as a batch job."""
    with file.open("rb") as source:
        uploaded = _call(url, key, "POST", "/v1/files", data={"purpose": "batch"},
                         files={"file": (file.name, source, "application/jsonl")})  # fmt: skip
    job = _call(url, key, "POST", JOBS, json={"input_files": [uploaded["id"]], "model": model,
                "endpoint": endpoint, "timeout_hours": timeout_hours})  # fmt: skip
    click.echo(f"batch job {job['id']} ({job['status']})", err=True)
    if not wait:
        click.echo(job["id"])
        return
    job = _follow(url, key, job)
    click.echo(json.dumps(_summary(job), indent=2))
    if output is not None and job.get("output_file"):
        _download(url, key, job["output_file"], output)
    if job["status"] != "SUCCESS":
        raise SystemExit(1)


def _download(url: str, key: str, file_id: str, target: Path) -> None:
    path = f"/v1/files/{_path(file_id)}/content"
    with _client(url, key) as client, client.stream("GET", path) as response:
        if response.status_code >= 400:
            raise click.ClickException(f"{response.status_code}: cannot read {file_id}")
        with target.open("wb") as sink:
            for chunk in response.iter_bytes():
                sink.write(chunk)


def _follow(url: str, key: str, job: dict[str, Any]) -> dict[str, Any]:
    """Poll the job, drawing its progress, until it ends."""
    total = max(1, int(job.get("total_requests") or 1))
    with click.progressbar(length=total, label="requests", file=sys.stderr) as bar:
        shown = 0
        while job["status"] not in ENDED:
            time.sleep(POLL_S)
            job = _call(url, key, "GET", f"{JOBS}/{job['id']}")
            total = int(job.get("total_requests") or 0)
            if total and bar.length != total:
                bar.length = total
            done = int(job.get("completed_requests") or 0)
            bar.update(done - shown)
            shown = done
    return job


def _summary(job: dict[str, Any]) -> dict[str, Any]:
    keys = ("id", "status", "total_requests", "succeeded_requests", "failed_requests",
            "output_file", "error_file", "errors")  # fmt: skip
    return {name: job.get(name) for name in keys}


@batch.command("list")
@with_options(server_options)
@click.option("--page", type=click.IntRange(0), default=0)
@click.option("--page-size", type=click.IntRange(1, 1000), default=20)
def list_jobs(url: str, key: str, page: int, page_size: int) -> None:
    """The caller's batch jobs, newest first."""
    answer = _call(url, key, "GET", JOBS, params={"page": page, "page_size": page_size})
    rows = [
        {**row, "done": f"{row['completed_requests']}/{row['total_requests']}"}
        for row in answer["data"]
    ]
    print_table(rows, ["id", "status", "model", "endpoint", "done", "failed_requests"])


@batch.command("get")
@with_options(server_options)
@click.argument("job_id")
def get_job(url: str, key: str, job_id: str) -> None:
    """One batch job, as JSON."""
    click.echo(json.dumps(_call(url, key, "GET", f"{JOBS}/{_path(job_id)}"), indent=2))


@batch.command("cancel")
@with_options(server_options)
@click.argument("job_id")
def cancel_job(url: str, key: str, job_id: str) -> None:
    """Cancel a batch job; what was done is kept."""
    job = _call(url, key, "POST", f"{JOBS}/{_path(job_id)}/cancel")
    click.echo(json.dumps(_summary(job), indent=2))


def _path(job_id: str) -> str:
    return quote(job_id, safe="")
