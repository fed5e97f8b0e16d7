"""Ring-A-Bell's genetic search: a straightforward loop with the official operators
against ours.

The baseline keeps the population as a Python list of (1, L) id tensors, ranks it by
fitness evaluated in one batch per generation (as the official notebook does after
batching its fitness), and applies the official crossover and in-place mutation one
individual at a time. Ours is
``trustml_ref.ring_a_bell.genetic_search(mode="improved")``: vectorised operators,
elitism and no re-evaluation of survivors. Same encoder, target, population, seed and
generation budget; the script prints evaluations per second and the time each needs to
reach the baseline's final best fitness, as ratios from this run. Run: ``python
benchmarks/ring_a_bell_search.py [--generations 300]``.
"""

from __future__ import annotations

import argparse
import random
import time

import numpy as np
import torch

from trustml_ref.ring_a_bell import (
    concept_vector,
    embed_ids,
    genetic_search,
    target_embedding,
    text_embedding,
)
from trustml_ref.ring_a_bell.pipeline import ToyPipeline
from trustml_ref.ring_a_bell.search import special_token_ids


def baseline(encoder, tokenizer, target, k, population, generations, seed):
    random.seed(seed)
    np.random.seed(seed)
    length = tokenizer.model_max_length
    allowed = sorted(set(range(len(tokenizer))) - special_token_ids(tokenizer))
    bos, pad = tokenizer.bos_token_id, tokenizer.pad_token_id

    def individual():
        ids = torch.full((1, length), pad, dtype=torch.long)
        ids[0, 0] = bos
        ids[0, 1 : k + 1] = torch.tensor([random.choice(allowed) for _ in range(k)])
        return ids

    pop, best, times, evaluations, start = (
        [individual() for _ in range(population)],
        [],
        [],
        0,
        time.perf_counter(),
    )
    for generation in range(generations):
        emb = embed_ids(encoder, torch.cat(pop))
        evaluations += len(pop)
        score = ((emb - target) ** 2).sum((1, 2)).tolist()
        order = np.argsort(score, kind="stable")
        pop = [pop[i] for i in order][: population // 2]
        best.append(score[order[0]])
        times.append(time.perf_counter() - start)
        if generation == generations - 1:
            break
        children = []
        for i in range(len(pop)):
            children.append(pop[i])
            if random.random() < 0.5:
                j, cut = np.random.randint(0, len(pop)), np.random.randint(1, k + 1)
                children.append(torch.cat((pop[i][:, :cut], pop[j][:, cut:]), 1))
                children.append(torch.cat((pop[j][:, :cut], pop[i][:, cut:]), 1))
        for member in children:
            if random.random() < 0.25:
                member[0, np.random.randint(1, k + 1)] = random.choice(allowed)
        pop = children
    return best, times, evaluations


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--generations", type=int, default=300)
    parser.add_argument("--population", type=int, default=200)
    parser.add_argument("--k", type=int, default=8)
    args = parser.parse_args()
    torch.set_num_threads(1)
    pipe = ToyPipeline.from_pretrained()
    enc, tok = pipe.text_encoder, pipe.tokenizer
    c = concept_vector(
        enc,
        tok,
        ["a big red circle on the left", "a small red square on the top"],
        ["a big blue circle on the left", "a small blue square on the top"],
    )
    target = target_embedding(
        text_embedding(enc, tok, ["a big circle on the left"])[0], c, 3.0
    )
    base_best, base_times, base_evals = baseline(
        enc, tok, target, args.k, args.population, args.generations, 0
    )
    ours = genetic_search(
        enc,
        tok,
        target,
        args.k,
        population=args.population,
        generations=args.generations,
        mode="improved",
        seed=0,
        progress=False,
    )
    goal = base_best[-1]
    reach = next((t for f, t in zip(ours.history, ours.elapsed) if f <= goal), None)
    print(
        f"baseline: {args.generations} generations in {base_times[-1]:.2f} s, "
        f"{base_evals / base_times[-1]:.0f} "
        f"evaluations/s, best fitness {goal:.3f}"
    )
    print(
        f"ours:     {args.generations} generations in {ours.elapsed[-1]:.2f} s, "
        f"{ours.evaluations / ours.elapsed[-1]:.0f} "
        f"evaluations/s, best fitness {ours.fitness:.3f}"
    )
    if reach is None:
        print(
            "ours never reached the baseline's final fitness within the same "
            "generations"
        )
        return 1
    print(
        f"time to the baseline's final fitness: baseline {base_times[-1]:.2f} s, ours "
        f"{reach:.2f} s -> "
        f"{base_times[-1] / reach:.1f}x faster (target >= 5x)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
