"""The implementation exercises of the book: what each asks for, and how it is checked.

Each exercise is one function the chapter implements from scratch inside a solution
region (``### BEGIN SOLUTION <id>`` ... ``### END SOLUTION``); the same function exists
in ``trustml_ref``. A check draws fresh random inputs, calls the student's function and
the reference (adapted to the scratch signature), and compares. The instructor guide
(``book/instructors.md``) lists them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch


@dataclass(frozen=True)
class Exercise:
    id: str
    chapter: str  # notebook stem
    function: str  # the function's name in the chapter
    reference: Callable[..., Any]  # same signature as the scratch function
    inputs: Callable[[torch.Generator], tuple]  # fresh random arguments
    hint: str
    minutes: int


def _delta_inputs(g):
    return (
        0.05 + 3 * float(torch.rand(1, generator=g)),
        0.2 + 3 * float(torch.rand(1, generator=g)),
        0.5 + float(torch.rand(1, generator=g)),
    )


def _sigma_inputs(g):
    return (
        0.05 + 0.9 * float(torch.rand(1, generator=g)),
        10 ** (-1 - 8 * float(torch.rand(1, generator=g))),
        0.5 + float(torch.rand(1, generator=g)),
    )


def _gaussian_delta(eps, sigma, sens=1.0):
    from trustml_ref.privacy import gaussian_delta

    return float(gaussian_delta(eps, sigma, sens))


def _classical_sigma(eps, delta, sens=1.0):
    """The theorem's formula at any eps: the package refuses eps >= 1, and sigma is
    proportional to 1 / eps, so evaluate it at eps = 0.5 and rescale (the chapter plots
    past eps = 1 on purpose)."""
    from trustml_ref.privacy import classical_gaussian_sigma

    return classical_gaussian_sigma(0.5, delta, sens) * 0.5 / eps


def _lora_inputs(g):
    d_out, d_in, r = (int(x) for x in torch.randint(3, 30, (3,), generator=g))
    r = min(r, 6)
    return (
        torch.randn(d_out, d_in, generator=g, dtype=torch.float64),
        torch.randn(r, d_in, generator=g, dtype=torch.float64),
        torch.randn(d_out, r, generator=g, dtype=torch.float64),
    )


def _cb_inputs(g):
    v, _, b = _lora_inputs(g)
    return v, b


def _project_b(v, b):
    from trustml_ref.safe_lora import project_b

    return project_b(v, b)


def _similarity(v, a, b):
    from trustml_ref.safe_lora import projection_similarity

    return projection_similarity(v, a, b)


def _network_inputs(g, joint: bool):
    widths = [
        int(x)
        for x in torch.randint(
            2, 7, (int(torch.randint(2, 5, (1,), generator=g)),), generator=g
        )
    ]
    weights = [
        torch.randn(n_out, n_in, generator=g, dtype=torch.float64)
        for n_in, n_out in zip(widths[:-1], widths[1:])
    ]
    x = (
        torch.randn(widths[0], generator=g, dtype=torch.float64).abs()
        if not joint
        else torch.randn(widths[0], generator=g, dtype=torch.float64)
    )
    eps = [0.1 * float(torch.rand(1, generator=g)) for _ in weights]
    return (
        (weights, x, eps, 0.1 * float(torch.rand(1, generator=g)))
        if joint
        else (weights, x, eps)
    )


def _closed_form(weights, x, eps, eps_x=0.0):
    from trustml_ref.weight_robustness import closed_form_margin_drop

    return closed_form_margin_drop(weights, x[None], eps, eps_x)[0]


def _ibp(weights, x, eps):
    from trustml_ref.weight_robustness import ibp_margin_lower

    return ibp_margin_lower(weights, x[None], eps)[0]


def _heisenberg_inputs(g):
    from trustml_ref.quantum_cert.classifier import QuantumClassifier

    clf = QuantumClassifier(2, 1, 2, generator=g)
    return (
        clf.heisenberg_operators(
            p_global=0.05 + 0.9 * float(torch.rand(1, generator=g)),
            p_local=0.2 * float(torch.rand(1, generator=g)),
        ),
    )


def _kappa(ops):
    from trustml_ref.quantum_cert import kappa_star

    return kappa_star(ops)


def _radius_inputs(g):
    raw = torch.rand(8, 3, generator=g, dtype=torch.float64) + 1e-3
    return raw / raw.sum(1, keepdim=True), 1.5 + 20 * float(torch.rand(1, generator=g))


def _radius(probs, kappa):
    from trustml_ref.quantum_cert import certified_radius

    return certified_radius(probs, kappa)


def _prompt_inputs(g):
    batch, channels = (int(x) for x in torch.randint(1, 4, (2,), generator=g))
    inner = 2 * int(torch.randint(1, 5, (1,), generator=g))
    canvas = inner + 2 * int(torch.randint(1, 4, (1,), generator=g))
    return (
        torch.rand(batch, channels, inner, inner, generator=g, dtype=torch.float64),
        torch.randn(channels, canvas, canvas, generator=g, dtype=torch.float64),
        canvas,
        inner,
    )


def _prompt(x, w, canvas, inner):
    from trustml_ref.visual_prompting import VisualPrompt

    prompt = VisualPrompt(w.shape[0], canvas, inner).to(w.dtype)
    with torch.no_grad():
        prompt.weight.copy_(w)
        return prompt(x)


def _votes_inputs(g):
    classes = int(torch.randint(2, 8, (1,), generator=g))
    return torch.randint(
        0, 60, (6, classes), generator=g
    ).double().numpy(), 2 + 30 * float(torch.rand(1, generator=g))


def _log_q(votes, sigma):
    from trustml_ref.privacy.pate import log_q_gnmax

    return log_q_gnmax(votes, sigma)


def _pairs_inputs(g):
    n, length, dim = (int(x) for x in torch.randint(1, 9, (3,), generator=g))
    return torch.randn(n, length, dim, generator=g, dtype=torch.float64), torch.randn(
        n, length, dim, generator=g, dtype=torch.float64
    )


def _concept(with_states, without_states):
    from trustml_ref.ring_a_bell import concept_direction

    return concept_direction(with_states, without_states)


def _fitness_inputs(g):
    candidates, target = _pairs_inputs(g)
    return candidates, target[0]


def _fitness(candidates, target):
    from trustml_ref.ring_a_bell import fitness

    return fitness(candidates, target)


EXERCISES: dict[str, Exercise] = {
    e.id: e
    for e in [
        Exercise(
            "ex-conventions-delta",
            "00_conventions",
            "delta_scratch",
            _gaussian_delta,
            _delta_inputs,
            "write the closed form with torch.special.ndtr; math.exp(eps) times the "
            "second term",
            10,
        ),
        Exercise(
            "ex-conventions-sigma",
            "00_conventions",
            "sigma_classical_scratch",
            _classical_sigma,
            _sigma_inputs,
            "sens * sqrt(2 ln(1.25 / delta)) / eps",
            5,
        ),
        Exercise(
            "ex-sl-cb",
            "01_safe_lora",
            "cb_scratch",
            _project_b,
            _cb_inputs,
            "V (V^T B) / ||V||_F, never V V^T",
            10,
        ),
        Exercise(
            "ex-sl-similarity",
            "01_safe_lora",
            "similarity_scratch",
            _similarity,
            _lora_inputs,
            "trace formulas with the r x r Gram matrix A A^T",
            20,
        ),
        Exercise(
            "ex-rab-concept",
            "02_ring_a_bell",
            "concept_scratch",
            _concept,
            _pairs_inputs,
            "the mean over the pair axis of the differences; keep the (L, d) shape",
            5,
        ),
        Exercise(
            "ex-rab-fitness",
            "02_ring_a_bell",
            "fitness_scratch",
            _fitness,
            _fitness_inputs,
            "broadcast the (L, d) target against (N, L, d) candidates, square, sum "
            "over the last two axes",
            5,
        ),
        Exercise(
            "ex-vp-prompt",
            "03_visual_prompting_dp",
            "prompt_scratch",
            _prompt,
            _prompt_inputs,
            "F.pad the image by (canvas - inner) // 2 on each side; the mask is ones "
            "with a zero central window",
            10,
        ),
        Exercise(
            "ex-vp-logq",
            "03_visual_prompting_dp",
            "log_q_scratch",
            _log_q,
            _votes_inputs,
            "sum over j != argmax of norm.sf(gap_j, scale=sqrt(2) sigma), capped at 1 "
            "- 1/K, then the log",
            15,
        ),
        Exercise(
            "ex-q-kappa-impl",
            "04_quantum_certified_robustness",
            "kappa_scratch",
            _kappa,
            _heisenberg_inputs,
            "loop over non-empty subsets of outcomes with a bit mask; eigvalsh gives "
            "sorted eigenvalues",
            15,
        ),
        Exercise(
            "ex-q-radius-impl",
            "04_quantum_certified_robustness",
            "radius_scratch",
            _radius,
            _radius_inputs,
            "top-2 probabilities, then (sqrt(ratio) - 1) / (kappa - 1), clipped to [0, "
            "1]",
            10,
        ),
        Exercise(
            "ex-wp-closed-form",
            "05_weight_perturbation",
            "closed_form_drop_scratch",
            _closed_form,
            lambda g: _network_inputs(g, False),
            "update delta with the old S before updating S; fill the diagonal with 0",
            20,
        ),
        Exercise(
            "ex-wp-ibp",
            "05_weight_perturbation",
            "ibp_lower_scratch",
            _ibp,
            lambda g: _network_inputs(g, False),
            "min and max over the four corner products, summed; ReLU both ends; the "
            "last layer bounds W_i - W_j",
            25,
        ),
        Exercise(
            "ex-joint-drop",
            "06_joint_robustness",
            "joint_drop_scratch",
            _closed_form,
            lambda g: _network_inputs(g, True),
            "as the weight chapter's recursion, started from S_0 = ||x||_1 + n_0 eps_x "
            "and delta_0 = eps_x",
            15,
        ),
    ]
}


def for_chapter(chapter: str) -> list[Exercise]:
    return [e for e in EXERCISES.values() if e.chapter == chapter]
