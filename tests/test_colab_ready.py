"""Colab readiness: every chapter's install cell works where only torch (and Jupyter)
is preinstalled.

A fresh virtual environment gets torch, ipykernel and papermill, as Colab has. For each
chapter a copy of it installs the package the way the chapter's first cell does, with
the repository URL replaced by this checkout, and then runs the chapter in the smoke
profile, offline and with the network guard. A chapter whose extra misses a dependency
fails here.
"""

from __future__ import annotations

import importlib.metadata
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from booktools import ROOT, book_config, guarded_kernel_env, toc_notebooks

SPEC = re.compile(r'"(trustml_ref(?:\[[\w,]+\])?) @ git\+(\S+?)@(\w+)"')


@pytest.fixture(scope="module")
def colab_like(tmp_path_factory) -> Path:
    """A virtual environment with only torch, ipykernel and papermill (Colab's
    preinstalled set, minimally)."""
    env = tmp_path_factory.mktemp("colab") / "base"
    subprocess.run([sys.executable, "-m", "venv", str(env)], check=True)
    torch_pin = f"torch=={importlib.metadata.version('torch').split('+')[0]}"
    subprocess.run(
        [
            str(env / "bin" / "python"),
            "-m",
            "pip",
            "install",
            "-q",
            torch_pin,
            "ipykernel",
            "papermill",
        ],
        check=True,
    )
    return env


def install_spec(notebook: Path) -> str:
    install = next(
        c for c in nbformat.read(notebook, as_version=4).cells if c.cell_type == "code"
    )
    match = SPEC.search(install.source)
    assert match, (
        f"{notebook.name}: no 'trustml_ref[...] @ git+URL@BRANCH' spec in the install "
        "cell"
    )
    repo = book_config()["repository"]
    assert (match[2], match[3]) == (repo["url"], repo["branch"]), (
        "the install cell installs another repository or branch"
    )
    return match[1].replace("trustml_ref", str(ROOT), 1)


@pytest.mark.notebook
@pytest.mark.parametrize("notebook", toc_notebooks(), ids=lambda p: p.stem)
def test_chapter_installs_and_runs_like_on_colab(
    notebook: Path, colab_like: Path, tmp_path: Path
) -> None:
    env = tmp_path / "env"
    shutil.copytree(colab_like, env, symlinks=True)
    python = str(env / "bin" / "python")
    torch_version = subprocess.run(
        [python, "-c", "import torch; print(torch.__version__)"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    # What the install cell does on Colab, with this checkout instead of the repository
    # URL.
    subprocess.run(
        [
            python,
            "-m",
            "pip",
            "install",
            "-q",
            install_spec(notebook),
            f"torch=={torch_version}",
        ],
        check=True,
    )
    after = subprocess.run(
        [python, "-c", "import torch; print(torch.__version__)"],
        capture_output=True,
        text=True,
    ).stdout.strip()
    assert after == torch_version, "installing the chapter reinstalled torch"
    log = tmp_path / "network.log"
    log.touch()
    environment = {
        k: v
        for k, v in os.environ.items()
        if k not in ("MPLBACKEND", "PYTHONPATH", "VIRTUAL_ENV")
    }
    environment.update(
        guarded_kernel_env(log, tmp_path / "cache", []),
        PATH=f"{env / 'bin'}:{os.environ['PATH']}",
    )
    result = subprocess.run(
        [
            python,
            "-m",
            "papermill",
            str(notebook),
            str(tmp_path / "out.ipynb"),
            "-k",
            "python3",
            "-p",
            "PROFILE",
            "smoke",
            "--cwd",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        env=environment,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert log.read_text() == ""
