"""Secret key files kept outside the database: created 0600, refused if others can read."""

from __future__ import annotations

import os
import secrets
from pathlib import Path


def load_or_create_key_file(path: Path, size: int = 32) -> bytes:
    """`size` random bytes in a 0600 file, created on first use."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(secrets.token_bytes(size))
    if path.stat().st_mode & 0o077:
        raise PermissionError(f"{path} must be readable by its owner only (chmod 600)")
    key = path.read_bytes()
    if len(key) != size:
        raise ValueError(f"{path} must hold exactly {size} bytes")
    return key
