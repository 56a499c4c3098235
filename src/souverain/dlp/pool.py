"""The threads that run long scans, apart from everything else.

A scan of a large request is CPU work measured in tens or hundreds of milliseconds. Run on
asyncio's default executor, a few of them occupy every thread that key lookups, admin
queries and file reads also wait for (seven 1 MB requests made GET /admin/v1/keys wait
104 s). Here they queue for a small pool of their own: at most SCAN_THREADS scans run at
once, the rest wait their turn, and the default executor stays free.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")
SCAN_THREADS = 2  # scans hold the GIL: more threads would not scan faster, only starve the loop

_lock = threading.Lock()
_executor: ThreadPoolExecutor | None = None


def executor() -> ThreadPoolExecutor:
    """The process's scan pool, made on first use (a forked worker makes its own)."""
    global _executor
    with _lock:
        if _executor is None:
            _executor = ThreadPoolExecutor(SCAN_THREADS, thread_name_prefix="souverain-dlp")
        return _executor


async def run_scan(function: Callable[[], T]) -> T:
    """`function()` on the scan pool, awaited from the event loop."""
    return await asyncio.get_running_loop().run_in_executor(executor(), function)
