#!/usr/bin/env python3
"""Person-name detector (souverain.dlp.names) on two development sets and two blind sets.

    .venv/bin/python bench/dlp_names_eval.py                  # the working tree's detector
    .venv/bin/python bench/dlp_names_eval.py --revision ebdf77d   # names.py at a revision

- tests/data/dlp_names.json: the 177 sentences the rules were first written on;
- tests/data/dlp_names_heldout.json: 210 sentences, held out until 2026-12-02, then tuned on;
- tests/data/dlp_names_blind.json (280) and dlp_names_blind2.json (245): written on
  2026-12-02 by helpers who never saw the rules, the other sets or any result, each committed
  before the detector first ran on it. Each was blind once: its first-run figures are in
  docs/dlp-names.md with the revision that produced them; after that its misses were read
  (the first led to the diaspora first names, the second to three span fixes), so later
  figures on it are development figures. Judge the next change on a new blind set.
Each row also lists decoys: strings that look like names but are not a person here (streets,
buildings, brands, companies, eponymous diseases and prizes, capitalised common nouns, first
names used as words).

Metrics per language: exact-span precision / recall / F1 (a finding counts only if its span
equals a labelled name); the same with overlap matching (a finding overlapping a name counts,
e.g. "Dr Vasseur" for "Vasseur"); decoys hit (any finding overlapping a decoy). Every finding
that matches no labelled name is a false positive, decoy or not. Writes
bench/results/dlp_names_eval.json with every miss and false positive (not with --revision).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
DATA = ROOT / "tests" / "data"
LANGS = ("fr", "de", "it", "es", "nl", "pl", "en")
SETS = {
    "development": DATA / "dlp_names.json",
    "development 2": DATA / "dlp_names_heldout.json",
    "blind": DATA / "dlp_names_blind.json",
    "blind 2": DATA / "dlp_names_blind2.json",
}
BLIND = "blind 2"  # the set whose misses are listed and that is combined with spaCy


def _spans(text: str, values: list[str]) -> list[tuple[int, int]]:
    return [(text.index(v), text.index(v) + len(v)) for v in values]


def _overlap(a: tuple[int, int], b: tuple[int, int]) -> bool:
    return a[0] < b[1] and b[0] < a[1]


def _prf(tp: int, fp: int, fn: int) -> dict[str, float]:
    p = tp / (tp + fp) if tp + fp else 1.0
    r = tp / (tp + fn) if tp + fn else 1.0
    return {"precision": p, "recall": r, "f1": 2 * p * r / (p + r) if p + r else 0.0}


def evaluate(rows: list[dict], find) -> dict:  # type: ignore[no-untyped-def]
    out: dict = {}
    for lang in (*LANGS, "all"):
        exact = [0, 0, 0]  # tp, fp, fn
        loose = [0, 0, 0]
        decoys = hit = 0
        misses: list[str] = []
        false_pos: list[str] = []
        sentences = 0
        for row in rows:
            if lang != "all" and row["lang"] != lang:
                continue
            sentences += 1
            text = row["text"]
            gold = _spans(text, row["names"])
            found = [(f.start, f.end) for f in find(text)]
            exact[0] += len(set(gold) & set(found))
            exact[1] += len(set(found) - set(gold))
            exact[2] += len(set(gold) - set(found))
            loose[0] += sum(any(_overlap(g, f) for f in found) for g in gold)
            loose[1] += sum(not any(_overlap(f, g) for g in gold) for f in found)
            loose[2] += sum(not any(_overlap(g, f) for f in found) for g in gold)
            for d in _spans(text, row.get("decoys", [])):
                decoys += 1
                hit += any(_overlap(d, f) for f in found)
            misses += [f"{text[s:e]!r} in {text!r}" for s, e in set(gold) - set(found)]
            false_pos += [f"{text[s:e]!r} in {text!r}" for s, e in set(found) - set(gold)]
        out[lang] = {
            "sentences": sentences,
            "names": exact[0] + exact[2],
            "exact": {"tp": exact[0], "fp": exact[1], "fn": exact[2], **_prf(*exact)},
            "overlap": {"tp": loose[0], "fp": loose[1], "fn": loose[2], **_prf(*loose)},
            "decoys": decoys,
            "decoys_hit": hit,
            "misses": sorted(misses),
            "false_positives": sorted(false_pos),
        }
    return out


def _form(name: str) -> str:
    """The written form of a labelled name, from the label alone."""
    if ", " in name:
        return "Surname, First"
    if len(name) > 2 and name[1] == "." and name[0].isupper():
        return "initial + surname"
    return "one word" if " " not in name else "two+ words"


def recall_by_form(rows: list[dict], find) -> dict[str, dict[str, int]]:  # type: ignore[no-untyped-def]
    out: dict[str, dict[str, int]] = {}
    for row in rows:
        found = {(f.start, f.end) for f in find(row["text"])}
        for name, span in zip(row["names"], _spans(row["text"], row["names"]), strict=True):
            acc = out.setdefault(_form(name), {"names": 0, "found": 0})
            acc["names"] += 1
            acc["found"] += span in found
    return out


def table(result: dict) -> str:
    lines = [
        "| lang | sentences | names | P | R | F1 | P (overlap) | R (overlap) | F1 (overlap) "
        "| decoys hit |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for lang, r in result.items():
        e, o = r["exact"], r["overlap"]
        decoys = f"{r['decoys_hit']}/{r['decoys']}" if r["decoys"] else "-"
        lines.append(
            f"| {lang} | {r['sentences']} | {r['names']} | {e['precision']:.2f} | "
            f"{e['recall']:.2f} | {e['f1']:.2f} | {o['precision']:.2f} | {o['recall']:.2f} | "
            f"{o['f1']:.2f} | {decoys} |"
        )
    return "\n".join(lines)


def union_with_spacy(find) -> dict:  # type: ignore[no-untyped-def]
    """Rules plus every spaCy PER span that overlaps no rules finding, on set BLIND.

    Uses the spans bench/dlp_names_spacy.py saved (skipped when it has not been run): what a
    detector that also ran a spaCy model would find, recall first."""
    spacy_results = HERE / "results" / "dlp_names_spacy.json"
    if not spacy_results.exists():
        return {}
    from souverain.dlp.detectors import Finding

    rows = json.loads(SETS[BLIND].read_text(encoding="utf-8"))
    index = {row["text"]: i for i, row in enumerate(rows)}
    models = json.loads(spacy_results.read_text(encoding="utf-8"))["models"]
    out = {}
    print(f"\n{BLIND} set, rules + a spaCy model (exact-span F1 / P / R):")
    for model, data in models.items():
        spans = {s["index"]: s["spans"] for s in data["spans"] if s["set"] == BLIND}
        if len(spans) != len(rows):
            print(f"  {model}: no spans for {BLIND} (run bench/dlp_names_spacy.py again)")
            continue

        def combined(text: str, spans: dict = spans) -> list:  # type: ignore[type-arg]
            ours = find(text)
            extra = [
                Finding(s, e, "person", text[s:e])
                for s, e in spans[index[text]]
                if not any(s < f.end and f.start < e for f in ours)
            ]
            return [*ours, *extra]

        result = evaluate(rows, combined)
        out[model] = {lang: r["exact"] for lang, r in result.items()}
        cells = [
            f"{lang} {e['f1']:.2f}/{e['precision']:.2f}/{e['recall']:.2f}"
            for lang, e in out[model].items()
        ]
        print(f"  rules + {model}: " + ", ".join(cells))
    return out


def detector_at(revision: str | None):  # type: ignore[no-untyped-def]
    """The working tree's PersonNameDetector, or the one names.py had at `revision`."""
    sys.path.insert(0, str(ROOT / "src"))
    if revision is None:
        from souverain.dlp.names import PersonNameDetector

        return PersonNameDetector()
    import subprocess
    import types

    source = subprocess.run(
        ["git", "show", f"{revision}:src/souverain/dlp/names.py"],
        cwd=ROOT, capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    module = types.ModuleType(f"names_at_{revision}")
    sys.modules[module.__name__] = module  # its dataclass looks the module up there
    exec(compile(source, f"names.py@{revision}", "exec"), module.__dict__)
    return module.PersonNameDetector()


def speed(detectors: dict[str, object], rounds: int = 2000) -> dict[str, dict[str, float]]:
    """p50 ms of find() on 2 KB of prose without names (bench/dlp_eval.py's prose prompt)
    and on 2 KB of the development sentences (name-dense); detectors alternate call by call,
    so machine load hits them alike."""
    import statistics
    import time

    sys.path.insert(0, str(HERE))
    import dlp_dataset
    from dlp_eval import prose_prompt

    rows = json.loads(SETS["development"].read_text(encoding="utf-8"))
    texts = {
        "prose 2 KB": prose_prompt(dlp_dataset.TEMPLATES),
        "name-dense 2 KB": " ".join(r["text"] for r in rows)[:2048],
    }
    out: dict[str, dict[str, float]] = {}
    for label, text in texts.items():
        lat: dict[str, list[float]] = {name: [] for name in detectors}
        for i in range(rounds):
            variant = text[:-1] + "!?"[i % 2]  # a new string: no cache across calls
            for name, detector in detectors.items():
                t = time.perf_counter()
                detector.find(variant)  # type: ignore[attr-defined]
                lat[name].append(time.perf_counter() - t)
        out[label] = {name: statistics.median(v[50:]) * 1e3 for name, v in lat.items()}
        cells = ", ".join(f"{name} {ms:.3f} ms" for name, ms in out[label].items())
        print(f"  p50 {label}: {cells}")
    return out


def main() -> int:
    import argparse

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    ap.add_argument("--revision", help="score src/souverain/dlp/names.py as of this git revision")
    args = ap.parse_args()
    detector = detector_at(args.revision)
    results = {}
    for name, path in SETS.items():
        rows = json.loads(path.read_text(encoding="utf-8"))
        results[name] = evaluate(rows, detector.find)
        print(f"\n{name} set ({path.relative_to(ROOT)}, {len(rows)} sentences)\n")
        print(table(results[name]))
    blind_rows = json.loads(SETS[BLIND].read_text(encoding="utf-8"))
    forms = recall_by_form(blind_rows, detector.find)
    results[f"{BLIND} forms"] = forms
    print(f"\n{BLIND} set recall (exact span) by written form:")
    for form, acc in forms.items():
        print(f"  {form}: {acc['found']}/{acc['names']}")
    blind = results[BLIND]["all"]
    print(f"\n{BLIND} set misses ({len(blind['misses'])}):")
    for m in blind["misses"]:
        print("  ", m)
    print(f"{BLIND} set false positives ({len(blind['false_positives'])}):")
    for m in blind["false_positives"]:
        print("  ", m)
    print("\nspeed (find only):")
    timed = (
        {args.revision: detector, "working tree": detector_at(None)}
        if args.revision
        else {"working tree": detector}
    )
    results["speed"] = speed(timed)
    if args.revision:
        return 0
    union = union_with_spacy(detector.find)
    if union:
        results[f"rules + spacy ({BLIND})"] = union
    out = HERE / "results" / "dlp_names_eval.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=1, ensure_ascii=False), encoding="utf-8")
    print(f"\nwritten to {out.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
