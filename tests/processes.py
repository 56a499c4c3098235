"""Servers the tests start as child processes: wait until one answers, stop it."""

from __future__ import annotations

import subprocess
import time

import httpx


def answers(
    process: subprocess.Popen[bytes], url: str, timeout: float = 120, interval: float = 0.1
) -> bool:
    """Until GET `url` is a 200 (True), or the process exits or `timeout` passes (False)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            return False
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return True
        except httpx.HTTPError:
            pass
        time.sleep(interval)
    return False


def stop(process: subprocess.Popen[bytes], grace: float = 15) -> None:
    """SIGTERM, and SIGKILL if it has not exited after `grace` seconds."""
    process.terminate()
    try:
        process.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
