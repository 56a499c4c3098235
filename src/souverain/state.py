"""Everything one running app holds, passed explicitly (no module-level globals)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from sqlalchemy import Engine

from .agents.conversation_cache import HistoryCache
from .audit.log import AuditLog
from .config import Settings
from .identity.directory import Directory
from .identity.keys import KeyStore
from .library.service import LibraryService
from .observability.metrics import Metrics
from .pipeline import Pipeline
from .routing.models import ModelCatalog
from .usage.recorder import UsageRecorder

if TYPE_CHECKING:
    from .batch.service import BatchService
    from .connectors.service import ConnectorService
    from .ocr.call import OcrCalls


@dataclass(slots=True)
class AppState:
    settings: Settings
    database: Engine
    keys: KeyStore
    directory: Directory
    catalog: ModelCatalog
    metrics: Metrics
    pipeline: Pipeline
    audit: AuditLog | None = None
    usage: UsageRecorder | None = None
    libraries: LibraryService | None = None  # document libraries (library/)
    connectors: ConnectorService | None = None  # MCP connectors, made on first use
    batches: BatchService | None = None  # the Batch APIs (batch/), run as jobs (jobs/)
    ocr: OcrCalls | None = None  # `/v1/ocr` and OCR batch lines: one engine and queue
    started: bool = False
    # Recent conversation histories, checked against the database on every read.
    conversation_history: HistoryCache = field(default_factory=HistoryCache)
