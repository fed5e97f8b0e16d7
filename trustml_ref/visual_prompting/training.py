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

import copy
import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call, vmap
from tqdm.auto import tqdm

from trustml_ref.training import check_xy, minimise, model_device
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


@dataclass
class Teachers:
    """``k`` teachers of one architecture: ``template`` holds what they share (frozen
    parameters, buffers), ``stacked`` each trainable parameter of every teacher along
    a first axis of length ``k``. Teacher ``i`` is ``template`` with
    ``stacked[name][i]`` in place of each trainable ``name``; all ``k`` run as one
    vectorised call."""

    template: nn.Module
    stacked: dict[str, torch.Tensor]

    def __len__(self) -> int:
        return next(iter(self.stacked.values())).shape[0]

    def logits(
        self, x: torch.Tensor, teachers: slice = slice(None), shared: bool = True
    ) -> torch.Tensor:
        """Logits of the teachers ``teachers`` on ``x``: one batch seen by every teacher
        (``shared``, returns (teachers, batch, classes)), or one batch per teacher
        (``x`` of shape (teachers, batch, ...))."""
        params = {name: p[teachers] for name, p in self.stacked.items()}

        def one(p: dict[str, torch.Tensor], xb: torch.Tensor) -> torch.Tensor:
            return functional_call(self.template, p, (xb,))

        return vmap(one, in_dims=(0, None if shared else 0))(params, x)

    @torch.no_grad()
    def predict(self, x: torch.Tensor, images_per_call: int = 512) -> torch.Tensor:
        """Every teacher's predicted class for every row of ``x``: (teachers, len(x)),
        in eval mode, about ``images_per_call`` (teacher, image) pairs per call (small
        calls stay in a CPU's cache; on a GPU pass more)."""
        self.template.eval()
        device = model_device(self.template)
        k = len(self)
        rows = max(1, images_per_call // k)
        chunk = max(1, images_per_call // rows)
        out = []
        for xb in x.split(rows):
            xb = xb.to(device)
            out.append(
                torch.cat(
                    [
                        self.logits(xb, slice(a, a + chunk)).argmax(-1).cpu()
                        for a in range(0, k, chunk)
                    ]
                )
            )
        return torch.cat(out, dim=1)

    def member(self, i: int) -> nn.Module:
        """A stand-alone copy of teacher ``i`` (in eval mode)."""
        if not 0 <= i < len(self):
            raise ValueError(f"i must be in [0, {len(self)}), got {i}")
        model = copy.deepcopy(self.template)
        with torch.no_grad():
            for name, p in model.named_parameters():
                if name in self.stacked:
                    p.copy_(self.stacked[name][i])
        return model.eval()


def _stack_teachers(make_model: Callable[[], nn.Module], k: int, seed: int) -> Teachers:
    """Teacher ``i`` initialised by ``make_model()`` under seed ``seed + i``; every
    teacher must share its frozen parameters and buffers."""
    models = []
    for i in range(k):
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed + i)
            models.append(make_model())
    template = models[0]
    trainable = [n for n, p in template.named_parameters() if p.requires_grad]
    if not trainable:
        raise ValueError("make_model() must return a model with trainable parameters")
    frozen = {
        n: t
        for n, t in [*template.named_parameters(), *template.named_buffers()]
        if n not in trainable
    }
    for m in models[1:]:
        other = dict([*m.named_parameters(), *m.named_buffers()])
        if any(not torch.equal(t, other[n]) for n, t in frozen.items()):
            raise ValueError(
                "make_model() must give every teacher the same frozen parameters and "
                "buffers (a shared frozen backbone); only trainable ones may differ"
            )
    stacked = {
        n: torch.stack([dict(m.named_parameters())[n].detach() for m in models])
        for n in trainable
    }
    return Teachers(template, stacked)


def train_teachers(
    make_model: Callable[[], nn.Module],
    x: torch.Tensor,
    y: torch.Tensor,
    teachers: int,
    *,
    steps: int,
    batch_size: int = 32,
    lr: float = 0.01,
    ids: Sequence[int | str] | None = None,
    seed: int = 0,
    teachers_per_call: int | None = None,
    progress: bool = True,
) -> Teachers:
    r"""PATE's teachers, trained all at once: teacher ``i`` sees only slice ``i`` of
    :func:`hash_partition` (``ids`` name the examples, default their positions; the
    partition is drawn with ``salt=str(seed)``).

    Teacher ``i`` starts from ``make_model()`` under seed ``seed + i`` and takes
    ``steps`` Adam steps, each on the mean cross-entropy of ``batch_size`` examples
    drawn with replacement from its slice (positions drawn by a generator seeded
    ``seed + i``). Adam acts on each number alone, so the stacked run is ``k``
    independent runs (up to floating-point rounding, which Adam amplifies over many
    steps): teacher ``i`` depends on its slice and seed only, and a teacher
    whose slice is empty gets zero gradients and stays at its initialisation (it still
    votes, so one example added to its slice changes one teacher). One vectorised call
    covers ``teachers_per_call`` teachers (default: about 512 images per call, which
    stays in a CPU's cache; on a GPU pass more); gradients of the calls add up.
    """
    check_xy(x, y)
    ids = range(len(y)) if ids is None else ids
    if len(ids) != len(y):
        raise ValueError(f"ids must name each of the {len(y)} examples, got {len(ids)}")
    if steps < 1 or batch_size < 1:
        raise ValueError(
            f"need steps >= 1 and batch_size >= 1, got {steps} and {batch_size}"
        )
    slices = hash_partition(ids, teachers, salt=str(seed))
    ensemble = _stack_teachers(make_model, teachers, seed)
    device = model_device(ensemble.template)
    params = {n: p.to(device).requires_grad_() for n, p in ensemble.stacked.items()}
    ensemble.stacked = params
    # positions in x of each teacher's minibatches: (teachers, steps, batch_size)
    draws = torch.stack(
        [
            s[
                torch.randint(
                    0,
                    len(s),
                    (steps, batch_size),
                    generator=torch.Generator().manual_seed(seed + i),
                )
            ]
            if len(s)
            else torch.zeros(steps, batch_size, dtype=torch.long)
            for i, s in enumerate(slices)
        ]
    )
    active = torch.tensor([float(len(s) > 0) for s in slices], device=device)
    per_call = teachers_per_call or max(1, 512 // batch_size)
    optimizer = torch.optim.Adam(params.values(), lr=lr)
    ensemble.template.train()
    for step in tqdm(range(steps), desc="teachers", disable=not progress, leave=False):
        optimizer.zero_grad()
        for a in range(0, teachers, per_call):
            part = slice(a, a + per_call)
            positions = draws[part, step]
            logits = ensemble.logits(x[positions].to(device), part, shared=False)
            losses = F.cross_entropy(
                logits.flatten(0, 1),
                y[positions].to(device).flatten(),
                reduction="none",
            ).view(positions.shape)
            (losses.mean(1) * active[part]).sum().backward()
        optimizer.step()
    ensemble.stacked = {n: p.detach() for n, p in params.items()}
    ensemble.template.eval()
    return ensemble


def vote_counts(predictions: torch.Tensor, classes: int) -> np.ndarray:
    """Vote counts :math:`n_j(x)`, shape (queries, classes), from teacher predictions
    of shape (teachers, queries)."""
    if predictions.dim() != 2 or predictions.numel() == 0:
        raise ValueError(
            "predictions must have shape (teachers, queries), got "
            f"{tuple(predictions.shape)}"
        )
    return F.one_hot(predictions, classes).sum(0).numpy().astype(np.float64)


def vote_histogram(teachers: Teachers, x: torch.Tensor, classes: int) -> np.ndarray:
    """Vote counts of ``teachers`` on the queries ``x`` (see :func:`vote_counts`)."""
    return vote_counts(teachers.predict(x), classes)
