"""Safe LoRA (Hsu et al., NeurIPS 2024): project LoRA updates onto the alignment
subspace."""

from trustml_ref.safe_lora.peft_integration import (
    PROJECTIONS,
    LoraModule,
    ModuleReport,
    SafeLoRAResult,
    lora_modules,
    safe_lora,
    weight_reader,
)
from trustml_ref.safe_lora.projection import (
    alignment_matrix,
    check_lora_factors,
    project_b,
    project_b_from_weights,
    projection_cosine,
    projection_similarity,
    random_spectrum_b,
    select_modules,
    top_singular_projector_b,
    update_norm,
)

__all__ = [
    "PROJECTIONS",
    "LoraModule",
    "ModuleReport",
    "SafeLoRAResult",
    "alignment_matrix",
    "check_lora_factors",
    "lora_modules",
    "project_b",
    "project_b_from_weights",
    "projection_cosine",
    "projection_similarity",
    "random_spectrum_b",
    "safe_lora",
    "select_modules",
    "top_singular_projector_b",
    "update_norm",
    "weight_reader",
]
