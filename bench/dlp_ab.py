#!/usr/bin/env python3
"""The default scanner at a git revision against the working tree, in one process.

    .venv/bin/python bench/dlp_ab.py d827f2e          # the revision before the latency work

The revision's detectors (src/souverain/dlp/{detectors,secrets,checks}.py, whichever exist)
are copied into a temporary package and imported next to the current ones. Then, on the
prompts of bench/dlp_eval.py (dense, prose, and the prose prompt with 0-20 identifiers
spliced in), both scanners alternate scan by scan, so machine load hits both alike; p50 of
2,000 scans each. Last, both scan the 700 documents (median docs/s of 5 passes) and every
finding is compared: the script fails if any differs.
"""

from __future__ import annotations

import argparse
import importlib
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import ModuleType

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
MODULES = ("detectors", "secrets", "checks")


def load_revision(rev: str, into: Path) -> ModuleType:
    pkg = into / "dlp_at_revision"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    for name in MODULES:
        shown = subprocess.run(
            ["git", "show", f"{rev}:src/souverain/dlp/{name}.py"],
            cwd=ROOT,
            capture_output=True,
            text=True,
        )
        if shown.returncode == 0:
            source = shown.stdout.replace("souverain.dlp.", "dlp_at_revision.")
            source = source.replace("from souverain.dlp import", "from dlp_at_revision import")
            (pkg / f"{name}.py").write_text(source)
    sys.path.insert(0, str(into))
    return importlib.import_module("dlp_at_revision.detectors")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("revision")
    ap.add_argument("--scans", type=int, default=2000)
    args = ap.parse_args()
    sys.path[:0] = [str(HERE), str(ROOT / "src")]
    import dlp_dataset
    import dlp_eval
    from souverain.dlp import detectors as current

    with tempfile.TemporaryDirectory() as tmp:
        before = load_revision(args.revision, Path(tmp))
        scanners = {"before": before.Scanner.default(), "after": current.Scanner.default()}
        docs = dlp_dataset.to_json(dlp_dataset.build())["docs"]
        assert isinstance(docs, list)
        prose = dlp_eval.prose_prompt(dlp_dataset.TEMPLATES)
        prompts = {"dense": dlp_eval.two_kb_prompt(docs), "prose": prose}
        for n in (5, 10, 15, 20):
            kinds = ("iban", "eu_vat", "phone", "payment_card", "email")
            pools = {
                k: [e["value"] for d in docs for e in d["entities"] if e["type"] == k]
                for k in kinds
            }
            values = [pools[kinds[i % len(kinds)]][i] for i in range(n)]
            step = (dlp_eval.PROMPT_CHARS - sum(len(v) + 2 for v in values)) // (n + 1)
            parts = [prose[i * step : (i + 1) * step] for i in range(n + 1)]
            prompts[f"prose + {n} identifiers"] = (
                "".join(p + f" {v} " for p, v in zip(parts, values, strict=False)) + parts[-1]
            )
        print(f"p50 ms, {args.scans} scans each, alternating ({args.revision} vs working tree)")
        for name, prompt in prompts.items():
            texts = [prompt[:-1] + "!", prompt[:-1] + "?"]
            lat: dict[str, list[float]] = {k: [] for k in scanners}
            for i in range(args.scans):
                for k, s in scanners.items():
                    t = time.perf_counter()
                    s.scan(texts[i % 2])
                    lat[k].append(time.perf_counter() - t)
            p50 = {k: statistics.median(v) * 1e3 for k, v in lat.items()}
            print(f"  {name:24s} before {p50['before']:.3f}  after {p50['after']:.3f}")
        rates: dict[str, list[float]] = {k: [] for k in scanners}
        for _ in range(5):
            for k, s in scanners.items():
                t = time.perf_counter()
                for d in docs:
                    s.scan(d["text"])
                rates[k].append(len(docs) / (time.perf_counter() - t))
        print(
            "  docs/s (median of 5)    "
            + "  ".join(f"{k} {statistics.median(v):.0f}" for k, v in rates.items())
        )
        differ = 0
        for d in docs:
            a, b = (
                [(f.start, f.end, f.type) for f in s.scan(d["text"])] for s in scanners.values()
            )
            differ += a != b
        print(f"  documents whose findings differ: {differ} of {len(docs)}")
    return 1 if differ else 0


if __name__ == "__main__":
    sys.exit(main())
