"""Compare the results JSON of chapters before and after a change.

Every chapter writes its key results to ``RESULTS_PATH`` (``record_results``); a
refactor that should not change behaviour must leave them identical. Give two files, or
two folders holding files of the same names (say the smoke results of ``main`` and of
your branch)::

    python tools/compare_results.py before/ after/
    python tools/compare_results.py before/05.json after/05.json --rtol 1e-9

Prints one line per differing entry (its path inside the JSON, both values and, for
numbers, the relative difference) and exits with 1 if anything differs beyond ``--rtol``
(0 by default: bit-identical). The recorded claims are compared too.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any


def differences(a: Any, b: Any, rtol: float = 0.0, where: str = "") -> Iterator[str]:
    """Lines describing every place where ``a`` and ``b`` differ (numbers beyond
    ``rtol``)."""
    if isinstance(a, dict) and isinstance(b, dict):
        for key in sorted(set(a) | set(b)):
            here = f"{where}.{key}" if where else str(key)
            if key not in a or key not in b:
                yield f"{here}: only in {'after' if key not in a else 'before'}"
            else:
                yield from differences(a[key], b[key], rtol, here)
    elif isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            yield f"{where}: length {len(a)} before, {len(b)} after"
        else:
            for i, (x, y) in enumerate(zip(a, b)):
                yield from differences(x, y, rtol, f"{where}[{i}]")
    elif isinstance(a, bool) != isinstance(b, bool):
        yield f"{where}: {a!r} before, {b!r} after"
    elif (
        isinstance(a, (int, float))
        and isinstance(b, (int, float))
        and not isinstance(a, bool)
        and not isinstance(b, bool)
    ):
        scale = max(abs(a), abs(b))
        if a != b and not (scale > 0 and abs(a - b) <= rtol * scale):
            relative = abs(a - b) / scale if scale else math.inf
            yield f"{where}: {a!r} before, {b!r} after (relative {relative:.3g})"
    elif a != b:
        yield f"{where}: {a!r} before, {b!r} after"


def pairs(before: Path, after: Path) -> list[tuple[Path, Path]]:
    """The files to compare: the two given, or the same-named JSON files of two
    folders (a file present on one side only raises)."""
    if before.is_file() and after.is_file():
        return [(before, after)]
    if not (before.is_dir() and after.is_dir()):
        raise SystemExit("give two JSON files or two folders of them")
    names_a = {p.name for p in before.glob("*.json")}
    names_b = {p.name for p in after.glob("*.json")}
    if names_a != names_b:
        raise SystemExit(f"the folders hold different files: {names_a ^ names_b}")
    return [(before / n, after / n) for n in sorted(names_a)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("before", type=Path)
    parser.add_argument("after", type=Path)
    parser.add_argument("--rtol", type=float, default=0.0)
    args = parser.parse_args(argv)
    changed = 0
    for a, b in pairs(args.before, args.after):
        lines = list(
            differences(json.loads(a.read_text()), json.loads(b.read_text()), args.rtol)
        )
        print(f"{a.name}: {'identical' if not lines else f'{len(lines)} differences'}")
        for line in lines:
            print(f"  {line}")
        changed += bool(lines)
    return 1 if changed else 0


if __name__ == "__main__":
    sys.exit(main())
