"""Visual prompt, Opacus integration, DP-SGD and PATE teachers
(trustml_ref.visual_prompting)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from trustml_ref.visual_prompting import (
    PromptedClassifier,
    VisualPrompt,
    border_mask,
    fit,
    hash_partition,
    opacus_grad_samples,
    place_on_canvas,
    train_dpsgd,
    train_teachers,
    vote_counts,
    vote_histogram,
)
from trustml_ref.visual_prompting.toy import SourceCNN, digit_domains


def _backbone(classes: int = 4, norm: str = "group") -> nn.Module:
    torch.manual_seed(0)
    layer = nn.GroupNorm(2, 4) if norm == "group" else nn.BatchNorm2d(4)
    return nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1),
        layer,
        nn.ReLU(),
        nn.Flatten(),
        nn.Linear(4 * 10 * 10, classes),
    )


def _model(norm: str = "group", region: str = "border") -> PromptedClassifier:
    prompt = VisualPrompt(1, 10, 6, region=region)
    model = PromptedClassifier(_backbone(norm=norm), prompt, 4, 3)
    with torch.no_grad():
        model.prompt.weight.normal_(0, 0.5)
    return model


def test_mask_and_prompt_geometry():
    m = border_mask(10, 6)
    assert m.shape == (10, 10) and m.sum() == 100 - 36 and m[2:8, 2:8].sum() == 0
    prompt = VisualPrompt(3, 10, 6)
    assert list(prompt.buffers()) == [] and [
        n for n, _ in prompt.named_parameters()
    ] == ["weight"]
    with torch.no_grad():
        prompt.weight.normal_()
    x = torch.rand(2, 3, 6, 6)
    out = prompt(x)
    assert torch.equal(out[:, :, 2:8, 2:8], x)  # the image sits unchanged in the window
    assert torch.allclose(
        out - place_on_canvas(x, 10, 6), torch.tanh(prompt.weight) * m
    )
    # resized
    assert place_on_canvas(torch.rand(2, 1, 8, 8), 10, 6).shape == (2, 1, 10, 10)
    # the full-canvas prompt adds tanh(W) everywhere, the image's window included
    full = VisualPrompt(3, 10, 10, region="full")
    with torch.no_grad():
        full.weight.normal_()
    x = torch.rand(2, 3, 10, 10)
    assert torch.allclose(full(x), x + torch.tanh(full.weight))
    with pytest.raises(ValueError, match="region must be one of"):
        VisualPrompt(1, 10, 6, region="centre")
    with pytest.raises(ValueError, match="inner < canvas"):
        VisualPrompt(1, 10, 10)


@pytest.mark.parametrize("region", VisualPrompt.REGIONS)
def test_prompt_grad_sample_equals_per_example_autograd_and_opacus(region):
    model = _model(region=region)
    x, y = torch.rand(5, 1, 8, 8), torch.tensor([0, 1, 2, 0, 1])
    per_example = []
    for i in range(5):
        model.zero_grad()
        nn.functional.cross_entropy(
            model(x[i : i + 1]), y[i : i + 1], reduction="sum"
        ).backward()
        per_example.append(
            {n: p.grad.clone() for n, p in model.named_parameters() if p.requires_grad}
        )
    fresh = _model(region=region)
    samples = opacus_grad_samples(fresh, x, y)
    assert set(samples) == {n for n, p in fresh.named_parameters() if p.requires_grad}
    for name, sample in samples.items():
        expected = torch.stack([g[name] for g in per_example])
        assert torch.allclose(sample, expected, atol=1e-6), name
    assert all(not p.requires_grad for p in fresh.backbone.parameters())
    # the model comes back as it was: no hooks, no per-example gradients, no grads
    assert all(not m._forward_hooks and not m._backward_hooks for m in fresh.modules())
    assert all(
        not hasattr(p, "grad_sample") and p.grad is None for p in fresh.parameters()
    )
    assert torch.equal(fresh(x), _model(region=region)(x))


def test_batchnorm_guard():
    model = _model(norm="batch")
    model.train()
    assert not model.backbone.training  # train() keeps the frozen backbone in eval mode
    model(torch.rand(2, 1, 8, 8))
    model.backbone[1].train()  # someone switches batch statistics back on
    with pytest.raises(
        RuntimeError, match=r"batch-norm layers \['1'\] are in training mode"
    ):
        model(torch.rand(2, 1, 8, 8))


def test_train_mode_batchnorm_couples_examples():
    # why the guard exists: in train mode one example's output depends on another
    # example's input
    bn = nn.BatchNorm1d(3).train()
    x = torch.randn(4, 3, requires_grad=True)
    bn(x)[0].sum().backward()
    assert x.grad[1:].abs().sum() > 0
    x.grad = None
    bn.eval()(x)[0].sum().backward()
    assert x.grad[1:].abs().sum() == 0


def test_dpsgd_reaches_target_epsilon_deterministically_and_keeps_backbone():
    x, y = torch.rand(64, 1, 8, 8), torch.randint(0, 3, (64,))
    # the second model comes in eval mode: train_dpsgd switches to training mode, as
    # fit does, and trains it the same
    results = [
        train_dpsgd(
            model,
            x,
            y,
            epsilon=2.0,
            delta=1e-5,
            epochs=2,
            batch_size=16,
            progress=False,
        )
        for model in (_model(), _model().eval())
    ]
    assert 1.5 < results[0].epsilon <= 2.0 + 1e-6 and results[0].noise_multiplier > 0
    assert torch.equal(results[0].model.prompt.weight, results[1].model.prompt.weight)
    assert torch.equal(results[0].model.backbone[0].weight, _model().backbone[0].weight)
    assert not hasattr(results[0].model, "_module")  # unwrapped
    with pytest.raises(ValueError, match="delta must lie in"):
        train_dpsgd(_model(), x, y, epsilon=1.0, delta=1.0, epochs=1)
    with pytest.raises(ValueError, match="accountant must be"):
        train_dpsgd(_model(), x, y, epsilon=1.0, delta=1e-5, epochs=1, accountant="gdp")


def test_dpsgd_steps_on_empty_poisson_batches():
    # expected batch size 1 of 24 examples: about a third of the Poisson batches are
    # empty, and each is still a (noise-only) step, as the accountant assumes
    x, y = torch.rand(24, 1, 8, 8), torch.randint(0, 3, (24,))
    model = _model()
    before = model.prompt.weight.detach().clone()
    result = train_dpsgd(
        model, x, y, epsilon=4.0, delta=1e-5, epochs=3, batch_size=1, progress=False
    )
    assert result.steps == 3 * 24
    weight = result.model.prompt.weight
    assert torch.isfinite(weight).all() and not torch.equal(weight, before)


def test_hash_partition_changes_one_slice_per_added_or_removed_example():
    ids = list(range(103))
    slices = hash_partition(ids, 10, salt="1")
    assert sorted(torch.cat(slices).tolist()) == ids
    assert all(len(s) > 0 for s in slices)  # 103 examples in 10 slices, this salt
    members = [set(s.tolist()) for s in slices]
    # removing example 57 (positions after it shift: compare by id, not position)
    kept = ids[:57] + ids[58:]
    after = [{kept[i] for i in s.tolist()} for s in hash_partition(kept, 10, salt="1")]
    assert sum(a != b for a, b in zip(members, after)) == 1
    # adding a new example (id 1000) changes exactly one slice too
    grown = [
        {(ids + [1000])[i] for i in s.tolist()}
        for s in hash_partition(ids + [1000], 10, salt="1")
    ]
    assert sum(a != b for a, b in zip(members, grown)) == 1
    # a permutation-based split would reshuffle: another salt is another partition
    assert [set(s.tolist()) for s in hash_partition(ids, 10, salt="2")] != members
    for bad, match in (
        (lambda: hash_partition(ids, 0), "parts must be a positive integer"),
        (lambda: hash_partition([1, 1], 2), "ids must be non-empty and distinct"),
    ):
        with pytest.raises(ValueError, match=match):
            bad()


def _equal_teachers(a, b) -> list[bool]:
    return [
        all(torch.equal(a.stacked[n][i], b.stacked[n][i]) for n in a.stacked)
        for i in range(len(a))
    ]


def test_teachers_and_votes():
    x, y = torch.rand(40, 1, 8, 8), torch.randint(0, 3, (40,))
    teachers = train_teachers(_model, x, y, 4, steps=3, progress=False)
    votes = vote_histogram(teachers, x[:7], 3)
    assert votes.shape == (7, 3) and np.all(votes.sum(1) == 4)
    # teacher i depends on its own slice only: dropping an example of slice 0
    # leaves every other teacher bit for bit as it was
    slices = hash_partition(range(40), 4, salt="0")
    keep = torch.tensor([i for i in range(40) if i != int(slices[0][0])])
    fewer = train_teachers(
        _model, x[keep], y[keep], 4, ids=keep.tolist(), steps=3, progress=False
    )
    assert _equal_teachers(teachers, fewer) == [False, True, True, True]
    # more teachers than examples: empty slices stay at their initialisation and vote
    many = train_teachers(_model, x[:3], y[:3], 6, steps=3, progress=False)
    assert vote_histogram(many, x[:2], 3).sum(1).tolist() == [6, 6]
    untrained = train_teachers(_model, x[:3], y[:3], 6, steps=1, lr=0.0, progress=False)
    empty = [len(s) == 0 for s in hash_partition(range(3), 6, salt="0")]
    assert any(empty)
    assert _equal_teachers(many, untrained) == empty
    np.testing.assert_array_equal(
        vote_counts(torch.tensor([[0, 2], [0, 1], [2, 1]]), 3), [[2, 0, 1], [0, 2, 1]]
    )
    with pytest.raises(
        ValueError, match=r"predictions must have shape \(teachers, queries\)"
    ):
        vote_counts(torch.tensor([0, 1]), 3)
    with pytest.raises(ValueError, match="ids must name each of the 40 examples"):
        train_teachers(_model, x, y, 4, ids=range(39), steps=1)
    with pytest.raises(ValueError, match="need steps >= 1"):
        train_teachers(_model, x, y, 4, steps=0)
    with pytest.raises(ValueError, match="same frozen parameters"):
        train_teachers(  # a fresh random backbone per teacher
            lambda: PromptedClassifier(
                nn.Sequential(nn.Flatten(), nn.Linear(64, 3)),
                VisualPrompt(1, 8, 8, region="full"),
                3,
                3,
            ),
            x,
            y,
            2,
            steps=1,
        )
    with pytest.raises(ValueError, match="same length"):
        fit(_model(), x, y[:3], epochs=1)


def test_vectorised_teachers_equal_independent_training():
    """The stacked run is k separate Adam runs: each teacher, trained alone on its own
    slice with the same minibatch draws, ends with the same weights and votes."""
    torch.manual_seed(0)
    backbone = _backbone(3)
    x, y = torch.rand(30, 1, 8, 8), torch.randint(0, 3, (30,))

    def make():
        return PromptedClassifier(backbone, VisualPrompt(1, 10, 6), 3, 3)

    steps, batch = 4, 5
    for per_call in (None, 2):  # one vectorised call, or teachers in calls of two
        ensemble = train_teachers(
            make,
            x,
            y,
            3,
            steps=steps,
            batch_size=batch,
            lr=0.05,
            seed=7,
            teachers_per_call=per_call,
            progress=False,
        )
        for i, s in enumerate(hash_partition(range(30), 3, salt="7")):
            torch.manual_seed(7 + i)
            alone = make()
            params = [p for p in alone.parameters() if p.requires_grad]
            optimizer = torch.optim.Adam(params, lr=0.05)
            g = torch.Generator().manual_seed(7 + i)
            positions = s[torch.randint(0, len(s), (steps, batch), generator=g)]
            for step in range(steps):
                optimizer.zero_grad()
                p = positions[step]
                nn.functional.cross_entropy(alone(x[p]), y[p]).backward()
                optimizer.step()
            member = ensemble.member(i)
            for name, p in alone.named_parameters():
                torch.testing.assert_close(
                    dict(member.named_parameters())[name], p, atol=1e-5, rtol=1e-4
                )
            assert torch.equal(ensemble.predict(x)[i], alone.eval()(x).argmax(1))
    with pytest.raises(ValueError, match=r"i must be in \[0, 3\)"):
        ensemble.member(3)


def test_bad_shapes_raise_clear_errors():
    with pytest.raises(ValueError, match="even margin"):
        border_mask(10, 5)
    with pytest.raises(
        ValueError, match=r"x must have shape \(batch, 1, height, width\)"
    ):
        VisualPrompt(1, 10, 6)(torch.rand(2, 3, 6, 6))
    model = PromptedClassifier(_backbone(classes=4), VisualPrompt(1, 10, 6), 5, 3)
    with pytest.raises(
        ValueError, match=r"backbone must return \(batch, 5\) source logits"
    ):
        model(torch.rand(2, 1, 6, 6))


def test_toy_world_is_disjoint_and_learnable():
    d = digit_domains(seed=0)
    assert d.x_private.shape[1:] == (1, 8, 8) and d.x_source.shape[1:] == (1, 16, 16)
    assert set(d.y_private.tolist()) == set(range(5))
    # a partition of the digits
    assert len(d.y_source) + len(d.y_private) + len(d.y_public) + len(d.y_test) == 1797
    torch.manual_seed(0)
    source = fit(
        SourceCNN(), d.x_source, d.y_source, epochs=15, lr=3e-3, progress=False
    )
    assert (source(d.x_source).argmax(1) == d.y_source).float().mean() > 0.8


def test_colab_sources_wrap_torchvision_and_openml(monkeypatch):
    """The Colab path without downloads: a stand-in torchvision module and a stand-in
    OpenML split."""
    import sys
    import types

    import trustml_ref.data
    from trustml_ref.data import Split
    from trustml_ref.visual_prompting import sources

    # batch norm inside, as torchvision's ResNets have
    class TinyImageNetModel(nn.Module):
        def __init__(self):
            super().__init__()
            self.body = nn.Sequential(
                nn.Conv2d(3, 4, 3),
                nn.BatchNorm2d(4),
                nn.AdaptiveAvgPool2d(1),
                nn.Flatten(),
                nn.Linear(4, 1000),
            )

        def forward(self, x):
            return self.body(x)

    monkeypatch.setitem(sys.modules, "torchvision", None)  # not installed
    with pytest.raises(ImportError, match="imagenet_source needs torchvision"):
        sources.imagenet_source("resnet18")
    fake = types.ModuleType("torchvision")
    fake.models = types.SimpleNamespace(
        get_model_weights=lambda arch: types.SimpleNamespace(DEFAULT=f"{arch}-w"),
        get_model=lambda arch, weights: TinyImageNetModel(),
    )
    monkeypatch.setitem(sys.modules, "torchvision", fake)
    source = sources.imagenet_source("resnet18")
    assert not source.training and all(not p.requires_grad for p in source.parameters())
    x = torch.rand(2, 3, 8, 8)
    assert torch.allclose(source[0](x)[:, 0], (x[:, 0] - 0.485) / 0.229)
    model = PromptedClassifier(source, VisualPrompt(3, 16, 12), 1000, 10)
    model.train()
    # resized into the window; guard satisfied
    assert model(torch.rand(2, 3, 32, 32)).shape == (2, 10)

    planes = torch.arange(3 * 1024, dtype=torch.float32).repeat(7, 1)
    monkeypatch.setattr(
        trustml_ref.data,
        "openml",
        lambda name, n_train, n_test, seed=0: Split(
            planes[:n_train],
            torch.arange(n_train) % 10,
            planes[:n_test],
            torch.arange(n_test) % 10,
        ),
    )
    task = sources.cifar10_task(3, 2, 2)
    assert task.x_private.shape == (3, 3, 32, 32) and task.x_public.shape == (
        2,
        3,
        32,
        32,
    )
    # R, G, B planes
    assert (
        task.x_private[0, 1, 0, 0] == 1024
        and task.x_private[0, 2, 31, 31] == 3 * 1024 - 1
    )
    with pytest.raises(ValueError, match="one entry per channel"):
        sources.Normalize((0.5,), (0.1, 0.2))
