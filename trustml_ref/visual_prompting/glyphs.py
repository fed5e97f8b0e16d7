"""Glyphs rendered from the fonts matplotlib ships: an offline world with a public
source domain, a private target domain with a real gap, and as many i.i.d. images as a
run asks.

Every image is one character of one *face* (a font file), drawn once at high
resolution (:func:`glyph_bank`) and then, per image, thickened or thinned, warped by a
random affine map, shrunk to the canvas and blurred (:class:`Jitter`). The faces are
split in two: the *source faces* (DejaVu and STIX, 16 faces) make the public data a
source model is trained on, digits and letters; the *target faces* (the five Computer
Modern faces, whose digits include old-style figures) make the private digits.
:func:`shift` widens the gap further with three knobs: elastic distortion, a fixed
additive texture and contrast inversion. Draws are seeded, so two seeds give two
independent samples of one population.
"""

from __future__ import annotations

import string
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

#: the 16 faces of the public source data
SOURCE_FACES = (
    "DejaVuSans.ttf",
    "DejaVuSans-Bold.ttf",
    "DejaVuSans-Oblique.ttf",
    "DejaVuSans-BoldOblique.ttf",
    "DejaVuSansMono.ttf",
    "DejaVuSansMono-Bold.ttf",
    "DejaVuSansMono-Oblique.ttf",
    "DejaVuSansMono-BoldOblique.ttf",
    "DejaVuSerif.ttf",
    "DejaVuSerif-Bold.ttf",
    "DejaVuSerif-Italic.ttf",
    "DejaVuSerif-BoldItalic.ttf",
    "STIXGeneral.ttf",
    "STIXGeneralBol.ttf",
    "STIXGeneralItalic.ttf",
    "STIXGeneralBolIta.ttf",
)
#: the five held-out faces of the private target (cmmi10 draws old-style figures)
TARGET_FACES = ("cmr10.ttf", "cmb10.ttf", "cmss10.ttf", "cmtt10.ttf", "cmmi10.ttf")
DIGITS = string.digits
SOURCE_CHARS = string.digits + string.ascii_uppercase  # 36 source classes
BANK_SIZE = 64  # side of the high-resolution drawing
_INK = 44  # the longer side of a glyph's ink box in the drawing, in pixels
#: stroke changes in bank pixels (erode < 0 < dilate)
STROKES = (-1, 0, 2, 4)


def _font_dir() -> Path:
    import matplotlib

    return Path(matplotlib.get_data_path()) / "fonts" / "ttf"


def _draw(face: str, char: str) -> torch.Tensor:
    """One glyph as a (BANK_SIZE, BANK_SIZE) tensor in [0, 1], ink 1, its ink box
    scaled to ``_INK`` pixels on the longer side and centred."""
    from matplotlib.ft2font import FT2Font

    path = _font_dir() / face
    if not path.is_file():
        raise FileNotFoundError(
            f"face {face!r} is not among the fonts this matplotlib ships "
            f"({path.parent})"
        )
    font = FT2Font(str(path))
    if ord(char) not in font.get_charmap():
        raise ValueError(f"face {face!r} has no glyph for char {char!r}")
    font.set_size(2 * _INK, 72)
    font.set_text(char)
    font.draw_glyphs_to_bitmap(antialiased=True)
    ink = torch.as_tensor(np.asarray(font.get_image()), dtype=torch.float32) / 255.0
    rows, cols = torch.nonzero(ink > 0.05, as_tuple=True)
    if len(rows) == 0:
        raise ValueError(f"face {face!r} draws char {char!r} without ink")
    ink = ink[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1]
    scale = _INK / max(ink.shape)
    h, w = (max(1, round(s * scale)) for s in ink.shape)
    ink = F.interpolate(ink[None, None], size=(h, w), mode="area")[0, 0]
    out = torch.zeros(BANK_SIZE, BANK_SIZE)
    top, left = (BANK_SIZE - h) // 2, (BANK_SIZE - w) // 2
    out[top : top + h, left : left + w] = ink
    return out.clamp(0, 1)


@lru_cache(maxsize=8)
def glyph_bank(faces: tuple[str, ...], chars: str) -> torch.Tensor:
    """Every (face, char) glyph at every stroke change of :data:`STROKES`: a tensor
    (len(STROKES), len(faces), len(chars), BANK_SIZE, BANK_SIZE) in [0, 1].

    A stroke change of ``s`` pixels is a grey dilation (``s > 0``) or erosion
    (``s < 0``) by a square of side ``abs(s) + 1`` pixels."""
    if not faces or not chars:
        raise ValueError("faces and chars must be non-empty")
    known = set(SOURCE_FACES + TARGET_FACES)
    unknown = [f for f in faces if f not in known]
    if unknown:
        raise ValueError(f"unknown faces {unknown}; use SOURCE_FACES or TARGET_FACES")
    drawn = torch.stack([torch.stack([_draw(f, c) for c in chars]) for f in faces])
    flat = drawn.reshape(-1, 1, BANK_SIZE, BANK_SIZE)
    levels = []
    for s in STROKES:
        k = abs(s) + 1
        if s == 0:
            levels.append(flat)
            continue
        grow = flat if s > 0 else -flat
        grown = F.max_pool2d(F.pad(grow, (k // 2, (k - 1) // 2) * 2), k, stride=1)
        levels.append(grown if s > 0 else -grown)
    return torch.stack(levels).reshape(len(STROKES), *drawn.shape)


@dataclass(frozen=True)
class Jitter:
    """The per-image randomness of a drawn glyph: rotation (degrees, uniform in
    ±``rotation``), scale (uniform in ``scale``), shear (uniform in ±``shear``),
    translation (uniform in ±``shift`` of the canvas), a stroke change drawn from
    :data:`STROKES`, and a Gaussian blur with standard deviation uniform in ``blur``
    canvas pixels."""

    rotation: float = 12.0
    scale: tuple[float, float] = (0.75, 1.05)
    shear: float = 0.2
    shift: float = 0.08
    blur: tuple[float, float] = (0.0, 0.7)

    def __post_init__(self) -> None:
        lo, hi = self.scale
        if not 0 < lo <= hi:
            raise ValueError(
                f"scale must be (lo, hi) with 0 < lo <= hi, got {self.scale}"
            )
        lo, hi = self.blur
        if not 0 <= lo <= hi:
            raise ValueError(
                f"blur must be (lo, hi) with 0 <= lo <= hi, got {self.blur}"
            )
        for name in ("rotation", "shear", "shift"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")


NO_JITTER = Jitter(rotation=0.0, scale=(1.0, 1.0), shear=0.0, shift=0.0, blur=(0, 0))


def _uniform(g: torch.Generator, n: int, lo: float, hi: float) -> torch.Tensor:
    return lo + (hi - lo) * torch.rand(n, generator=g)


def _gaussian_blur(x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """Blur each image (n, 1, H, W) with its own standard deviation ``sigma`` (n,)."""
    radius = 2
    t = torch.arange(-radius, radius + 1, dtype=x.dtype)
    kernel = torch.exp(-(t**2)[None] / (2 * sigma.clamp_min(1e-3)[:, None] ** 2))
    kernel = kernel / kernel.sum(1, keepdim=True)  # (n, 5)
    n = x.shape[0]
    y = x.reshape(1, n, *x.shape[2:])
    y = F.pad(y, (radius,) * 4, mode="replicate")
    y = F.conv2d(y, kernel[:, None, None, :], groups=n)
    y = F.conv2d(y, kernel[:, None, :, None], groups=n)
    return y.reshape_as(x)


def glyphs(
    n: int,
    faces: tuple[str, ...] = SOURCE_FACES,
    chars: str = SOURCE_CHARS,
    canvas: int = 16,
    jitter: Jitter = Jitter(),
    seed: int = 0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` i.i.d. images (n, 1, canvas, canvas) in [0, 1] and their labels (the index
    of the char in ``chars``): face, char and stroke uniform, then the :class:`Jitter`.

    The affine map sends canvas coordinates u in [-1, 1]^2 to bank coordinates
    A u + t with A = R(theta) [[1, shear], [0, 1]] / scale; the bank is sampled at
    twice the canvas resolution and averaged 2x2, so thin strokes do not alias. Each
    image is divided by its maximum, so the brightest ink is 1."""
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    if canvas < 4:
        raise ValueError(f"canvas must be >= 4 pixels, got {canvas}")
    bank = glyph_bank(tuple(faces), chars)
    g = torch.Generator().manual_seed(seed)
    face = torch.randint(len(faces), (n,), generator=g)
    label = torch.randint(len(chars), (n,), generator=g)
    stroke = torch.randint(len(STROKES), (n,), generator=g)
    theta = torch.deg2rad(_uniform(g, n, -jitter.rotation, jitter.rotation))
    scale = _uniform(g, n, *jitter.scale)
    shear = _uniform(g, n, -jitter.shear, jitter.shear)
    t = 2 * jitter.shift * (2 * torch.rand(n, 2, generator=g) - 1)
    sigma = _uniform(g, n, *jitter.blur)
    cos, sin = torch.cos(theta), torch.sin(theta)
    rotation = torch.stack(
        [torch.stack([cos, -sin], -1), torch.stack([sin, cos], -1)], 1
    )
    shearing = torch.eye(2).repeat(n, 1, 1)
    shearing[:, 0, 1] = shear
    a = rotation @ shearing / scale[:, None, None]
    grid = F.affine_grid(
        torch.cat([a, t[:, :, None]], 2), [n, 1, 2 * canvas, 2 * canvas], False
    )
    drawn = bank[stroke, face, label][:, None]
    x = F.avg_pool2d(F.grid_sample(drawn, grid, align_corners=False), 2)
    x = torch.where(sigma[:, None, None, None] > 0, _gaussian_blur(x, sigma), x)
    return (x / x.amax((1, 2, 3), keepdim=True).clamp_min(1e-6)).clamp(0, 1), label


def texture(canvas: int = 16, seed: int = 0) -> torch.Tensor:
    """A fixed (1, 1, canvas, canvas) pattern in [-1, 1]: two oriented gratings and
    smoothed noise, the same for every image of a domain (``seed`` picks it)."""
    g = torch.Generator().manual_seed(seed)
    u = torch.linspace(-1, 1, canvas)
    yy, xx = torch.meshgrid(u, u, indexing="ij")
    freq, angle, phase = torch.rand(3, 2, generator=g)
    waves = [
        torch.cos(
            torch.pi * (2 + 3 * freq[i]) * (xx * torch.cos(angle[i] * torch.pi) + yy)
            + 2 * torch.pi * phase[i]
        )
        for i in range(2)
    ]
    noise = _gaussian_blur(
        torch.randn(1, 1, canvas, canvas, generator=g), 1.0 * torch.ones(1)
    )
    pattern = waves[0] + waves[1] + 2 * noise[0, 0] / noise.std()
    return (pattern / pattern.abs().max())[None, None]


def shift(
    x: torch.Tensor,
    elastic: float = 0.0,
    texture_amplitude: float = 0.0,
    invert: float = 0.0,
    seed: int = 0,
    texture_seed: int = 0,
) -> torch.Tensor:
    """Widen a domain gap. ``elastic``: a random displacement field (Gaussian noise
    smoothed with sigma = 2 pixels) of RMS length ``elastic`` canvas pixels per image;
    ``texture_amplitude``: x + a * T for the domain's fixed :func:`texture` T (so one
    additive full-canvas prompt can undo it, a border prompt cannot); ``invert``: the
    probability that an image is 1 - x. The result is clipped to [0, 1]."""
    if x.ndim != 4 or x.shape[1] != 1 or x.shape[2] != x.shape[3]:
        raise ValueError(f"x must be (n, 1, s, s) images, got shape {tuple(x.shape)}")
    if elastic < 0 or texture_amplitude < 0:
        raise ValueError("elastic and texture_amplitude must be >= 0")
    if not 0 <= invert <= 1:
        raise ValueError(f"invert is a probability in [0, 1], got {invert}")
    n, _, s, _ = x.shape
    g = torch.Generator().manual_seed(seed)
    if elastic > 0:
        field = torch.randn(n * 2, 1, s, s, generator=g)
        field = _gaussian_blur(field, 2.0 * torch.ones(n * 2)).reshape(n, 2, s, s)
        rms = field.pow(2).sum(1).mean((1, 2)).sqrt()[:, None, None, None]
        field = field / rms * elastic * 2 / s  # pixels to [-1, 1] coordinates
        base = F.affine_grid(torch.eye(2, 3).repeat(n, 1, 1), [n, 1, s, s], False)
        x = F.grid_sample(x, base + field.permute(0, 2, 3, 1), align_corners=False)
    x = x + texture_amplitude * texture(s, texture_seed)
    flip = torch.rand(n, generator=g) < invert
    x = torch.where(flip[:, None, None, None], 1 - x, x)
    return x.clamp(0, 1)


def _check_images(x: torch.Tensor) -> None:
    if x.ndim != 4 or x.shape[2] != x.shape[3] or x.shape[0] == 0:
        raise ValueError(f"x must be (n, c, s, s) images, got shape {tuple(x.shape)}")


def translate(
    x: torch.Tensor, max_shift: int, generator: torch.Generator
) -> torch.Tensor:
    """Every image moved by its own integer offset, each coordinate uniform in
    ``[-max_shift, max_shift]``; the edge pixels are repeated into the gap."""
    _check_images(x)
    if max_shift < 0 or max_shift >= x.shape[-1]:
        raise ValueError(
            f"max_shift must lie in [0, {x.shape[-1] - 1}], got {max_shift}"
        )
    n, s = x.shape[0], x.shape[-1]
    padded = F.pad(x, (max_shift,) * 4, mode="replicate")
    dy, dx = torch.randint(0, 2 * max_shift + 1, (2, n, 1), generator=generator)
    rows, cols = torch.arange(s) + dy, torch.arange(s) + dx  # (n, s) each
    images = torch.arange(n)[:, None, None]
    return padded.permute(0, 2, 3, 1)[
        images, rows[:, :, None], cols[:, None, :]
    ].permute(0, 3, 1, 2)


def cutout(x: torch.Tensor, size: int, generator: torch.Generator) -> torch.Tensor:
    """Every image with one ``size`` x ``size`` square, at a uniform position, set to
    the image's mean (DeVries and Taylor, 2017)."""
    _check_images(x)
    n, s = x.shape[0], x.shape[-1]
    if not 1 <= size <= s:
        raise ValueError(f"size must lie in [1, {s}], got {size}")
    top, left = torch.randint(0, s - size + 1, (2, n, 1), generator=generator)
    span = torch.arange(s)
    inside_r = (span >= top) & (span < top + size)  # (n, s)
    inside_c = (span >= left) & (span < left + size)
    mask = (inside_r[:, :, None] & inside_c[:, None, :])[:, None]
    return torch.where(mask, x.mean((1, 2, 3), keepdim=True), x)


def weak_view(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """FixMatch's weak augmentation (Sohn et al., 2020) for glyphs: a shift of at most
    one pixel."""
    return translate(x, 1, generator)


def strong_view(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """FixMatch's strong augmentation for glyphs: a shift of at most two pixels, a
    6 x 6 cutout and Gaussian noise of standard deviation 0.05, clipped to [0, 1]."""
    x = cutout(translate(x, 2, generator), 6, generator)
    return (x + 0.05 * torch.randn(x.shape, generator=generator)).clamp(0, 1)
