"""Measure every chapter's runtime in the smoke and book profiles and write the table
the book shows.

Runs each chapter of ``_toc.yml`` with papermill in a fresh kernel, one at a time, and
writes ``book/_generated/runtimes.md`` (included by ``book/runtimes.md``). Run it on the
machine whose numbers you want to publish (the committed table says which): ``python
tools/runtime_table.py``.
"""

from __future__ import annotations

import datetime
import os
import platform
import re
import sys
import tempfile
import time
from pathlib import Path

import papermill

from trustml_ref.teaching.colab import toc_documents

ROOT = Path(__file__).resolve().parents[1]
PROFILES = ("smoke", "book")


def chapters() -> list[Path]:
    return [
        ROOT / f"{f}.ipynb" for f in toc_documents(ROOT) if f.startswith("notebooks/")
    ]


ROW = re.compile(r"</notebooks/(\w+)>` \| [\d.]+ s \| ([\d.]+) s \|")
"""A row of the table :func:`main` writes: a chapter's stem and its book time."""


def published_times(root: Path = ROOT) -> dict[str, float]:
    """Each chapter's book-profile time in the committed table (empty if there is
    none)."""
    table = root / "book" / "_generated" / "runtimes.md"
    text = table.read_text() if table.is_file() else ""
    return {stem: float(seconds) for stem, seconds in ROW.findall(text)}


def main() -> int:
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for notebook in chapters():
            times = {}
            for profile in PROFILES:
                os.environ["TRUSTML_PROFILE"] = profile
                start = time.perf_counter()
                papermill.execute_notebook(
                    str(notebook),
                    str(Path(tmp) / notebook.name),
                    parameters={"PROFILE": profile},
                    kernel_name="python3",
                    cwd=str(notebook.parent),
                    progress_bar=False,
                )
                times[profile] = time.perf_counter() - start
                print(
                    f"{notebook.stem:40s} {profile:6s} {times[profile]:7.1f} s",
                    flush=True,
                )
            title = next(
                line[4:]
                for line in notebook.with_suffix(".py").read_text().splitlines()
                if line.startswith("# # ")
            )
            rows.append((title, notebook.stem, times))
    lines = [
        f"Measured {datetime.date.today().isoformat()} on {os.cpu_count()} CPU cores "
        f"({platform.machine()}, "
        f"Python {platform.python_version()}), one chapter at a time, fresh kernel "
        "each, including start-up.",
        "",
        "| Chapter | `smoke` | `book` |",
        "| --- | ---: | ---: |",
    ]
    lines += [
        f"| {{doc}}`{title} </notebooks/{stem}>` | {t['smoke']:.0f} s | "
        f"{t['book']:.0f} s |"
        for title, stem, t in rows
    ]
    lines.append(
        f"| **all chapters** | {sum(t['smoke'] for *_, t in rows):.0f} s | "
        f"{sum(t['book'] for *_, t in rows):.0f} s |"
    )
    (ROOT / "book" / "_generated").mkdir(exist_ok=True)
    (ROOT / "book" / "_generated" / "runtimes.md").write_text("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
