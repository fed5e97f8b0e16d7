"""Colab readiness: every chapter's install cell works where only torch (and Jupyter)
is preinstalled.

A fresh virtual environment gets torch, ipykernel and papermill, as Colab has. For each
install spec (the package with one extra) a copy of it installs the package the way the
chapters' first cell does, with the repository URL replaced by this checkout; each
chapter then runs in its spec's environment in the smoke profile, offline and with the
network guard. A chapter whose extra misses a dependency
fails here.
"""

from __future__ import annotations

import fcntl
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

# the Colab-like environments are module fixtures: under pytest-xdist every test of this
# file runs on one worker, so each environment is installed once
pytestmark = pytest.mark.xdist_group("colab_ready")

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


@pytest.fixture(scope="module")
def installed() -> dict[str, Path]:
    """One environment per install spec, filled on first use: chapters with the same
    extra install the same thing, so they share it (the chapters' own install cells
    run on Colab only, so a chapter's run does not change its environment)."""
    return {}


def environment_for(spec: str, colab_like: Path, installed: dict, tmp_path_factory):
    if spec in installed:
        return installed[spec]
    env = tmp_path_factory.mktemp("installed") / "env"
    shutil.copytree(colab_like, env, symlinks=True)
    python = str(env / "bin" / "python")

    def torch_version() -> str:
        return subprocess.run(
            [python, "-c", "import torch; print(torch.__version__)"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()

    before = torch_version()
    # What the install cell does on Colab, with this checkout instead of the repository
    # URL. pip builds the checkout's wheel in its shared build/ directory: one install
    # at a time across the test workers (two at once fail on each other's files).
    with open(tmp_path_factory.getbasetemp().parent / "install.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        subprocess.run(
            [python, "-m", "pip", "install", "-q", spec, f"torch=={before}"],
            check=True,
        )
    assert torch_version() == before, "installing the chapter reinstalled torch"
    installed[spec] = env
    return env


@pytest.mark.notebook
@pytest.mark.parametrize("notebook", toc_notebooks(), ids=lambda p: p.stem)
def test_chapter_installs_and_runs_like_on_colab(
    notebook: Path, colab_like: Path, installed: dict, tmp_path_factory, tmp_path: Path
) -> None:
    env = environment_for(
        install_spec(notebook), colab_like, installed, tmp_path_factory
    )
    python = str(env / "bin" / "python")
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
