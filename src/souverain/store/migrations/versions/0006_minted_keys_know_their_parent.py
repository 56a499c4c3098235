"""A key minted by a non-admin key remembers that key (`api_keys.parent_id`).

A developer's key used to mint keys free of its own expiry, limits and classification
floor. The child now carries its parent's bounds, and the parent's id, so that at every
call the parent's own limits count the child's use too (minting a hundred keys does not
multiply a budget), and revoking or expiring the parent ends its children
(identity/minting.py). NULL: minted by an admin, a token or the command line.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"


def upgrade() -> None:
    # No foreign key: SQLite cannot add one to an existing table without a rebuild, and
    # the id is only followed upwards at lookup time (a missing parent ends the chain
    # as unusable, see identity/keys.py).
    op.add_column("api_keys", sa.Column("parent_id", sa.Integer, nullable=True))
    op.create_index("api_keys_parent", "api_keys", ["parent_id"])
