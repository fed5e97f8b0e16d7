"""A book build never serves another profile's results (tools/build_book.py)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import nbformat
import pytest
from booktools import ROOT

sys.path.insert(0, str(ROOT / "tools"))
from build_book import prepare_build_dir  # noqa: E402


def test_the_build_folder_is_emptied_only_when_the_profile_changes(tmp_path):
    build = tmp_path / "_build"
    assert not prepare_build_dir(build, "smoke")  # nothing to empty
    (build / "cache").mkdir()
    # same profile: kept
    assert not prepare_build_dir(build, "smoke") and (build / "cache").is_dir()
    # another: emptied
    assert prepare_build_dir(build, "book") and not (build / "cache").exists()
    assert (build / ".profile").read_text() == "book\n"
    (build / ".profile").unlink()
    (build / "cache").mkdir()
    # unknown: emptied
    assert prepare_build_dir(build, "book") and not (build / "cache").exists()


def one_page_book(root: Path, code: str) -> Path:
    """A book of one notebook page with ``code`` in its only code cell; returns the
    page's HTML path."""
    (root / "_config.yml").write_text(
        textwrap.dedent("""\
        title: profile check
        execute:
          execute_notebooks: cache
        only_build_toc_files: true
        sphinx:
          config:
            # as the book's _config.yml: the traceback reaches the build log
            nb_execution_show_tb: true
        """)
    )
    (root / "_toc.yml").write_text("format: jb-book\nroot: page\n")
    nb = nbformat.v4.new_notebook(
        metadata={
            "kernelspec": {
                "name": "python3",
                "display_name": "Python 3",
                "language": "python",
            }
        }
    )
    nb.cells = [
        nbformat.v4.new_markdown_cell("# Page"),
        nbformat.v4.new_code_cell(code),
    ]
    nbformat.write(nb, root / "page.ipynb")
    return root / "_build" / "html" / "page.html"


def build(root: Path, profile: str, *options: str) -> subprocess.CompletedProcess:
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
    }
    return subprocess.run(
        [
            sys.executable,
            str(ROOT / "tools" / "build_book.py"),
            "--profile",
            profile,
            "--root",
            str(root),
            *options,
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )


@pytest.mark.notebook
def test_a_book_build_after_a_smoke_build_re_executes(tmp_path):
    """The failure this guards against: `make book-smoke && make book` served smoke
    pages as the book."""
    page = one_page_book(
        tmp_path, "import os\nprint('profile=' + os.environ['TRUSTML_PROFILE'])"
    )
    for profile in ("smoke", "book"):
        done = build(tmp_path, profile)
        assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
        assert f"profile={profile}" in page.read_text(), (
            f"the {profile} build shows another profile's output"
        )


@pytest.mark.notebook
def test_chapters_run_once_in_parallel_and_the_book_renders_their_results(tmp_path):
    """build_book executes the chapters itself, two at a time; Jupyter Book must find
    each in the cache (a second execution would append a second line)."""
    runs = tmp_path / "runs.txt"
    code = f"open({str(runs)!r}, 'a').write('ran\\n')\nprint('executed once')"
    page = one_page_book(tmp_path, code)
    second = nbformat.read(tmp_path / "page.ipynb", as_version=4)
    second.cells[0].source = "# Second page"
    second.cells[1].source += "\nprint('second page')"
    nbformat.write(second, tmp_path / "second.ipynb")
    (tmp_path / "_toc.yml").write_text(
        "format: jb-book\nroot: page\nchapters:\n  - file: second\n"
    )
    done = build(tmp_path, "smoke", "--jobs", "2")
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert "executing 2 chapters (0 cached), 2 at a time" in done.stdout
    assert runs.read_text() == "ran\nran\n", "a chapter was executed twice"
    assert "executed once" in page.read_text()
    assert "executed once" in page.with_name("second.html").read_text()


@pytest.mark.notebook
def test_a_failing_chapter_stops_the_build_before_rendering(tmp_path):
    page = one_page_book(tmp_path, "raise RuntimeError('broken chapter')")
    done = build(tmp_path, "smoke")
    assert done.returncode != 0
    assert "broken chapter" in done.stdout and "failed chapters: page" in done.stdout
    assert not page.exists()


@pytest.mark.notebook
def test_a_false_claim_fails_the_book_build_and_names_itself(tmp_path):
    one_page_book(
        tmp_path,
        "import trustml_ref\nrun = trustml_ref.setup('book', 0, 'cpu', style=False)\n"
        "trustml_ref.claim('the moon is made of cheese', 1 > 2, craters=3)",
    )
    # recorded, not checked, at the smoke size
    assert build(tmp_path, "smoke").returncode == 0
    done = build(tmp_path, "book")
    assert done.returncode != 0
    assert (
        "ClaimFailed" in done.stdout + done.stderr
        and "the moon is made of cheese" in done.stdout + done.stderr
    )


def test_primers_number_their_exercises_and_equations_within_the_primer():
    sys.path.insert(0, str(ROOT / "book" / "_ext"))
    from primer_numbers import _renumber

    class Env:
        toc_fignumbers = {
            "notebooks/00_conventions": {"exercise": {"a": (1,), "b": (2,)}},
            "notebooks/p1_adversarial_examples": {
                "exercise": {"c": (4,), "d": (3,)},
                "displaymath": {"e": (7,)},
            },
            "notebooks/01_safe_lora": {"exercise": {"f": (1, 1)}},
        }

    assert _renumber(None, Env) == ["notebooks/p1_adversarial_examples"]
    numbers = Env.toc_fignumbers
    # page order kept, numbering from 1 with the primer's label
    assert numbers["notebooks/p1_adversarial_examples"] == {
        "exercise": {"d": ("P1", 1), "c": ("P1", 2)},
        "displaymath": {"e": ("P1", 1)},
    }
    # other pages untouched
    assert numbers["notebooks/00_conventions"]["exercise"] == {"a": (1,), "b": (2,)}
    assert numbers["notebooks/01_safe_lora"]["exercise"] == {"f": (1, 1)}
