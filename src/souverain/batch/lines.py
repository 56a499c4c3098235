"""Each batch line's answer, recorded once (`batch_lines`, keyed by batch and line).

The key is the line's place among the batch's requests (0-based, across its input
files). Recording is insert-once: a replica that redoes a line another one already
answered (a lease taken over after a stall, a crash between the call and the record)
adds nothing, so the output never holds a line twice.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass

from sqlalchemy import Engine, delete, func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from ..store.work_tables import batch_lines


@dataclass(frozen=True, slots=True)
class LineResult:
    index: int
    failed: bool
    text: str  # the output file's JSON line, without its newline


@dataclass(frozen=True, slots=True)
class LineCounts:
    succeeded: int = 0
    failed: int = 0

    @property
    def done(self) -> int:
        return self.succeeded + self.failed


class LineStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def record(self, batch_id: str, result: LineResult) -> bool:
        """True if this is the line's first answer (and it was written)."""
        values = {"batch_id": batch_id, "line": result.index, "failed": result.failed,
                  "body": result.text, "created_at": time.time()}  # fmt: skip
        make = pg_insert if self.engine.dialect.name == "postgresql" else sqlite_insert
        statement = make(batch_lines).values(**values).on_conflict_do_nothing()
        with self.engine.begin() as conn:
            return bool(conn.execute(statement).rowcount)

    def forget(self, batch_id: str) -> None:
        """Drop a finished batch's answers: its output and error files hold them now."""
        with self.engine.begin() as conn:
            conn.execute(delete(batch_lines).where(batch_lines.c.batch_id == batch_id))

    def answered(self, batch_id: str, first: int, last: int) -> set[int]:
        """Lines in [first, last] that have their answer already."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(batch_lines.c.line).where(
                    batch_lines.c.batch_id == batch_id,
                    batch_lines.c.line >= first,
                    batch_lines.c.line <= last,
                )
            ).all()
        return {row.line for row in rows}

    def counts(self, batch_id: str) -> LineCounts:
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(batch_lines.c.failed, func.count())
                .where(batch_lines.c.batch_id == batch_id)
                .group_by(batch_lines.c.failed)
            ).all()
        by = {bool(failed): int(count) for failed, count in rows}
        return LineCounts(succeeded=by.get(False, 0), failed=by.get(True, 0))

    def in_order(self, batch_id: str, page: int = 500) -> Iterator[LineResult]:
        """Every recorded answer by line, read a page at a time."""
        after = -1
        while True:
            with self.engine.connect() as conn:
                rows = conn.execute(
                    select(batch_lines.c.line, batch_lines.c.failed, batch_lines.c.body)
                    .where(batch_lines.c.batch_id == batch_id, batch_lines.c.line > after)
                    .order_by(batch_lines.c.line)
                    .limit(page)
                ).all()
            for row in rows:
                yield LineResult(row.line, bool(row.failed), row.body)
            if len(rows) < page:
                return
            after = rows[-1].line
