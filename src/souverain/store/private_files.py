"""The data directory is its owner's alone: the folder 0700, every file in it 0600.

It holds the SQLite database (documents in plain text, retained payloads, the audit log),
SQLite's -wal and -shm files beside it, the pepper that key hashes are keyed with, the
DLP key and the audit keys. Modes are set at creation, whatever the process's umask. At
start, a folder, database or pepper an older release left open to others is tightened,
with a warning naming it (something else may have read it meanwhile); a key file others
could read stops the start (its loader refuses it: such a key is replaced, not kept).

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
# What Souverain keeps in its data directory and tightens at start; only these, as the
# folder may have been pointed at one that holds other things too. The DLP and audit key
# files are not among them: their loaders refuse to start with one others could read (a
# key that may have been copied is replaced, not quietly kept).
DATA_FILES = (
    "souverain.db",
    *("souverain.db" + suffix for suffix in SQLITE_COMPANIONS),
    "pepper",
)


def private_directory(path: Path) -> Path:
    """Create the data directory 0700, or tighten it and the files Souverain keeps in it."""
    path.mkdir(parents=True, exist_ok=True, mode=DIRECTORY_MODE)
    _tighten(path, DIRECTORY_MODE, follow=True)
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


def _tighten(path: Path, mode: int, *, follow: bool = False) -> None:
    """Remove the permissions `mode` does not have (group's and others'). A symlink is
    left alone unless `follow` (the data directory itself may be one)."""
    try:
        info = path.stat() if follow else path.lstat()
    except FileNotFoundError:
        return
    if stat.S_ISLNK(info.st_mode):
        return
    current = stat.S_IMODE(info.st_mode)
    if not current & ~mode:
        return
    try:
        os.chmod(path, current & mode)
    except PermissionError:  # another user's: they can read it anyway; say so, go on
        message = "%s is open to other users (mode %o) and cannot be tightened: chmod %o it"
        log.error(message, path, current, current & mode)
        return
    log.warning(
        "%s was open to other users (mode %o): tightened to %o. What it holds may have "
        "been read meanwhile.",
        path,
        current,
        current & mode,
    )
