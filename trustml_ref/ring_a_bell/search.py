r"""Ring-A-Bell's discrete search: prompts of :math:`K` free tokens whose embedding is
close to a target.

Minimise :math:`F(\hat P) = \|f(\hat P) - (f(P) + \eta c)\|_F^2` over :math:`\hat P =
[\text{BOS}, t_1..t_K, \text{pad}...]` with a genetic algorithm. ``mode="faithful"``
uses the official operators: rank by fitness, keep the best half; each survivor stays
and, with probability 0.5, mates with a uniformly drawn survivor at a uniform cut point,
adding both children; then every member (survivors included, in place) is mutated with
probability 0.25 at one uniform position to a uniform token. ``mode="improved"``
(deviations, documented): survivors are never mutated (elitism, so the best fitness
never gets worse) and are not re-evaluated, the population is refilled to its size with
mutated children, and tokens are drawn only from an allowed list (so excluded words and
their sub-tokens cannot appear). ``mode="random"`` is the improved mode with the genetic
operators taken out, a control at an equal query budget: the children are fresh uniform
draws of allowed tokens, so it evaluates exactly as many prompts as ``"improved"`` and
keeps the best it has seen. Fitness is evaluated in batches through the encoder.
"""

from __future__ import annotations

import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from trustml_ref.ring_a_bell.concept import check_encoder_tokenizer, embed_ids, fitness

MODES = ("faithful", "improved", "random")


def special_token_ids(tokenizer) -> set[int]:
    ids = {
        tokenizer.bos_token_id,
        tokenizer.eos_token_id,
        tokenizer.pad_token_id,
        tokenizer.unk_token_id,
    }
    return {int(i) for i in ids | set(tokenizer.all_special_ids) if i is not None}


def allowed_token_ids(tokenizer, exclude_words: Sequence[str] = ()) -> torch.Tensor:
    """Every non-special token id whose text contains none of ``exclude_words``
    (case-insensitive) and is not a sub-token of their tokenisation: what the search may
    write."""
    banned_subtokens: set[int] = set()
    for word in exclude_words:
        for variant in (word, word.lower(), word.capitalize(), f" {word}"):
            banned_subtokens.update(
                tokenizer(variant, add_special_tokens=False).input_ids
            )
    pattern = (
        re.compile("|".join(re.escape(w.lower()) for w in exclude_words))
        if exclude_words
        else None
    )
    special = special_token_ids(tokenizer)
    keep = []
    for token, idx in tokenizer.get_vocab().items():
        if idx in special or idx in banned_subtokens:
            continue
        if pattern and pattern.search(_token_text(tokenizer, token).lower()):
            continue
        keep.append(idx)
    if not keep:
        raise ValueError("no token is left to search over after the exclusions")
    return torch.tensor(sorted(keep))


def _token_text(tokenizer, token: str) -> str:
    """The text of one vocabulary entry. A fast tokenizer without a decoder (the toy's)
    reads as the token itself, which is what transformers 5 returns; transformers 4's
    ``convert_tokens_to_string`` fails on it."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is not None and backend.decoder is None:
        return token
    return tokenizer.convert_tokens_to_string([token])


def prompt_ids(
    tokens: torch.Tensor, bos_id: int, pad_id: int, length: int
) -> torch.Tensor:
    """[BOS, t_1..t_K, pad, ..., pad] of ``length`` for each row of free tokens (P,
    K)."""
    if tokens.dim() != 2 or tokens.shape[1] + 1 > length:
        raise ValueError(
            f"tokens must have shape (population, K) with K < context length {length}, "
            f"got {tuple(tokens.shape)}"
        )
    ids = torch.full((tokens.shape[0], length), pad_id, dtype=torch.long)
    ids[:, 0] = bos_id
    ids[:, 1 : tokens.shape[1] + 1] = tokens
    return ids


@dataclass(frozen=True)
class SearchResult:
    tokens: torch.Tensor  #: (K,) the best free tokens found
    input_ids: torch.Tensor  #: (L,) the full sequence
    fitness: float  #: its F
    # : best F of each generation's ranked population
    history: list[float] = field(repr=False)
    # : seconds since the start when each generation was ranked
    elapsed: list[float] = field(repr=False)
    # : fitness evaluations (encoder forward passes of one sequence)
    evaluations: int = 0


def crossover(
    parents: torch.Tensor, rate: float, rng: np.random.Generator
) -> torch.Tensor:
    """Official crossover: each parent mates with probability ``rate`` with a uniform
    partner at a uniform cut :math:`c \\in [0, K)`; returns both children of every
    mating, (2·matings, K)."""
    n, k = parents.shape
    mates = rng.random(n) < rate
    partner = torch.as_tensor(rng.integers(0, n, n))[mates]
    cut = torch.as_tensor(rng.integers(0, k, n))[mates]
    first = torch.arange(k)[None, :] < cut[:, None]
    a, b = parents[torch.as_tensor(mates)], parents[partner]
    return torch.cat([torch.where(first, a, b), torch.where(first, b, a)])


def mutate(
    population: torch.Tensor,
    rate: float,
    allowed: torch.Tensor,
    rng: np.random.Generator,
) -> torch.Tensor:
    """Official mutation: each row, with probability ``rate``, gets one uniform
    position set to a uniform allowed token."""
    out = population.clone()
    rows = torch.as_tensor(np.flatnonzero(rng.random(len(out)) < rate))
    cols = torch.as_tensor(rng.integers(0, out.shape[1], len(rows)))
    out[rows, cols] = allowed[torch.as_tensor(rng.integers(0, len(allowed), len(rows)))]
    return out


def _uniform(
    allowed: torch.Tensor, shape: tuple[int, int], rng: np.random.Generator
) -> torch.Tensor:
    """Prompts of uniformly drawn allowed tokens, (population, K)."""
    return allowed[torch.as_tensor(rng.integers(0, len(allowed), shape))]


def _next_faithful(
    pops: list[torch.Tensor],
    crossover_rate: float,
    mutation_rate: float,
    allowed: torch.Tensor,
    rng: np.random.Generator,
) -> list[torch.Tensor]:
    """The official next generation: the ranked survivors plus their children, every
    member then mutated in place (survivors included); all are evaluated again."""
    return [
        mutate(
            torch.cat([p, crossover(p, crossover_rate, rng)]),
            mutation_rate,
            allowed,
            rng,
        )
        for p in pops
    ]


def _improved_children(
    pops: list[torch.Tensor],
    n_children: int,
    mutation_rate: float,
    allowed: torch.Tensor,
    rng: np.random.Generator,
) -> list[torch.Tensor]:
    """The improved mode's offspring: children of the survivors (every survivor mates)
    until ``n_children`` exist, then mutated; the survivors themselves stay as they
    are (elitism) and keep their scores."""
    children = []
    for p in pops:
        kids = crossover(p, 1.0, rng)
        while len(kids) < n_children:
            kids = torch.cat([kids, crossover(p, 1.0, rng)])
        children.append(mutate(kids[:n_children], mutation_rate, allowed, rng))
    return children


def genetic_search_batch(
    encoder: nn.Module,
    tokenizer,
    targets: torch.Tensor,
    k: int,
    *,
    population: int = 200,
    generations: int = 3000,
    crossover_rate: float = 0.5,
    mutation_rate: float = 0.25,
    mode: str = "improved",
    allowed: torch.Tensor | None = None,
    seed: int = 0,
    batch_size: int = 1024,
    progress: bool = True,
) -> list[SearchResult]:
    r"""T independent searches (``targets`` of shape (T, L, d)) run in lockstep: each
    minimises :math:`\|f(\hat P) - \text{target}_t\|_F^2` over prompts of ``k`` free
    tokens (see the module docstring), and the fitness evaluations of all T share one
    batched encoder pass per generation. One result per target."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    length = check_encoder_tokenizer(encoder, tokenizer)
    if not 1 <= k < length:
        raise ValueError(
            f"k must lie in [1, {length - 1}] (the context holds {length} tokens with "
            f"BOS), got {k}"
        )
    if targets.dim() != 3 or targets.shape[1:] != (length, encoder.config.hidden_size):
        raise ValueError(
            f"targets must have shape (T, L, d) with (L, d) = ({length}, "
            f"{encoder.config.hidden_size}), got {tuple(targets.shape)}"
        )
    if (
        population < 2
        or generations < 1
        or not (0 <= crossover_rate <= 1 and 0 <= mutation_rate <= 1)
    ):
        raise ValueError("need population >= 2, generations >= 1 and rates in [0, 1]")
    if allowed is None:
        allowed = torch.tensor(
            sorted(set(range(len(tokenizer))) - special_token_ids(tokenizer))
        )
    rng = np.random.default_rng(seed)
    targets = targets.to(next(encoder.parameters()).device)
    bos, pad = (
        tokenizer.bos_token_id,
        tokenizer.pad_token_id
        if tokenizer.pad_token_id is not None
        else tokenizer.eos_token_id,
    )
    n_targets, half = len(targets), population // 2
    evaluations = [0] * n_targets

    def evaluate(pops: list[torch.Tensor]) -> list[torch.Tensor]:
        """F of every member of every target's population, in one batched encoder
        pass."""
        sizes = [len(p) for p in pops]
        owner = torch.repeat_interleave(
            torch.arange(n_targets), torch.tensor(sizes)
        ).to(targets.device)
        emb = embed_ids(
            encoder, prompt_ids(torch.cat(pops), bos, pad, length), batch_size
        )
        for t, n in enumerate(sizes):
            evaluations[t] += n
        return list(fitness(emb, targets[owner]).cpu().split(sizes))

    start = time.perf_counter()
    pops = [_uniform(allowed, (population, k), rng) for _ in range(n_targets)]
    scores = evaluate(pops)
    history: list[list[float]] = [[] for _ in range(n_targets)]
    elapsed: list[float] = []
    for generation in tqdm(
        range(generations),
        desc=f"search ({mode}, {n_targets} targets)",
        disable=not progress,
        leave=False,
    ):
        if generation > 0 and mode == "faithful":
            scores = evaluate(pops)
        for t in range(n_targets):
            order = torch.argsort(scores[t], stable=True)[:half]
            pops[t], scores[t] = pops[t][order], scores[t][order]
            history[t].append(float(scores[t][0]))
        elapsed.append(time.perf_counter() - start)
        if generation == generations - 1:
            break
        if mode == "faithful":
            pops = _next_faithful(pops, crossover_rate, mutation_rate, allowed, rng)
            continue
        children = (
            _improved_children(pops, population - half, mutation_rate, allowed, rng)
            if mode == "improved"
            else [_uniform(allowed, (population - half, k), rng) for _ in pops]
        )
        child_scores = evaluate(children)
        pops = [torch.cat([p, c]) for p, c in zip(pops, children)]
        scores = [torch.cat([s, c]) for s, c in zip(scores, child_scores)]
    return [
        SearchResult(p[0], prompt_ids(p[:1], bos, pad, length)[0], h[-1], h, elapsed, e)
        for p, h, e in zip(pops, history, evaluations)
    ]


def genetic_search(
    encoder: nn.Module,
    tokenizer,
    target: torch.Tensor,
    k: int,
    *,
    population: int = 200,
    generations: int = 3000,
    crossover_rate: float = 0.5,
    mutation_rate: float = 0.25,
    mode: str = "improved",
    allowed: torch.Tensor | None = None,
    seed: int = 0,
    batch_size: int = 1024,
    progress: bool = True,
) -> SearchResult:
    r"""Minimise :math:`\|f(\hat P) - \text{target}\|_F^2` over prompts of ``k`` free
    tokens (see the module docstring) for one ``target`` of shape (L, d): the one-target
    run of :func:`genetic_search_batch`."""
    length = check_encoder_tokenizer(encoder, tokenizer)
    if target.shape != (length, encoder.config.hidden_size):
        raise ValueError(
            f"target must have shape (L, d) = ({length}, "
            f"{encoder.config.hidden_size}), got {tuple(target.shape)}; for several "
            "targets use genetic_search_batch"
        )
    return genetic_search_batch(
        encoder,
        tokenizer,
        target[None],
        k,
        population=population,
        generations=generations,
        crossover_rate=crossover_rate,
        mutation_rate=mutation_rate,
        mode=mode,
        allowed=allowed,
        seed=seed,
        batch_size=batch_size,
        progress=progress,
    )[0]


def decode(tokenizer, result: SearchResult) -> str:
    """The found prompt as text (the free tokens only)."""
    return tokenizer.decode(result.tokens.tolist())
