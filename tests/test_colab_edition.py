"""The Colab edition (``colab/``): current, free of MyST, the sources' code unchanged,
and it runs."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import nbformat
import pytest
from booktools import ROOT, guard_kernels, run_notebook, toc_notebooks

from trustml_ref.teaching.colab import colab_edition, read_book, write_colab_edition
from trustml_ref.teaching.student import make_student_edition

EDITION = ROOT / "colab"
MYST = {
    "role": re.compile(r"\{[\w:-]+\}`"),
    "directive": re.compile(r"^\s*(`{3,}|:{3,})\{", re.M),
    "target": re.compile(r"^\([\w-]+\)=\s*$", re.M),
    "option": re.compile(r"^:(label|class):", re.M),
    "equation label": re.compile(r"\$\$\s*\([\w-]+\)"),
    "relative badge": re.compile(r"\.\./book/_static"),
}


def myst_left(source: str) -> list[str]:
    return [name for name, pattern in MYST.items() if pattern.search(source)]


def markdown(nb: nbformat.NotebookNode) -> str:
    return "\n\n".join(c.source for c in nb.cells if c.cell_type == "markdown")


def test_committed_edition_is_current() -> None:
    expected = colab_edition(ROOT)
    assert sorted(p.name for p in EDITION.glob("*.ipynb")) == sorted(expected), (
        "colab/ holds other notebooks than the pages make; run `make colab`"
    )
    stale = [n for n, text in expected.items() if (EDITION / n).read_text() != text]
    assert not stale, f"colab/ is out of date for {stale}; run `make colab`"


@pytest.mark.parametrize("source", toc_notebooks(), ids=lambda p: p.stem)
def test_edition_has_no_myst_and_the_sources_code(source: Path) -> None:
    edition = nbformat.read(EDITION / source.name, as_version=4)
    original = nbformat.read(source, as_version=4)
    left = {
        i: myst_left(c.source)
        for i, c in enumerate(edition.cells)
        if c.cell_type == "markdown" and myst_left(c.source)
    }
    assert not left, f"MyST survives in cells {left}"
    assert edition.cells[0].cell_type == "code"
    assert '"google.colab" in sys.modules' in edition.cells[0].source
    code = [c.source for c in edition.cells if c.cell_type == "code"]
    assert code == [c.source for c in original.cells if c.cell_type == "code"]
    assert edition.metadata.get("kernelspec") == original.metadata.get("kernelspec")
    assert "jupytext" not in edition.metadata


def test_numbers_follow_the_book() -> None:
    """Numbered objects read as in the book: chapter prefix, per-kind counters."""
    book = read_book(ROOT)
    text = markdown(nbformat.read(EDITION / "01_safe_lora.ipynb", as_version=4))
    assert "**Exercise 1.1**" in text and "Solution to Exercise 1.1" in text
    assert "\\tag{1.1}" in text and "**Proposition 1.1**" in text
    assert book.targets["eq-sl-c"].text == "(1.1)"
    primer = markdown(nbformat.read(EDITION / "p2_differential_privacy.ipynb", 4))
    assert "\\tag{P2.1}" in primer and "**Exercise P2.1**" in primer
    # a citation reads author-year and its full entry is listed
    assert "Hsu et al. (2024)" in text
    assert "Safe LoRA: the Silver Lining" in text
    # a reference to another page links to the rendered book
    assert f"]({book.url}/notebooks/p3_lora.html)" in text


def _tiny_book(root: Path, body: str) -> Path:
    """A one-page book whose page's Markdown is ``body``."""
    (root / "book").mkdir(parents=True)
    (root / "notebooks").mkdir()
    (root / "_config.yml").write_text("html:\n  baseurl: https://example.org/b/\n")
    (root / "_toc.yml").write_text("format: jb-book\nroot: notebooks/03_x\n")
    (root / "book" / "references.bib").write_text(
        "@article{a2020,\n title = {A Title},\n author = {Ann, A. and Bob, B.},\n"
        " journal = {J},\n year = {2020}\n}\n"
    )
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_markdown_cell("(page)=\n# Page"),
        nbformat.v4.new_code_cell('import sys\nif "google.colab" in sys.modules:\n  0'),
        nbformat.v4.new_markdown_cell(body),
    ]
    nbformat.write(nb, root / "notebooks" / "03_x.ipynb")
    return root


def test_each_construct_is_rewritten(tmp_path) -> None:
    body = (
        "$$\nx = 1\n$$ (eq-x)\n\nBy {eq}`eq-x` and {cite:t}`a2020` {cite:p}`a2020`,"
        " see {ref}`the page <page>` and {func}`~trustml_ref.claims.glue`;"
        " {glue:text}`n:.2f` items.\n\n```{exercise}\n:label: ex-one\n\nDo it.\n```\n\n"
        "```{solution} ex-one\n:class: dropdown\n\nDone, by {eq}`eq-x`.\n```\n\n"
        "```{prf:theorem} Name\n:label: thm-a\n\nTrue.\n```\n\n"
        "```{prf:proof}\nObvious.\n```\n\n```{important}\nRead.\n```"
    )
    root = _tiny_book(tmp_path / "b", body)
    nb = nbformat.reads(colab_edition(root)["03_x.ipynb"], as_version=4)
    text = markdown(nb)
    assert not myst_left(text)
    for expected in (
        "x = 1\n\\tag{3.1}\n$$",
        "By (3.1) and Ann and Bob (2020) (Ann and Bob, 2020)",
        "[the page](https://example.org/b/notebooks/03_x.html#page)",
        "`glue()`",
        "‹n› items",
        "**Exercise 3.1**\n\nDo it.",
        "<summary><b>Solution to Exercise 3.1</b></summary>\n\nDone, by (3.1).",
        "**Theorem 3.1** (Name). True.",
        "*Proof.* Obvious. ∎",
        "**Important.** Read.",
        "## References\n\n- Ann, A., Bob, B. (2020). A Title. *J*.",
    ):
        assert expected in text, expected


@pytest.mark.parametrize(
    "body, error",
    [
        ("see {eq}`eq-missing`", "unknown label 'eq-missing'"),
        ("{cite:t}`nobody1999`", "unknown key 'nobody1999'"),
        ("```{figure} x.png\nA\n```", "directive {figure}"),
        ("{download}`x`", "role {download}"),
        ("```{exercise}\nnever closed", "unclosed {exercise}"),
    ],
)
def test_what_it_cannot_render_is_refused(tmp_path, body, error) -> None:
    root = _tiny_book(tmp_path / "b", body)
    with pytest.raises(ValueError, match=re.escape(error)):
        colab_edition(root)


def test_write_removes_stale_notebooks(tmp_path) -> None:
    root = _tiny_book(tmp_path / "b", "text")
    out = tmp_path / "colab"
    out.mkdir()
    (out / "gone.ipynb").write_text("{}")
    assert [p.name for p in write_colab_edition(root, out)] == ["03_x.ipynb"]
    assert sorted(p.name for p in out.iterdir()) == ["03_x.ipynb"]


def test_student_edition_for_colab_has_its_own_badge(tmp_path) -> None:
    (written,) = make_student_edition(
        ROOT, tmp_path, ["00_conventions"], colab_repository="uni/course@2027"
    )
    nb = nbformat.read(written, as_version=4)
    text = markdown(nb)
    assert not myst_left(text) and "<details>" not in text  # no solutions
    assert (
        "(https://colab.research.google.com/github/uni/course/blob/2027/notebooks/"
        "00_conventions.ipynb)" in text
    )
    with pytest.raises(ValueError, match="colab_repository"):
        make_student_edition(ROOT, tmp_path, colab_repository="not a repo")


@pytest.mark.notebook
def test_generated_notebook_runs_like_its_source(tmp_path, monkeypatch) -> None:
    """The code is the source's (checked above for every page); one page of the
    edition also runs, from its own folder, in the smoke profile."""
    guard_kernels(tmp_path, monkeypatch)
    copy = tmp_path / "colab" / "00_conventions.ipynb"
    copy.parent.mkdir()
    shutil.copy(EDITION / copy.name, copy)
    executed = run_notebook(copy, tmp_path, PROFILE="smoke")
    errors = [
        out
        for cell in executed.cells
        for out in cell.get("outputs", [])
        if out.get("output_type") == "error"
    ]
    assert not errors
