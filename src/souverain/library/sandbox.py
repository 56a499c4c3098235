"""Parsing one document in a child process that can be killed, with its memory capped.

The parsers run native code (pdfium, libxml2 through python-docx, ONNX Runtime) on bytes
an uploader chose. In the gateway's own process a hostile file could take gigabytes,
hold a core for hours or crash the server, and a thread cannot be stopped, so SIGTERM
waited for it. Here each document gets a fresh child (forked from a `forkserver` that
has the parsers imported: about 60 ms a document), which first caps itself:

* its address space (`RLIMIT_AS` = `parse_memory_bytes`): a bomb gets MemoryError or dies,
  the gateway does not;
* it ends itself as soon as the gateway's process is gone (a thread waits on the handle
  multiprocessing gives it), and its CPU time is capped (`RLIMIT_CPU`): backstops for
  a gateway killed outright, which cannot kill it;

and the gateway kills it (SIGKILL) when `parse_timeout_s` has passed, when the task
waiting for it is cancelled (server shutdown), and when it is done. The OCR budget of
the document's tenant goes with it: before each page the child checks what it has
spent, and refuses the page once the budget is gone.

What comes back: the pages (`ParseOutcome`), or `InvalidRequest` with the reason the
child gave (a corrupt file, a limit), or `ParserCrashed` when it died without one (a
signal, memory the C code could not get): the worker retries those up to
`max_attempts`.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import multiprocessing
import os
import resource
import signal
import threading
import time
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

import numpy as np

from ..config import OcrConfig
from ..errors import InvalidRequest, SouverainError
from ..ocr.layout import Line
from .limits import IngestLimits

M_ARENA_MAX = -8
_CONTEXT = multiprocessing.get_context("forkserver")
# The forkserver imports these once; a child is forked from it with them in memory. A
# child also runs the gateway's main script again (multiprocessing's rule; skipped for
# `python -m souverain`): the `souverain` script imports souverain.cli, preloaded too.
_CONTEXT.set_forkserver_preload(["souverain.cli", "souverain.library.parsers"])


@dataclass(frozen=True, slots=True)
class ParseRequest:
    data: bytes
    kind: str
    ocr: OcrConfig
    use_ocr: bool
    limits: IngestLimits
    ocr_budget_s: float


@dataclass(frozen=True, slots=True)
class ParseOutcome:
    pages: list[str]
    paged: bool
    ocr_seconds: float


class ParserCrashed(Exception):
    """The child died without an answer; `ocr_seconds` is what the attempt may have used."""

    def __init__(self, message: str, ocr_seconds: float) -> None:
        super().__init__(message)
        self.message = message
        self.ocr_seconds = ocr_seconds


class ParseRefused(InvalidRequest):
    """The document is refused: the child's reason (a corrupt file, a limit, the OCR
    budget), or the deadline; final, since another try would end the same way."""

    def __init__(self, message: str, code: str | None, ocr_seconds: float) -> None:
        super().__init__(message, param="file", code=code)
        self.ocr_seconds = ocr_seconds


# ---- in the gateway ---------------------------------------------------------------------


async def parse_in_child(request: ParseRequest) -> ParseOutcome:
    """Parse in a fresh child; ParseRefused (its reason, or the deadline) or ParserCrashed."""
    receiver, sender = _CONTEXT.Pipe(duplex=False)
    child = _CONTEXT.Process(
        target=_child, args=(sender, request), name="souverain-parse", daemon=True
    )
    started = time.monotonic()
    try:
        try:
            await asyncio.to_thread(child.start)  # sends the document through a pipe: may block
        except OSError as exc:  # the child died while it read the document (a kill, no memory)
            raise ParserCrashed(_died_at_start(exc), 0.0) from None
        sender.close()
        try:
            async with asyncio.timeout(request.limits.parse_timeout_s):
                await _readable(receiver)
                message: tuple[Any, ...] = await asyncio.to_thread(receiver.recv)
        except TimeoutError:
            raise ParseRefused(
                f"parsing the document took longer than {request.limits.parse_timeout_s:g} s "
                "(libraries.limits.parse_timeout_s); it was stopped",
                "parse_timeout",
                time.monotonic() - started if request.use_ocr else 0.0,
            ) from None
        except (EOFError, OSError):
            _kill(child)
            await asyncio.to_thread(child.join)
            spent = time.monotonic() - started if request.use_ocr else 0.0
            raise ParserCrashed(_death(child.exitcode), spent) from None
    finally:
        _kill(child)
        receiver.close()
        sender.close()
        with contextlib.suppress(Exception):
            await asyncio.to_thread(child.join, 5)
    return _outcome(message)


def _outcome(message: tuple[Any, ...]) -> ParseOutcome:
    match message:
        case ("done", pages, paged, ocr_seconds):
            return ParseOutcome(list(pages), bool(paged), float(ocr_seconds))
        case ("refused", text, code, ocr_seconds):
            raise ParseRefused(str(text), code, float(ocr_seconds))
    raise ParserCrashed("the parser answered something unexpected", 0.0)


async def _readable(connection: Connection) -> None:
    """Until the child writes its answer, or exits (end of file)."""
    loop = asyncio.get_running_loop()
    ready = loop.create_future()
    descriptor = connection.fileno()

    def wake() -> None:
        if not ready.done():
            ready.set_result(None)

    loop.add_reader(descriptor, wake)
    try:
        await ready
    finally:
        loop.remove_reader(descriptor)


def _kill(child: multiprocessing.process.BaseProcess) -> None:
    if child.pid is not None and child.exitcode is None:
        with contextlib.suppress(OSError, ValueError):
            child.kill()


def _died_at_start(exc: OSError) -> str:
    # multiprocessing has no handle on a child it could not hand the document to, so its
    # exit status is unknown: the broken pipe is all there is to report.
    why = exc.strerror or type(exc).__name__
    return f"the parser stopped before it had read the document ({why}: killed, or out of memory)"


def _death(exitcode: int | None) -> str:
    if exitcode is not None and exitcode < 0:
        name = signal.Signals(-exitcode).name if -exitcode in signal.valid_signals() else ""
        how = f"killed by signal {-exitcode} ({name})" if name else f"signal {-exitcode}"
    else:
        how = f"exit status {exitcode}"
    return f"the parser stopped without an answer ({how}: out of memory, or a crash)"


# ---- in the child -----------------------------------------------------------------------


class _BudgetedOcr:
    """The OCR engine, refusing pages once the tenant's budget is spent."""

    def __init__(self, config: OcrConfig, budget_s: float) -> None:
        from ..ocr.engine import OcrEngine

        self.engine = OcrEngine(config.threads)
        self.budget_s = budget_s
        self.spent = 0.0

    def recognize(self, bitmap: np.ndarray) -> list[Line]:
        if self.spent >= self.budget_s:
            raise _BudgetSpent
        started = time.monotonic()
        try:
            return self.engine.recognize(bitmap)
        finally:
            self.spent += time.monotonic() - started


class _BudgetSpent(Exception):
    pass


def _child(connection: Connection, request: ParseRequest) -> None:
    _confine(request.limits)
    from .parsers import parse

    ocr = _BudgetedOcr(request.ocr, request.ocr_budget_s) if request.use_ocr else None
    limits = request.limits
    answer: tuple[Any, ...]
    try:
        parsed = parse(request.data, request.kind, ocr=ocr, config=request.ocr, limits=limits)
        answer = ("done", parsed.pages, parsed.paged, ocr.spent if ocr else 0.0)
    except _BudgetSpent:
        why = (
            "the OCR time of this tenant is spent for now (libraries.limits."
            f"ocr_seconds_per_hour: {limits.ocr_seconds_per_hour:g} s per hour); "
            "reprocess the document later"
        )
        answer = ("refused", why, "ocr_budget_spent")
    except SouverainError as exc:
        answer = ("refused", exc.message, exc.code)
    except MemoryError:
        why = (
            "parsing the document needs more memory than libraries.limits."
            f"parse_memory_bytes ({limits.parse_memory_bytes} bytes)"
        )
        answer = ("refused", why, "parse_memory")
    except Exception as exc:  # a parser's bug on this file: its error, as before
        answer = ("refused", f"processing failed ({type(exc).__name__}: {exc})", None)
    if answer[0] == "refused":
        answer = (*answer, ocr.spent if ocr else 0.0)
    try:
        connection.send(answer)
    except MemoryError:
        os._exit(3)  # no memory left even to answer: the gateway reports a crash
    connection.close()


def _confine(limits: IngestLimits) -> None:
    gateway = multiprocessing.parent_process()
    if gateway is not None:
        # `join` returns when the gateway's process is gone (at once if it already is).
        threading.Thread(target=_exit_after, args=(gateway,), daemon=True).start()
    memory = limits.parse_memory_bytes
    resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
    cpu = int(limits.parse_timeout_s * (os.cpu_count() or 1)) + 30
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 10))
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        # glibc reserves 64 MiB of address space per thread arena; ONNX Runtime's
        # threads would spend the address-space cap on reservations.
        libc.mallopt(M_ARENA_MAX, 2)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the gateway's to handle
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


def _exit_after(gateway: multiprocessing.process.BaseProcess) -> None:
    gateway.join()
    os._exit(70)
