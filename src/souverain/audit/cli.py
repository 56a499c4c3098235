"""`souverain audit ...`: verify the log, export it with proofs, and the GDPR record."""

from __future__ import annotations

import base64
import json
import sys
from pathlib import Path
from typing import Any

import click
from sqlalchemy import Engine, select

from ..agents.conversation_store import ConversationStore
from ..agents.store import ResponseStore
from ..batch.retention import purge_finished_batches
from ..cli_options import config_option
from ..config import Settings, load_settings
from ..errors import ConfigError
from ..files.store import FileStore
from ..store.database import database_url, open_database, upgrade
from ..store.tables import audit_leaves
from .checkpoint import Verifier, load_or_create_signing_key
from .columns import DEFAULT_TENANT
from .gdpr import record_of_processing
from .log import AuditLog, erase_subject, erasure_result, utc_now
from .merkle import consistency_proof, inclusion_proof
from .opening import open_audit_log, purge_payloads
from .verify import LeafTampered, checked_leaf, latest_checkpoint, leaf_hashes, verify_log

data_dir_option = click.option(
    "--data-dir", type=click.Path(file_okay=False), default=None,
    help="The data directory (env: SOUVERAIN_DATA_DIR).",
)  # fmt: skip


@click.group("audit")
def audit() -> None:
    """Verify and export the tamper-evident audit log."""


def _open(config_file: str | None, data_dir: str | None) -> tuple[Settings, Engine, Verifier]:
    try:
        settings = load_settings(config_file, {"data_dir": data_dir and Path(data_dir)})
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None
    database = open_database(database_url(settings.database_url, settings.data_dir))
    upgrade(database)
    key_file = settings.audit.signing_key_file or settings.data_dir / "audit-signing.key"
    signer = load_or_create_signing_key(key_file, settings.audit.origin)
    return settings, database, Verifier.from_vkey(signer.verifier_key())


@audit.command("verify")
@config_option
@data_dir_option
def verify(config_file: str | None, data_dir: str | None) -> None:
    """Recompute every leaf and checkpoint; exit 1 and name the first bad index if any."""
    settings, database, verifier = _open(config_file, data_dir)
    report = verify_log(database, verifier, settings.audit.origin)
    click.echo(json.dumps(report.as_dict()))
    sys.exit(0 if report.ok else 1)


@audit.command("export")
@config_option
@data_dir_option
@click.option("--tenant", default=None, help="Only this tenant's records.")
def export(config_file: str | None, data_dir: str | None, tenant: str | None) -> None:
    """JSON lines: each leaf with its inclusion proof in the latest signed checkpoint."""
    _, database, _ = _open(config_file, data_dir)
    checkpoint = latest_checkpoint(database)
    if checkpoint is None:
        raise click.ClickException("no signed checkpoint yet: nothing can be proven")
    hashes = leaf_hashes(database, checkpoint.size)
    click.echo(json.dumps({"checkpoint": checkpoint.note}))
    query = select(audit_leaves).where(audit_leaves.c.seq < checkpoint.size)
    if tenant:
        query = query.where(audit_leaves.c.tenant == tenant)
    with database.connect() as conn:
        for row in conn.execute(query.order_by(audit_leaves.c.seq)):
            proof = inclusion_proof(hashes, row.seq)
            click.echo(json.dumps(_exported(row, checkpoint.size, proof)))


def _exported(row: Any, size: int, proof: list[bytes]) -> dict[str, Any]:
    try:  # `--tenant` selected it by its column: export it only if its data agrees
        leaf = checked_leaf(row)
    except LeafTampered as exc:
        raise click.ClickException(f"{exc.problem}; run `souverain audit verify`") from None
    return {
        "index": row.seq,
        "leaf": leaf,
        "leaf_hash": base64.b64encode(row.leaf_hash).decode(),
        "tree_size": size,
        "inclusion_proof": [base64.b64encode(h).decode() for h in proof],
    }


@audit.command("proof")
@config_option
@data_dir_option
@click.option("--index", type=int, help="Inclusion proof of this leaf...")
@click.option("--old-size", type=int, help="...or consistency proof from this tree size...")
@click.option("--size", type=int, help="...in (to) this size (default: latest checkpoint).")
def proof(
    config_file: str | None,
    data_dir: str | None,
    index: int | None,
    old_size: int | None,
    size: int | None,
) -> None:
    """Print an inclusion or a consistency proof (base64 hashes) with the checkpoint."""
    _, database, _ = _open(config_file, data_dir)
    checkpoint = latest_checkpoint(database)
    size = size or (checkpoint.size if checkpoint else 0)
    if (index is None) == (old_size is None):
        raise click.UsageError("give either --index or --old-size")
    try:
        if index is not None:
            hashes = inclusion_proof(leaf_hashes(database, size), index)
            out: dict[str, Any] = {"index": index, "tree_size": size}
        else:
            assert old_size is not None
            hashes = consistency_proof(leaf_hashes(database, size), old_size)
            out = {"old_size": old_size, "new_size": size}
    except ValueError as exc:
        raise click.ClickException(f"no such proof: {exc}") from None
    out["proof"] = [base64.b64encode(h).decode() for h in hashes]
    out["checkpoint"] = checkpoint.note if checkpoint and checkpoint.size == size else None
    click.echo(json.dumps(out))


@audit.command("erase")
@config_option
@data_dir_option
@click.option("--subject", required=True, help="The data subject (a request's `user`).")
@click.option("--tenant", default=None, help="Only in this tenant (default: every tenant).")
def erase(config_file: str | None, data_dir: str | None, subject: str, tenant: str | None) -> None:
    """Crypto-shred a subject's retained bodies; a tombstone leaf in each tenant affected."""
    settings, database, _ = _open(config_file, data_dir)
    log = _log(settings, database)
    assert log.vault is not None
    leaves = erase_subject(log.vault, subject, "cli", tenant, DEFAULT_TENANT)
    leaves = [{**leaf, "time": utc_now()} for leaf in leaves]
    first = log._write([(leaf, None) for leaf in leaves])
    log.checkpoint()
    result = erasure_result([(leaf, first + i) for i, leaf in enumerate(leaves)])
    # Stored responses and conversations hold the subject's data in clear: gone too.
    result["stored_responses_deleted"] = ResponseStore(database).erase_subject(subject, tenant)
    result["conversations_deleted"] = ConversationStore(database).erase_subject(subject, tenant)
    result["files_deleted"] = FileStore(database, settings.files).erase_subject(subject, tenant)
    click.echo(json.dumps(result))


@audit.command("purge")
@config_option
@data_dir_option
def purge(config_file: str | None, data_dir: str | None) -> None:
    """Delete retained bodies past their tenant's retention."""
    settings, database, _ = _open(config_file, data_dir)
    purged = purge_payloads(settings, _log(settings, database))
    # Conversations follow their tenant's payload retention (issue 14).
    days = {tenant: rule.retention_days for tenant, rule in settings.audit.payloads.items()}
    gone = ConversationStore(database).purge_by_retention(days)
    # Stored responses index conversations: the rows of those gone go too.
    orphans = ResponseStore(database).drop_orphans()
    batches = purge_finished_batches(database, days)  # finished batches: the same retention
    click.echo(json.dumps({"purged": purged, "conversations_purged": gone,
                           "stored_responses_purged": orphans,
                           "batches_purged": batches}))  # fmt: skip


def _log(settings: Settings, database: Engine) -> AuditLog:
    log = open_audit_log(settings, database)
    if log is None:
        raise click.ClickException("the audit log is disabled in this configuration")
    return log


@audit.command("gdpr-record")
@config_option
def gdpr_record(config_file: str | None) -> None:
    """Print the GDPR Article 30 record of processing (JSON), from the configuration."""
    try:
        settings = load_settings(config_file)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(json.dumps(record_of_processing(settings), indent=2, ensure_ascii=False))
