r"""Training the prompt (or any small classifier): non-private, with DP-SGD through
Opacus, and as PATE teachers.

DP-SGD (Abadi et al. 2016) clips each example's gradient to norm :math:`C`, adds
:math:`\mathcal N(0, \sigma^2C^2)` to their sum over a Poisson-sampled batch and takes a
step; Opacus computes the per-example gradients, calibrates :math:`\sigma` to a target
:math:`(\varepsilon, \delta)` for the planned number of steps and accounts for the
privacy spent. PATE trains one teacher per disjoint slice of the private data (assigned
by a hash of each example's id) and releases only noisy aggregates of their votes
(:mod:`trustml_ref.privacy.pate`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from trustml_ref.training import check_xy, fit, minimise, model_device, predict
from trustml_ref.visual_prompting.prompt import VisualPrompt, prompt_grad_sample


def register_opacus_grad_sampler() -> None:
    """Teach Opacus the prompt's per-example gradient
    (:func:`~trustml_ref.visual_prompting.prompt.prompt_grad_sample`)."""
    from opacus.grad_sample import register_grad_sampler

    register_grad_sampler(VisualPrompt)(prompt_grad_sample)


def opacus_grad_samples(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor
) -> dict[str, torch.Tensor]:
    """Per-example gradients of the summed cross-entropy, as Opacus computes them, for
    every trainable parameter by name (shape ``(batch, *parameter.shape)``).

    The model is wrapped in a ``GradSampleModule`` only for this call: its hooks are
    removed and the ``grad_sample`` attributes deleted afterwards through Opacus's
    public API, so ``model`` comes back as it was (gradients zeroed).
    """
    from opacus import GradSampleModule

    check_xy(x, y)
    register_opacus_grad_sampler()
    wrapped = GradSampleModule(model, loss_reduction="sum")
    try:
        device = model_device(model)
        F.cross_entropy(wrapped(x.to(device)), y.to(device), reduction="sum").backward()
        samples = {
            name: p.grad_sample.detach().clone()
            for name, p in model.named_parameters()
            if p.requires_grad
        }
    finally:
        wrapped.remove_hooks()
        for p in model.parameters():  # the attributes Opacus's hooks set
            for attribute in (
                "grad_sample",
                "_forward_counter",
                "_current_grad_sample",
            ):
                if hasattr(p, attribute):
                    delattr(p, attribute)
            p.grad = None
    return samples


@dataclass(frozen=True)
class DPSGDResult:
    model: nn.Module  #: the trained model (unwrapped from Opacus)
    epsilon: float  #: privacy spent, by the accountant
    noise_multiplier: float  #: sigma calibrated by Opacus to the target epsilon
    steps: int  #: noisy steps taken, empty Poisson batches included


def train_dpsgd(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    epsilon: float,
    delta: float,
    epochs: int,
    batch_size: int = 64,
    lr: float = 0.05,
    max_grad_norm: float = 1.0,
    accountant: str = "rdp",
    seed: int = 0,
    progress: bool = True,
) -> DPSGDResult:
    r"""DP-SGD with Opacus's ``PrivacyEngine.make_private_with_epsilon``: Poisson
    batches of expected size ``batch_size``, per-example clipping at ``max_grad_norm``,
    noise calibrated to reach :math:`(\varepsilon, \delta)` after ``epochs`` epochs with
    the ``accountant`` ("rdp" or "prv"); Adam on the privatised gradients."""
    from opacus import PrivacyEngine

    check_xy(x, y)
    if not epsilon > 0:
        raise ValueError(f"epsilon must be > 0, got {epsilon}")
    if not 0 < delta < 1:
        raise ValueError(f"delta must lie in (0, 1), got {delta}")
    if accountant not in ("rdp", "prv"):
        raise ValueError(f"accountant must be 'rdp' or 'prv', got {accountant!r}")
    register_opacus_grad_sampler()
    torch.manual_seed(seed)
    loader = torch.utils.data.DataLoader(
        torch.utils.data.TensorDataset(x, y),
        batch_size=batch_size,
        generator=torch.Generator().manual_seed(seed),
    )
    params = [p for p in model.parameters() if p.requires_grad]
    model.train()  # as fit does: Opacus validates the module in training mode
    engine = PrivacyEngine(accountant=accountant)
    private, optimizer, loader = engine.make_private_with_epsilon(
        module=model,
        optimizer=torch.optim.Adam(params, lr=lr),
        data_loader=loader,
        target_epsilon=epsilon,
        target_delta=delta,
        epochs=epochs,
        max_grad_norm=max_grad_norm,
    )
    private.train()
    dev = model_device(model)

    def batches():
        for epoch in range(epochs):
            for xb, yb in loader:
                yield epoch / epochs, (xb, yb)

    def loss(batch, _: float) -> torch.Tensor:
        # Poisson sampling draws empty batches too: the analysed mechanism still takes
        # a step, of noise alone (the sum over no examples is 0, not a NaN mean)
        xb, yb = batch
        return F.cross_entropy(private(xb.to(dev)), yb.to(dev), reduction="sum") / max(
            len(yb), 1
        )

    losses = minimise(
        optimizer, loss, batches(), desc=f"DP-SGD eps={epsilon:g}", progress=progress
    )
    spent = float(engine.get_epsilon(delta))
    trained = private._module
    # Opacus leaves per-sample gradients on the parameters
    for p in trained.parameters():
        p.grad_sample = None
    return DPSGDResult(
        trained.eval(), spent, float(optimizer.noise_multiplier), len(losses)
    )


def hash_partition(
    ids: Sequence[int | str], parts: int, *, salt: str = ""
) -> list[torch.Tensor]:
    """Positions of the examples named ``ids`` split into ``parts`` disjoint slices by
    a hash of each id (BLAKE2b of ``salt:id``, modulo ``parts``).

    An example's slice depends on its own id alone, so adding or removing one example
    changes one slice and leaves every other exactly as it was: the neighbour relation
    (add/remove one example) under which PATE's analysis, one teacher changes its vote,
    holds. A random permutation of ``range(n)`` would reshuffle every slice. Slices
    differ in size, and one may be empty; ``salt`` draws another partition.
    """
    if int(parts) != parts or parts < 1:
        raise ValueError(f"parts must be a positive integer, got {parts!r}")
    keys = [str(i) for i in ids]
    if not keys or len(set(keys)) != len(keys):
        raise ValueError("ids must be non-empty and distinct")
    slot = torch.tensor(
        [
            int.from_bytes(
                hashlib.blake2b(f"{salt}:{key}".encode(), digest_size=8).digest(),
                "big",
            )
            % parts
            for key in keys
        ]
    )
    return [torch.nonzero(slot == j).flatten() for j in range(parts)]


def train_teachers(
    make_model: Callable[[], nn.Module],
    x: torch.Tensor,
    y: torch.Tensor,
    teachers: int,
    *,
    ids: Sequence[int | str] | None = None,
    seed: int = 0,
    progress: bool = True,
    **fit_kwargs,
) -> list[nn.Module]:
    """One model per slice of :func:`hash_partition` of the private data (PATE's
    teachers); each sees only its slice.

    ``ids`` name the examples (default: their positions); the partition is drawn with
    ``salt=str(seed)``. Teacher ``i`` is initialised from seed ``seed + i``; a teacher
    whose slice is empty stays at that initialisation and votes like the others, so
    one example added to its slice still changes one teacher only.
    """
    check_xy(x, y)
    ids = range(len(y)) if ids is None else ids
    if len(ids) != len(y):
        raise ValueError(f"ids must name each of the {len(y)} examples, got {len(ids)}")
    out = []
    slices = hash_partition(ids, teachers, salt=str(seed))
    for i, s in enumerate(
        tqdm(slices, desc="teachers", disable=not progress, leave=False)
    ):
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed + i)
            model = make_model()
        if len(s):
            model = fit(model, x[s], y[s], seed=seed + i, progress=False, **fit_kwargs)
        out.append(model.eval())
    return out


def vote_counts(predictions: torch.Tensor, classes: int) -> np.ndarray:
    """Vote counts :math:`n_j(x)`, shape (queries, classes), from teacher predictions
    of shape (teachers, queries)."""
    if predictions.dim() != 2 or predictions.numel() == 0:
        raise ValueError(
            "predictions must have shape (teachers, queries), got "
            f"{tuple(predictions.shape)}"
        )
    return F.one_hot(predictions, classes).sum(0).numpy().astype(np.float64)


def vote_histogram(
    teachers: list[nn.Module], x: torch.Tensor, classes: int
) -> np.ndarray:
    """Vote counts of ``teachers`` on the queries ``x`` (see :func:`vote_counts`)."""
    if not teachers:
        raise ValueError("teachers must be a non-empty list")
    return vote_counts(torch.stack([predict(t, x) for t in teachers]), classes)
