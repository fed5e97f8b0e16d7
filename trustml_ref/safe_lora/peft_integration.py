"""Safe LoRA on PEFT adapters: find the LoRA modules, read base and aligned weights
lazily, project.

The entry point :func:`safe_lora` never mutates its input. It returns a
:class:`SafeLoRAResult` holding the projected adapter's state dict (PEFT's saved-key
format), its config and a per-module report; ``result.save_pretrained(dir)`` writes an
adapter that ``PeftModel.from_pretrained`` loads as usual, and
``result.apply(peft_model)`` returns a projected copy of a (small) model and
``with result.applied(peft_model) as edited:`` lends the model itself, projected, for
the block.
"""

from __future__ import annotations

import contextlib
import copy
import json
import math
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn
from tqdm.auto import tqdm

from trustml_ref.io import checkpoint_files, read_tensor, save_tensors
from trustml_ref.safe_lora.projection import (
    AlignmentSpectrum,
    alignment_matrix,
    alignment_spectrum,
    check_lora_factors,
    check_weights,
    project_b_from_weights,
    projection_cosine,
    random_spectrum_b,
    select_modules,
    top_singular_projector_b,
    update_norm,
)

PROJECTIONS = (
    "paper",
    "rank_k",
    "norm_matched_rescale",
    "zero",
    "random_spectrum",
    "unit_gain",
    "rank_k_complement",
)
"""``paper``: :math:`C = VV^\\top/\\|V\\|_F`; ``rank_k``: :math:`U_kU_k^\\top`.
Controls, applied to the same selected modules: ``norm_matched_rescale`` scales
:math:`B` so :math:`\\|sBA\\|_F` equals the projected update's, direction unchanged;
``zero`` removes the update; ``random_spectrum`` uses :func:`random_spectrum_b`;
``unit_gain`` is :math:`C/\\lambda_1` (:math:`C`'s directions, its largest gain set
to 1: weighting without overall shrinkage); ``rank_k_complement`` is :math:`I -
U_kU_k^\\top` (keeps only what lies outside the top-:math:`k` directions)."""
WeightReader = Callable[[str], torch.Tensor]


@dataclass
class LoraModule:
    """One LoRA-adapted linear module of a PeftModel."""

    name: str  # the module's name inside the PeftModel
    weight_name: str  # the frozen weight's name in the base/aligned checkpoints
    a: torch.Tensor  # (r, d_in)
    b: torch.Tensor  # (d_out, r)
    scaling: float


@dataclass
class ModuleReport:
    name: str
    similarity: float
    projected: bool
    update_norm_before: float
    update_norm_after: float


@dataclass
class SafeLoRAResult:
    """The projected adapter (state dict in PEFT's saved format), its PEFT config and
    the report."""

    state_dict: dict[str, torch.Tensor]
    peft_config: object
    report: list[ModuleReport] = field(default_factory=list)

    @property
    def n_projected(self) -> int:
        return sum(r.projected for r in self.report)

    def save_pretrained(self, directory: str | Path) -> Path:
        """Write ``adapter_model.safetensors`` and ``adapter_config.json`` in PEFT's
        layout."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        self.peft_config.save_pretrained(str(directory))
        save_tensors(self.state_dict, directory / "adapter_model.safetensors")
        (directory / "safe_lora_report.json").write_text(
            json.dumps([r.__dict__ for r in self.report], indent=1)
        )
        return directory

    def apply(self, peft_model: nn.Module) -> nn.Module:
        """A deep copy of ``peft_model`` carrying the projected adapter (the input is
        untouched)."""
        from peft import set_peft_model_state_dict

        projected = copy.deepcopy(peft_model)
        set_peft_model_state_dict(projected, self.state_dict)
        return projected

    @contextlib.contextmanager
    def applied(self, peft_model: nn.Module) -> Iterator[nn.Module]:
        """``peft_model`` itself carrying the projected adapter inside a ``with``
        block, its own adapter weights put back on leaving it (also on an error).

        No copy is made: evaluating hundreds of results of one model costs two
        state-dict loads each instead of a deep copy of the model.
        """
        from peft import get_peft_model_state_dict, set_peft_model_state_dict

        own = {
            k: v.detach().clone()
            for k, v in get_peft_model_state_dict(peft_model).items()
        }
        if own.keys() != self.state_dict.keys():
            raise ValueError(
                "peft_model's adapter does not match this result: "
                f"{len(own.keys() ^ self.state_dict.keys())} state-dict keys differ"
            )
        set_peft_model_state_dict(peft_model, self.state_dict)
        try:
            yield peft_model
        finally:
            set_peft_model_state_dict(peft_model, own)


def lora_modules(peft_model: nn.Module, adapter: str = "default") -> list[LoraModule]:
    """Every LoRA module of ``adapter``, found through PEFT's own ``LoraLayer`` type.

    Rejects what Safe LoRA does not define: DoRA, transposed (``fan_in_fan_out``, GPT-2
    ``Conv1D``) weights, LoRA on non-linear layers (embeddings, convolutions) and LoRA
    biases.
    """
    from peft.tuners.lora import LoraLayer

    found = []
    for name, module in peft_model.named_modules():
        if not isinstance(module, LoraLayer) or adapter not in module.lora_A:
            continue
        if module.use_dora.get(adapter, False):
            raise ValueError(
                f"{name}: DoRA adapters are not defined by Safe LoRA (use_dora=True)"
            )
        if getattr(module, "fan_in_fan_out", False):
            raise ValueError(
                f"{name}: transposed (fan_in_fan_out / Conv1D) weights are not "
                "supported; Safe LoRA needs W as (d_out, d_in)"
            )
        if not isinstance(module.base_layer, nn.Linear):
            raise ValueError(
                f"{name}: LoRA on {type(module.base_layer).__name__} is not supported; "
                "Safe LoRA is defined for linear layers"
            )
        if getattr(module, "lora_bias", {}).get(adapter, False):
            raise ValueError(f"{name}: LoRA biases (lora_bias=True) are not supported")
        weight_name = name.removeprefix("base_model.model.") + ".weight"
        found.append(
            LoraModule(
                name,
                weight_name,
                module.lora_A[adapter].weight.detach(),
                module.lora_B[adapter].weight.detach(),
                float(module.scaling[adapter]),
            )
        )
    if not found:
        raise ValueError(f"the model has no LoRA modules for adapter {adapter!r}")
    return found


def weight_reader(source: nn.Module | str | Path, role: str) -> WeightReader:
    """Look up a frozen weight by name in a model, or lazily (one tensor at a time) in a
    directory of ``.safetensors`` files (single file or sharded with
    ``model.safetensors.index.json``)."""
    if isinstance(source, nn.Module):
        params = dict(source.named_parameters())

        def from_module(name: str) -> torch.Tensor:
            for candidate in (name, name.replace(".weight", ".base_layer.weight")):
                if candidate in params:
                    return params[candidate].detach()
            raise KeyError(f"the {role} model has no weight {name!r}")

        return from_module
    weight_map = checkpoint_files(source, role)

    def from_files(name: str) -> torch.Tensor:
        if name not in weight_map:
            raise KeyError(f"the {role} checkpoint has no weight {name!r}")
        return read_tensor(weight_map[name], name)

    return from_files


def lora_modules_from_dir(
    adapter_dir: str | Path,
) -> tuple[list[LoraModule], object, dict[str, torch.Tensor]]:
    """The LoRA modules of a saved PEFT adapter, read from its files without loading
    any model: ``(modules, LoraConfig, state dict in PEFT's saved format)``.

    The scaling is ``lora_alpha / r`` (``/ sqrt(r)`` with ``use_rslora``). Rejects, as
    :func:`lora_modules` does, DoRA, transposed weights, LoRA biases and non-linear
    LoRA layers, and also per-module rank or alpha patterns (load the adapter as a
    ``PeftModel`` for those).
    """
    from peft import LoraConfig

    directory = Path(adapter_dir)
    if not (directory / "adapter_config.json").is_file():
        raise FileNotFoundError(
            f"adapter_dir {str(directory)!r} has no adapter_config.json (a directory "
            "written by PeftModel.save_pretrained is expected)"
        )
    # the saved options are checked before peft reads them: an older peft refuses a
    # newer one's options (lora_bias) with a TypeError that names none of this
    saved = json.loads((directory / "adapter_config.json").read_text())
    for flag, what in (
        ("use_dora", "DoRA adapters are not defined by Safe LoRA (use_dora=True)"),
        ("fan_in_fan_out", "transposed (fan_in_fan_out / Conv1D) weights"),
        ("lora_bias", "LoRA biases (lora_bias=True) are not supported"),
        ("rank_pattern", "per-module ranks (rank_pattern): pass a PeftModel"),
        ("alpha_pattern", "per-module alphas (alpha_pattern): pass a PeftModel"),
    ):
        if saved.get(flag):
            raise ValueError(f"{directory}: {what}")
    config = LoraConfig.from_pretrained(str(directory))
    files = checkpoint_files(directory, "adapter")
    state = {k: read_tensor(f, k) for k, f in files.items()}
    other = [k for k in state if not k.endswith((".lora_A.weight", ".lora_B.weight"))]
    if other:
        raise ValueError(
            f"{directory}: tensors that are not LoRA A/B weights of linear layers "
            f"(embedding or bias LoRA is not supported): {other[:3]}"
        )
    found = []
    for key in sorted(k for k in state if k.endswith(".lora_A.weight")):
        name = key.removesuffix(".lora_A.weight")
        if f"{name}.lora_B.weight" not in state:
            raise ValueError(f"{directory}: {name} has lora_A but no lora_B")
        a, b = state[key], state[f"{name}.lora_B.weight"]
        rank = a.shape[0]
        found.append(
            LoraModule(
                name,
                name.removeprefix("base_model.model.") + ".weight",
                a,
                b,
                config.lora_alpha / (rank**0.5 if config.use_rslora else rank),
            )
        )
    if not found:
        raise ValueError(f"{directory}: the adapter has no LoRA modules")
    return found, config, state


def module_spectra(
    base: nn.Module | str | Path,
    aligned: nn.Module | str | Path,
    suffixes: tuple[str, ...] = ("q_proj.weight", "v_proj.weight"),
    progress: bool = False,
) -> dict[str, AlignmentSpectrum]:
    """:func:`~trustml_ref.safe_lora.projection.alignment_spectrum` of every weight of
    ``aligned`` whose name ends in one of ``suffixes``, by weight name; models or
    checkpoint directories, read one tensor at a time. No adapter is needed."""
    if isinstance(aligned, nn.Module):
        names = [n for n, _ in aligned.named_parameters()]
    else:
        names = sorted(checkpoint_files(aligned, "aligned"))
    names = [n for n in names if n.endswith(suffixes)]
    if not names:
        raise ValueError(f"the aligned weights have no name ending in {suffixes}")
    read_base, read_aligned = (
        weight_reader(base, "base"),
        weight_reader(aligned, "aligned"),
    )
    out = {}
    for name in tqdm(names, desc="spectra", disable=not progress, leave=False):
        out[name] = alignment_spectrum(
            alignment_matrix(read_base(name), read_aligned(name), name)
        )
    return out


def _replacement_b(
    projection: str,
    weights: tuple[torch.Tensor, torch.Tensor],
    m: LoraModule,
    cb: torch.Tensor,
    rank_k: int | None,
    generator: torch.Generator | None,
) -> torch.Tensor:
    if projection == "paper":
        return cb
    if projection == "norm_matched_rescale":
        return m.b * (update_norm(m.a, cb) / update_norm(m.a, m.b))
    if projection == "zero":
        return torch.zeros_like(m.b)
    v = alignment_matrix(*weights, m.name)  # the SVD-based variants need V itself
    if projection == "rank_k":
        return top_singular_projector_b(v, m.b, rank_k)
    if projection == "rank_k_complement":
        return m.b - top_singular_projector_b(v, m.b, rank_k)
    if projection == "unit_gain":
        return cb / alignment_spectrum(v).lambda_1
    return random_spectrum_b(v, m.b, generator)


def safe_lora(
    peft_model: nn.Module | str | Path,
    base: nn.Module | str | Path,
    aligned: nn.Module | str | Path,
    *,
    mode: str = "threshold",
    threshold: float = 0.5,
    num_layers: int = 10,
    projection: str = "paper",
    rank_k: int | None = None,
    adapter: str = "default",
    generator: torch.Generator | None = None,
    modules: Collection[str] | None = None,
    gain: float = 1.0,
    progress: bool = False,
) -> SafeLoRAResult:
    """Project the LoRA updates of the selected modules onto the alignment subspace.

    ``peft_model`` is a ``PeftModel`` or an adapter directory (then its files are read
    directly, :func:`lora_modules_from_dir`; no model is loaded). ``base`` and
    ``aligned`` are models or checkpoint directories, read one tensor at a time, and
    :math:`CB` comes from the two weights in two blocked passes
    (:func:`~trustml_ref.safe_lora.projection.project_b_from_weights`), so no
    :math:`d_{out}\\times d_{in}` difference is held beside them. ``projection`` is one
    of :data:`PROJECTIONS` (``rank_k`` needs ``rank_k``; ``random_spectrum`` draws
    from ``generator``). ``progress`` shows a bar over the modules. Selection as in
    :func:`~trustml_ref.safe_lora.projection.select_modules`; similarities always use
    :math:`C`, so every projection and control changes the same modules. ``modules``
    (names as in the report) overrides the selection: exactly those modules are
    changed, a control for the selection rule at an equal number of modules; the
    report still gives every similarity. ``gain`` multiplies every replacement
    (``gain=a`` with the paper's projection edits by :math:`aC`, a control for the
    scale of :math:`C`).
    """
    from peft import get_peft_model_state_dict

    if projection not in PROJECTIONS:
        raise ValueError(f"projection must be one of {PROJECTIONS}, got {projection!r}")
    if projection in ("rank_k", "rank_k_complement") and rank_k is None:
        raise ValueError(
            f"projection={projection!r} needs rank_k, the number of top singular "
            "directions"
        )
    if not math.isfinite(gain):
        raise ValueError(f"gain must be a finite number, got {gain}")
    if isinstance(peft_model, nn.Module):
        adapted = lora_modules(peft_model, adapter)
        config = copy.deepcopy(peft_model.peft_config[adapter])
        state = {
            k: v.detach().clone()
            for k, v in get_peft_model_state_dict(
                peft_model, adapter_name=adapter
            ).items()
        }
    else:
        adapted, config, state = lora_modules_from_dir(peft_model)
    read_base, read_aligned = (
        weight_reader(base, "base"),
        weight_reader(aligned, "aligned"),
    )
    sims, projected_b = [], []
    for m in tqdm(adapted, desc="Safe LoRA", disable=not progress, leave=False):
        weights = read_base(m.weight_name), read_aligned(m.weight_name)
        check_weights(*weights, m.name)
        check_lora_factors(weights[0], m.a, m.b, m.name)
        cb = project_b_from_weights(*weights, m.b, name=m.name)
        sims.append(projection_cosine(cb, m.a, m.b))
        projected_b.append(
            _replacement_b(projection, weights, m, cb, rank_k, generator)
        )
    if modules is None:
        chosen = select_modules(torch.tensor(sims), mode, threshold, num_layers)
    else:
        names, wanted = [m.name for m in adapted], set(modules)
        unknown = sorted(wanted - set(names))
        if unknown:
            raise ValueError(
                f"modules names no LoRA module of the model: {unknown}; its modules "
                f"are {names}"
            )
        chosen = torch.tensor([n in wanted for n in names])
    report = []
    for m, s, new_b, pick in zip(adapted, sims, projected_b, chosen.tolist()):
        key = f"{m.name}.lora_B.weight"
        if key not in state:
            raise KeyError(f"PEFT's state dict has no entry {key!r}")
        if pick:
            state[key] = (gain * new_b).to(state[key].dtype)
        report.append(
            ModuleReport(
                m.name,
                s,
                bool(pick),
                update_norm(m.a, m.b, m.scaling),
                update_norm(m.a, state[key], m.scaling),
            )
        )
    return SafeLoRAResult(state, config, report)
