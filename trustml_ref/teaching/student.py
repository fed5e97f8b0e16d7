"""Make the student edition of chapters: solution regions become stubs, worked
solutions vanish.

In each chapter source (``notebooks/NN_name.py``), the code between ``### BEGIN SOLUTION
<id>`` and ``### END SOLUTION`` is replaced by a stub that raises
``NotImplementedError`` with a hint; the function is wrapped so later cells fall back to
the reference implementation (and say so), and a cell that calls the exercise's check
follows. Every ``{solution}`` block of the text is removed, and so is the Open-in-Colab
badge (it points at the solutions). Output: ``.ipynb`` files, and optionally a book
(``_config.yml``, ``_toc.yml``, ``book/``) that ``jupyter-book build`` renders.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import jupytext
import nbformat

from trustml_ref.teaching.exercises import EXERCISES

BEGIN = re.compile(r"^(?P<indent>\s*)### BEGIN SOLUTION (?P<id>[\w-]+)\s*$")
END = re.compile(r"^\s*### END SOLUTION\s*$")
SOLUTION_BLOCK = re.compile(r"^```\{solution\}.*?^```[ \t]*\n?", re.S | re.M)
BADGE = re.compile(r"^\[!\[Open In Colab\].*$\n?", re.M)


def strip_code_cell(source: str) -> tuple[str, list[str]]:
    """Replace every solution region of a code cell by a stub; return the new source
    and the exercise ids."""
    out, ids, inside = [], [], None
    for line in source.splitlines():
        begin = BEGIN.match(line)
        if begin:
            if inside:
                raise ValueError(
                    f"solution region {inside!r} is not closed before {begin['id']!r} "
                    "starts"
                )
            inside = begin["id"]
            if inside not in EXERCISES:
                raise ValueError(
                    f"solution region names unknown exercise {inside!r}; add it to "
                    "trustml_ref.teaching.exercises"
                )
            exercise, indent = EXERCISES[inside], begin["indent"]
            out += [
                f"{indent}# YOUR CODE HERE ({inside}). Hint: {exercise.hint}",
                f'{indent}raise NotImplementedError("{inside}: implement '
                f'{exercise.function}")',
            ]
            ids.append(inside)
        elif END.match(line):
            if not inside:
                raise ValueError("### END SOLUTION without a matching BEGIN")
            inside = None
        elif not inside:
            out.append(line)
    if inside:
        raise ValueError(f"solution region {inside!r} is never closed")
    return "\n".join(out), ids


def student_notebook(source: Path) -> nbformat.NotebookNode:
    """The student edition of one chapter source."""
    nb = jupytext.read(source)
    cells = []
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            cell.source = BADGE.sub("", SOLUTION_BLOCK.sub("", cell.source))
            cells.append(cell)
            continue
        new_source, ids = strip_code_cell(cell.source)
        if not ids:
            cells.append(cell)
            continue
        wraps = "\n".join(
            f'{EXERCISES[i].function} = with_fallback("{i}", {EXERCISES[i].function})'
            for i in ids
        )
        cell.source = (
            f"{new_source}\n\n\nfrom trustml_ref.teaching import check, "
            f"with_fallback  # noqa: E402\n\n{wraps}"
        )
        cells.append(cell)
        for i in ids:
            cells.append(
                nbformat.v4.new_code_cell(
                    f'check("{i}", {EXERCISES[i].function})  # run me after '
                    "implementing it"
                )
            )
    nb.cells = cells
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    nb.metadata.pop("jupytext", None)
    return nb


def make_student_edition(
    root: Path,
    out: Path,
    chapters: list[str] | None = None,
    book: bool = False,
    colab_repository: str | None = None,
) -> list[Path]:
    """Write the student edition of ``chapters`` (stems; default: every chapter source)
    under ``out``.

    With ``book`` every chapter is written, whatever ``chapters`` says: the book's pages
    link to each other, and a book with some chapters missing does not build. With
    ``colab_repository`` (``"owner/name"`` or ``"owner/name@branch"``, the repository
    that will host ``out``) each notebook is written for Colab, as the Colab edition is
    (:func:`~trustml_ref.teaching.colab.colab_notebook`), with an Open-in-Colab badge
    pointing at it there.
    """
    if colab_repository is not None and not re.fullmatch(
        r"[\w.-]+/[\w.-]+(@[\w./-]+)?", colab_repository
    ):
        raise ValueError(
            "colab_repository must be 'owner/name' or 'owner/name@branch', got "
            f"{colab_repository!r}"
        )
    sources = sorted((root / "notebooks").glob("*.py"))
    if chapters:
        unknown = set(chapters) - {s.stem for s in sources}
        if unknown:
            raise ValueError(
                f"unknown chapters {sorted(unknown)}; choose from "
                f"{[s.stem for s in sources]}"
            )
        if not book:
            sources = [s for s in sources if s.stem in chapters]
    (out / "notebooks").mkdir(parents=True, exist_ok=True)
    written = []
    if colab_repository:
        from trustml_ref.teaching.colab import colab_notebook, read_book

        whole = read_book(root)
        slug, _, branch = colab_repository.partition("@")
    for source in sources:
        path = out / "notebooks" / f"{source.stem}.ipynb"
        nb = student_notebook(source)
        if colab_repository:
            badge = (
                f"https://colab.research.google.com/github/{slug}/blob/"
                f"{branch or 'main'}/notebooks/{path.name}"
            )
            nb = colab_notebook(nb, f"notebooks/{source.stem}", whole, badge)
        nbformat.write(nb, path)
        written.append(path)
    if book:
        shutil.copytree(root / "book", out / "book", dirs_exist_ok=True)
        shutil.copy(root / "_config.yml", out / "_config.yml")
        shutil.copy(root / "_toc.yml", out / "_toc.yml")
    return written
