"""What one uploaded document may cost the ingest worker: `libraries.limits` (docs/libraries.md).

A small file can expand enormously (a DOCX is a ZIP of XML; a PDF can hold 10,000 blank
pages, each rendered and OCR'd), and the ingest worker is shared by every tenant. So each
document is parsed in a child process (library/sandbox.py) under these limits:

    max_unpacked_bytes     a DOCX's members together, as declared and as actually inflated
    max_compression_ratio  per member of over 1 MiB: inflated size / compressed size
    max_xml_elements       elements in a DOCX's XML parts, counted while streaming
    max_pages              pages of a PDF or frames of a TIFF
    parse_timeout_s        wall-clock time of one parse; then the child is killed
    parse_memory_bytes     the child's address space (RLIMIT_AS)
    ocr_seconds_per_hour   OCR time per tenant over a sliding hour, on this replica
    max_attempts           parses that crash (or never finish) before the document is `error`

The OCR budget is kept in this process's memory: each replica gives a tenant its own
budget, and a restart forgets what was spent.
"""

from __future__ import annotations

import threading
import time
from collections import deque

from pydantic import BaseModel, ConfigDict, Field

MIB = 1024 * 1024
BUDGET_PERIOD_S = 3600.0


class IngestLimits(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    max_unpacked_bytes: int = Field(default=100 * MIB, ge=MIB)
    max_compression_ratio: float = Field(default=100.0, ge=2)
    max_xml_elements: int = Field(default=1_000_000, ge=1000)
    max_pages: int = Field(default=500, ge=1)
    parse_timeout_s: float = Field(default=600.0, gt=0)
    parse_memory_bytes: int = Field(default=2048 * MIB, ge=256 * MIB)
    ocr_seconds_per_hour: float = Field(default=900.0, ge=0)
    max_attempts: int = Field(default=3, ge=1, le=100)


class OcrBudget:
    """OCR seconds each tenant spent over the last hour (thread-safe; this process only)."""

    def __init__(self, seconds_per_hour: float) -> None:
        self.per_hour = seconds_per_hour
        self._spent: dict[str, deque[tuple[float, float]]] = {}
        self._lock = threading.Lock()

    def left(self, tenant: str) -> float:
        with self._lock:
            return max(0.0, self.per_hour - sum(s for _, s in self._recent(tenant)))

    def charge(self, tenant: str, seconds: float) -> None:
        if seconds <= 0:
            return
        with self._lock:
            self._recent(tenant).append((time.monotonic(), seconds))

    def _recent(self, tenant: str) -> deque[tuple[float, float]]:
        entries = self._spent.setdefault(tenant, deque())
        horizon = time.monotonic() - BUDGET_PERIOD_S
        while entries and entries[0][0] < horizon:
            entries.popleft()
        return entries
