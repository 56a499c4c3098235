"""Alembic's entry point: runs on the connection `store.database.upgrade` hands over.

Souverain never runs Alembic with an ini file: `upgrade()` builds the configuration,
takes the upgrade lock and passes its connection in `config.attributes`.
"""

from __future__ import annotations

from typing import Any

from alembic import context

from souverain.store import work_tables  # noqa: F401  (its tables join `metadata`)
from souverain.store.tables import metadata

config = context.config
connection = config.attributes["connection"]
applied: list[str] = config.attributes.setdefault("applied", [])


def _record(*, step: Any, **_: Any) -> None:
    applied.append(step.up_revision_id)


def _on_apply(*args: Any, **kwargs: Any) -> None:
    _record(**kwargs)


context.configure(
    connection=connection,
    target_metadata=metadata,
    render_as_batch=True,  # SQLite alters tables by copying them
    on_version_apply=_on_apply,
)
with context.begin_transaction():
    context.run_migrations()
