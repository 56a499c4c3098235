"""The agent registry on both stores (SQLite and PostgreSQL, migrated to head): versions
are never overwritten, even by updates racing each other; every read is confined to one
tenant; odd versions and search patterns read as "not found", never as a database error.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import sqlalchemy as sa

from souverain.agents.registry import AgentRegistry, AgentVersion, new_agent_id
from souverain.store.database import open_database, upgrade


@pytest.fixture
def registry(database_url: str) -> Iterator[AgentRegistry]:
    engine = open_database(database_url)
    upgrade(engine)
    yield AgentRegistry(engine)
    engine.dispose()


def body(**fields: Any) -> dict[str, Any]:
    return {"model": "m", "name": "agent", "tools": [], "limits": {}, **fields}


def test_updates_write_new_versions_and_racing_ones_lose_nothing(registry: AgentRegistry) -> None:
    made = registry.create("t1", None, "key:1", new_agent_id(), body(instructions="v1"))
    assert made.version == 1 and made.instructions == "v1"

    def bump(index: int) -> AgentVersion | None:
        return registry.update(
            "t1", made.id, "key:1", lambda current: {**current.body(), "description": str(index)}
        )

    with ThreadPoolExecutor(max_workers=6) as pool:
        results = list(pool.map(bump, range(12)))
    numbers = sorted(result.version for result in results if result is not None)
    assert numbers == list(range(2, 14))  # each update its own version, none overwritten
    assert registry.version_numbers(made.id) == list(range(1, 14))
    current = registry.resolve("t1", made.id)
    assert current is not None and current.version == 13
    first = registry.resolve("t1", made.id, 1)
    assert first is not None and first.instructions == "v1" and first.description is None


def test_reads_are_confined_to_the_tenant(registry: AgentRegistry) -> None:
    made = registry.create("t1", None, "key:1", new_agent_id(), body())
    assert registry.resolve("t2", made.id) is None
    assert registry.versions("t2", made.id, 0, 10) is None
    assert registry.aliases("t2", made.id) is None
    assert registry.update("t2", made.id, "key:2", lambda current: current.body()) is None
    assert registry.switch("t2", made.id, 1) is None
    assert registry.set_alias("t2", made.id, "prod", 1) is None
    assert registry.delete_alias("t2", made.id, "prod") is None
    assert registry.delete("t2", made.id) is False
    assert registry.listing("t2", offset=0, limit=10) == []
    assert registry.resolve("t1", made.id) is not None


def test_odd_versions_and_patterns_are_not_found(registry: AgentRegistry) -> None:
    made = registry.create("t1", None, "key:1", new_agent_id(), body(name="50%_off"))
    for version in (0, -1, 2**31, 2**63, "9" * 40, "", "x" * 500, "\uff11"):
        assert registry.resolve("t1", made.id, version) is None
    assert registry.resolve("t1", "x" * 1000) is None
    other = registry.create("t1", None, "key:1", new_agent_id(), body(name="500 off"))
    assert [a.id for a in registry.listing("t1", offset=0, limit=10, search="0%_")] == [made.id]
    assert {a.id for a in registry.listing("t1", offset=0, limit=10, search="OFF")} == {
        made.id,
        other.id,
    }


def test_delete_takes_versions_and_aliases(registry: AgentRegistry) -> None:
    made = registry.create("t1", None, "key:1", new_agent_id(), body())
    registry.update("t1", made.id, "key:1", lambda current: current.body())
    alias = registry.set_alias("t1", made.id, "prod", 2)
    assert alias is not None and alias.version == 2
    resolved = registry.resolve("t1", made.id, "prod")
    assert resolved is not None and resolved.version == 2
    assert registry.delete("t1", made.id) is True
    with registry.database.connect() as db:
        for table in ("agent_versions", "agent_aliases"):
            left = db.execute(sa.text(f"SELECT count(*) FROM {table} WHERE agent_id = :id"),
                              {"id": made.id}).scalar_one()  # fmt: skip
            assert left == 0
