"""Safe LoRA (Hsu et al., NeurIPS 2024): project LoRA updates onto the alignment subspace."""
from trustml_ref.safe_lora.peft_integration import (
    LoraModule,
    ModuleReport,
    SafeLoRAResult,
    lora_modules,
    safe_lora,
    weight_reader,
)
from trustml_ref.safe_lora.projection import (
    alignment_matrix,
    project_b,
    projection_similarity,
    select_modules,
    top_singular_projector_b,
    update_norm,
)

__all__ = [
    "LoraModule", "ModuleReport", "SafeLoRAResult", "alignment_matrix", "lora_modules", "project_b",
    "projection_similarity", "safe_lora", "select_modules", "top_singular_projector_b", "update_norm", "weight_reader",
]
