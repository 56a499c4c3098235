"""What one tenant can do to and learn from the shared audit log, over real HTTP, on
SQLite and PostgreSQL: erasure stays in the caller's tenant and its tombstone lands
there; a leaf whose columns were rewritten is never served to another tenant and makes
verify fail; a tenant proves inclusion of its own leaves only, against signed sizes.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import pytest
from sqlalchemy import func, select, text

from souverain.audit.checkpoint import Verifier
from souverain.audit.merkle import verify_inclusion
from souverain.audit.payloads import PayloadVault, load_or_create_master_key
from souverain.store.tables import audit_checkpoints, audit_payloads

from .audit_world import AuditWorld, audit_world
from .recording_upstream import RecordingUpstream
from .test_audit_log import run, tamper


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def world(
    request: pytest.FixtureRequest,
    upstream: RecordingUpstream,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[AuditWorld]:
    tmp = tmp_path_factory.mktemp(f"audit-tenants-{request.param}")
    with audit_world(request.param, tmp, upstream) as world:
        yield world


def bodies(world: AuditWorld, tenant: str) -> list[bytes]:
    with world.database.connect() as conn:
        return list(
            conn.scalars(
                select(audit_payloads.c.ciphertext).where(audit_payloads.c.tenant == tenant)
            )
        )


def test_a_tenant_admin_erases_only_in_its_own_tenant(world: AuditWorld) -> None:
    subject = "carol@example.org"
    for tenant in ("acme", "globex"):
        assert world.chat(f"{tenant}:user", user=subject).status_code == 200
    kept = bodies(world, "acme")
    assert len(kept) == 1 and len(bodies(world, "globex")) == 1
    erased = world.ok("POST", "/admin/v1/audit/erase", "globex:admin", json={"subject": subject})
    assert bodies(world, "globex") == [] and bodies(world, "acme") == kept
    assert erased["payloads_erased"] == 1 and erased["tenant"] == "globex"
    vault = PayloadVault(
        world.database, load_or_create_master_key(world.data_dir / "audit-master.key")
    )
    # The same subject in two tenants is two subjects: two pseudonyms, two data keys.
    assert vault.pseudonym("acme", subject) != vault.pseudonym("globex", subject)
    assert b"Bonjour" in vault.open("acme", subject, kept[0])  # acme's key is untouched

    def tombstones(who: str) -> list[dict[str, Any]]:
        return [item["leaf"] for item in world.leaves(who, kind="tombstone")]

    # The tombstone is in the tenant it affected, where that tenant's admin sees it.
    assert [t["subject"] for t in tombstones("globex:admin")] == [erased["subject"]]
    assert tombstones("acme:admin") == []

    # The platform owner erases everywhere: acme's body goes, its tombstone is acme's.
    everywhere = world.ok("POST", "/admin/v1/audit/erase", json={"subject": subject})
    assert everywhere["payloads_erased"] == 1
    assert [t["tenant"] for t in everywhere["tombstones"]] == ["acme"]
    assert bodies(world, "acme") == []
    assert [t["subject"] for t in tombstones("acme:auditor")] == [vault.pseudonym("acme", subject)]
    with pytest.raises(KeyError):
        vault.open("acme", subject, kept[0])
    assert world.ok("GET", "/admin/v1/audit/verify")["ok"] is True


def test_a_tenant_proves_its_own_leaves_against_signed_checkpoints(world: AuditWorld) -> None:
    for tenant in ("acme", "globex", "acme", "globex", "acme"):
        assert world.chat(f"{tenant}:user").status_code == 200
    checkpoint = world.ok("GET", "/admin/v1/audit/checkpoint", "acme:auditor")
    signed = Verifier.from_vkey(checkpoint["verifier_key"]).verify(checkpoint["note"].encode())
    size = signed.size
    own = [item for item in world.leaves("acme:auditor") if item["index"] < size]
    theirs = [item for item in world.leaves("globex:admin") if item["index"] < size]
    assert own and theirs
    for item in own[-2:]:
        proof = world.ok("GET", "/admin/v1/audit/proof/inclusion", "acme:auditor",
                         params={"index": item["index"], "size": size})  # fmt: skip
        hashes = [base64.b64decode(h) for h in proof["proof"]]
        leaf_hash = base64.b64decode(item["leaf_hash"])
        assert verify_inclusion(leaf_hash, item["index"], size, hashes, signed.root)

    def status(path: str, who: str, **params: int) -> int:
        return world.call("GET", path, who, params=params).status_code

    inclusion = "/admin/v1/audit/proof/inclusion"
    # Another tenant's leaf answers like no leaf at all; the owner may prove any leaf.
    assert status(inclusion, "acme:auditor", index=theirs[-1]["index"], size=size) == 404
    assert status(inclusion, "acme:admin", index=theirs[-1]["index"], size=size) == 404
    assert status(inclusion, "owner", index=theirs[-1]["index"], size=size) == 200
    # Sizes other than signed ones would tell the log's size leaf by leaf: refused.
    with world.database.connect() as conn:
        signed_sizes = set(conn.scalars(select(audit_checkpoints.c.size)))
    unsigned = max(n for n in range(1, size) if n not in signed_sizes)
    mine = max(item["index"] for item in own if item["index"] < unsigned)
    assert status(inclusion, "acme:auditor", index=mine, size=unsigned) == 400
    assert status(inclusion, "owner", index=mine, size=unsigned) == 200
    consistency = "/admin/v1/audit/proof/consistency"
    assert status(consistency, "acme:auditor", old_size=unsigned, new_size=size) == 400
    assert status(consistency, "owner", old_size=unsigned, new_size=size) == 200
    # verify tells a tenant whether the log holds, at the signed size it already knows.
    report = world.ok("GET", "/admin/v1/audit/verify", "acme:auditor")
    assert report["ok"] is True and report["size"] == world.ok(
        "GET", "/admin/v1/audit/checkpoint", "acme:auditor")["size"]  # fmt: skip


def test_a_leaf_moved_to_another_tenant_is_not_served_there(world: AuditWorld) -> None:
    response = world.chat("acme:user")
    assert response.status_code == 200
    request_id = response.headers["x-request-id"]
    (moved,) = [
        item for item in world.leaves("acme:admin") if item["leaf"].get("request_id") == request_id
    ]
    index = moved["index"]
    audit = SimpleNamespace(database=world.database)
    tamper(audit, run("UPDATE audit_leaves SET tenant = 'globex' WHERE seq = :i", i=index))  # type: ignore[arg-type]
    try:
        refused = world.call("GET", "/admin/v1/audit/leaves", "globex:admin",
                             params={"limit": "1000"})  # fmt: skip
        assert refused.status_code == 503 and request_id not in refused.text
        assert f"leaf {index}" in refused.json()["error"]["message"]
        report = world.ok("GET", "/admin/v1/audit/verify")
        assert report["ok"] is False and report["first_bad_index"] == index
        assert "tenant column" in report["problem"]
        tenant_view = world.ok("GET", "/admin/v1/audit/verify", "acme:auditor")
        assert tenant_view["ok"] is False and tenant_view["first_bad_index"] is None
    finally:
        tamper(audit, run("UPDATE audit_leaves SET tenant = 'acme' WHERE seq = :i", i=index))  # type: ignore[arg-type]
    assert world.ok("GET", "/admin/v1/audit/verify")["ok"] is True
    with world.database.connect() as conn:
        assert conn.scalar(select(func.count()).select_from(text("audit_leaves"))) > index
