"""The book's notebook conventions (CONTRIBUTING.md), checked on every chapter.

Each chapter is a jupytext py:percent source paired with an output-free .ipynb, listed
in _toc.yml, with the cells every chapter has, in order.
"""

from __future__ import annotations

import re
from pathlib import Path

import jupytext
import nbformat
import pytest
from booktools import ROOT, book_config, colab_url, toc_files, toc_notebooks

NOTEBOOKS = toc_notebooks()
ids = [nb.stem for nb in NOTEBOOKS]


def code_cells(nb: nbformat.NotebookNode) -> list:
    return [c for c in nb.cells if c.cell_type == "code"]


def test_every_toc_entry_exists() -> None:
    for entry in toc_files():
        candidates = [ROOT / f"{entry}{ext}" for ext in (".md", ".ipynb")]
        assert any(p.is_file() for p in candidates), (
            f"_toc.yml lists {entry!r} but no .md or .ipynb exists"
        )


def test_every_chapter_source_is_in_the_toc() -> None:
    sources = sorted(p.stem for p in (ROOT / "notebooks").glob("*.py"))
    listed = sorted(p.stem for p in NOTEBOOKS)
    assert sources == listed, "notebooks/*.py and the chapters in _toc.yml differ"
    assert sorted(p.stem for p in (ROOT / "notebooks").glob("*.ipynb")) == listed, (
        "an .ipynb without a listed source"
    )


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=ids)
def test_pair_is_in_sync(notebook: Path) -> None:
    source = notebook.with_suffix(".py")
    assert source.is_file(), f"{notebook.name} has no py:percent source {source.name}"
    from_py = jupytext.read(source)
    committed = nbformat.read(notebook, as_version=4)
    assert [
        (c.cell_type, c.source, c.metadata.get("tags", [])) for c in from_py.cells
    ] == [
        (c.cell_type, c.source, c.metadata.get("tags", [])) for c in committed.cells
    ], f"{notebook.name} is out of sync with {source.name}: run `make sync`"
    assert committed.metadata.get("kernelspec", {}).get("name") == "python3"


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=ids)
def test_committed_notebook_has_no_outputs(notebook: Path) -> None:
    for i, cell in enumerate(code_cells(nbformat.read(notebook, as_version=4))):
        assert cell.outputs == [] and cell.execution_count is None, (
            f"{notebook.name} cell {i} holds outputs"
        )


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=ids)
def test_required_cells_in_order(notebook: Path) -> None:
    nb = nbformat.read(notebook, as_version=4)
    cells = nb.cells
    assert cells[0].cell_type == "markdown" and re.search(
        r"^# \S", cells[0].source, re.M
    ), "first cell: the title"
    intro = "\n".join(c.source for c in cells[:3] if c.cell_type == "markdown")
    assert f"]({colab_url(ROOT / 'colab' / notebook.name)})" in intro, (
        "an Open-in-Colab badge that points at this notebook's Colab edition"
    )
    positions = [
        intro.find(s) for s in ("**Summary.**", "**Learning goals.**", "**Runtime.**")
    ]
    assert -1 not in positions and positions == sorted(positions), (
        "summary, learning goals, runtime note, in order"
    )

    install, parameters, setup = code_cells(nb)[:3]
    repo = book_config()["repository"]
    assert "remove-cell" in install.metadata.get("tags", []), (
        "install cell hidden from the book"
    )
    assert '"google.colab" in sys.modules' in install.source, (
        "install cell runs only on Colab"
    )
    assert f"git+{repo['url']}@{repo['branch']}" in install.source, (
        "install cell installs this repository's branch"
    )
    assert "torch==" in install.source, (
        "install cell pins Colab's torch so it is never reinstalled"
    )
    assert "parameters" in parameters.metadata.get("tags", []), (
        "a papermill parameters cell"
    )
    for line in (
        'PROFILE = "book"',
        "SEED = ",
        'DEVICE = "auto"',
        "RESULTS_PATH = None",
    ):
        assert line in parameters.source, (
            f"parameters cell sets {line.split('=')[0].strip()}"
        )
    assert "trustml_ref.setup(PROFILE, SEED, DEVICE" in setup.source, (
        "the cell after the parameters calls setup"
    )

    headings = [
        m
        for c in cells
        if c.cell_type == "markdown"
        for m in re.findall(r"^## (.+)$", c.source, re.M)
    ]
    required = [
        "Motivation",
        "Derivation",
        "Numerical check",
        "Graduation",
        "Exercises",
        "Summary",
        "References",
    ]
    found = [
        next((i for i, h in enumerate(headings) if h.startswith(r)), -1)
        for r in required
    ]
    assert -1 not in found and found == sorted(found), (
        f"sections {required} in order; found {headings}"
    )


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=ids)
def test_graduation_exercises_and_citations(notebook: Path) -> None:
    nb = nbformat.read(notebook, as_version=4)
    text = "\n".join(c.source for c in nb.cells)
    graduation = next(
        i
        for i, c in enumerate(nb.cells)
        if c.cell_type == "markdown" and "## Graduation" in c.source
    )
    assert "assert_close" in nb.cells[graduation + 1].source, (
        "the cell after '## Graduation' asserts equality"
    )
    assert "record_results(" in text and "RESULTS_PATH" in text, (
        "key results recorded for the tests"
    )
    assert text.count("```{exercise}") >= 3 and text.count(
        "```{solution}"
    ) >= text.count("```{exercise}")
    references = text[text.rindex("## References") :]
    assert re.search(r"\{cite(?::\w+)?\}`[^`]+`", references), (
        "the References section cites the sources"
    )
    code = "\n".join(_code_without_comments(c.source) for c in code_cells(nb))
    assert re.search(r"\b(tqdm|trange)\(", code), (
        "long loops show a progress bar (a tqdm call in the code)"
    )


def _code_without_comments(source: str) -> str:
    return "\n".join(line.split("#", 1)[0] for line in source.splitlines())


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=ids)
def test_conclusions_are_claims_and_numbers_are_glued(notebook: Path) -> None:
    """Every chapter states its conclusions as claims before it records its results; the
    names its text quotes with {glue:...} are glued by its code."""
    nb = nbformat.read(notebook, as_version=4)
    code = [_code_without_comments(c.source) for c in code_cells(nb)]
    claim_cells = [i for i, c in enumerate(code) if re.search(r"\bclaim\(", c)]
    record_cells = [i for i, c in enumerate(code) if "record_results(" in c]
    assert claim_cells, (
        f"{notebook.name} states no conclusion as a claim (trustml_ref.claims.claim)"
    )
    assert record_cells and max(record_cells) >= max(claim_cells), (
        "record_results comes after the last claim"
    )
    text = "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
    quoted = set(re.findall(r"\{glue(?::\w*)?\}`([^`:]+)", text))
    glued = set(re.findall(r"\bglue\(\s*[\"']([^\"']+)[\"']", "\n".join(code)))
    # glue(f"name_{i}", ...)
    prefixes = re.findall(r"\bglue\(\s*f[\"']([^\"'{]+)\{", "\n".join(code))
    missing = {q for q in quoted - glued if not any(q.startswith(p) for p in prefixes)}
    assert not missing, (
        f"{notebook.name} quotes names no glue() call makes: {sorted(missing)}"
    )


def test_citations_exist_in_bibliography() -> None:
    bib = (ROOT / "book" / "references.bib").read_text()
    keys = set(re.findall(r"@\w+\{([^,]+),", bib))
    sources = [
        p.read_text()
        for p in [*(ROOT / "book").glob("*.md"), *(ROOT / "notebooks").glob("*.py")]
    ]
    cited = {
        k.strip()
        for s in sources
        for group in re.findall(r"\{cite(?::\w+)?\}`([^`]+)`", s)
        for k in group.split(",")
    }
    assert cited, "no citations found"
    assert cited <= keys, f"cited but not in references.bib: {sorted(cited - keys)}"


GPU_CHAPTERS = {"02_ring_a_bell", "03_visual_prompting_dp"}


def test_only_the_chapters_that_need_a_gpu_ask_colab_for_one():
    """Colab opens 02 and 03 on a GPU runtime (their colab profile runs Stable
    Diffusion and an ImageNet model); every other chapter runs on Colab's CPU, and its
    parameters cell says so."""
    import json

    for source in sorted((ROOT / "notebooks").glob("[0-9p]*.py")):
        metadata = json.loads(source.with_suffix(".ipynb").read_text())["metadata"]
        gpu = source.stem in GPU_CHAPTERS
        assert (metadata.get("accelerator") == "GPU") == gpu, source.name
        expected = '"colab" (larger, GPU)' if gpu else '"colab" (larger, CPU)'
        assert expected in source.read_text(), source.name


def test_no_chapter_glues_one_name_twice():
    """myst-nb refuses a duplicate glue key (the book build fails with -W)."""
    import collections
    import re

    for source in sorted((ROOT / "notebooks").glob("[0-9p]*.py")):
        names = re.findall(r'\bglue\(\s*"([^"]+)"', source.read_text())
        twice = [n for n, k in collections.Counter(names).items() if k > 1]
        assert not twice, (source.name, twice)
