"""The glyph world of the visual-prompting chapter
(trustml_ref.visual_prompting.glyphs): every face draws every char it is asked for, the
affine convention, determinism, and the three knobs of the domain shift."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from trustml_ref.visual_prompting import glyphs as G


def test_every_face_draws_distinct_glyphs_for_its_chars():
    for faces, chars in ((G.SOURCE_FACES, G.SOURCE_CHARS), (G.TARGET_FACES, G.DIGITS)):
        bank = G.glyph_bank(faces, chars)
        assert bank.shape == (len(G.STROKES), len(faces), len(chars), 64, 64)
        plain = bank[G.STROKES.index(0)]
        ink = plain.sum((-1, -2))
        assert (ink > 20).all(), "a glyph without ink"
        flat = plain.reshape(len(faces), len(chars), -1)
        # within a face, every two chars differ in at least 20 pixels' worth of ink
        gaps = (flat[:, :, None] - flat[:, None, :]).abs().sum(-1)
        off = ~torch.eye(len(chars), dtype=torch.bool)
        assert gaps[:, off].min() > 20
    # the two families are different drawings of the same digits
    src = G.glyph_bank(G.SOURCE_FACES, G.DIGITS)[1].mean(0)
    tgt = G.glyph_bank(G.TARGET_FACES, G.DIGITS)[1].mean(0)
    assert (src - tgt).abs().sum((-1, -2)).min() > 20


def test_stroke_levels_thin_and_thicken_monotonically():
    bank = G.glyph_bank(G.SOURCE_FACES[:2], "08")
    ink = bank.sum((-1, -2))  # (strokes, faces, chars)
    assert list(G.STROKES) == sorted(G.STROKES)
    assert (ink[1:] > ink[:-1]).all()


def test_without_jitter_an_image_is_the_drawing_averaged_over_4x4_blocks():
    faces, chars = G.TARGET_FACES[:2], "37"
    x, y = G.glyphs(40, faces, chars, jitter=G.NO_JITTER, seed=3)
    bank = G.glyph_bank(faces, chars)
    pooled = F.avg_pool2d(bank.reshape(-1, 1, 64, 64), 4)
    pooled = (pooled / pooled.amax((1, 2, 3), keepdim=True)).reshape(
        len(G.STROKES) * len(faces), len(chars), 16, 16
    )
    for image, label in zip(x[:, 0], y):
        distance = (pooled[:, label] - image).abs().amax((-1, -2))
        assert distance.min() < 1e-5  # one stroke level of one face, exactly


def test_glyphs_are_seeded_and_labelled_uniformly():
    x, y = G.glyphs(3000, seed=0)
    assert x.shape == (3000, 1, 16, 16) and y.shape == (3000,)
    assert x.min() >= 0 and x.max() <= 1
    assert torch.allclose(x.amax((1, 2, 3)), torch.ones(3000))
    counts = torch.bincount(y, minlength=len(G.SOURCE_CHARS))
    assert counts.min() > 3000 / 36 / 2  # every class drawn, none starved
    x2, y2 = G.glyphs(3000, seed=0)
    assert torch.equal(x, x2) and torch.equal(y, y2)
    x3, _ = G.glyphs(3000, seed=1)
    assert not torch.equal(x, x3)
    big, _ = G.glyphs(10, canvas=32, seed=0)
    assert big.shape == (10, 1, 32, 32)


def test_jitter_moves_the_ink():
    faces, chars = G.SOURCE_FACES[:1], "1"
    still, _ = G.glyphs(50, faces, chars, jitter=G.NO_JITTER, seed=0)
    moved, _ = G.glyphs(50, faces, chars, jitter=G.Jitter(blur=(0, 0)), seed=0)
    # the same glyph at most four stroke levels without jitter; many placements with it
    assert len(torch.unique(still.reshape(50, -1), dim=0)) <= len(G.STROKES)
    assert len(torch.unique(moved.reshape(50, -1), dim=0)) == 50


def test_shift_knobs():
    x, _ = G.glyphs(64, G.TARGET_FACES, G.DIGITS, seed=0)
    assert torch.equal(G.shift(x), x)
    assert torch.allclose(G.shift(x, invert=1.0), 1 - x)
    half = G.shift(x, invert=0.5, seed=1)
    flipped = (half - (1 - x)).abs().amax((1, 2, 3)) < 1e-6
    assert 0.25 < flipped.float().mean() < 0.75
    t = G.texture(16, seed=5)
    assert t.shape == (1, 1, 16, 16) and t.abs().max() == pytest.approx(1.0)
    assert torch.allclose(
        G.shift(x, texture_amplitude=0.3, texture_seed=5), (x + 0.3 * t).clamp(0, 1)
    )
    assert not torch.equal(G.texture(16, seed=6), t)
    warped = G.shift(x, elastic=1.0, seed=2)
    change = (warped - x).abs().mean()
    assert 0.01 < change < (G.shift(x, elastic=3.0, seed=2) - x).abs().mean()
    assert torch.equal(warped, G.shift(x, elastic=1.0, seed=2))


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: G.glyphs(0), "n must be"),
        (lambda: G.glyphs(4, faces=("Comic.ttf",)), "unknown faces"),
        (lambda: G.glyph_bank(G.TARGET_FACES, ""), "non-empty"),
        (lambda: G.glyphs(4, chars="0\u4e00"), "no glyph"),
        (lambda: G.Jitter(scale=(1.2, 1.0)), "scale"),
        (lambda: G.Jitter(blur=(-1, 0)), "blur"),
        (lambda: G.Jitter(rotation=-1), "rotation"),
        (lambda: G.shift(torch.zeros(2, 3, 16, 16)), r"\(n, 1, s, s\)"),
        (lambda: G.shift(torch.zeros(2, 1, 16, 16), invert=2), "probability"),
        (lambda: G.shift(torch.zeros(2, 1, 16, 16), elastic=-1), "elastic"),
    ],
)
def test_bad_input_names_the_argument(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_a_face_this_matplotlib_lacks_is_named(monkeypatch, tmp_path):
    monkeypatch.setattr(G, "_font_dir", lambda: tmp_path)
    G.glyph_bank.cache_clear()
    with pytest.raises(FileNotFoundError, match="'cmr10.ttf' is not among the fonts"):
        G.glyph_bank(("cmr10.ttf",), "0")


def test_views_move_cover_and_perturb_within_their_bounds():
    g = torch.Generator().manual_seed(0)
    dot = torch.zeros(64, 1, 9, 9)
    dot[:, 0, 4, 4] = 1
    moved = G.translate(dot, 2, g)
    where = torch.stack([torch.nonzero(m[0])[0] for m in moved])  # one ink pixel each
    offsets = where - 4
    assert offsets.abs().max() == 2 and len({tuple(o) for o in offsets.tolist()}) > 10
    assert torch.equal(G.translate(dot, 0, g), dot)
    x = torch.rand(32, 1, 16, 16, generator=g)
    covered = G.cutout(x, 6, g)
    changed = (covered != x).flatten(1).sum(1)
    assert changed.max() <= 36 and changed.min() > 0
    a = G.strong_view(x, torch.Generator().manual_seed(5))
    b = G.strong_view(x, torch.Generator().manual_seed(5))
    assert torch.equal(a, b) and a.min() >= 0 and a.max() <= 1
    assert G.weak_view(x, g).shape == x.shape
    with pytest.raises(ValueError, match="max_shift must lie in"):
        G.translate(x, 16, g)
    with pytest.raises(ValueError, match="size must lie in"):
        G.cutout(x, 0, g)
    with pytest.raises(ValueError, match="x must be"):
        G.translate(torch.rand(4, 16, 16), 1, g)
