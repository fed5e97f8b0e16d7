"""Helpers the tests share: where the book's chapters are and what the book config
says."""

from __future__ import annotations

import os
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from trustml_ref.teaching.colab import toc_documents

ROOT = Path(__file__).resolve().parents[1]
NETGUARD = ROOT / "tests" / "notebooks" / "netguard"


def guarded_kernel_env(
    network_log: Path, cache: Path, python_path: list[Path]
) -> dict[str, str]:
    """Variables for a notebook kernel under test: offline, smoke profile, own cache,
    and the network guard (``netguard/sitecustomize.py``) logging to ``network_log``.
    Callers also drop ``MPLBACKEND`` from the environment, so kernels keep their inline
    backend."""
    return {
        "TRUSTML_NETGUARD_LOG": str(network_log),
        "PYTHONPATH": os.pathsep.join(str(p) for p in [NETGUARD, *python_path]),
        "TRUSTML_PROFILE": "smoke",
        "TRUSTML_CACHE": str(cache),
        "HF_HUB_OFFLINE": "1",
    }


def guard_kernels(tmp_path: Path, monkeypatch) -> Path:
    """Set the environment of the notebook kernels a test starts: offline, smoke
    profile, repository (and any ``PYTHONPATH``) importable, network guard on, inline
    plots; returns the guard's log (empty while nothing tried to connect)."""
    log = tmp_path / "network.log"
    log.touch()
    extra = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    for key, value in guarded_kernel_env(
        log, tmp_path / "cache", [ROOT, *extra]
    ).items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("MPLBACKEND", raising=False)  # kernels keep the inline backend
    return log


TIMEOUT_PER_CELL = 600


def run_notebook(notebook: Path, out_dir: Path, **parameters):
    """Execute ``notebook`` with papermill (in its folder, ``python3`` kernel) into
    ``out_dir``; returns the executed notebook."""
    import papermill

    return papermill.execute_notebook(
        str(notebook),
        str(out_dir / f"executed_{notebook.name}"),
        parameters=parameters,
        kernel_name="python3",
        cwd=str(notebook.parent),
        execution_timeout=TIMEOUT_PER_CELL,
        progress_bar=False,
    )


@cache
def book_config() -> dict[str, Any]:
    return yaml.safe_load((ROOT / "_config.yml").read_text())


@cache
def toc_files() -> tuple[str, ...]:
    """Every document the table of contents lists, without extensions, in order."""
    return tuple(toc_documents(ROOT))


def toc_notebooks() -> list[Path]:
    """The chapter notebooks (``notebooks/*.ipynb``) listed in ``_toc.yml``."""
    return [ROOT / f"{f}.ipynb" for f in toc_files() if f.startswith("notebooks/")]


def colab_url(notebook: Path) -> str:
    """The Colab address of a committed notebook, from the repository named in
    ``_config.yml``."""
    repo = book_config()["repository"]
    slug = repo["url"].removeprefix("https://github.com/")
    return f"https://colab.research.google.com/github/{slug}/blob/{repo['branch']}/{notebook.relative_to(ROOT).as_posix()}"
