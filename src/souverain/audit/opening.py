"""Opening the audit log from the settings, and purging retained bodies by age.

Kept apart from app.py so that the `souverain audit` commands open the log without
importing the whole web application (the CLI starts in a fraction of the time).
"""

from __future__ import annotations

from sqlalchemy import Engine

from ..config import Settings
from .checkpoint import load_or_create_signing_key
from .log import AuditLog
from .payloads import PayloadVault, load_or_create_master_key


def open_audit_log(settings: Settings, database: Engine) -> AuditLog | None:
    config = settings.audit
    if not config.enabled:
        return None
    key_file = config.signing_key_file or settings.data_dir / "audit-signing.key"
    signer = load_or_create_signing_key(key_file, config.origin)
    master_file = config.master_key_file or settings.data_dir / "audit-master.key"
    return AuditLog(
        database,
        signer,
        config.origin,
        checkpoint_every=config.checkpoint_every,
        checkpoint_seconds=config.checkpoint_seconds,
        vault=PayloadVault(database, load_or_create_master_key(master_file)),
        payload_tenants=lambda tenant: config.payload_rule(tenant) is not None,
    )


def purge_payloads(settings: Settings, audit: AuditLog) -> int:
    """Delete retained bodies older than their tenant's retention; returns how many."""
    if audit.vault is None:
        return 0
    return sum(
        audit.vault.purge(tenant, rule.retention_days)
        for tenant, rule in settings.audit.payloads.items()
        if rule.store and tenant != "*"
    )
