"""SOUVERAIN_ADMIN_KEY across restarts: the same key keeps its row (and so what it owns)."""

from __future__ import annotations

from souverain.identity.keys import KeyStore
from souverain.store.database import open_database, upgrade

FIRST = "sk-sv-adminkey" + "a" * 32
SECOND = "sk-sv-adminkey" + "b" * 32  # the same prefix: only the hash tells them apart


def test_the_same_admin_key_keeps_its_id_and_another_replaces_it(database_url: str) -> None:
    engine = open_database(database_url.replace("postgresql://", "postgresql+psycopg://"))
    upgrade(engine)
    keys = KeyStore(engine, b"pepper")
    assert keys.ensure_admin(FIRST) is None
    first = keys.lookup(FIRST)
    assert first is not None and first.key_id is not None
    keys.forget()
    keys.ensure_admin(FIRST)  # a restart with the same key
    again = keys.lookup(FIRST)
    assert again is not None and again.key_id == first.key_id  # it still owns its things
    keys.forget()
    keys.ensure_admin(SECOND)  # a changed key replaces the old one
    assert keys.lookup(FIRST) is None
    second = keys.lookup(SECOND)
    assert second is not None and second.key_id != first.key_id and second.role == "owner"
    engine.dispose()
