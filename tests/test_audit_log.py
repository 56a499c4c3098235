"""The audit log on a real SQLite database: appends, checkpoints, and tamper drills.

Each drill does what an attacker with database access would do (drop the append-only
triggers, change rows, put the triggers back) and checks that `verify_log` notices and
names the first bad index.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import Connection, delete, text, update
from sqlalchemy.exc import DatabaseError

from souverain.audit.checkpoint import Checkpoint, Signer, Verifier, load_or_create_signing_key
from souverain.audit.log import AuditLog, canonical
from souverain.audit.merkle import leaf_hash, verify_inclusion
from souverain.audit.verify import VerifyReport, verify_log
from souverain.cli import cli
from souverain.store.database import append_only_ddl, open_database, sqlite_url, upgrade
from souverain.store.tables import APPEND_ONLY, audit_leaves

ORIGIN = "souverain.test/audit"


def make_log(
    data_dir: Path, leaves: int, checkpoint_every: int = 8, url: str | None = None
) -> tuple[AuditLog, Path]:
    data_dir.mkdir(parents=True, exist_ok=True)
    database = open_database(url or sqlite_url(data_dir))
    upgrade(database)
    signer = load_or_create_signing_key(data_dir / "audit-signing.key", ORIGIN)
    audit = AuditLog(
        database, signer, ORIGIN, checkpoint_every=checkpoint_every, checkpoint_seconds=3600
    )

    async def fill() -> list[int]:
        await audit.start()  # one after the other: checkpoints land at every 8th leaf
        seqs = []
        for i in range(leaves):
            fields = {"kind": "request", "model": f"m{i % 3}", "outcome": "ok", "n": i,
                      "tenant": "acme" if i % 2 else "globex", "principal": f"key:{i}"}  # fmt: skip
            seqs.append(await audit.append(fields))
        await audit.close()  # signs a final checkpoint
        return seqs

    assert sorted(asyncio.run(fill())) == list(range(leaves))  # gap-free, each once
    return audit, data_dir / "souverain.db"


def report(audit: AuditLog) -> VerifyReport:
    return verify_log(audit.database, Verifier.from_vkey(audit.signer.verifier_key()), ORIGIN)


Drill = Callable[[Connection, AuditLog], None]


def tamper(audit: AuditLog, drill: Drill) -> None:
    """What someone with full database rights can do: triggers off, rewrite, triggers on."""
    with audit.database.begin() as conn:
        postgres = conn.dialect.name == "postgresql"
        for table in APPEND_ONLY:
            if postgres:
                conn.execute(text(f"ALTER TABLE {table} DISABLE TRIGGER USER"))
            else:
                for op in ("update", "delete"):
                    conn.execute(text(f"DROP TRIGGER {table}_no_{op}"))
        drill(conn, audit)
        for table in APPEND_ONLY:
            if postgres:
                conn.execute(text(f"ALTER TABLE {table} ENABLE TRIGGER USER"))
            else:
                for ddl in append_only_ddl("sqlite", table):
                    conn.execute(text(ddl))


def run(sql: str, **params: object) -> Drill:
    return lambda conn, audit: conn.execute(text(sql), params) and None


def leaf_data(conn: Connection, index: int) -> str:
    return str(
        conn.execute(
            text("SELECT data FROM audit_leaves WHERE seq = :i"), {"i": index}
        ).scalar_one()
    )


def edit_a_byte(conn: Connection, audit: AuditLog) -> None:
    changed = leaf_data(conn, 5).replace('"n":5', '"n":6')
    conn.execute(text("UPDATE audit_leaves SET data = :d WHERE seq = 5"), {"d": changed})


def swap(i: int, j: int) -> Drill:
    def drill(conn: Connection, audit: AuditLog) -> None:
        for old, new in ((i, 1_000_000), (j, i), (1_000_000, j)):
            conn.execute(
                text("UPDATE audit_leaves SET seq = :new WHERE seq = :old"),
                {"new": new, "old": old},
            )

    return drill


def rewrite_consistently(index: int) -> Drill:
    """Change a leaf and its stored hash together: only the signed checkpoints can tell."""

    def drill(conn: Connection, audit: AuditLog) -> None:
        data = json.loads(leaf_data(conn, index))
        data["outcome"] = "nothing to see"
        raw = canonical(data)
        conn.execute(text("UPDATE audit_leaves SET data = :d, leaf_hash = :h, outcome = :o "
                          "WHERE seq = :i"),
                     {"d": raw.decode(), "h": leaf_hash(raw), "o": data["outcome"], "i": index})  # fmt: skip

    return drill


def forged_checkpoint(size: int, same_key: bool) -> Drill:
    def drill(conn: Connection, audit: AuditLog) -> None:
        signer = audit.signer if same_key else Signer.generate(ORIGIN)
        note = signer.sign(Checkpoint(ORIGIN, size, b"\x07" * 32)).decode()
        conn.execute(
            text("UPDATE audit_checkpoints SET note = :n WHERE size = :s"), {"n": note, "s": size}
        )

    return drill


def test_appends_checkpoints_and_proofs(tmp_path: Path) -> None:
    audit, _ = make_log(tmp_path, 50)
    assert report(audit) == VerifyReport(ok=True, size=50, checkpoints=7)  # 8, 16, ... 48, 50
    from souverain.audit.verify import latest_checkpoint, leaf_hashes, prove_inclusion

    row = latest_checkpoint(audit.database)
    signed = Verifier.from_vkey(audit.signer.verifier_key()).verify(row.note.encode())
    assert signed == Checkpoint(ORIGIN, 50, signed.root)
    hashes = leaf_hashes(audit.database, 50)
    for index in (0, 17, 49):
        proof = prove_inclusion(audit.database, index, 50)
        assert verify_inclusion(hashes[index], index, 50, proof, signed.root)


def test_the_database_refuses_update_and_delete(tmp_path: Path, database_url: str) -> None:
    audit, _ = make_log(tmp_path, 3, url=database_url)
    with pytest.raises(DatabaseError), audit.database.begin() as conn:
        conn.execute(update(audit_leaves).values(outcome="forged"))
    with pytest.raises(DatabaseError), audit.database.begin() as conn:
        conn.execute(delete(audit_leaves).where(audit_leaves.c.seq == 1))
    assert report(audit).ok


@pytest.mark.parametrize(
    ("drill", "first_bad", "says"),
    [
        (edit_a_byte, 5, "altered"),
        (run("DELETE FROM audit_leaves WHERE seq = 7"), 7, "missing"),
        (run("DELETE FROM audit_leaves WHERE seq >= 30"), 30, "removed from the end"),
        (swap(3, 11), 3, "another position"),
        (rewrite_consistently(20), 16, "does not match its signed checkpoint"),
        (forged_checkpoint(40, same_key=False), 32, "not validly signed"),
        (forged_checkpoint(40, same_key=True), 32, "fork"),
        (run("UPDATE audit_leaves SET tenant = 'globex' WHERE seq = 5"), 5, "tenant column"),
        (run("UPDATE audit_leaves SET principal = 'key:0' WHERE seq = 9"), 9, "principal column"),
        (run("UPDATE audit_leaves SET kind = 'admin' WHERE seq = 21"), 21, "kind column"),
        (run("UPDATE audit_leaves SET model = NULL WHERE seq = 33"), 33, "model column"),
        (run("UPDATE audit_leaves SET outcome = 'ok!' WHERE seq = 40"), 40, "outcome column"),
        (run("UPDATE audit_leaves SET at = at - 86400 WHERE seq = 47"), 47, "at column"),
    ],
    ids=["edit-a-byte", "delete-a-row", "delete-the-tail", "reorder", "rewrite-with-hash",
         "checkpoint-other-key", "fork-same-size", "move-to-other-tenant", "other-principal",
         "other-kind", "no-model", "other-outcome", "earlier-time"],
)  # fmt: skip
def test_tamper_drills_are_detected(
    tmp_path: Path, database_url: str, drill: Drill, first_bad: int, says: str
) -> None:
    audit, _ = make_log(tmp_path, 48, url=database_url)  # checkpoints at 8, 16, ... 48
    assert report(audit).ok
    tamper(audit, drill)
    result = report(audit)
    assert not result.ok
    assert says in (result.problem or "")
    # A rewritten leaf with a matching hash, or a bad checkpoint, is only visible at the
    # checkpoint: the index reported is the start of the range that checkpoint covers.
    assert result.first_bad_index == first_bad


def test_concurrent_appends_are_gap_free(tmp_path: Path) -> None:
    database = open_database(sqlite_url(tmp_path))
    upgrade(database)
    audit = AuditLog(database, Signer.generate(ORIGIN), ORIGIN, checkpoint_every=100)

    async def burst() -> list[int]:
        await audit.start()
        seqs = await asyncio.gather(*(audit.append({"n": i}) for i in range(2000)))
        await audit.close()
        return list(seqs)

    assert sorted(asyncio.run(burst())) == list(range(2000))
    assert report(audit).ok


def test_cli_verify_and_export(tmp_path: Path) -> None:
    make_log(tmp_path / "data", 12)
    runner = CliRunner()
    env = {"SOUVERAIN_AUDIT__ORIGIN": ORIGIN}
    result = runner.invoke(cli, ["audit", "verify", "--data-dir", str(tmp_path / "data")], env=env)
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["ok"] is True
    exported = runner.invoke(
        cli, ["audit", "export", "--data-dir", str(tmp_path / "data")], env=env
    )
    lines = [json.loads(line) for line in exported.output.splitlines()]
    assert lines[0]["checkpoint"].startswith(ORIGIN + "\n12\n")
    assert [line["index"] for line in lines[1:]] == list(range(12))
    data = ["--data-dir", str(tmp_path / "data")]
    proof = json.loads(
        runner.invoke(cli, ["audit", "proof", "--index", "5", *data], env=env).output
    )
    signed = Verifier.from_vkey(
        load_or_create_signing_key(tmp_path / "data" / "audit-signing.key", ORIGIN).verifier_key()
    ).verify(proof["checkpoint"].encode())
    hashes = [__import__("base64").b64decode(h) for h in proof["proof"]]
    assert verify_inclusion(leaf_hash(canonical(lines[6]["leaf"])), 5, 12, hashes, signed.root)
    consistency = json.loads(
        runner.invoke(cli, ["audit", "proof", "--old-size", "8", *data], env=env).output
    )
    assert consistency["new_size"] == 12 and consistency["proof"]
    assert runner.invoke(cli, ["audit", "proof", "--index", "99", *data], env=env).exit_code != 0
    database = open_database(sqlite_url(tmp_path / "data"))
    signer = load_or_create_signing_key(tmp_path / "data" / "audit-signing.key", ORIGIN)
    tamper(AuditLog(database, signer, ORIGIN), run("DELETE FROM audit_leaves WHERE seq = 4"))
    failed = runner.invoke(cli, ["audit", "verify", "--data-dir", str(tmp_path / "data")], env=env)
    assert failed.exit_code == 1 and json.loads(failed.output)["first_bad_index"] == 4


def test_cli_verify_names_a_rewritten_column(tmp_path: Path) -> None:
    """`souverain audit verify` reads the query columns too, not only the hashed data."""
    audit, _ = make_log(tmp_path / "data", 12)
    tamper(audit, run("UPDATE audit_leaves SET tenant = 'acme' WHERE seq = 6"))
    env = {"SOUVERAIN_AUDIT__ORIGIN": ORIGIN}
    args = ["audit", "verify", "--data-dir", str(tmp_path / "data")]
    failed = CliRunner().invoke(cli, args, env=env)
    assert failed.exit_code == 1, failed.output
    result = json.loads(failed.output)
    assert result["first_bad_index"] == 6 and "tenant column" in result["problem"]
    # Exporting acme's leaves would hand over globex's leaf 6: refused, naming it.
    export = CliRunner().invoke(cli, ["audit", "export", "--tenant", "acme", *args[2:]], env=env)
    assert export.exit_code != 0 and "leaf 6" in export.output


def test_cli_erase_in_one_tenant_or_in_all(tmp_path: Path) -> None:
    """`souverain audit erase --tenant T` erases there only; without it, everywhere, with a
    tombstone in each tenant affected."""
    from souverain.audit.log import Payload
    from souverain.audit.payloads import PayloadVault, load_or_create_master_key

    data = tmp_path / "data"
    data.mkdir()
    database = open_database(sqlite_url(data))
    upgrade(database)
    vault = PayloadVault(database, load_or_create_master_key(data / "audit-master.key"))
    signer = load_or_create_signing_key(data / "audit-signing.key", ORIGIN)
    audit = AuditLog(database, signer, ORIGIN, vault=vault)

    async def fill() -> None:
        await audit.start()
        for tenant in ("acme", "globex", "acme"):
            await audit.append({"kind": "request", "tenant": tenant}, Payload("zoe", b"body"))
        await audit.close()

    asyncio.run(fill())
    env = {"SOUVERAIN_AUDIT__ORIGIN": ORIGIN}
    args = ["audit", "erase", "--subject", "zoe", "--data-dir", str(data)]
    one = CliRunner().invoke(cli, [*args, "--tenant", "acme"], env=env)
    assert one.exit_code == 0, one.output
    result = json.loads(one.output)
    assert result["payloads_erased"] == 2 and result["tenant"] == "acme"
    assert result["subject"] == vault.pseudonym("acme", "zoe")
    everywhere = json.loads(CliRunner().invoke(cli, args, env=env).output)
    assert [(t["tenant"], t["payloads_erased"]) for t in everywhere["tombstones"]] == [
        ("globex", 1)
    ]
    with database.connect() as conn:
        rows = conn.execute(text("SELECT data FROM audit_leaves")).scalars().all()
    leaves = [json.loads(row) for row in rows]
    tombstones = [
        (leaf["tenant"], leaf["payloads_erased"]) for leaf in leaves if leaf["kind"] == "tombstone"
    ]
    assert tombstones == [("acme", 2), ("globex", 1)]
    assert report(audit).ok


def test_postgres_insert_only_role(tmp_path: Path) -> None:
    """On PostgreSQL a role that may only read and append cannot change rows even with
    the triggers off."""
    from souverain.store.database import grant_audit_writer

    from .databases import postgres_database

    for url in postgres_database():
        audit, _ = make_log(tmp_path, 3, url=url)
        role = "souverain_audit_writer_" + url.rsplit("_", 1)[-1]
        with audit.database.begin() as conn:
            conn.execute(text(f"CREATE ROLE {role} LOGIN"))
            grant_audit_writer(conn, role)
            for table in APPEND_ONLY:
                conn.execute(text(f"ALTER TABLE {table} DISABLE TRIGGER USER"))
        writer = open_database(url.replace("postgres@", f"{role}@"))
        try:
            writer_log = AuditLog(writer, audit.signer, ORIGIN)
            assert writer_log._write([({"kind": "request", "n": 99}, None)]) == 3  # appending works
            for statement in ("UPDATE audit_leaves SET outcome = 'x'", "DELETE FROM audit_leaves",
                              "UPDATE audit_checkpoints SET note = ''"):  # fmt: skip
                with (
                    pytest.raises(DatabaseError, match="permission denied"),
                    writer.begin() as conn,
                ):
                    conn.execute(text(statement))
        finally:
            writer.dispose()
            audit.database.dispose()
            with open_database(url).begin() as conn:
                conn.execute(text(f"DROP OWNED BY {role}"))
                conn.execute(text(f"DROP ROLE {role}"))
