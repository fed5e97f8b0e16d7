"""Helpers the tests share: where the book's chapters are and what the book config
says."""

from __future__ import annotations

import os
from functools import cache
from pathlib import Path
from typing import Any

import yaml

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


@cache
def book_config() -> dict[str, Any]:
    return yaml.safe_load((ROOT / "_config.yml").read_text())


def _toc_files(node: Any) -> list[str]:
    if isinstance(node, dict):
        found = [node["file"]] if "file" in node else []
        for key in ("root", "parts", "chapters", "sections"):
            if key == "root" and key in node:
                found.append(node["root"])
            elif key in node:
                found += _toc_files(node[key])
        return found
    if isinstance(node, list):
        return [f for item in node for f in _toc_files(item)]
    return []


@cache
def toc_files() -> tuple[str, ...]:
    """Every document the table of contents lists, without extensions, in order."""
    return tuple(_toc_files(yaml.safe_load((ROOT / "_toc.yml").read_text())))


def toc_notebooks() -> list[Path]:
    """The chapter notebooks (``notebooks/*.ipynb``) listed in ``_toc.yml``."""
    return [ROOT / f"{f}.ipynb" for f in toc_files() if f.startswith("notebooks/")]


def colab_url(notebook: Path) -> str:
    """The Colab address of a committed notebook, from the repository named in
    ``_config.yml``."""
    repo = book_config()["repository"]
    slug = repo["url"].removeprefix("https://github.com/")
    return f"https://colab.research.google.com/github/{slug}/blob/{repo['branch']}/{notebook.relative_to(ROOT).as_posix()}"
