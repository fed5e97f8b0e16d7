"""Robustness of ReLU networks to weight perturbations (Tsai et al., NeurIPS 2021) and
to joint input-weight perturbations (Tsai et al., ICASSP 2021): certificates, attacks,
bounds, training."""

from trustml_ref.weight_robustness.attacks import (
    AttackResult,
    pgd_attack,
    random_weight_noise,
    strong_attack,
)
from trustml_ref.weight_robustness.bounds import (
    CERTIFICATES,
    certified_accuracy,
    certified_margins,
    closed_form_margin_drop,
    ibp_bounds,
    ibp_margin_lower,
    is_active,
    layer_norms,
    layer_radii,
    pair_radius,
    per_layer_epsilons,
    relative_radii,
    robust_cross_entropy,
    tightened_margin_drop,
)
from trustml_ref.weight_robustness.network import (
    BiasFreeMLP,
    apply_weight,
    class_margins,
    mlp_forward,
    weights_of,
    worst_margin,
)

__all__ = [
    "CERTIFICATES",
    "AttackResult",
    "BiasFreeMLP",
    "apply_weight",
    "certified_accuracy",
    "certified_margins",
    "class_margins",
    "closed_form_margin_drop",
    "ibp_bounds",
    "ibp_margin_lower",
    "is_active",
    "layer_norms",
    "layer_radii",
    "mlp_forward",
    "pair_radius",
    "per_layer_epsilons",
    "pgd_attack",
    "random_weight_noise",
    "relative_radii",
    "robust_cross_entropy",
    "strong_attack",
    "tightened_margin_drop",
    "weights_of",
    "worst_margin",
]
