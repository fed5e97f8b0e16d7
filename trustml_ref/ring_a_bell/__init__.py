"""Ring-A-Bell (Tsai et al., ICLR 2024): concept extraction and discrete prompt search
against concept removal."""

from trustml_ref.ring_a_bell.concept import (
    concept_direction,
    concept_vector,
    embed_ids,
    fitness,
    matched_concept_pairs,
    target_embedding,
    text_embedding,
)
from trustml_ref.ring_a_bell.evaluate import (
    attack_success_rate,
    prompt_success,
    union_success_rate,
)
from trustml_ref.ring_a_bell.search import (
    SearchResult,
    allowed_token_ids,
    crossover,
    decode,
    genetic_search,
    genetic_search_batch,
    mutate,
    prompt_ids,
)

__all__ = [
    "SearchResult",
    "allowed_token_ids",
    "attack_success_rate",
    "concept_direction",
    "concept_vector",
    "crossover",
    "decode",
    "embed_ids",
    "fitness",
    "genetic_search",
    "genetic_search_batch",
    "matched_concept_pairs",
    "mutate",
    "prompt_ids",
    "prompt_success",
    "target_embedding",
    "text_embedding",
    "union_success_rate",
]
