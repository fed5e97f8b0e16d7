"""Certified margin bounds for every class pair of a test set: vectorised against a
per-pair loop.

The baseline computes, for each test input and each class pair (i, j), the closed-form
drop and the IBP lower bound one pair at a time, as a direct transcription of the
recursion would. Ours (``trustml_ref.weight_robustness``) batches inputs and pairs. Both
run here, on the same trained network and inputs; the script checks the numbers agree
and prints time ratios from this run.

auto_LiRPA's weight-perturbation IBP is not compared: its PyPI release needs an older
torch than the one pinned here.

Run: ``python benchmarks/weight_bounds.py [--n-test 100] [--repeats 3]``.
"""

from __future__ import annotations

import argparse
import time

import torch

from trustml_ref.data import digits
from trustml_ref.weight_robustness import closed_form_margin_drop, ibp_margin_lower
from trustml_ref.weight_robustness.training import cross_entropy_loss, train


def closed_form_pair(weights, x, eps, i, j) -> float:
    s, delta = float(x.abs().sum()), 0.0
    for w, e in zip(weights[:-1], eps[:-1]):
        gamma, beta = float(w.abs().sum(0).max()), float(w.abs().sum(1).max())
        delta, s = beta * delta + e * s, (gamma + w.shape[0] * e) * s
    return (
        float((weights[-1][i] - weights[-1][j]).abs().sum()) * delta + 2 * eps[-1] * s
    )


def ibp_pair(weights, x, eps, i, j) -> float:
    l, u = x.clone(), x.clone()
    for w, e in zip(weights[:-1], eps[:-1]):
        lo, hi = torch.zeros(w.shape[0]), torch.zeros(w.shape[0])
        for r in range(w.shape[0]):
            corners = torch.stack(
                [(w[r] - e) * l, (w[r] - e) * u, (w[r] + e) * l, (w[r] + e) * u]
            )
            lo[r], hi[r] = corners.min(0).values.sum(), corners.max(0).values.sum()
        l, u = lo.relu(), hi.relu()
    d = weights[-1][i] - weights[-1][j]
    e = eps[-1]
    return float(
        torch.stack(
            [(d - 2 * e) * l, (d - 2 * e) * u, (d + 2 * e) * l, (d + 2 * e) * u]
        )
        .min(0)
        .values.sum()
    )


def best_time(fn, repeats: int) -> tuple[float, object]:
    times, out = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - start)
    return min(times), out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-test", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(1)
    data = digits()
    model = train(
        (64, 32, 32, 10),
        data.x_train,
        data.y_train,
        cross_entropy_loss(),
        epochs=10,
        generator=torch.Generator().manual_seed(0),
        progress_bar=False,
    )
    weights = [w.detach() for w in model.weights]
    x = data.x_test[: args.n_test]
    eps = [0.002, 0.002, 0.002]
    k = weights[-1].shape[0]
    pairs = [(i, j) for i in range(k) for j in range(k) if i != j]
    print(
        f"{len(x)} inputs x {len(pairs)} class pairs = {len(x) * len(pairs)} certified "
        "margins per method"
    )
    for name, ours, loop in [
        (
            "closed form",
            lambda: closed_form_margin_drop(weights, x, eps),
            closed_form_pair,
        ),
        ("IBP", lambda: ibp_margin_lower(weights, x, eps), ibp_pair),
    ]:
        t_ours, batched = best_time(ours, args.repeats)
        loop_repeats = 1 if name == "IBP" else args.repeats
        t_loop, looped = best_time(
            lambda: torch.tensor(
                [[loop(weights, xb, eps, i, j) for i, j in pairs] for xb in x]
            ),
            loop_repeats,
        )
        flat = batched[:, [i for i, _ in pairs], [j for _, j in pairs]]
        max_diff = float((flat - looped).abs().max())
        assert max_diff <= 1e-4 * float(looped.abs().max()), (
            f"{name}: results differ by {max_diff}"
        )
        print(
            f"{name:12s} per-pair loop {t_loop:8.3f} s   vectorised {t_ours:8.4f} s   "
            f"speed-up x{t_loop / t_ours:,.0f}   max |difference| {max_diff:.1e}"
        )


if __name__ == "__main__":
    main()
