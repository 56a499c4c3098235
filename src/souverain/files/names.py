"""File names as clients send them, made safe to store, list and send back.

A name is a label, never a path: the gateway never writes it to disk (the bytes live in
the database), but it comes back in listings and in `Content-Disposition`, where a
slash, a control character or a 10 KB name would do harm elsewhere. So: the last path
component only (`../../etc/passwd` is `passwd`), control and format characters dropped
(NUL, newlines, the bidirectional overrides that make `exe.txt` read as `txt.exe`),
Unicode kept otherwise (NFC), and at most MAX_FILENAME_CHARS characters, the extension
kept when a long name is cut.
"""

from __future__ import annotations

import unicodedata
from urllib.parse import quote

MAX_FILENAME_CHARS = 255
DEFAULT_FILENAME = "file"
# Unicode categories dropped: controls (Cc), formats (Cf: bidi overrides, zero widths),
# surrogates (Cs), private use (Co), unassigned (Cn), line and paragraph separators.
_DROPPED = {"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"}


def safe_filename(raw: str | None) -> str:
    name = unicodedata.normalize("NFC", raw or "")
    name = name.replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(c for c in name if unicodedata.category(c) not in _DROPPED)
    name = " ".join(name.split()).strip(". ")  # no leading dots: not a hidden file either
    if not name:
        return DEFAULT_FILENAME
    if len(name) > MAX_FILENAME_CHARS:
        stem, dot, extension = name.rpartition(".")
        if dot and stem and 0 < len(extension) <= 16:
            name = stem[: MAX_FILENAME_CHARS - len(extension) - 1] + "." + extension
        else:
            name = name[:MAX_FILENAME_CHARS]
    return name


def content_disposition(filename: str) -> str:
    """`attachment` with an ASCII fallback and the UTF-8 name (RFC 6266, RFC 8187)."""
    fallback = "".join(c if c.isascii() and c.isprintable() and c not in '"\\' else "_"
                       for c in filename)  # fmt: skip
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(filename, safe='')}"
