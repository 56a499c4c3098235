"""Recall on respelled values: the evaluation set's labelled values, each written another way.

Used by bench/dlp_eval.py (section "Spellings"). Each labelled value of the types below is
replaced in its document by a respelling (dots for its spaces, no-break spaces, a zero-width
space every four characters, full-width characters, lower case, a newline in the middle, a
tab between groups), or the document is cut in two in the middle of the value and sent as
two texts. A value counts as found when one finding of its type covers the whole respelled
span (in each text, for the cut). Runs against whichever souverain package is on sys.path,
so the same code measures a revision before the respelled views existed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

TYPES = ("iban", "payment_card", "fr_nir", "email", "phone", "secret")


def _every_four(value: str, mark: str) -> str:
    return mark.join(value[i : i + 4] for i in range(0, len(value), 4))


def _full_width(value: str) -> str:
    return "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c for c in value)


def _middle(value: str, mark: str) -> str:
    cut = len(value) // 2
    return value[:cut] + mark + value[cut:]


VARIANTS: dict[str, Callable[[str], str]] = {
    "as written": lambda v: v,
    "dots for spaces": lambda v: v.replace(" ", "."),
    "no-break spaces": lambda v: v.replace(" ", "\u00a0"),
    "zero-width space every 4": lambda v: _every_four(v, "\u200b"),
    "full-width": _full_width,
    "lower case": str.lower,
    "newline in the middle": lambda v: _middle(v, "\n"),
    "tab for spaces": lambda v: v.replace(" ", "\t"),
}


def _covered(findings: list[Any], start: int, end: int, kind: str) -> bool:
    return any(f.type == kind and f.start <= start and f.end >= end for f in findings)


def spelling_recall(scanner: Any, docs: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """Variant -> type -> recall (and "all")."""
    try:
        from souverain.dlp.crosstext import scan_texts
    except ImportError:  # before cross-text findings: each text alone

        def scan_texts(scanner: Any, texts: list[str]) -> list[list[Any]]:
            return [list(scanner.scan(text)) for text in texts]

    entities = [(d["text"], e) for d in docs for e in d["entities"] if e["type"] in TYPES]
    results: dict[str, dict[str, float]] = {}
    for name, respell in [*VARIANTS.items(), ("cut in two texts", str)]:
        hits: dict[str, list[bool]] = {t: [] for t in TYPES}
        for text, e in entities:
            value = respell(e["value"])
            s, end = e["start"], e["start"] + len(value)
            spelled = text[:s] + value + text[e["end"] :]
            if name == "cut in two texts":
                cut = s + len(value) // 2
                while spelled[cut - 1].isspace() or spelled[cut].isspace():
                    cut += 1  # inside a group: the halves keep no junction space to trim
                first, second = scan_texts(scanner, [spelled[:cut], spelled[cut:]])
                kind = e["type"]
                ok = _covered(first, s, cut, kind) and _covered(second, 0, end - cut, kind)
            else:
                ok = _covered(list(scanner.scan(spelled)), s, end, e["type"])
            hits[e["type"]].append(ok)
        row = {t: sum(h) / len(h) for t, h in hits.items() if h}
        row["all"] = sum(sum(h) for h in hits.values()) / sum(len(h) for h in hits.values())
        results[name] = row
    return results


def spelling_table(results: dict[str, dict[str, float]]) -> str:
    lines = [
        "\nSpellings: recall on respelled labelled values (bench/dlp_spelling_eval.py)",
        "| spelling | all | " + " | ".join(TYPES) + " |",
        "|---|---|" + "---|" * len(TYPES),
    ]
    for name, row in results.items():
        cells = " | ".join(f"{row[t]:.3f}" if t in row else "n/a" for t in TYPES)
        lines.append(f"| {name} | {row['all']:.3f} | {cells} |")
    return "\n".join(lines)
