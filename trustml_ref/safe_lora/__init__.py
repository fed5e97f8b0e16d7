"""Safe LoRA (Hsu et al., NeurIPS 2024): project LoRA updates onto the alignment
subspace."""

from trustml_ref.safe_lora.peft_integration import (
    PROJECTIONS,
    LoraModule,
    ModuleReport,
    SafeLoRAResult,
    lora_modules,
    lora_modules_from_dir,
    module_spectra,
    safe_lora,
    weight_reader,
)
from trustml_ref.safe_lora.projection import (
    AlignmentSpectrum,
    alignment_matrix,
    alignment_spectrum,
    check_lora_factors,
    check_weights,
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
    "AlignmentSpectrum",
    "alignment_matrix",
    "alignment_spectrum",
    "check_lora_factors",
    "check_weights",
    "lora_modules",
    "lora_modules_from_dir",
    "module_spectra",
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
