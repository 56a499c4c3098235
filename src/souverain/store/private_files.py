"""The data directory is its owner's alone: the folder 0700, every file in it 0600.

It holds the SQLite database (documents in plain text, retained payloads, the audit log),
SQLite's -wal and -shm files beside it, the pepper that key hashes are keyed with, the
DLP key and the audit keys. Modes are set at creation, whatever the process's umask, and
a folder or file an older release left readable by others is tightened at start, with a
warning naming it (something else may have read it meanwhile).

SQLite creates the -wal, -shm and -journal files with the mode of the database file, so
the database file is created 0600 before SQLite first opens it.
"""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

log = logging.getLogger("souverain.store")

DIRECTORY_MODE = 0o700
FILE_MODE = 0o600
SQLITE_COMPANIONS = ("-wal", "-shm", "-journal", ".upgrade-lock")
# What Souverain keeps in its data directory. Only these are tightened: the folder may
# have been pointed at one that holds other things too.
DATA_FILES = (
    "souverain.db",
    *("souverain.db" + suffix for suffix in SQLITE_COMPANIONS),
    "pepper",
    "dlp.key",
    "audit-signing.key",
    "audit-master.key",
)


def private_directory(path: Path) -> Path:
    """Create the data directory 0700, or tighten it and the files Souverain keeps in it."""
    path.mkdir(parents=True, exist_ok=True, mode=DIRECTORY_MODE)
    _tighten(path, DIRECTORY_MODE)
    for name in DATA_FILES:
        _tighten(path / name, FILE_MODE)
    return path


def private_file(path: Path) -> None:
    """Create `path` empty and 0600 if it does not exist (an existing one is left as it
    is, only tightened)."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, FILE_MODE)
    except FileExistsError:
        _tighten(path, FILE_MODE)
        return
    try:
        os.fchmod(fd, FILE_MODE)  # the umask may have removed owner bits at creation
    finally:
        os.close(fd)


def private_sqlite_files(database: Path) -> None:
    """The database file created 0600 before SQLite opens it (its -wal and -shm follow
    its mode), and companions left readable by an older release tightened."""
    private_file(database)
    for suffix in SQLITE_COMPANIONS:
        _tighten(database.with_name(database.name + suffix), FILE_MODE)


def _tighten(path: Path, mode: int) -> None:
    """Remove every permission of group and others; a symlink is not followed (the data
    directory itself may be one: that is resolved by the caller's mkdir)."""
    try:
        info = path.stat() if mode == DIRECTORY_MODE else path.lstat()
    except FileNotFoundError:
        return
    if stat.S_ISLNK(info.st_mode):
        return
    current = stat.S_IMODE(info.st_mode)
    if current & ~mode:
        log.warning(
            "%s was open to other users (mode %o): tightened to %o. What it holds may have "
            "been read meanwhile.",
            path,
            current,
            current & mode,
        )
        os.chmod(path, current & mode)
