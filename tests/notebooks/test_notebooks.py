"""Integration tests: every chapter in the table of contents runs end to end (smoke
profile).

Each chapter runs with papermill in a fresh kernel with the repository importable,
``HF_HUB_OFFLINE=1`` and a network guard (``netguard/sitecustomize.py``) that refuses
and records any connection to a non-loopback address.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import nbformat
import papermill
import pytest
from booktools import guard_kernels, run_notebook, toc_notebooks


@pytest.fixture
def guarded_env(tmp_path, monkeypatch) -> Path:
    """Environment for a kernel: offline, smoke profile, repository on the path,
    network guard on."""
    return guard_kernels(tmp_path, monkeypatch)


GLUE_ROLE = re.compile(r"\{glue(?::\w*)?\}`([^`:]+)")


def glued_names(executed: nbformat.NotebookNode) -> set[str]:
    """The names a run glued (myst-nb's scrapbook metadata on display outputs)."""
    return {
        out["metadata"]["scrapbook"]["name"]
        for cell in executed.cells
        for out in cell.get("outputs", [])
        if "scrapbook" in out.get("metadata", {})
    }


def results_of(notebook: Path, tmp_path: Path) -> tuple[dict, nbformat.NotebookNode]:
    """Run a chapter in the smoke profile; return the results it recorded and the
    executed notebook."""
    results = tmp_path / "results.json"
    executed = run_notebook(
        notebook, tmp_path, PROFILE="smoke", RESULTS_PATH=str(results)
    )
    return json.loads(results.read_text()), executed


def check_conventions(results: dict) -> None:
    # The numerical check agreed with the closed form, and the measured effects are
    # real.
    assert results["max_abs_z"] < 5
    assert results["classical_over_analytic_at_half"] > 1.0
    assert (
        results["first_violation_eps"] is not None
        and results["first_violation_eps"] > 1.0
    )


def check_weight_perturbation(results: dict) -> None:
    curves = results["curves"]
    for closed, tight, ibp, attacked in zip(
        curves["closed_form"], curves["tightened"], curves["ibp"], curves["attack"]
    ):
        assert (
            closed <= tight <= ibp <= attacked
        )  # never certify more than an attack leaves standing
    assert (
        results["motivation_attack"][-1] < results["motivation_random"][-1] - 0.3
    )  # adversarial >> random
    assert results["layer_gaps"][1:] == [0.0, 0.0]  # IBP is exact for the last two
    losses = results["losses"]
    assert losses["certified"]["certified"] > losses["standard"]["certified"] + 0.1


def check_joint_robustness(results: dict) -> None:
    assert (
        results["ce_bound_min_slack"] >= 0
    )  # the cross-entropy bound held under joint PGD
    certified = results["certified_joint"]
    assert (
        certified["regularised"] == max(certified.values()) > 0
    )  # only the certified loss certifies
    strong = results["weight_verdict_rows"][-1]  # eps_x = 0.3, on both-correct points
    assert strong["input radius"] == 0.3
    assert (
        strong["absolute: input-adv - standard"] < 0
    )  # strong input training: weights more fragile


def check_quantum(results: dict) -> None:
    assert (
        results["rotation_noise_error"] < 1e-12
    )  # Kraus channel == PennyLane's DepolarizingChannel(3p/4)
    assert (
        abs(results["kappa_check"] - 9.0) < 1e-9
    )  # Heisenberg operators reproduce the closed form at p = 0.2
    assert results["worst_log_ratio"] <= results["epsilon_check"]
    assert (
        min(results["attack_over_certificate"].values()) >= 1.0
    )  # no attack inside either certificate
    assert (
        max(results["dp_over_tv_median"].values()) <= 1.0
    )  # DP never certifies more than the trace distance
    half = [
        results["dp_half_radius"][p]
        for p in sorted(results["dp_half_radius"], key=float)
    ]
    assert half == sorted(half)  # more global noise, larger DP radii
    for row in results[
        "local_noise"
    ]:  # every local noise level was certified and attacked
        assert (
            0 < row["contraction c"] <= 1
            and row["kappa*"] >= 1
            and 0 <= row["accuracy"] <= 1
        )
    n = results["n_test"]
    assert all(k <= max(3, 0.1 * n) for k in results["shot_exceeds_exact"].values())


def check_safe_lora(results: dict) -> None:
    stages = results["stage_scores"]
    assert (
        stages["base"]["refusal_harmful"]
        < 0.2
        < 0.8
        < stages["aligned"]["refusal_harmful"]
    )  # alignment worked
    for lora in ("LoRA (a) harmful", "LoRA (b) mixed"):
        assert (
            stages[lora]["refusal_harmful"] < stages["aligned"]["refusal_harmful"] - 0.5
        )  # the LoRA broke refusal
    assert (
        max(results["dense_check"].values()) < 1e-9
    )  # the r x r formulas equal the dense ones


def check_adversarial_primer(results: dict) -> None:
    assert results["brute_force_error"] < 1e-12
    curves = results["curves"]
    assert (
        curves["standard, PGD"][-1] < curves["standard, random noise"][-1] - 0.5
    )  # worst case >> average case
    assert (
        curves["adversarially trained, PGD"][1] > curves["standard, PGD"][1]
    )  # training on PGD helps at 0.1


def check_dp_primer(results: dict) -> None:
    assert (
        abs(results["recovered"] - 0.93) < 1e-9
    )  # the difference attack on exact means
    curves = results["curves"]
    for basic, rdp, exact in zip(
        curves["basic composition"], curves["RDP"], curves["exact"]
    ):
        assert (
            exact <= rdp + 1e-9 and exact <= basic + 1e-9
        )  # both are valid upper bounds
    assert (
        curves["RDP"][-1] < curves["basic composition"][-1] / 10
    )  # and RDP is far tighter after many steps
    assert results["spent_over_target"] <= 1 + 1e-9


def check_lora_primer(results: dict) -> None:
    assert results["merge_gap"] < 1e-4  # merging the update changes nothing
    ranks = sorted(results["by_rank"], key=int)
    assert [results["params"][r] for r in ranks] == sorted(
        results["params"][r] for r in ranks
    )
    assert (
        results["by_rank"][ranks[-1]] > results["head"]
    )  # the low-rank update adds to the head alone


def check_visual_prompting(results: dict) -> None:
    assert (
        results["grad_gap"] < 1e-5
    )  # the per-example gradient formula matches autograd
    assert (
        results["dpsgd_spent_over_target"] <= 1 + 1e-9
    )  # Opacus never overspends the budget
    assert (
        results["guard_fired"]
        and results["bn_coupling"]["train"] > 0 == results["bn_coupling"]["eval"]
    )
    conf = results["confident"]
    assert conf["eps_dependent"] <= conf["eps_independent"]
    for dep, ind in zip(results["scale"]["dependent"], results["scale"]["independent"]):
        assert dep <= ind
    assert results["scale"]["independent"] == sorted(
        results["scale"]["independent"], reverse=True
    )  # ~ 1/k^2
    for run in results["pate"].values():
        for student in run["students"]:
            assert (
                student["eps_data_dependent"] <= student["eps"] + 1e-9
            )  # calibrated data-independently
    # soundness of the released cost's sensitivity bound, by brute force
    assert all(f["realised"] == 0 for f in results["sensitivity_failures"].values())
    if results["sanitized"] is not None:
        assert (
            results["sanitized"]["eps_upper"]
            > results["sanitized"]["rdp"] + results["sanitized"]["rdp_release"]
        )
    # the DP-SGD motivation: privacy costs the scratch network accuracy
    assert results["motivation"]["dpsgd"] < results["motivation"]["nonprivate"]


def check_certified_primer(results: dict) -> None:
    assert (
        results["unsound"] == 0 and min(results["slack"].values()) >= -1e-5
    )  # no point of a ball beats a certificate
    assert (
        results["linear"]["tight_error"] < 1e-9
        and results["linear"]["dp_share_at_top"] < 1
    )  # DP route below the tight radius
    assert (
        results["band"]["IBP-trained"] < results["band"]["PGD-trained"]
    )  # certified training narrows the band (said in the text)
    for curves in results["smoothing"].values():
        assert all(dp <= tight for dp, tight in zip(curves["DP"], curves["tight"]))


def check_quantum_primer(results: dict) -> None:
    assert (
        max(results["checks"].values()) < 1e-12 and results["global_law_gap"] < 1e-9
    )  # channels and eq. (p6-contract)
    assert (
        results["worst_measurement_excess"] <= 1e-12
        and results["contraction_excess"] <= 1e-12
    )  # Helstrom, data processing
    assert results["readout_excess"] <= 1e-9 and results["pennylane_mixed_gap"] < 1e-6
    for ratio, p in zip(results["local_max_ratio"], results["noise_levels"]):
        assert (
            ratio <= 1 - p + 1e-9
            # noise on every qubit hides at least as much as global noise (said in the
            # text)
        )


def check_diffusion_primer(results: dict) -> None:
    assert (
        results["inversion_gap"] < 1e-4
    )  # DDIM with the true noise inverts the forward process
    free, clipped = results["named_rate"]["unclipped"], results["named_rate"]["clipped"]
    # guidance keeps the named colour without clipping; clipping x0-hat breaks it at
    # w = 3 (said in the text)
    assert min(free.values()) > 0.8 and clipped["3.0"] < clipped["1.0"] - 0.3


def check_ring_a_bell(results: dict) -> None:
    assert (
        results["detector_agreement"] == 1.0 and results["c_row_norms"][0] < 1e-5
    )  # c_0 = 0 (causal encoder)
    assert (
        results["histories_monotone"] and results["leaked"] == []
    )  # improved mode; no banned token
    assert (
        results["removal_check"]["ESD"] < results["removal_check"]["no removal"]
    )  # ESD removes red (partly in smoke)
    assert all(0 <= v <= 1 for v in results["asr"].values())


# What each chapter's recorded results must show; every chapter has an entry.
CHECKS = {
    "00_conventions": check_conventions,
    "p1_adversarial_examples": check_adversarial_primer,
    "p2_differential_privacy": check_dp_primer,
    "p3_lora": check_lora_primer,
    "p4_diffusion": check_diffusion_primer,
    "p5_certified_robustness": check_certified_primer,
    "p6_quantum_noise": check_quantum_primer,
    "01_safe_lora": check_safe_lora,
    "02_ring_a_bell": check_ring_a_bell,
    "03_visual_prompting_dp": check_visual_prompting,
    "04_quantum_certified_robustness": check_quantum,
    "05_weight_perturbation": check_weight_perturbation,
    "06_joint_robustness": check_joint_robustness,
}


@pytest.mark.notebook
@pytest.mark.parametrize("notebook", toc_notebooks(), ids=lambda p: p.stem)
def test_chapter_runs_offline_in_smoke_profile(
    notebook: Path, tmp_path: Path, guarded_env: Path
) -> None:
    results, executed = results_of(notebook, tmp_path)
    assert results["profile"] == "smoke"
    figures = sum(
        "image/png" in out.get("data", {})
        for cell in executed.cells
        for out in cell.get("outputs", [])
    )
    assert figures >= 1, (
        f"{notebook.name} showed no figure (is MPLBACKEND overriding the inline "
        "backend?)"
    )
    assert guarded_env.read_text() == "", (
        f"{notebook.name} tried to use the network:\n{guarded_env.read_text()}"
    )
    # Conclusions are claims; in smoke they are recorded, not checked (the book build
    # checks them).
    assert results["claims"], (
        f"{notebook.name} recorded no claims before record_results"
    )
    assert not any(c["checked"] for c in results["claims"])
    text = "\n".join(c.source for c in executed.cells if c.cell_type == "markdown")
    missing = set(GLUE_ROLE.findall(text)) - glued_names(executed)
    assert not missing, (
        f"{notebook.name} quotes glued names its run never glued: {sorted(missing)}"
    )
    CHECKS[notebook.stem](results)


def test_every_chapter_has_result_checks() -> None:
    assert sorted(CHECKS) == sorted(nb.stem for nb in toc_notebooks()), (
        "a chapter without checks, or checks without a chapter"
    )


def one_cell_notebook(source: str, path: Path) -> Path:
    nb = nbformat.v4.new_notebook(
        metadata={
            "kernelspec": {
                "name": "python3",
                "display_name": "Python 3",
                "language": "python",
            }
        }
    )
    nb.cells = [nbformat.v4.new_code_cell(source)]
    nbformat.write(nb, path)
    return path


@pytest.mark.notebook
def test_network_guard_refuses_and_records(tmp_path: Path, guarded_env: Path) -> None:
    """The guard must catch a connection even when the notebook swallows the error."""
    source = (
        "import socket\n"
        "try:\n"
        "    socket.create_connection(('192.0.2.1', 80), timeout=1)\n"
        "except OSError as err:\n"
        "    print('refused:', err)\n"
        "s = socket.socket(); s.bind(('127.0.0.1', 0)); s.close()  # loopback stays "
        "allowed"
    )
    out = run_notebook(
        one_cell_notebook(source, tmp_path / "tries_network.ipynb"), tmp_path
    )
    assert "refused: network access is blocked" in out.cells[0].outputs[0]["text"]
    assert "192.0.2.1" in guarded_env.read_text()


@pytest.mark.notebook
def test_broken_cell_fails_the_run(tmp_path: Path, guarded_env: Path) -> None:
    path = one_cell_notebook(
        "raise RuntimeError('deliberately broken')", tmp_path / "broken.ipynb"
    )
    with pytest.raises(papermill.PapermillExecutionError, match="deliberately broken"):
        run_notebook(path, tmp_path)
