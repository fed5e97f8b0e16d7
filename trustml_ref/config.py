"""Run configuration shared by every chapter: profile, seed, device, threads, cache.

A chapter's ``parameters`` cell sets ``PROFILE``, ``SEED`` and ``DEVICE``; its first
code cell after that calls :func:`setup`, which validates them, seeds every random
number generator, picks the device and the torch thread count, and applies the
book's plotting style.
"""

from __future__ import annotations

import os
import random
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import numpy as np
import torch

PROFILES: tuple[str, ...] = ("smoke", "book", "colab")
"""``smoke``: seconds, for tests; ``book``: the default, minutes on a 2-core CPU;
``colab``: a GPU run."""

PROFILE_ENV = "TRUSTML_PROFILE"
CACHE_ENV = "TRUSTML_CACHE"
THREADS_ENV = "TRUSTML_THREADS"
SIZES_ENV = "TRUSTML_SIZES"
"""Run one profile's code paths at another profile's sizes (the tests run the colab
cells at smoke sizes on tiny local models); claims follow the sizes."""

DEFAULT_CPU_THREADS = 1
"""Torch threads on the CPU unless ``TRUSTML_THREADS`` says otherwise.

Measured with ``benchmarks/torch_threads.py`` on a 2-core machine: one thread trains a
tiny MLP 1.2x faster than two when the machine is idle and 2.6-3.8x faster when the
other core is busy (a test runner, a book build); see the benchmark's docstring.
"""

T = TypeVar("T")


def resolve_profile(profile: str | None = None) -> str:
    """Return the active profile.

    ``TRUSTML_PROFILE``, when set, overrides ``profile`` so that a whole-book build can
    switch every chapter at once (``TRUSTML_PROFILE=smoke make book``); otherwise
    ``profile`` is used, defaulting to ``"book"``.
    """
    chosen = os.environ.get(PROFILE_ENV) or profile or "book"
    if chosen not in PROFILES:
        source = PROFILE_ENV if os.environ.get(PROFILE_ENV) else "profile"
        raise ValueError(f"{source} must be one of {PROFILES}, got {chosen!r}")
    return chosen


def by_profile(profile: str, *, smoke: T, book: T, colab: T) -> T:
    """Pick the value for ``profile``; every profile must be given a value."""
    if profile not in PROFILES:
        raise ValueError(f"profile must be one of {PROFILES}, got {profile!r}")
    return {"smoke": smoke, "book": book, "colab": colab}[profile]


def seed_everything(seed: int, *, deterministic: bool = True) -> torch.Generator:
    """Seed Python, NumPy and torch (CPU and CUDA); return a torch generator seeded
    with ``seed``.

    With ``deterministic=True`` torch is asked for deterministic algorithms; kernels
    that have none warn instead of failing (``warn_only=True``).
    """
    if (
        not isinstance(seed, (int, np.integer))
        or isinstance(seed, bool)
        or not 0 <= seed < 2**32
    ):
        raise ValueError(f"seed must be an integer in [0, 2**32), got {seed!r}")
    seed = int(seed)
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)  # also seeds every CUDA device
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.benchmark = False
    return torch.Generator().manual_seed(seed)


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """``"auto"`` picks CUDA when available, else the CPU; other values are checked and
    returned."""
    if isinstance(device, torch.device):
        device = str(device)
    if not isinstance(device, str):
        raise TypeError(
            "device must be a string such as 'auto', 'cpu' or 'cuda', got "
            f"{type(device).__name__}"
        )
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except RuntimeError as err:
        raise ValueError(
            f"device must be 'auto', 'cpu', 'cuda' or 'cuda:N', got {device!r}"
        ) from err
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(
            f"device={device!r} was asked for but CUDA is not available here; use "
            "'auto' or 'cpu'"
        )
    return resolved


def set_torch_threads(device: torch.device, threads: int | None = None) -> int:
    """Set torch's intra-op thread count for work on ``device`` and return it.

    ``threads`` defaults to ``TRUSTML_THREADS`` or, on the CPU,
    :data:`DEFAULT_CPU_THREADS`; on a GPU torch's own default is kept.
    """
    if threads is None and os.environ.get(THREADS_ENV):
        threads = int(os.environ[THREADS_ENV])
    if threads is None:
        threads = (
            DEFAULT_CPU_THREADS if device.type == "cpu" else torch.get_num_threads()
        )
    if threads < 1:
        raise ValueError(f"threads must be >= 1, got {threads}")
    torch.set_num_threads(threads)
    return threads


def cache_dir() -> Path:
    """The directory for files the book makes and reuses (``TRUSTML_CACHE`` or
    ``~/.cache/trustml``)."""
    path = Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "trustml")
    path.mkdir(parents=True, exist_ok=True)
    return path


@dataclass(frozen=True)
class RunConfig:
    """What :func:`setup` resolved: the chapter reads sizes and devices from here."""

    profile: str
    seed: int
    device: torch.device
    threads: int
    cache: Path
    generator: torch.Generator
    sizes: str = ""  # the profile whose sizes pick() returns; "" means ``profile``

    def pick(self, *, smoke: T, book: T, colab: T) -> T:
        """The value for this run's sizes, normally its profile's (see
        :func:`by_profile` and ``TRUSTML_SIZES``)."""
        return by_profile(
            self.sizes or self.profile, smoke=smoke, book=book, colab=colab
        )


def setup(
    profile: str | None = "book",
    seed: int = 0,
    device: str = "auto",
    *,
    toy_sizes: str | None = None,
    style: bool = True,
) -> RunConfig:
    """Resolve and apply a chapter's parameters; print one line that says what was
    chosen.

    Also starts the chapter's ledger of claims (:mod:`trustml_ref.claims`): conclusions
    are checked in the ``book`` and ``colab`` profiles and only recorded in ``smoke``.
    ``toy_sizes`` (a profile name; the colab profile only) runs the chapter's toy parts
    at that profile's sizes before its real models, e.g. ``"book"`` for minutes instead
    of the colab profile's larger toy. ``TRUSTML_SIZES`` (a profile name, the tests'
    knob) overrides it in every profile: the profile's code paths at that profile's
    sizes. Either way the sizes' profile sets the rule for claims.
    """
    chosen_profile = resolve_profile(profile)
    if toy_sizes is not None and toy_sizes not in PROFILES:
        raise ValueError(f"toy_sizes must be one of {PROFILES}, got {toy_sizes!r}")
    sizes = os.environ.get(SIZES_ENV, "")
    if sizes and sizes not in PROFILES:
        raise ValueError(f"{SIZES_ENV} must be one of {PROFILES}, got {sizes!r}")
    if not sizes and chosen_profile == "colab" and toy_sizes:
        sizes = toy_sizes
    generator = seed_everything(seed)
    chosen_device = resolve_device(device)
    threads = set_torch_threads(chosen_device)
    if style:
        from trustml_ref.plotting import apply_style

        apply_style()
    from trustml_ref.claims import start_ledger

    start_ledger(sizes or chosen_profile)
    config = RunConfig(
        chosen_profile,
        int(seed),
        chosen_device,
        threads,
        cache_dir(),
        generator,
        sizes if sizes != chosen_profile else "",
    )
    print(
        f"trustml: profile={config.profile} seed={config.seed} device={config.device} "
        f"torch_threads={threads}" + (f" sizes={sizes}" if config.sizes else "")
    )
    return config
