"""Visual prompting on a frozen source model under differential privacy: DP-SGD and
PATE (Li et al., ICCV 2023). ``fit``, ``predict`` and ``accuracy`` are the shared ones
of :mod:`trustml_ref.training`, re-exported for the chapter."""

from trustml_ref.training import accuracy, fit, predict
from trustml_ref.visual_prompting.prompt import (
    PromptedClassifier,
    VisualPrompt,
    border_mask,
    place_on_canvas,
    prompt_grad_sample,
)
from trustml_ref.visual_prompting.training import (
    DPSGDResult,
    Teachers,
    hash_partition,
    opacus_grad_samples,
    train_dpsgd,
    train_teachers,
    vote_counts,
    vote_histogram,
)

__all__ = [
    "DPSGDResult",
    "PromptedClassifier",
    "Teachers",
    "VisualPrompt",
    "accuracy",
    "border_mask",
    "opacus_grad_samples",
    "fit",
    "hash_partition",
    "place_on_canvas",
    "predict",
    "prompt_grad_sample",
    "train_dpsgd",
    "train_teachers",
    "vote_counts",
    "vote_histogram",
]
