"""Certified robustness of quantum classifiers through quantum noise (Huang et al.,
ICASSP 2023)."""

from trustml_ref.quantum_cert.attacks import feature_flip_radius, mixing_attack_radius
from trustml_ref.quantum_cert.certify import (
    amplitude_input_radius,
    certified_radius,
    shot_certified_radius,
    shot_class_bounds,
    shot_trace_distance_radius,
    trace_distance_contraction,
    trace_distance_radius,
)
from trustml_ref.quantum_cert.channels import (
    PAULIS,
    apply_kraus,
    born_probabilities,
    check_density_matrix,
    depolarize,
    depolarize_qubit_adjoint,
    pennylane_depolarizing_parameter,
    rotation,
    rotation_noise_kraus,
    rotation_noise_replacement,
)
from trustml_ref.quantum_cert.dp import (
    depolarizing_epsilon,
    depolarizing_kappa,
    epsilon_from_kappa,
    kappa_star,
)

__all__ = [
    "PAULIS",
    "amplitude_input_radius",
    "apply_kraus",
    "born_probabilities",
    "certified_radius",
    "check_density_matrix",
    "depolarize",
    "depolarize_qubit_adjoint",
    "feature_flip_radius",
    "mixing_attack_radius",
    "depolarizing_epsilon",
    "depolarizing_kappa",
    "epsilon_from_kappa",
    "kappa_star",
    "pennylane_depolarizing_parameter",
    "rotation",
    "rotation_noise_kraus",
    "rotation_noise_replacement",
    "shot_certified_radius",
    "shot_class_bounds",
    "shot_trace_distance_radius",
    "trace_distance_contraction",
    "trace_distance_radius",
]
