"""Fail when a source module grows past 500 lines (see ../shared/STYLE.md, lesson 1)."""

import sys
from pathlib import Path

LIMIT = 500
too_big = [
    (path, count)
    for path in sorted(Path("src").rglob("*.py"))
    if (count := len(path.read_text(encoding="utf-8").splitlines())) > LIMIT
]
for path, count in too_big:
    print(f"{path}: {count} lines (limit {LIMIT}); split it by responsibility")
sys.exit(1 if too_big else 0)
