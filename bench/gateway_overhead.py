#!/usr/bin/env python3
"""Gateway overhead benchmark: direct upstream vs Souverain vs LiteLLM proxy.

One command (from the repo root):

    .venv/bin/python bench/gateway_overhead.py
    .venv/bin/python bench/gateway_overhead.py --requests 500 --concurrency 1,50 --only direct,souverain

What it does, in one run:
  1. starts bench/fast_upstream.py (a cheap OpenAI-compatible server, no delay);
  2. for each target -- direct (the upstream itself), souverain, litellm -- starts
     the gateway in front of the upstream (one gateway at a time), waits until it
     is ready, checks one non-streamed and one streamed answer by hand, then for
     each mode (non-streamed / streamed) and each concurrency (default 1 and 100)
     runs a warm-up and a fixed number of requests with a load generator in its
     own process (wrk if installed, else a small asyncio client), and records
     p50/p90/p99 latency, RPS, errors and the CPU time the servers used;
  3. prints a table, the "added latency" (gateway minus direct) and ratios, and
     writes bench/results/gateway_overhead.json.

LiteLLM is installed, if missing, into its own venv bench/.venv-litellm (never
into the project venv). Souverain is run from /work/main/.venv/bin/souverain
(``pip install -e .``); if it is missing, that target is skipped and reported.

Stdlib only. Every process started here is killed at the end (also on Ctrl-C
or error); every wait and every load phase is bounded in time.
"""

# Report tables and the embedded Lua read better on one line each (as tests/* in pyproject).
# ruff: noqa: E501
from __future__ import annotations

import argparse
import asyncio
import contextlib
import http.client
import json
import os
import platform
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
REPO_DIR = BENCH_DIR.parent
DEFAULT_LITELLM_VENV = BENCH_DIR / ".venv-litellm"
DEFAULT_SOUVERAIN_BIN = REPO_DIR / ".venv" / "bin" / "souverain"
DEFAULT_OUTPUT = BENCH_DIR / "results" / "gateway_overhead.json"
MODEL = "bench-model"
SOUVERAIN_KEY = "sk-bench-souverain-0123456789"
LITELLM_KEY = "sk-bench-litellm-0123456789"
UPSTREAM_KEY = "sk-upstream-unused"
PROMPT = "Say hello in five words."
MAX_TOKENS = 16
ALL_TARGETS = ("direct", "souverain", "litellm")
ALL_MODES = ("nonstream", "stream")


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", flush=True)


# --------------------------------------------------------------------------- processes


class Procs:
    """Every process started by the benchmark; killed (whole process group) on exit."""

    def __init__(self) -> None:
        self.procs: list[tuple[str, subprocess.Popen]] = []

    def start(
        self,
        name: str,
        cmd: list[str],
        *,
        env: dict | None = None,
        cpus: set[int] | None = None,
        log_path: Path | None = None,
        cwd: Path | None = None,
        pipe: bool = False,
    ) -> subprocess.Popen:
        def pre() -> None:
            if cpus:
                os.sched_setaffinity(0, cpus)

        with contextlib.ExitStack() as stack:
            out = (
                stack.enter_context(open(log_path, "wb"))
                if log_path
                else (subprocess.PIPE if pipe else subprocess.DEVNULL)
            )
            p = subprocess.Popen(
                cmd,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                preexec_fn=pre,
                cwd=cwd,
            )
        self.procs.append((name, p))
        return p

    def stop(self, p: subprocess.Popen, timeout: float = 10.0) -> None:
        # Each process was started in its own session (start_new_session): its group holds
        # only processes this benchmark started.
        if p.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(p.pid, signal.SIGTERM)
            try:
                p.wait(timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(p.pid, signal.SIGKILL)
                p.wait(5)
        else:
            # the leader exited; make sure no child of its group survives
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(p.pid, signal.SIGKILL)
        self.procs = [(n, q) for n, q in self.procs if q is not p]

    def stop_all(self) -> None:
        for _, p in list(reversed(self.procs)):
            self.stop(p)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def tail(path: Path, n: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-n:])
    except OSError:
        return "(no log)"


def http_get_status(port: int, path: str, timeout: float = 2.0) -> int | None:
    try:
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
        c.request("GET", path)
        r = c.getresponse()
        r.read()
        c.close()
        return r.status
    except (OSError, http.client.HTTPException):
        return None


def wait_ready(
    name: str, proc: subprocess.Popen, port: int, path: str, timeout: float, log_path: Path
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(
                f"{name} exited with code {proc.returncode} before it was ready.\n"
                f"--- last lines of {log_path} ---\n{tail(log_path)}"
            )
        if http_get_status(port, path) == 200:
            return
        time.sleep(0.25)
    raise RuntimeError(
        f"{name} not ready on 127.0.0.1:{port}{path} after {timeout:.0f}s.\n"
        f"--- last lines of {log_path} ---\n{tail(log_path)}"
    )


def tree_cpu_seconds(root_pid: int) -> float:
    """utime+stime of root_pid and all its live descendants (from /proc)."""
    tck = os.sysconf("SC_CLK_TCK")
    children: dict[int, list[int]] = {}
    times: dict[int, float] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                data = f.read().decode(errors="replace")
        except OSError:
            continue
        rest = data[data.rfind(")") + 2 :].split()
        pid, ppid = int(entry), int(rest[1])
        children.setdefault(ppid, []).append(pid)
        times[pid] = (int(rest[11]) + int(rest[12])) / tck
    total, stack = 0.0, [root_pid]
    while stack:
        pid = stack.pop()
        total += times.get(pid, 0.0)
        stack.extend(children.get(pid, []))
    return total


# --------------------------------------------------------------------------- request bodies


def body_for(mode: str) -> str:
    req = {
        "model": MODEL,
        "messages": [{"role": "user", "content": PROMPT}],
        "max_tokens": MAX_TOKENS,
    }
    if mode == "stream":
        req["stream"] = True
    return json.dumps(req, separators=(",", ":"))


def smoke_check(port: int, key: str) -> dict:
    """One non-streamed and one streamed request; verifies the answers the load run will get."""
    out: dict = {}
    hdrs = {"Content-Type": "application/json", "Authorization": f"Bearer {key}"}
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    c.request("POST", "/v1/chat/completions", body_for("nonstream"), hdrs)
    r = c.getresponse()
    raw = r.read()
    if r.status != 200:
        raise RuntimeError(f"non-streamed check: HTTP {r.status}: {raw[:500]!r}")
    obj = json.loads(raw)
    content = obj["choices"][0]["message"]["content"]
    if "fast upstream" not in content:
        raise RuntimeError(f"non-streamed check: unexpected content {content!r}")
    out["nonstream_content"] = content
    c.request("POST", "/v1/chat/completions", body_for("stream"), hdrs)
    r = c.getresponse()
    raw = r.read()
    c.close()
    if r.status != 200:
        raise RuntimeError(f"streamed check: HTTP {r.status}: {raw[:500]!r}")
    text = raw.decode(errors="replace")
    frames = [ln[5:].strip() for ln in text.splitlines() if ln.startswith("data:")]
    if not frames or frames[-1] != "[DONE]":
        raise RuntimeError(f"streamed check: no final [DONE] frame: {text[-300:]!r}")
    pieces, finish, usage = [], None, None
    for fr in frames[:-1]:
        ch = json.loads(fr)
        for choice in ch.get("choices") or []:
            pieces.append((choice.get("delta") or {}).get("content") or "")
            finish = choice.get("finish_reason") or finish
        usage = ch.get("usage") or usage
    out["stream_frames"] = len(frames)
    out["stream_content"] = "".join(pieces)
    out["stream_finish_reason"] = finish
    out["stream_usage_seen"] = usage is not None
    if "fast upstream" not in out["stream_content"]:
        raise RuntimeError(f"streamed check: unexpected content {out['stream_content']!r}")
    return out


# --------------------------------------------------------------------------- load generators

WRK_LUA = r"""
-- generated by bench/gateway_overhead.py; wrk stops each phase after a fixed number of responses:
-- on the Nth response the thread stops and prints LOADDONE, then the driver sends SIGINT to wrk
-- (wrk's own main thread would otherwise sleep for the whole -d). Timing uses CLOCK_MONOTONIC via
-- LuaJIT's FFI, from thread init to the Nth response.
local ffi = require("ffi")
ffi.cdef[[ typedef struct { long tv_sec; long tv_nsec; } bench_ts_t; int clock_gettime(int, bench_ts_t *); ]]
local ts = ffi.new("bench_ts_t")
local function now() ffi.C.clock_gettime(1, ts); return tonumber(ts.tv_sec) + tonumber(ts.tv_nsec) * 1e-9 end
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer %(key)s"
wrk.body = [==[%(body)s]==]
local limit = %(limit)d
local marker = [==[%(marker)s]==]
count = 0
bad = 0
t_start = 0
t_end = 0
local threads = {}
function setup(thread) table.insert(threads, thread) end
function init(args) t_start = now() end
function response(status, headers, body)
  count = count + 1
  if status ~= 200 or not string.find(body, marker, 1, true) then bad = bad + 1 end
  if count == limit then
    t_end = now()
    io.write("LOADDONE\n")
    io.flush()
    wrk.thread:stop()
  end
end
function done(summary, latency, requests)
  local b, t0, t1 = 0, 0, 0
  for _, t in ipairs(threads) do
    b = b + t:get("bad")
    if t0 == 0 or t:get("t_start") < t0 then t0 = t:get("t_start") end
    if t:get("t_end") > t1 then t1 = t:get("t_end") end
  end
  local dur = summary.duration / 1e6
  if t1 > t0 and t0 > 0 then dur = t1 - t0 end
  local e = summary.errors
  io.write(string.format(
    'LOADJSON {"requests":%%d,"duration_s":%%.6f,"p50_ms":%%.4f,"p90_ms":%%.4f,"p99_ms":%%.4f,' ..
    '"mean_ms":%%.4f,"max_ms":%%.4f,"min_ms":%%.4f,"bad_responses":%%d,"err_connect":%%d,' ..
    '"err_read":%%d,"err_write":%%d,"err_status":%%d,"err_timeout":%%d}\n',
    summary.requests, dur, latency:percentile(50) / 1e3, latency:percentile(90) / 1e3,
    latency:percentile(99) / 1e3, latency.mean / 1e3, latency.max / 1e3, latency.min / 1e3, b,
    e.connect, e.read, e.write, e.status, e.timeout))
  io.flush()
end
"""


LOADGEN_PYTHON = [
    sys.executable
]  # replaced in main() by an interpreter that has uvloop, when there is one


def has_uvloop(python: str) -> bool:
    try:
        return (
            subprocess.run(
                [python, "-c", "import uvloop"], capture_output=True, timeout=60
            ).returncode
            == 0
        )
    except (OSError, subprocess.TimeoutExpired):
        return False


def marker_for(mode: str) -> str:
    return "[DONE]" if mode == "stream" else '"choices"'


def build_loadgen_cmd(
    kind: str, port: int, key: str, mode: str, n: int, conc: int, max_s: int, workdir: Path
) -> list[str]:
    url = f"http://127.0.0.1:{port}/v1/chat/completions"
    if kind == "wrk":
        script = workdir / f"wrk_{mode}_{n}_{conc}_{port}.lua"
        script.write_text(
            WRK_LUA % {"key": key, "body": body_for(mode), "limit": n, "marker": marker_for(mode)}
        )
        return [
            "wrk",
            "-t1",
            f"-c{conc}",
            f"-d{max_s}s",
            "--timeout",
            "30s",
            "-s",
            str(script),
            url,
        ]
    spec = {
        "port": port,
        "key": key,
        "body": body_for(mode),
        "n": n,
        "conc": conc,
        "max_s": max_s,
        "marker": marker_for(mode),
    }
    return [LOADGEN_PYTHON[0], str(Path(__file__).resolve()), "--_loadgen-worker", json.dumps(spec)]


def run_loadgen(
    kind: str,
    port: int,
    key: str,
    mode: str,
    n: int,
    conc: int,
    max_s: int,
    workdir: Path,
    cpus: set[int] | None,
    procs: Procs,
) -> dict:
    cmd = build_loadgen_cmd(kind, port, key, mode, n, conc, max_s, workdir)
    p = procs.start("loadgen", cmd, cpus=cpus, pipe=True)
    assert p.stdout is not None
    fd = p.stdout.fileno()
    buf, sent_int = b"", False
    deadline = time.monotonic() + max_s + 60
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([fd], [], [], 1.0)
            if not ready:
                if p.poll() is not None:
                    break
                continue
            chunk = os.read(fd, 65536)
            if not chunk:
                break
            buf += chunk
            if not sent_int and b"LOADDONE" in buf:
                sent_int = True
                p.send_signal(signal.SIGINT)  # wrk: stop sleeping for -d and print its summary
    finally:
        procs.stop(p)
        p.stdout.close()
    text = buf.decode(errors="replace")
    for line in text.splitlines():
        if line.startswith("LOADJSON "):
            res = json.loads(line[len("LOADJSON ") :])
            res["rps"] = res["requests"] / res["duration_s"] if res["duration_s"] > 0 else 0.0
            res["errors"] = sum(
                res[k]
                for k in ("err_connect", "err_read", "err_write", "err_status", "err_timeout")
            )
            res["truncated"] = res["requests"] < n
            return res
    raise RuntimeError(f"load generator produced no result (exit {p.returncode}):\n{text[-2000:]}")


# Fallback load generator: raw asyncio HTTP/1.1 keep-alive client, run as its own process.


async def _lg_one(spec: dict, state: dict, lat: list[float]) -> None:
    host, port = "127.0.0.1", spec["port"]
    body = spec["body"].encode()
    req = (
        f"POST /v1/chat/completions HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: application/json\r\n"
        f"Authorization: Bearer {spec['key']}\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode() + body
    marker = spec["marker"].encode()
    reader = writer = None
    while state["left"] > 0 and time.monotonic() < state["deadline"]:
        state["left"] -= 1
        try:
            if writer is None:
                reader, writer = await asyncio.open_connection(host, port, limit=1 << 20)
            t0 = time.perf_counter()
            writer.write(req)
            status_line = await reader.readline()
            status = int(status_line.split()[1])
            headers = {}
            while True:
                line = await reader.readline()
                if line in (b"\r\n", b""):
                    break
                k, _, v = line.decode("latin-1").partition(":")
                headers[k.strip().lower()] = v.strip().lower()
            if "chunked" in headers.get("transfer-encoding", ""):
                parts = []
                while True:
                    size = int((await reader.readline()).split(b";")[0].strip() or b"0", 16)
                    if size == 0:
                        while (await reader.readline()) not in (b"\r\n", b""):
                            pass
                        break
                    parts.append(await reader.readexactly(size + 2))
                data = b"".join(parts)
            elif "content-length" in headers:
                data = await reader.readexactly(int(headers["content-length"]))
            else:
                data = await reader.read()
                headers["connection"] = "close"
            lat.append(time.perf_counter() - t0)
            if status != 200 or marker not in data:
                state["bad"] += 1
            if headers.get("connection") == "close":
                writer.close()
                writer = None
        except (OSError, ValueError, IndexError, asyncio.IncompleteReadError):
            state["errors"] += 1
            if writer is not None:
                writer.close()
            writer = None
    if writer is not None:
        writer.close()


def loadgen_worker(spec_json: str) -> None:
    spec = json.loads(spec_json)
    try:
        import uvloop  # type: ignore

        uvloop.install()
    except ImportError:
        pass
    uv = "uvloop" in sys.modules
    state = {"left": spec["n"], "bad": 0, "errors": 0, "deadline": time.monotonic() + spec["max_s"]}
    lat: list[float] = []

    async def main() -> float:
        t0 = time.perf_counter()
        await asyncio.gather(*(_lg_one(spec, state, lat) for _ in range(spec["conc"])))
        return time.perf_counter() - t0

    dur = asyncio.run(main())
    lat.sort()

    def pct(p: float) -> float:
        return (
            lat[min(len(lat) - 1, max(0, round(p / 100 * len(lat) + 0.5) - 1))] * 1e3
            if lat
            else 0.0
        )

    print(
        "LOADJSON "
        + json.dumps(
            {
                "requests": len(lat),
                "duration_s": dur,
                "p50_ms": pct(50),
                "p90_ms": pct(90),
                "p99_ms": pct(99),
                "mean_ms": (sum(lat) / len(lat) * 1e3) if lat else 0.0,
                "max_ms": (lat[-1] * 1e3) if lat else 0.0,
                "min_ms": (lat[0] * 1e3) if lat else 0.0,
                "bad_responses": state["bad"],
                "err_connect": 0,
                "err_read": state["errors"],
                "err_write": 0,
                "err_status": 0,
                "err_timeout": 0,
                "uvloop": uv,
            }
        ),
        flush=True,
    )


# --------------------------------------------------------------------------- targets


def ensure_litellm(venv: Path, no_install: bool) -> Path:
    exe = venv / "bin" / "litellm"
    if exe.exists():
        return exe
    if no_install:
        raise RuntimeError(f"{exe} missing and --no-install given")
    logp = BENCH_DIR / "results" / "litellm-install.log"
    if not (venv / "bin" / "python").exists():
        log(f"LiteLLM venv missing: creating {venv} (separate from the project venv)")
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    log(f"installing 'litellm[proxy]' into {venv} (a few minutes; log: {logp})")
    with open(logp, "wb") as out:
        rc = subprocess.run(
            [str(venv / "bin" / "pip"), "install", "--disable-pip-version-check", "litellm[proxy]"],
            stdout=out,
            stderr=subprocess.STDOUT,
            timeout=1800,
        ).returncode
    if rc != 0 or not exe.exists():
        raise RuntimeError(f"pip install 'litellm[proxy]' failed (rc={rc}):\n{tail(logp, 20)}")
    return exe


def pkg_version(python: Path, dist: str) -> str | None:
    try:
        r = subprocess.run(
            [str(python), "-c", f"import importlib.metadata as m; print(m.version({dist!r}))"],
            capture_output=True,
            text=True,
            timeout=60,
        )
        return r.stdout.strip() or None
    except (OSError, subprocess.TimeoutExpired):
        return None


LITELLM_SETTINGS = {
    "cli": "--num_workers 1 (one uvicorn worker), --host 127.0.0.1",
    "config": "model_list with openai/<model> + api_base; litellm_settings: no cache, no callbacks, "
    "drop_params false, request_timeout 60, set_verbose false; general_settings: master_key, "
    "disable_spend_logs, disable_error_logs, no database_url",
    "env": "LITELLM_LOG=WARNING, LITELLM_LOCAL_MODEL_COST_MAP=True (no network fetch), "
    "DATABASE_URL/REDIS unset, DISABLE_SCHEMA_UPDATE=True, TELEMETRY off",
}


def start_litellm(
    exe: Path,
    upstream_port: int,
    workdir: Path,
    procs: Procs,
    cpus: set[int] | None,
    logs: Path,
    ready_timeout: float,
) -> tuple[subprocess.Popen, int]:
    port = free_port()
    cfg = workdir / "litellm_config.yaml"
    cfg.write_text(
        textwrap.dedent(f"""\
        model_list:
          - model_name: {MODEL}
            litellm_params:
              model: openai/{MODEL}
              api_base: http://127.0.0.1:{upstream_port}/v1
              api_key: {UPSTREAM_KEY}
        litellm_settings:
          set_verbose: false
          cache: false
          callbacks: []
          success_callback: []
          failure_callback: []
          drop_params: false
          request_timeout: 60
        general_settings:
          master_key: {LITELLM_KEY}
          disable_spend_logs: true
          disable_error_logs: true
        """)
    )
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("DATABASE_URL", "REDIS_HOST", "REDIS_URL", "REDIS_PORT")
    }
    env.update(
        {
            "LITELLM_LOG": "WARNING",
            "LITELLM_LOCAL_MODEL_COST_MAP": "True",
            "DISABLE_SCHEMA_UPDATE": "True",
            "LITELLM_TELEMETRY": "False",
            "PYTHONUNBUFFERED": "1",
            "NO_DOCS": "True",
        }
    )
    logp = logs / "litellm.log"
    cmd = [
        str(exe),
        "--config",
        str(cfg),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--num_workers",
        "1",
    ]
    log("starting LiteLLM: " + " ".join(cmd))
    p = procs.start("litellm", cmd, env=env, cpus=cpus, log_path=logp, cwd=workdir)
    wait_ready("litellm", p, port, "/health/liveliness", ready_timeout, logp)
    return p, port


def start_souverain(
    exe: Path,
    upstream_port: int,
    workdir: Path,
    procs: Procs,
    cpus: set[int] | None,
    logs: Path,
    ready_timeout: float,
) -> tuple[subprocess.Popen, int]:
    port = free_port()
    cfg = workdir / "souverain_config.yaml"
    cfg.write_text(
        textwrap.dedent(f"""\
        models:
          - id: {MODEL}
            type: chat
            deployments:
              - engine: openai
                base_url: http://127.0.0.1:{upstream_port}/v1
                upstream_model: {MODEL}
        """)
    )
    data_dir = workdir / "souverain-data"
    data_dir.mkdir(exist_ok=True)
    env = dict(os.environ, SOUVERAIN_ADMIN_KEY=SOUVERAIN_KEY, PYTHONUNBUFFERED="1")
    logp = logs / "souverain.log"
    cmd = [
        str(exe),
        "serve",
        "--config",
        str(cfg),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--data-dir",
        str(data_dir),
    ]
    log("starting Souverain: " + " ".join(cmd))
    p = procs.start("souverain", cmd, env=env, cpus=cpus, log_path=logp, cwd=workdir)
    wait_ready("souverain", p, port, "/readyz", ready_timeout, logp)
    return p, port


# --------------------------------------------------------------------------- reporting


def fmt(v, nd: int = 2, w: int = 8) -> str:
    if v is None:
        return "-".rjust(w)
    if isinstance(v, float):
        return f"{v:.{nd}f}".rjust(w)
    return str(v).rjust(w)


def ratio(a, b):
    if a is None or b is None or b == 0:
        return None
    return a / b


def print_report(report: dict) -> None:
    phases = report["phases"]
    print()
    print("=" * 108)
    print(
        f"Gateway overhead — {report['machine']['cpus']} CPU(s) shared by everything; "
        f"pinning: {report['machine']['pinning']}; loadgen: {report['config']['loadgen']}"
    )
    print("=" * 108)
    hdr = (
        f"{'target':<10}{'mode':<10}{'conc':>5}{'reqs':>7}{'RPS':>9}{'p50 ms':>9}{'p90 ms':>9}{'p99 ms':>9}"
        f"{'+p50 ms':>9}{'+p99 ms':>9}{'gw cpu ms/req':>14}{'errors':>8}"
    )
    print(hdr)
    print("-" * len(hdr))
    for ph in phases:
        r = ph.get("result") or {}
        errs = (r.get("errors", 0) + r.get("bad_responses", 0)) if r else None
        print(
            f"{ph['target']:<10}{ph['mode']:<10}{ph['concurrency']:>5}{fmt(r.get('requests'), w=7)}"
            f"{fmt(r.get('rps'), 0, 9)}{fmt(r.get('p50_ms'), w=9)}{fmt(r.get('p90_ms'), w=9)}"
            f"{fmt(r.get('p99_ms'), w=9)}{fmt(ph.get('added_p50_ms'), w=9)}{fmt(ph.get('added_p99_ms'), w=9)}"
            f"{fmt(ph.get('gateway_cpu_ms_per_req'), 3, 14)}{fmt(errs, w=8)}"
        )
    cmp_rows = report.get("comparison") or []
    if cmp_rows:
        print()
        print(
            "Side by side (added = gateway minus direct; ratio = LiteLLM added / Souverain added):"
        )
        hdr2 = (
            f"{'mode':<10}{'conc':>5} | {'Souv +p50':>9}{'Souv +p99':>10} | {'LiteLLM +p50':>12}{'+p99':>9} | "
            f"{'x p50':>7}{'x p99':>7} | {'RPS dir':>8}{'Souv':>8}{'LiteLLM':>8} | {'Souv/LiteLLM RPS':>16}"
        )
        print(hdr2)
        print("-" * len(hdr2))
        for c in cmp_rows:
            print(
                f"{c['mode']:<10}{c['concurrency']:>5} | {fmt(c['souverain_added_p50_ms'], w=9)}"
                f"{fmt(c['souverain_added_p99_ms'], w=10)} | {fmt(c['litellm_added_p50_ms'], w=12)}"
                f"{fmt(c['litellm_added_p99_ms'], w=9)} | {fmt(c['ratio_added_p50_litellm_over_souverain'], 1, 7)}"
                f"{fmt(c['ratio_added_p99_litellm_over_souverain'], 1, 7)} | {fmt(c['rps_direct'], 0)}"
                f"{fmt(c['rps_souverain'], 0)}{fmt(c['rps_litellm'], 0)} | "
                f"{fmt(c['ratio_rps_souverain_over_litellm'], 2, 16)}"
            )
    for t, info in report["targets"].items():
        if info.get("status") != "ok":
            print(f"\n{t}: {info.get('status')}: {info.get('error', '')}")
    print(f"\nJSON: {report['output']}")


# --------------------------------------------------------------------------- main


def parse_args(argv: list[str]) -> argparse.Namespace:
    ap = argparse.ArgumentParser(
        description="Measure the latency/throughput a gateway adds over a fast upstream."
    )
    ap.add_argument(
        "--requests", type=int, default=2000, help="measured requests per phase (default 2000)"
    )
    ap.add_argument(
        "--warmup",
        type=int,
        default=None,
        help="warm-up requests per phase (default: requests/10, >=50)",
    )
    ap.add_argument(
        "--concurrency", default="1,100", help="comma list of concurrencies (default 1,100)"
    )
    ap.add_argument(
        "--only", default=",".join(ALL_TARGETS), help="comma list of: direct,souverain,litellm"
    )
    ap.add_argument("--modes", default=",".join(ALL_MODES), help="comma list of: nonstream,stream")
    ap.add_argument(
        "--loadgen",
        choices=("auto", "wrk", "python"),
        default="auto",
        help="built-in asyncio client (default; auto = python) or wrk (cheaper per request, but its "
        "latency percentiles were found inconsistent at concurrency 1, see README)",
    )
    ap.add_argument(
        "--no-pin", action="store_true", help="do not pin servers / load generator to CPUs"
    )
    ap.add_argument(
        "--max-phase-seconds", type=int, default=300, help="hard limit per load phase (default 300)"
    )
    ap.add_argument(
        "--ready-timeout",
        type=float,
        default=180.0,
        help="seconds to wait for a gateway to be ready",
    )
    ap.add_argument("--litellm-venv", type=Path, default=DEFAULT_LITELLM_VENV)
    ap.add_argument("--souverain-bin", type=Path, default=DEFAULT_SOUVERAIN_BIN)
    ap.add_argument(
        "--no-install", action="store_true", help="never create/install the LiteLLM venv"
    )
    ap.add_argument("--output", type=Path, default=DEFAULT_OUTPUT)
    ap.add_argument(
        "--_loadgen-worker", dest="loadgen_worker", default=None, help=argparse.SUPPRESS
    )
    args = ap.parse_args(argv)
    args.targets = [t for t in ALL_TARGETS if t in {x.strip() for x in args.only.split(",")}]
    bad = {x.strip() for x in args.only.split(",")} - set(ALL_TARGETS)
    if bad:
        ap.error(f"unknown target(s) in --only: {sorted(bad)}")
    args.modes_l = [m for m in ALL_MODES if m in {x.strip() for x in args.modes.split(",")}]
    args.concs = [int(x) for x in args.concurrency.split(",") if x.strip()]
    if args.requests < 1 or any(c < 1 for c in args.concs) or not args.modes_l:
        ap.error("--requests and --concurrency must be >= 1, and --modes non-empty")
    if args.warmup is None:
        args.warmup = max(50, args.requests // 10)
    return args


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    if args.loadgen_worker:
        loadgen_worker(args.loadgen_worker)
        return 0

    loadgen = "python" if args.loadgen == "auto" else args.loadgen
    if loadgen == "wrk" and not shutil.which("wrk"):
        log("wrk not on PATH: apt-get update && apt-get install -y wrk")
        return 2
    litellm_exe: Path | None = None
    litellm_error: str | None = None
    if "litellm" in args.targets:
        try:
            litellm_exe = ensure_litellm(args.litellm_venv, args.no_install)
        except (RuntimeError, OSError, subprocess.SubprocessError) as e:
            litellm_error = str(e)
            log(f"litellm: cannot install: {e}")
    if loadgen == "python":
        candidates = [sys.executable] + (
            [str(args.litellm_venv / "bin" / "python")]
            if (args.litellm_venv / "bin" / "python").exists()
            else []
        )
        LOADGEN_PYTHON[0] = next((c for c in candidates if has_uvloop(c)), sys.executable)
        log(
            f"load generator: built-in asyncio HTTP/1.1 client run by {LOADGEN_PYTHON[0]} "
            f"({'uvloop' if has_uvloop(LOADGEN_PYTHON[0]) else 'stdlib event loop'})"
        )

    ncpu = len(os.sched_getaffinity(0))
    if args.no_pin or ncpu < 2:
        server_cpus = loadgen_cpus = None
        pinning = "none"
    else:
        allowed = sorted(os.sched_getaffinity(0))
        loadgen_cpus, server_cpus = {allowed[-1]}, set(allowed[:-1])
        pinning = (
            f"upstream+gateway on CPU(s) {sorted(server_cpus)}, load generator on CPU {allowed[-1]}"
        )
    log(f"{ncpu} CPU(s) available; {pinning}")

    args.output.parent.mkdir(parents=True, exist_ok=True)
    logs = args.output.parent / "logs"
    logs.mkdir(exist_ok=True)
    procs = Procs()
    workdir = Path(tempfile.mkdtemp(prefix="gw-bench-"))

    def on_signal(signum, frame):  # turn SIGTERM into the same clean-up path as Ctrl-C
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_signal)

    report: dict = {
        "benchmark": "gateway_overhead",
        "started_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": {
            "cpus": ncpu,
            "pinning": pinning,
            "platform": platform.platform(),
            "python": platform.python_version(),
            "note": "upstream, gateway and load generator all share this machine's CPUs",
        },
        "config": {
            "requests": args.requests,
            "warmup": args.warmup,
            "concurrency": args.concs,
            "modes": args.modes_l,
            "targets": args.targets,
            "loadgen": loadgen,
            "loadgen_python": LOADGEN_PYTHON[0] if loadgen == "python" else None,
            "max_phase_seconds": args.max_phase_seconds,
            "prompt": PROMPT,
            "max_tokens": MAX_TOKENS,
            "upstream": "bench/fast_upstream.py (asyncio, HTTP/1.1 keep-alive, 5 content chunks, no delay)",
        },
        "targets": {},
        "phases": [],
        "output": str(args.output),
    }
    try:
        up_port = free_port()
        up_log = logs / "upstream.log"
        up = procs.start(
            "upstream",
            [
                sys.executable,
                str(BENCH_DIR / "fast_upstream.py"),
                "--port",
                str(up_port),
                "--model",
                MODEL,
            ],
            cpus=server_cpus,
            log_path=up_log,
        )
        wait_ready("upstream", up, up_port, "/health", 30, up_log)
        up_loop = next(
            (w.split("=", 1)[1] for w in up_log.read_text().split() if w.startswith("loop=")), "?"
        )
        report["config"]["upstream_event_loop"] = up_loop
        log(f"fast upstream ready on 127.0.0.1:{up_port} (event loop: {up_loop})")

        for target in args.targets:
            info: dict = {"status": "ok"}
            report["targets"][target] = info
            gw = None
            try:
                if target == "direct":
                    port, key, gw_pid = up_port, UPSTREAM_KEY, None
                elif target == "litellm":
                    if litellm_exe is None:
                        raise RuntimeError(litellm_error or "litellm not installed")
                    exe = litellm_exe
                    info["version"] = pkg_version(args.litellm_venv / "bin" / "python", "litellm")
                    info["settings"] = LITELLM_SETTINGS
                    gw, port = start_litellm(
                        exe, up_port, workdir, procs, server_cpus, logs, args.ready_timeout
                    )
                    key, gw_pid = LITELLM_KEY, gw.pid
                else:
                    if not args.souverain_bin.exists():
                        info["status"] = "skipped"
                        info["error"] = (
                            f"{args.souverain_bin} not found (pip install -e {REPO_DIR})"
                        )
                        log(f"souverain: skipped, {info['error']}")
                        continue
                    info["version"] = pkg_version(args.souverain_bin.parent / "python", "souverain")
                    gw, port = start_souverain(
                        args.souverain_bin,
                        up_port,
                        workdir,
                        procs,
                        server_cpus,
                        logs,
                        args.ready_timeout,
                    )
                    key, gw_pid = SOUVERAIN_KEY, gw.pid
                log(
                    f"{target}: ready on 127.0.0.1:{port}; checking one non-streamed and one streamed answer"
                )
                info["smoke"] = smoke_check(port, key)
                for mode in args.modes_l:
                    for conc in args.concs:
                        ph = {"target": target, "mode": mode, "concurrency": conc}
                        report["phases"].append(ph)
                        log(f"{target:<9} {mode:<9} c={conc:<4} warm-up {args.warmup} ...")
                        run_loadgen(
                            loadgen,
                            port,
                            key,
                            mode,
                            args.warmup,
                            conc,
                            args.max_phase_seconds,
                            workdir,
                            loadgen_cpus,
                            procs,
                        )
                        cpu0_gw = tree_cpu_seconds(gw_pid) if gw_pid else None
                        cpu0_up = tree_cpu_seconds(up.pid)
                        res = run_loadgen(
                            loadgen,
                            port,
                            key,
                            mode,
                            args.requests,
                            conc,
                            args.max_phase_seconds,
                            workdir,
                            loadgen_cpus,
                            procs,
                        )
                        n = max(res["requests"], 1)
                        if gw_pid:
                            ph["gateway_cpu_ms_per_req"] = (
                                (tree_cpu_seconds(gw_pid) - cpu0_gw) * 1e3 / n
                            )
                        ph["upstream_cpu_ms_per_req"] = (
                            (tree_cpu_seconds(up.pid) - cpu0_up) * 1e3 / n
                        )
                        ph["result"] = res
                        errs = res["errors"] + res["bad_responses"]
                        log(
                            f"{target:<9} {mode:<9} c={conc:<4} {res['requests']} req  {res['rps']:.0f} RPS  "
                            f"p50 {res['p50_ms']:.2f} ms  p99 {res['p99_ms']:.2f} ms"
                            + (f"  ERRORS/BAD {errs}" if errs else "")
                            + ("  (TRUNCATED)" if res["truncated"] else "")
                        )
            except KeyboardInterrupt:
                raise
            except Exception as e:
                info["status"] = "failed"
                info["error"] = str(e)
                log(f"{target}: FAILED: {e}")
            finally:
                if gw is not None:
                    procs.stop(gw)
    except KeyboardInterrupt:
        log("interrupted: stopping every process started")
        report["interrupted"] = True
    finally:
        procs.stop_all()
        shutil.rmtree(workdir, ignore_errors=True)

    # added latency and the side-by-side comparison
    direct = {
        (p["mode"], p["concurrency"]): p["result"]
        for p in report["phases"]
        if p["target"] == "direct" and p.get("result")
    }
    for p in report["phases"]:
        d = direct.get((p["mode"], p["concurrency"]))
        if p["target"] != "direct" and d and p.get("result"):
            p["added_p50_ms"] = p["result"]["p50_ms"] - d["p50_ms"]
            p["added_p99_ms"] = p["result"]["p99_ms"] - d["p99_ms"]
    by = {
        (p["target"], p["mode"], p["concurrency"]): p for p in report["phases"] if p.get("result")
    }
    comparison = []
    for mode in args.modes_l:
        for conc in args.concs:
            s, l_, d = (by.get((t, mode, conc)) for t in ("souverain", "litellm", "direct"))
            if not (s or l_):
                continue
            g = lambda ph, k: ph.get(k) if ph else None  # noqa: E731
            gr = lambda ph, k: ph["result"].get(k) if ph else None  # noqa: E731
            comparison.append(
                {
                    "mode": mode,
                    "concurrency": conc,
                    "souverain_added_p50_ms": g(s, "added_p50_ms"),
                    "souverain_added_p99_ms": g(s, "added_p99_ms"),
                    "litellm_added_p50_ms": g(l_, "added_p50_ms"),
                    "litellm_added_p99_ms": g(l_, "added_p99_ms"),
                    "ratio_added_p50_litellm_over_souverain": ratio(
                        g(l_, "added_p50_ms"), g(s, "added_p50_ms")
                    ),
                    "ratio_added_p99_litellm_over_souverain": ratio(
                        g(l_, "added_p99_ms"), g(s, "added_p99_ms")
                    ),
                    "rps_direct": gr(d, "rps"),
                    "rps_souverain": gr(s, "rps"),
                    "rps_litellm": gr(l_, "rps"),
                    "ratio_rps_souverain_over_litellm": ratio(gr(s, "rps"), gr(l_, "rps")),
                    "gateway_cpu_ms_per_req_souverain": g(s, "gateway_cpu_ms_per_req"),
                    "gateway_cpu_ms_per_req_litellm": g(l_, "gateway_cpu_ms_per_req"),
                }
            )
    report["comparison"] = comparison
    report["finished_at"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    args.output.write_text(json.dumps(report, indent=2) + "\n")
    print_report(report)
    failed = [t for t, i in report["targets"].items() if i.get("status") == "failed"]
    return 130 if report.get("interrupted") else (1 if failed else 0)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
