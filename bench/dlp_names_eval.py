#!/usr/bin/env python3
"""Person-name detector (souverain.dlp.names) on its development set and on a held-out set.

    .venv/bin/python bench/dlp_names_eval.py

- tests/data/dlp_names.json: the 177 sentences the rules were tuned on (development set);
- tests/data/dlp_names_heldout.json: 210 sentences (30 per language) written afterwards, with
  other templates, contexts and names, and labelled before the detector was first run on them.
  Each row also lists decoys: strings that look like names but are not a person here (streets,
  buildings, brands, companies, eponymous diseases and prizes, capitalised common nouns,
  first names used as words). Do not tune the detector on this set: that would make it a
  second development set and its figures would stop meaning anything.

Metrics per language: exact-span precision / recall / F1 (a finding counts only if its span
equals a labelled name); the same with overlap matching (a finding overlapping a name counts,
e.g. "Dr Vasseur" for "Vasseur"); decoys hit (any finding overlapping a decoy). Every finding
that matches no labelled name is a false positive, decoy or not. Writes
bench/results/dlp_names_eval.json with every miss and false positive.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
DATA = ROOT / "tests" / "data"
LANGS = ("fr", "de", "it", "es", "nl", "pl", "en")
SETS = {"development": DATA / "dlp_names.json", "held-out": DATA / "dlp_names_heldout.json"}


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
    """Rules plus every spaCy PER span that overlaps no rules finding, on the held-out set.

    Uses the spans bench/dlp_names_spacy.py saved (skipped when it has not been run): what a
    detector that also ran a spaCy model would find, recall first."""
    spacy_results = HERE / "results" / "dlp_names_spacy.json"
    if not spacy_results.exists():
        return {}
    from souverain.dlp.detectors import Finding

    rows = json.loads(SETS["held-out"].read_text(encoding="utf-8"))
    index = {row["text"]: i for i, row in enumerate(rows)}
    models = json.loads(spacy_results.read_text(encoding="utf-8"))["models"]
    out = {}
    print("\nheld-out, rules + a spaCy model (exact-span F1 / P / R):")
    for model, data in models.items():
        spans = {s["index"]: s["spans"] for s in data["spans"] if s["set"] == "held-out"}

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


def main() -> int:
    sys.path.insert(0, str(ROOT / "src"))
    from souverain.dlp.names import PersonNameDetector

    detector = PersonNameDetector()
    results = {}
    for name, path in SETS.items():
        rows = json.loads(path.read_text(encoding="utf-8"))
        results[name] = evaluate(rows, detector.find)
        print(f"\n{name} set ({path.relative_to(ROOT)}, {len(rows)} sentences)\n")
        print(table(results[name]))
    heldout_rows = json.loads(SETS["held-out"].read_text(encoding="utf-8"))
    forms = recall_by_form(heldout_rows, detector.find)
    results["held-out forms"] = forms
    print("\nheld-out recall (exact span) by written form:")
    for form, acc in forms.items():
        print(f"  {form}: {acc['found']}/{acc['names']}")
    held = results["held-out"]["all"]
    print(f"\nheld-out misses ({len(held['misses'])}):")
    for m in held["misses"]:
        print("  ", m)
    print(f"held-out false positives ({len(held['false_positives'])}):")
    for m in held["false_positives"]:
        print("  ", m)
    union = union_with_spacy(detector.find)
    if union:
        results["rules + spacy (held-out)"] = union
    out = HERE / "results" / "dlp_names_eval.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=1, ensure_ascii=False), encoding="utf-8")
    print(f"\nwritten to {out.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
