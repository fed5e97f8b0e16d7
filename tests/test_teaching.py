"""Student editions, checks and the grader (trustml_ref.teaching)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import jupytext
import nbformat
import pytest
import torch
from booktools import ROOT, toc_notebooks

from trustml_ref.teaching import EXERCISES, check, run_check, with_fallback
from trustml_ref.teaching.grader import chapter_of, grade, without_colab_lines
from trustml_ref.teaching.student import make_student_edition, strip_code_cell

CHAPTERS = [nb.stem for nb in toc_notebooks()]


def solution_regions(source: Path) -> dict[str, list[str]]:
    regions, current = {}, None
    for line in source.read_text().splitlines():
        m = re.match(r"\s*### BEGIN SOLUTION ([\w-]+)", line)
        if m:
            current = m.group(1)
            regions[current] = []
        elif re.match(r"\s*### END SOLUTION", line):
            current = None
        elif current and line.strip():
            regions[current].append(line.strip())
    return regions


@pytest.fixture(scope="module")
def student_dir(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("student")
    make_student_edition(ROOT, out, book=True)
    return out


def test_every_registered_exercise_has_a_region_and_vice_versa():
    found = {
        ex: chapter
        for chapter in CHAPTERS
        for ex in solution_regions(ROOT / "notebooks" / f"{chapter}.py")
    }
    assert set(found) == set(EXERCISES)
    assert all(EXERCISES[ex].chapter == chapter for ex, chapter in found.items())


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_student_edition_contains_no_solution(student_dir, chapter):
    text = (student_dir / "notebooks" / f"{chapter}.ipynb").read_text()
    nb = nbformat.reads(text, as_version=4)
    sources = "\n".join(c.source for c in nb.cells)
    for exercise, lines in solution_regions(
        ROOT / "notebooks" / f"{chapter}.py"
    ).items():
        leaked = [line for line in lines if len(line) > 12 and line in sources]
        assert not leaked, (
            f"{exercise}: solution lines left in the student edition: {leaked}"
        )
        assert (
            f'check("{exercise}"' in sources
            and f'with_fallback("{exercise}"' in sources
        )
    assert (
        "{solution}" not in sources
        and "BEGIN SOLUTION" not in sources
        and "END SOLUTION" not in sources
    )
    assert "colab.research.google.com/github" not in sources, (
        "the badge points at the solutions"
    )
    assert all(c.get("outputs", []) == [] for c in nb.cells if c.cell_type == "code")


def test_student_book_lists_the_student_chapters(student_dir):
    toc = (student_dir / "_toc.yml").read_text()
    assert (
        all(f"notebooks/{c}" in toc for c in CHAPTERS)
        and (student_dir / "book" / "intro.md").is_file()
    )


@pytest.mark.notebook
def test_untouched_student_notebook_runs_on_fallbacks_and_scores_zero(
    student_dir, tmp_path
):
    notebook = student_dir / "notebooks" / "00_conventions.ipynb"
    report = grade(notebook)
    # ran end to end on the reference implementations
    assert report["error"] is None, report["error"]
    assert report["scores"] == {"ex-conventions-delta": 0, "ex-conventions-sigma": 0}
    import papermill

    out = papermill.execute_notebook(
        str(notebook),
        str(tmp_path / "out.ipynb"),
        parameters={"PROFILE": "smoke"},
        kernel_name="python3",
        progress_bar=False,
    )
    printed = "".join(
        o.get("text", "") for c in out.cells for o in c.get("outputs", [])
    )
    assert "not implemented yet: using the reference implementation" in printed
    assert "FAIL  ex-conventions-delta" in printed


@pytest.mark.notebook
@pytest.mark.parametrize("chapter", sorted({e.chapter for e in EXERCISES.values()}))
def test_solution_notebooks_score_full_marks(chapter):
    report = grade(ROOT / "notebooks" / f"{chapter}.ipynb")
    assert report["error"] is None and report["total"] == report["out_of"] > 0, report


@pytest.mark.notebook
def test_a_solved_student_notebook_scores_full_marks(student_dir, tmp_path):
    """Paste the solutions back into the student edition, as a student would, and grade
    it."""
    nb = nbformat.read(
        student_dir / "notebooks" / "06_joint_robustness.ipynb", as_version=4
    )
    solution = jupytext.read(ROOT / "notebooks" / "06_joint_robustness.py")
    solved = next(c.source for c in solution.cells if "BEGIN SOLUTION" in c.source)
    for cell in nb.cells:
        if "raise NotImplementedError" in cell.source:
            cell.source = (
                solved + "\n\nfrom trustml_ref.teaching import check, with_fallback\n"
            )
    path = tmp_path / "06_joint_robustness.ipynb"
    nbformat.write(nb, path)
    report = grade(path)
    assert report["scores"] == {"ex-joint-drop": 1}, report


def reference_args(exercise_id: str, seed: int = 0):
    return EXERCISES[exercise_id].inputs(torch.Generator().manual_seed(seed))


def test_wrong_implementations_fail_their_checks(capsys):
    import math

    def off_by_constant(eps, delta, sens=1.0):  # 1.5 instead of 1.25 inside the log
        return sens * math.sqrt(2 * math.log(1.5 / delta)) / eps

    def gamma_beta_swapped(weights, x, eps):  # row and column norms transposed
        s, delta = x.abs().sum(), torch.zeros((), dtype=x.dtype)
        for w, e in zip(weights[:-1], eps[:-1]):
            gamma, beta = w.abs().sum(1).max(), w.abs().sum(0).max()
            delta, s = beta * delta + e * s, (gamma + w.shape[0] * e) * s
        w_last = weights[-1]
        return (
            (w_last[:, None] - w_last[None]).abs().sum(-1) * delta + 2 * eps[-1] * s
        ).fill_diagonal_(0.0)

    def unnormalised_projection(v, b):  # forgets the division by ||V||_F
        return v @ (v.T @ b)

    assert not check("ex-conventions-sigma", off_by_constant)
    assert not run_check("ex-wp-closed-form", gamma_beta_swapped)[0]
    assert not run_check("ex-sl-cb", unnormalised_projection)[0]
    assert "FAIL  ex-conventions-sigma: wrong value" in capsys.readouterr().out


def test_checks_pass_the_references_and_record_grades(tmp_path, monkeypatch):
    grade_file = tmp_path / "g.json"
    monkeypatch.setenv("TRUSTML_GRADE_FILE", str(grade_file))
    for exercise in EXERCISES.values():
        assert run_check(exercise.id, exercise.reference)[0], exercise.id
    assert check("ex-sl-cb", EXERCISES["ex-sl-cb"].reference)
    assert json.loads(grade_file.read_text()) == {"ex-sl-cb": True}


def test_fallback_uses_the_reference_and_the_check_still_fails(capsys):
    def stub(v, b):
        raise NotImplementedError

    wrapped = with_fallback("ex-sl-cb", stub)
    v, b = reference_args("ex-sl-cb")
    assert torch.allclose(wrapped(v, b), EXERCISES["ex-sl-cb"].reference(v, b))
    assert "using the reference implementation" in capsys.readouterr().out
    # the check judges the student's code, not the fallback
    assert not run_check("ex-sl-cb", wrapped)[0]


def test_bad_regions_and_ids_raise_clear_errors():
    with pytest.raises(ValueError, match="unknown exercise 'ex-nope'"):
        strip_code_cell(
            "def f():\n    ### BEGIN SOLUTION ex-nope\n    pass\n    ### END SOLUTION"
        )
    with pytest.raises(ValueError, match="never closed"):
        strip_code_cell("def f():\n    ### BEGIN SOLUTION ex-sl-cb\n    pass")
    with pytest.raises(ValueError, match="without a matching BEGIN"):
        strip_code_cell("### END SOLUTION")
    with pytest.raises(ValueError, match="exercise_id must be one of"):
        run_check("ex-nope", lambda: None)
    with pytest.raises(ValueError, match="unknown chapters"):
        make_student_edition(ROOT, Path("/tmp/unused"), ["99_nothing"])


def test_instructor_guide_lists_every_exercise():
    guide = (ROOT / "book" / "instructors.md").read_text()
    labels = set(
        re.findall(
            r":label: (ex-[\w-]+)",
            "\n".join(p.read_text() for p in (ROOT / "notebooks").glob("*.py")),
        )
    )
    missing = [ex for ex in labels | set(EXERCISES) if f"`{ex}`" not in guide]
    assert not missing, f"exercises missing from book/instructors.md: {missing}"


def test_chapter_is_read_from_colab_download_names(tmp_path):
    for name in (
        "Copy of 05_weight_perturbation.ipynb",
        "05_weight_perturbation (1).ipynb",
        "alice-05_weight_perturbation-final.ipynb",
    ):
        assert chapter_of(tmp_path / name) == "05_weight_perturbation"
    with pytest.raises(ValueError, match="cannot tell the chapter of 'homework.ipynb'"):
        chapter_of(tmp_path / "homework.ipynb")


def test_colab_only_lines_are_skipped_and_counted():
    source = (
        "from google.colab import drive\n"
        "drive.mount('/content/drive')\n"
        "!pip install -q trustml_ref\n"
        "%matplotlib inline\n"
        "if True:\n"
        "    !nvidia-smi\n"
        "x = 1  # drive the model\n"
    )
    cleaned, skipped = without_colab_lines(source)
    assert skipped == 5
    assert cleaned.splitlines()[-1] == "x = 1  # drive the model"
    compile(cleaned, "cell", "exec")  # still valid Python, indentation kept


@pytest.mark.notebook
def test_a_colab_download_with_drive_cells_scores_full_marks(tmp_path):
    """Colab names a saved copy 'Copy of ...' and students mount Drive: neither may
    cost marks."""
    nb = nbformat.read(ROOT / "notebooks" / "00_conventions.ipynb", as_version=4)
    nb.cells.insert(
        1,
        nbformat.v4.new_code_cell(
            "from google.colab import drive\ndrive.mount('/content/drive')\n"
            "!ls /content/drive"
        ),
    )
    path = tmp_path / "Copy of 00_conventions.ipynb"
    nbformat.write(nb, path)
    report = grade(path)
    assert report["chapter"] == "00_conventions" and report["skipped_colab_lines"] == 3
    assert report["error"] is None and report["total"] == report["out_of"] == 2, report
