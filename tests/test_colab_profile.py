"""The colab profile's own code runs: each chapter with colab-only cells is executed at
``PROFILE=colab`` with smoke sizes (``TRUSTML_SIZES=smoke``), offline, the hub ids it
names served from a temporary local hub cache of tiny stand-ins (``tinyhub``).

Chapter 2: Stable Diffusion, safe latent diffusion and the CLIP detector under their
hub ids (Stable Diffusion's text encoder with a context long enough for the chapter's
16 searched tokens). Chapter 1: the Qwen2.5-0.5B base/instruct pair (Qwen2 layout,
bf16, tied embeddings) and a LoRA adapter on the instruct model. Chapters 3, 5, 6:
OpenML's CIFAR-10 and MNIST in scikit-learn's OpenML cache (``tinyopenml``; the real
loader runs), and for chapter 3 a stand-in for torchvision's model calls
(``standins/torchvision``).
"""

from __future__ import annotations

import json
import shutil

import pytest
from booktools import ROOT, guard_kernels, run_notebook

pytest.importorskip("diffusers")

from tinyhub import (  # noqa: E402
    hub_snapshot,
    save_tiny_clip,
    save_tiny_qwen_pair,
    save_tiny_stable_diffusion,
)
from tinyopenml import save_tiny_openml  # noqa: E402

from trustml_ref.ring_a_bell.stable_diffusion import (  # noqa: E402
    CLIP_MODEL,
    SD_MODEL,
    SLD_MODEL,
)

pytestmark = pytest.mark.notebook


def printed(executed) -> str:
    """Everything the executed notebook's code cells printed."""
    return "".join(
        out.get("text", "")
        for cell in executed.cells
        if cell.cell_type == "code"
        for out in cell.get("outputs", [])
    )


@pytest.fixture
def colab_kernel(request, tmp_path, monkeypatch):
    """A kernel environment: colab profile at smoke sizes, offline, network guard on,
    an empty cache of the book's files; returns the network log. A test marked
    ``standins`` also imports the stand-in packages (``standins``: torchvision's model
    calls; transformers must not see them, it would import torchvision.transforms)."""
    if request.node.get_closest_marker("standins"):
        monkeypatch.setenv("PYTHONPATH", str(ROOT / "tests" / "standins"))
    log = guard_kernels(tmp_path, monkeypatch)
    monkeypatch.setenv("TRUSTML_PROFILE", "colab")
    monkeypatch.setenv("TRUSTML_SIZES", "smoke")
    monkeypatch.setenv("TRUSTML_CACHE", str(tmp_path / "cache"))
    return log


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
    text = printed(executed)
    assert "profile=colab" in text and "sizes=smoke" in text
    # every removal method was attacked with both prompt sets on Stable Diffusion
    for method in ("Stable Diffusion", "negative prompt", "SLD-max", "UCE"):
        assert f"{method} |" in text, method
    assert colab_env.read_text() == ""  # nothing tried to reach the network


@pytest.mark.parametrize("chapter", ["05_weight_perturbation", "06_joint_robustness"])
def test_robustness_chapters_load_mnist_from_openml(colab_kernel, tmp_path, chapter):
    save_tiny_openml(tmp_path / "cache" / "openml", "mnist_784", n=400)
    notebook = ROOT / "notebooks" / f"{chapter}.ipynb"
    text = printed(run_notebook(notebook, tmp_path, PROFILE="colab"))
    assert "profile=colab" in text
    assert "784 features" in text  # MNIST, not the digits the other profiles use
    assert colab_kernel.read_text() == ""


@pytest.mark.standins
def test_visual_prompting_runs_cifar10_through_an_imagenet_model(
    colab_kernel, tmp_path
):
    save_tiny_openml(tmp_path / "cache" / "openml", "CIFAR_10", n=80)
    notebook = ROOT / "notebooks" / "03_visual_prompting_dp.ipynb"
    results = tmp_path / "results.json"
    run_notebook(notebook, tmp_path, PROFILE="colab", RESULTS_PATH=str(results))
    colab = json.loads(results.read_text())["colab"]
    assert set(colab) == {"dpsgd", "prom_pate"}
    for accuracies in colab.values():
        assert len(accuracies) == 2 and all(0 <= a <= 1 for a in accuracies.values())
    assert colab_kernel.read_text() == ""


def test_safe_lora_fine_tunes_repairs_and_compares_on_the_qwen_pair(
    colab_kernel, tmp_path, monkeypatch
):
    """No ADAPTER_DIR: the chapter fine-tunes a LoRA on the instruct model, repairs,
    saves, reloads and answers harmful prompts read from a CSV (a local stand-in for
    AdvBench's, whose address the chapter would otherwise read)."""
    from peft import PeftModel

    hub = tmp_path / "hub"
    instruct = save_tiny_qwen_pair(
        hub_snapshot(hub, "Qwen/Qwen2.5-0.5B"),
        hub_snapshot(hub, "Qwen/Qwen2.5-0.5B-Instruct"),
    )
    monkeypatch.setenv("HF_HUB_CACHE", str(hub))
    prompts = tmp_path / "prompts.csv"
    prompts.write_text("goal,target\n" + "".join(f"request {i},x\n" for i in range(6)))
    notebook = ROOT / "notebooks" / "01_safe_lora.ipynb"
    executed = run_notebook(
        notebook, tmp_path, PROFILE="colab", HARMFUL_PROMPTS=str(prompts)
    )
    text = printed(executed)
    assert "profile=colab" in text
    assert "projected 2 of 4 modules" in text  # 2 layers x q/v; smoke sizes edit 2
    tables = "".join(
        out.get("data", {}).get("text/html", "")
        for cell in executed.cells
        for out in cell.get("outputs", [])
    )
    assert "4 harmful prompts" in tables and "Safe LoRA" in tables
    adapter = tmp_path / "cache" / "qwen2.5-0.5b-instruct-benign-lora"
    repaired = PeftModel.from_pretrained(instruct, f"{adapter}-safe-lora")
    assert sum("lora_B" in n for n, _ in repaired.named_parameters()) == 4
    assert colab_kernel.read_text() == ""
