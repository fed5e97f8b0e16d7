"""The colab profile's own code runs: each chapter with colab-only cells is executed at
``PROFILE=colab`` with smoke sizes (``TRUSTML_SIZES=smoke``), offline, the hub ids it
names served from a temporary local hub cache of tiny stand-ins (``tinyhub``).

Chapter 2: Stable Diffusion, safe latent diffusion and the CLIP detector under their
hub ids (Stable Diffusion's text encoder with a context long enough for the chapter's
16 searched tokens).
"""

from __future__ import annotations

import shutil

import pytest
from booktools import ROOT, guard_kernels, run_notebook

pytest.importorskip("diffusers")

from tinyhub import hub_snapshot, save_tiny_clip, save_tiny_stable_diffusion  # noqa: E402

from trustml_ref.ring_a_bell.stable_diffusion import (  # noqa: E402
    CLIP_MODEL,
    SD_MODEL,
    SLD_MODEL,
)

pytestmark = pytest.mark.notebook


@pytest.fixture
def colab_env(tmp_path, monkeypatch):
    """A kernel environment: colab profile at smoke sizes, offline, network guard on,
    a hub cache holding the stand-ins."""
    hub = tmp_path / "hub"
    staged = save_tiny_stable_diffusion(tmp_path / "staged", context=77)  # as CLIP's
    for repo, part in ((SD_MODEL, "sd"), (SLD_MODEL, "sld")):
        shutil.copytree(staged / part, hub_snapshot(hub, repo), dirs_exist_ok=True)
    save_tiny_clip(hub_snapshot(hub, CLIP_MODEL))
    log = guard_kernels(tmp_path, monkeypatch)
    monkeypatch.setenv("TRUSTML_PROFILE", "colab")
    monkeypatch.setenv("TRUSTML_SIZES", "smoke")
    monkeypatch.setenv("HF_HUB_CACHE", str(hub))
    return log


def test_ring_a_bell_runs_its_stable_diffusion_cells(colab_env, tmp_path):
    notebook = ROOT / "notebooks" / "02_ring_a_bell.ipynb"
    executed = run_notebook(notebook, tmp_path, PROFILE="colab")
    printed = "".join(
        out.get("text", "")
        for cell in executed.cells
        if cell.cell_type == "code"
        for out in cell.get("outputs", [])
    )
    assert "profile=colab" in printed and "sizes=smoke" in printed
    # every removal method was attacked with both prompt sets on Stable Diffusion
    for method in ("Stable Diffusion", "negative prompt", "safe latent diffusion"):
        assert f"{method} |" in printed, method
    assert colab_env.read_text() == ""  # nothing tried to reach the network
