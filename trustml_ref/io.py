"""Offline-safe loading (safetensors only, never pickles) and result recording."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".pkl", ".pickle", ".ckpt")


def _checked_safetensors_path(path: str | Path) -> Path:
    path = Path(path)
    if path.suffix in PICKLE_SUFFIXES:
        raise ValueError(
            f"path {str(path)!r} is a pickled checkpoint; trustml_ref loads only "
            ".safetensors files "
            "(pickles can run code when loaded)"
        )
    if path.suffix != ".safetensors":
        raise ValueError(f"path must end in .safetensors, got {str(path)!r}")
    if not path.is_file():
        raise FileNotFoundError(f"no safetensors file at {str(path)!r}")
    return path


def save_tensors(
    tensors: Mapping[str, torch.Tensor],
    path: str | Path,
    metadata: Mapping[str, str] | None = None,
) -> Path:
    """Save named tensors to a ``.safetensors`` file (contiguous CPU copies), creating
    parent folders."""
    path = Path(path)
    if path.suffix != ".safetensors":
        raise ValueError(f"path must end in .safetensors, got {str(path)!r}")
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(
        {k: v.detach().cpu().contiguous() for k, v in tensors.items()},
        str(path),
        metadata=dict(metadata or {}),
    )
    return path


def load_tensors(path: str | Path, device: str = "cpu") -> dict[str, torch.Tensor]:
    """Load every tensor of a ``.safetensors`` file onto ``device``."""
    return load_file(str(_checked_safetensors_path(path)), device=device)


def iter_tensors(
    path: str | Path, names: list[str] | None = None
) -> Iterator[tuple[str, torch.Tensor]]:
    """Yield ``(name, tensor)`` one at a time, reading each lazily from disk.

    Only one tensor is in memory at a time, so two large checkpoints can be compared
    module by module. ``names`` restricts and orders the output; a missing name raises.
    """
    with safe_open(str(_checked_safetensors_path(path)), framework="pt") as handle:
        available = set(handle.keys())
        wanted = sorted(available) if names is None else list(names)
        missing = [n for n in wanted if n not in available]
        if missing:
            raise KeyError(
                f"names not in {str(path)!r}: "
                f"{missing[:5]}{' ...' if len(missing) > 5 else ''}"
            )
        for name in wanted:
            yield name, handle.get_tensor(name)


def read_tensor(path: str | Path, name: str) -> torch.Tensor:
    """One tensor of a ``.safetensors`` file, read lazily (the others stay on disk); a
    missing name raises ``KeyError``."""
    return next(iter_tensors(path, [name]))[1]


def checkpoint_files(
    directory: str | Path, role: str = "checkpoint"
) -> dict[str, Path]:
    """Which file of a checkpoint directory holds each tensor: the shards listed by
    ``model.safetensors.index.json``, or else every ``.safetensors`` file in it.
    ``role`` names the checkpoint in errors; pickled checkpoints are never read."""
    directory = Path(directory)
    if not directory.is_dir():
        raise FileNotFoundError(
            f"the {role} checkpoint {str(directory)!r} is not a directory"
        )
    index = directory / "model.safetensors.index.json"
    if index.is_file():
        return {
            k: directory / v
            for k, v in json.loads(index.read_text())["weight_map"].items()
        }
    files = sorted(directory.glob("*.safetensors"))
    if not files:
        raise FileNotFoundError(
            f"no .safetensors files in the {role} checkpoint {str(directory)!r} "
            "(pickled checkpoints are not read)"
        )
    where: dict[str, Path] = {}
    for f in files:
        with safe_open(str(f), framework="pt") as handle:
            where.update({k: f for k in handle.keys()})
    return where


def load_state_dict(
    module: torch.nn.Module, path: str | Path, *, strict: bool = True
) -> torch.nn.Module:
    """Load a ``.safetensors`` state dict into ``module`` (on the module's device) and
    return it."""
    device = next((p.device for p in module.parameters()), torch.device("cpu"))
    module.load_state_dict(load_tensors(path, device=str(device)), strict=strict)
    return module


def jsonable(value: Any, key: str) -> Any:
    """``value`` as JSON-ready Python (tensors and arrays become lists); non-finite
    numbers raise."""
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu().numpy()
    if isinstance(value, np.ndarray):
        return (
            [jsonable(v, key) for v in value.tolist()]
            if value.ndim
            else jsonable(value.item(), key)
        )
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"result {key!r} is {value}; recorded results must be finite")
    if isinstance(value, Mapping):
        return {str(k): jsonable(v, f"{key}.{k}") for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v, key) for v in value]
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise TypeError(
        f"result {key!r} has type {type(value).__name__}, which cannot be recorded as "
        "JSON"
    )


def record_results(path: str | Path | None, **results: Any) -> dict[str, Any]:
    """Write a chapter's key results as JSON to ``path`` (if given) and return them
    JSON-ready.

    Tests pass ``RESULTS_PATH`` to a notebook through papermill and assert on this file.
    Tensors and arrays become lists; NaN or infinite values raise, so a broken run
    cannot record a silent NaN. The claims the chapter has made so far
    (:mod:`trustml_ref.claims`) are written beside the results, under ``claims``.
    """
    from trustml_ref.claims import recorded_claims

    if "claims" in results:
        raise ValueError(
            "'claims' is written by record_results itself; use another result name"
        )
    data = {k: jsonable(v, k) for k, v in results.items()}
    data["claims"] = [c.as_dict() for c in recorded_claims()]
    if path is not None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    return data
