"""The shared training loop of trustml_ref.training."""

import pytest
import torch
from torch import nn

from trustml_ref.training import accuracy, epoch_batches, fit, minimise


def test_epoch_batches_visit_every_example_once_per_epoch_in_a_seeded_order():
    batches = list(epoch_batches(10, 4, 3, torch.Generator().manual_seed(0)))
    assert len(batches) == len(epoch_batches(10, 4, 3)) == 9  # 3 slices x 3 epochs
    for epoch in range(3):
        seen = torch.cat([idx for _, idx in batches[3 * epoch : 3 * epoch + 3]])
        assert sorted(seen.tolist()) == list(range(10))
    assert [p for p, _ in batches] == [i / 9 for i in range(9)]
    again = list(epoch_batches(10, 4, 3, torch.Generator().manual_seed(0)))
    assert all(torch.equal(a, b) for (_, a), (_, b) in zip(batches, again))
    orders = {tuple(idx.tolist()) for _, idx in batches[::3]}
    assert len(orders) > 1  # a fresh permutation each epoch


def test_minimise_steps_once_per_batch_and_lowers_the_loss():
    w = torch.zeros(3, requires_grad=True)
    target = torch.tensor([1.0, -2.0, 0.5])
    seen = []

    def loss(batch, progress):
        seen.append(progress)
        return ((w - target) ** 2).sum()

    losses = minimise(
        torch.optim.SGD([w], lr=0.1), loss, epoch_batches(4, 2, 10), progress=False
    )
    assert len(losses) == 20 and seen == [i / 20 for i in range(20)]
    assert losses[-1] < 1e-3 * losses[0]


def test_fit_is_deterministic_under_its_seed_and_learns_a_separable_task():
    g = torch.Generator().manual_seed(1)
    x = torch.randn(200, 2, generator=g)
    y = (x[:, 0] > 0).long()

    def trained(seed):
        torch.manual_seed(0)  # the same initial weights; fit's order comes from seed
        return fit(nn.Linear(2, 2), x, y, epochs=20, seed=seed, progress=False)

    a, b = trained(3), trained(3)
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))
    assert accuracy(a, x, y) > 0.95


@pytest.mark.parametrize(
    "call,match",
    [
        (lambda: epoch_batches(0, 4, 1), "need n >= 1"),
        (lambda: epoch_batches(4, 0, 1), "batch_size >= 1"),
        (
            lambda: fit(
                nn.Linear(2, 2), torch.ones(3, 2), torch.zeros(2).long(), epochs=1
            ),
            "same length",
        ),
    ],
)
def test_bad_inputs_raise_clear_errors(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_fit_refuses_a_model_with_nothing_to_train():
    frozen = nn.Linear(2, 2).requires_grad_(False)
    with pytest.raises(ValueError, match="no trainable parameters"):
        fit(frozen, torch.ones(3, 2), torch.zeros(3).long(), epochs=1)


def test_fit_trains_on_a_fresh_view_of_every_minibatch():
    """``augment`` sees every minibatch once, with one generator; the identity view
    trains exactly as no view, and a view that flips the feature is learnt instead."""
    g = torch.Generator().manual_seed(2)
    x = torch.randn(128, 2, generator=g)
    y = (x[:, 0] > 0).long()
    seen = []

    def identity(batch, generator):
        seen.append((len(batch), generator))
        return batch

    def trained(epochs=5, **kwargs):
        torch.manual_seed(0)
        return fit(
            nn.Linear(2, 2), x, y, epochs=epochs, seed=4, progress=False, **kwargs
        )

    plain, viewed = trained(), trained(augment=identity)
    assert all(
        torch.equal(p, q) for p, q in zip(plain.parameters(), viewed.parameters())
    )
    assert len(seen) == 5 * 2 and len({id(gen) for _, gen in seen}) == 1
    flipped = trained(epochs=30, augment=lambda batch, _: -batch)
    assert accuracy(flipped, -x, y) > 0.95 and accuracy(flipped, x, y) < 0.05
