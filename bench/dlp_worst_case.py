#!/usr/bin/env python3
"""DLP worst cases: how long one scan of a hostile body takes, per detector and in all.

    .venv/bin/python bench/dlp_worst_case.py            # 8 MiB bodies (the default body cap)
    .venv/bin/python bench/dlp_worst_case.py --mib 1    # quicker

Each body is built to hit one detector's weak spot: every character an "@" (the e-mail
detector used to run a regex window at every "@": 38.6 s for 2 MB), digits alone, digits and
separators alternating (every number pattern, the compact view), capitalised or upper-case
words (person names), base64, zero-width spaces and full-width digits (the views), "key="
pairs (secret names), and more. Every detector must stay linear in its input; the table
shows seconds per body for the whole default scanner as a request gets it (within the
request's work budget, dlp/budget.py: "refused" when the body would cost more, and the
seconds it took to find out), the same scan unbounded (`--unbounded`), person names
(optional, off by default), and a configured dictionary and pattern. Prints one line per
body and a summary; writes bench/results/dlp_worst_case.json.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "src"))


def bodies(size: int) -> dict[str, str]:
    """Hostile bodies of `size` characters, by name."""

    def fill(unit: str) -> str:
        return (unit * (size // len(unit) + 1))[:size]

    return {
        "all @": fill("@"),
        "a@ repeated": fill("a@"),
        "a@b. repeated": fill("a@b."),
        "valid e-mails": fill("ab@cd.fr "),
        "all digits": fill("7"),
        "digit, space": fill("1 "),
        "digit, dot": fill("1."),
        "digit, dash": fill("1-"),
        "digit, zero-width space": fill("1\u200b"),
        "full-width digits": fill("\uff17"),
        "zero-width spaces": fill("\u200b"),
        "FR76 repeated": fill("FR76"),
        "+33 6 12 repeated": fill("+33 6 12 "),
        "upper-case words": fill("ABCD "),
        "capitalised first names": fill("Marie Anne "),
        "base64": fill("QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVo0NTY3"),
        "password= repeated": fill("password="),
        "token: repeated": fill("token: x "),
        "AKIA repeated": fill("AKIA"),
        "eyJ repeated": fill("eyJ."),
        "colons": fill(":a"),
        "brackets [at]": fill("[at]"),
        "prose": fill("Le client a réglé sa facture le mardi, merci pour votre aide. "),
    }


def timed(function: Callable[[], object]) -> float:
    # CPU time of this process: the shared machines' load inflates wall time several-fold.
    start = time.process_time()
    function()
    return time.process_time() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mib", type=float, default=8.0, help="body size in MiB (default 8)")
    parser.add_argument("--only", nargs="*", help="body names to run")
    parser.add_argument("--unbounded", action="store_true", help="also time it unbudgeted")
    args = parser.parse_args()
    from souverain.dlp.budget import ScanTooCostly, request_budget
    from souverain.dlp.detectors import DictionaryDetector, RegexDetector, Scanner
    from souverain.dlp.names import PersonNameDetector
    from souverain.dlp.normalize import warm_up

    size = int(args.mib * 1024 * 1024)
    scanner = Scanner.default()
    warm_up()  # as the server does when it builds its scanner
    names = PersonNameDetector()
    custom = Scanner([DictionaryDetector(["Projet Azur", "ACME"], "project"),
                      RegexDetector(r"PRJ-\d{4}", "project")])  # fmt: skip
    results = {}
    print(f"body size {size:,} characters; CPU seconds per scan")
    print("| body | default scanner, per request | outcome | findings | unbounded "
          "| person names | configured |\n|---|---|---|---|---|---|---|")  # fmt: skip
    for name, body in bodies(size).items():
        if args.only and name not in args.only:
            continue
        found: list[object] = []
        outcome = "scanned"

        def budgeted(body: str = body, found: list[object] = found) -> None:
            nonlocal outcome
            try:
                with request_budget():
                    found.extend(scanner.scan(body))
            except ScanTooCostly:
                outcome = "refused"

        default = timed(budgeted)
        unbounded = timed(lambda body=body: scanner.scan(body)) if args.unbounded else None
        person = timed(lambda body=body: names.find(body))
        configured = timed(lambda body=body: custom.scan(body))
        results[name] = {"default": default, "outcome": outcome, "findings": len(found),
                         "unbounded": unbounded, "person_names": person,
                         "configured": configured}  # fmt: skip
        shown = "-" if unbounded is None else f"{unbounded:.2f}"
        print(f"| {name} | {default:.2f} | {outcome} | {len(found):,} | {shown} "
              f"| {person:.2f} | {configured:.2f} |", flush=True)  # fmt: skip
    worst = max(results.items(), key=lambda item: item[1]["default"])
    print(f"slowest for the default scanner: {worst[0]} ({worst[1]['default']:.2f} s)")
    refused = [name for name, row in results.items() if row["outcome"] == "refused"]
    print(f"refused (over the request's work budget): {', '.join(refused) or 'none'}")
    out = HERE / "results" / "dlp_worst_case.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps({"size": size, "results": results}, indent=1))


if __name__ == "__main__":
    main()
