"""Instructor-side grading: run a submitted notebook with papermill and score every
exercise."""

from __future__ import annotations

import json
import os
import re
import tempfile
from pathlib import Path

import nbformat

from trustml_ref.teaching.checks import GRADE_FILE_ENV
from trustml_ref.teaching.exercises import EXERCISES, for_chapter

# What a notebook saved from Colab may hold that cannot run on the grader's machine:
# shell and magic lines, Google Drive, and Colab's own module.
COLAB_ONLY = re.compile(
    r"^\s*([!%]|from google\.colab\b|import google\.colab\b|.*\bdrive\.mount\()"
)


def chapter_of(notebook: Path) -> str:
    """The chapter a submission belongs to, from its file name.

    Accepts Colab's download names ("Copy of 05_weight_perturbation.ipynb",
    "05_weight_perturbation (1).ipynb") and any name that contains exactly one chapter
    stem; otherwise a ``ValueError`` asks for ``chapter=``.
    """
    chapters = sorted({e.chapter for e in EXERCISES.values()})
    found = [c for c in chapters if c in Path(notebook).stem]
    if len(found) != 1:
        raise ValueError(
            f"cannot tell the chapter of {Path(notebook).name!r} from its name; pass "
            f"chapter= (--chapter), one of {chapters}"
        )
    return found[0]


def without_colab_lines(source: str) -> tuple[str, int]:
    """``source`` with every Colab-only line replaced by ``pass`` (kept indented, so the
    cell still parses), and how many lines were replaced."""
    lines, skipped = [], 0
    for line in source.splitlines():
        if COLAB_ONLY.match(line):
            indent = line[: len(line) - len(line.lstrip())]
            lines.append(f"{indent}pass  # skipped by the grader: {line.strip()}")
            skipped += 1
        else:
            lines.append(line)
    return "\n".join(lines), skipped


def grade(
    notebook: Path, chapter: str | None = None, seed: int = 12345, timeout: int = 600
) -> dict:
    """Execute ``notebook`` (smoke profile) with a grading cell appended; return
    per-exercise scores.

    The grading cell checks, with the grader's ``seed``, every exercise function defined
    in the executed notebook. If the notebook stops early, the checks that ran count and
    the rest score 0. ``chapter`` defaults to the one named in the file name
    (:func:`chapter_of`); Colab-only lines (``!``/``%`` lines, ``google.colab`` imports,
    ``drive.mount``) are skipped and counted in the report.
    """
    import papermill

    notebook = Path(notebook)
    chapter = chapter or chapter_of(notebook)
    exercises = for_chapter(chapter)
    if not exercises:
        raise ValueError(
            f"chapter {chapter!r} has no implementation exercises (pass chapter= for "
            "renamed files)"
        )
    nb = nbformat.read(notebook, as_version=4)
    skipped = 0
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.source, n = without_colab_lines(cell.source)
            skipped += n
    nb.cells.append(
        nbformat.v4.new_code_cell(
            "from trustml_ref.teaching.checks import "
            f"grade_namespace\ngrade_namespace(globals(), {chapter!r}, {seed})"
        )
    )
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp) / notebook.name
        nbformat.write(nb, work)
        grade_file = Path(tmp) / "grades.json"
        grade_file.write_text("{}")
        previous = {k: os.environ.get(k) for k in (GRADE_FILE_ENV, "TRUSTML_PROFILE")}
        os.environ[GRADE_FILE_ENV], os.environ["TRUSTML_PROFILE"] = (
            str(grade_file),
            "smoke",
        )
        error = None
        try:
            papermill.execute_notebook(
                str(work),
                str(Path(tmp) / "executed.ipynb"),
                parameters={"PROFILE": "smoke"},
                kernel_name="python3",
                cwd=str(notebook.parent),
                execution_timeout=timeout,
                progress_bar=False,
            )
        except papermill.PapermillExecutionError as err:
            error = (
                f"the notebook stopped at cell {err.exec_count}: {err.ename}: "
                f"{err.evalue}"
            )
        finally:
            for key, value in previous.items():
                os.environ.pop(key) if value is None else os.environ.__setitem__(
                    key, value
                )
        recorded = json.loads(grade_file.read_text())
    scores = {e.id: int(bool(recorded.get(e.id, False))) for e in exercises}
    return {
        "notebook": str(notebook),
        "chapter": chapter,
        "scores": scores,
        "total": sum(scores.values()),
        "out_of": len(scores),
        "error": error,
        "skipped_colab_lines": skipped,
    }


def table(report: dict) -> str:
    """A readable table of one report."""
    lines = [f"{report['notebook']}  ({report['chapter']})", f"{'exercise':24s} score"]
    lines += [f"{ex:24s} {score}" for ex, score in report["scores"].items()]
    lines.append(f"{'total':24s} {report['total']} / {report['out_of']}")
    if report["error"]:
        lines.append(f"note: {report['error']}")
    if report.get("skipped_colab_lines"):
        lines.append(
            f"note: {report['skipped_colab_lines']} Colab-only lines (!, %, "
            "google.colab, drive.mount) were skipped"
        )
    return "\n".join(lines)
