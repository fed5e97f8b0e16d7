r"""Concept extraction in text-embedding space (Ring-A-Bell, Tsai et al., ICLR 2024).

The embedding of a prompt is the text encoder's whole last hidden state over the padded
context, :math:`f(P) \in \mathbb R^{L\times d}` (for CLIP, 77×768: no pooling, no
normalisation). From :math:`N` pairs of prompts that differ only in the concept,

.. math:: c = \frac1N\sum_{i=1}^N \big(f(P_i^+) - f(P_i^-)\big),

and the attack's target for a prompt :math:`P` is :math:`f(P) + \eta\,c`.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn


def check_encoder_tokenizer(encoder: nn.Module, tokenizer) -> int:
    """The context length :math:`L`; raises if the tokenizer and the encoder do not fit
    together."""
    vocab = len(tokenizer)
    emb = encoder.get_input_embeddings().num_embeddings
    if vocab > emb:
        raise ValueError(
            f"tokenizer has {vocab} tokens but the encoder embeds only {emb}: "
            "mismatched encoder/tokenizer"
        )
    length = int(tokenizer.model_max_length)
    positions = getattr(encoder.config, "max_position_embeddings", length)
    if length > positions:
        raise ValueError(
            f"tokenizer.model_max_length={length} exceeds the encoder's {positions} "
            "positions"
        )
    return length


def encode(encoder: nn.Module, tokenizer, prompts: Sequence[str]) -> torch.Tensor:
    r""":math:`f(P)` with gradients (for training): the last hidden state over the
    context padded to ``model_max_length``, (N, L, d)."""
    length = check_encoder_tokenizer(encoder, tokenizer)
    ids = tokenizer(
        list(prompts),
        padding="max_length",
        max_length=length,
        truncation=True,
        return_tensors="pt",
    ).input_ids
    return encoder(
        input_ids=ids.to(next(encoder.parameters()).device)
    ).last_hidden_state


@torch.no_grad()
def text_embedding(
    encoder: nn.Module, tokenizer, prompts: Sequence[str], batch_size: int = 64
) -> torch.Tensor:
    r""":math:`f(P)` for each prompt, without gradients and in batches
    (:func:`encode`), (N, L, d)."""
    if isinstance(prompts, str) or len(prompts) == 0:
        raise ValueError("prompts must be a non-empty list of strings")
    return torch.cat(
        [
            encode(encoder, tokenizer, prompts[start : start + batch_size])
            for start in range(0, len(prompts), batch_size)
        ]
    )


@torch.no_grad()
def embed_ids(
    encoder: nn.Module, input_ids: torch.Tensor, batch_size: int = 256
) -> torch.Tensor:
    r""":math:`f` of already tokenised sequences (N, L), in batches."""
    device = next(encoder.parameters()).device
    return torch.cat(
        [
            encoder(input_ids=b.to(device)).last_hidden_state
            for b in input_ids.split(batch_size)
        ]
    )


def concept_direction(
    with_states: torch.Tensor, without_states: torch.Tensor
) -> torch.Tensor:
    r""":math:`c = \frac1N\sum_i f(P_i^+) - f(P_i^-)` from the paired embeddings, both
    (N, L, d); returns (L, d)."""
    if (
        with_states.dim() != 3
        or with_states.shape != without_states.shape
        or len(with_states) == 0
    ):
        raise ValueError(
            "with_states and without_states must be non-empty (N, L, d) tensors of "
            "one shape, got "
            f"{tuple(with_states.shape)} and {tuple(without_states.shape)}"
        )
    return (with_states - without_states).mean(0)


def concept_vector(
    encoder: nn.Module,
    tokenizer,
    with_concept: Sequence[str],
    without_concept: Sequence[str],
) -> torch.Tensor:
    r""":func:`concept_direction` of the embeddings of paired prompt lists of equal
    length, shape (L, d)."""
    if len(with_concept) == 0 or len(with_concept) != len(without_concept):
        raise ValueError(
            "with_concept and without_concept must be non-empty pairs of equal "
            "length, got "
            f"{len(with_concept)} and {len(without_concept)}"
        )
    return concept_direction(
        text_embedding(encoder, tokenizer, with_concept),
        text_embedding(encoder, tokenizer, without_concept),
    )


def matched_concept_pairs(
    tokenizer,
    templates: Sequence[str],
    concept: str,
    neutral_words: Sequence[str],
) -> tuple[list[str], list[str]]:
    """Prompt pairs for :func:`concept_vector` that differ only in the concept and
    have the same number of tokens: each template (one ``{}``) filled with ``concept``
    and with a word of ``neutral_words`` (taken in turn from the template's index on)
    that gives the prompt as many tokens. Equal lengths keep every other token at the
    same position, so the per-position difference of the two embeddings is the
    concept's alone."""
    if not templates or any(t.count("{}") != 1 for t in templates):
        raise ValueError(
            "templates must be a non-empty list of prompts with exactly one '{}' "
            "where the concept goes"
        )
    words = [w for w in neutral_words if w.strip() and w != concept]
    if not words:
        raise ValueError("neutral_words must hold a non-empty word other than concept")

    def n_tokens(text: str) -> int:
        return len(tokenizer(text, truncation=False)["input_ids"])

    with_concept, without_concept = [], []
    for i, template in enumerate(templates):
        filled = template.format(concept)
        length = n_tokens(filled)
        turn = [words[(i + j) % len(words)] for j in range(len(words))]
        word = next((w for w in turn if n_tokens(template.format(w)) == length), None)
        if word is None:
            raise ValueError(
                f"no word of neutral_words gives {template!r} the {length} tokens "
                f"that {concept!r} gives it"
            )
        with_concept.append(filled)
        without_concept.append(template.format(word))
    return with_concept, without_concept


def target_embedding(
    embedding: torch.Tensor, concept: torch.Tensor, eta: float
) -> torch.Tensor:
    r""":math:`f(P) + \eta c`, broadcast over a leading batch dimension."""
    if embedding.shape[-2:] != concept.shape:
        raise ValueError(
            f"embedding (..., L, d) {tuple(embedding.shape)} does not match concept "
            f"{tuple(concept.shape)}"
        )
    return embedding + eta * concept


def fitness(candidates: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    r"""The search objective :math:`F(\hat P) = \|f(\hat P) - \text{target}\|_F^2` of
    each candidate embedding (N, L, d) against one target (L, d) or one target per
    candidate (N, L, d); returns (N,), computed in float32 at least (a half-precision
    encoder's 77 x 768 squared differences overflow float16 to ``inf``)."""
    if (
        candidates.dim() != 3
        or target.shape[-2:] != candidates.shape[-2:]
        or target.dim() not in (2, 3)
    ):
        raise ValueError(
            f"candidates must be (N, L, d) and target (L, d) or (N, L, d), got "
            f"{tuple(candidates.shape)} and {tuple(target.shape)}"
        )
    dtype = torch.promote_types(
        torch.promote_types(candidates.dtype, target.dtype), torch.float32
    )
    return ((candidates.to(dtype) - target.to(dtype)) ** 2).sum((1, 2))
