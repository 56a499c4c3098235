"""Documents count their processing attempts, so that one that keeps failing stops.

A document whose parsing crashed the gateway was claimed again after every restart,
forever. `attempts` counts the claims of the ingest worker; once it reaches
`libraries.limits.max_attempts` the document is marked `error` with the reason instead
of being claimed again. Reprocessing a document starts the count again.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"


def upgrade() -> None:
    op.add_column(
        "library_documents",
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    )
