"""Ids of the items and entries the agent runtime makes: a prefix naming the kind, then 32
random hex digits (`resp_…`, `conv_…`, `msg_…`, `fc_…`)."""

from __future__ import annotations

import secrets


def item_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(16)}"
