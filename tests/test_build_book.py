"""A book build never serves another profile's results (tools/build_book.py)."""
from __future__ import annotations

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
    assert not prepare_build_dir(build, "smoke") and (build / "cache").is_dir()  # same profile: kept
    assert prepare_build_dir(build, "book") and not (build / "cache").exists()  # another: emptied
    assert (build / ".profile").read_text() == "book\n"
    (build / ".profile").unlink()
    (build / "cache").mkdir()
    assert prepare_build_dir(build, "book") and not (build / "cache").exists()  # unknown: emptied


@pytest.mark.notebook
def test_a_book_build_after_a_smoke_build_re_executes(tmp_path):
    """The failure this guards against: `make book-smoke && make book` served smoke pages as the book."""
    (tmp_path / "_config.yml").write_text(textwrap.dedent("""\
        title: profile check
        execute:
          execute_notebooks: cache
        only_build_toc_files: true
        """))
    (tmp_path / "_toc.yml").write_text("format: jb-book\nroot: page\n")
    nb = nbformat.v4.new_notebook(metadata={"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}})
    nb.cells = [nbformat.v4.new_markdown_cell("# Page"),
                nbformat.v4.new_code_cell("import os\nprint('profile=' + os.environ['TRUSTML_PROFILE'])")]
    nbformat.write(nb, tmp_path / "page.ipynb")
    page = tmp_path / "_build" / "html" / "page.html"
    for profile in ("smoke", "book"):
        done = subprocess.run([sys.executable, str(ROOT / "tools" / "build_book.py"), "--profile", profile, "--root", str(tmp_path)],
                              capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
        assert f"profile={profile}" in page.read_text(), f"the {profile} build shows another profile's output"
