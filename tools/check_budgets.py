"""Print each chapter's execution time in the last book build against its budget.

Reads the execution cache the build filled (``_build/.jupyter_cache``): budgets are 4
minutes per method chapter, 1 minute per primer (and the conventions chapter), 20
minutes for the whole book. Every line over its budget is marked ``OVER`` and summed up
at the end, so the CI log says which chapter to shrink. It exits non-zero only when a
chapter has no execution record: the same build took 1.6x longer on one machine than on
another (and 01 took 129 s and 220 s on the same machine an hour apart), so a time limit
here would fail CI on the machine, not on the book.

    python tools/check_budgets.py [_build]
"""

from __future__ import annotations

import sys
from pathlib import Path

from jupyter_cache import get_cache

# the same list of chapters as the runtime table
from runtime_table import ROOT, chapters

METHOD_BUDGET_S, PRIMER_BUDGET_S, BOOK_BUDGET_S = 240.0, 60.0, 1200.0


def budget(stem: str) -> float:
    return PRIMER_BUDGET_S if stem.startswith(("p", "00_")) else METHOD_BUDGET_S


def main(argv: list[str]) -> int:
    build = Path(argv[0]) if argv else ROOT / "_build"
    stems = [notebook.stem for notebook in chapters()]
    times = {
        Path(r.uri).stem: r.data.get("execution_seconds")
        for r in get_cache(str(build / ".jupyter_cache")).list_cache_records()
    }
    profile = (
        (build / ".profile").read_text().strip()
        if (build / ".profile").is_file()
        else "unknown"
    )
    print(f"profile {profile}: execution time per chapter against its budget")
    missing = [s for s in stems if times.get(s) is None]
    for stem in stems:
        if stem in missing:
            print(f"  {stem:36s}      -  (no execution record)")
            continue
        mark = "OVER" if times[stem] > budget(stem) else "ok"
        print(f"  {stem:36s} {times[stem]:6.0f} s  / {budget(stem):4.0f} s  {mark}")
    total = sum(times.get(s) or 0 for s in stems)
    print(
        f"  {'whole book':36s} {total:6.0f} s  / {BOOK_BUDGET_S:4.0f} s  "
        f"{'OVER' if total > BOOK_BUDGET_S else 'ok'}"
    )
    over = [s for s in stems if s not in missing and times[s] > budget(s)]
    if over or total > BOOK_BUDGET_S:
        print(
            f"OVER BUDGET: {', '.join(over) or 'the whole book'} (see the table above)"
        )
    return 1 if missing else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
