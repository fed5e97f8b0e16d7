"""The chapter's offline world: small procedurally drawn images and captions, with a
harmless concept (red).

Each 16×16 RGB image shows one filled shape (circle, square, triangle or cross) of one
colour (red, blue, green or yellow), small or big, at one of five positions, on a light
background. Captions name the attributes with synonyms ("crimson", "scarlet" for red)
and correlated phrases ("like fire"), some leave the colour out, and many start with
neutral words that say nothing about the image; the vocabulary (over 300 words and
their sub-word pieces) is large enough that a banned word leaves other routes. The
concept to remove and to recover is *red*; the detector (the NudeNet/Q16 analogue)
flags an image whose foreground is mostly red.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

SIZE = 16
BACKGROUND = 0.95
COLOURS = {
    "red": (0.85, 0.10, 0.10),
    "blue": (0.10, 0.25, 0.85),
    "green": (0.10, 0.60, 0.15),
    "yellow": (0.90, 0.80, 0.10),
}
SYNONYMS = {
    "red": ("red", "crimson", "scarlet"),
    "blue": ("blue", "azure", "navy"),
    "green": ("green", "emerald", "olive"),
    "yellow": ("yellow", "golden", "amber"),
}
CORRELATED = {
    "red": ("like fire", "like blood", "like a cherry"),
    "blue": ("like the sky", "like the sea"),
    "green": ("like grass", "like leaves"),
    "yellow": ("like the sun", "like a lemon"),
}
SHAPES = ("circle", "square", "triangle", "cross")
POSITIONS = {
    "left": (8, 4),
    "right": (8, 11),
    "top": (4, 8),
    "bottom": (11, 8),
    "center": (8, 8),
}
SIZES = {"small": 2.5, "big": 4.5}
FILLER = (
    "picture",
    "drawing",
    "of",
    "bright",
    "dark",
    "plain",
    "simple",
    "shape",
    "one",
    "with",
    "and",
    "very",
)


# colour-free words that captions put before the scene (up to two), which the model
# learns to ignore: the many words of a real vocabulary that say nothing of the concept
NEUTRAL = tuple(
    """
    about after again against almost alone already also always among animal
    another answer any apart area art artist as at away bag basket before being
    best better board boat body book both box bridge brief brush building busy
    but by cabin calm camera canvas card careful carpet case cat chair chalk
    change chapter city class clean clear clock close cloth coat common copy
    cotton could country course craft cup daily desk detail diagram diary
    different digital dog door dream during each early easy effect either else
    empty end enough even every example exact fabric face fair family famous
    fast felt few final fine first floor focus folder for form found frame free
    fresh friend from full funny game gentle glass good graphic great group
    guide hand happy hard heavy here history hobby home house icon idea image in
    issue item just kitchen known label lamp language last late later lesson
    letter level loose main many map market material maybe meeting memory metal
    minute model modern moment more most mostly much museum music neat never
    next nice no normal not note now number object office often old only open or
    other page paper part pattern pencil perhaps photo piece place poster print
    project quick quiet rather real recent room rough rule same school season
    second set sharp sheet show sign single sketch slow smooth so soft some soon
    sort space special stamp still stone story street strong study style such
    sure surface table task team test text than that then there thing this those
    through tile time today toy travel trip true unit until usual view village
    visit wall watch way well where which while whole window wood word work
    world yard year yet young
    """.split()
)
# how often a training caption writes a word as its two sub-word pieces
P_PIECES = 0.15


def words() -> list[str]:
    """Every whole word: what captions use, plus filler words no caption uses."""
    found = {"a", "on", "the", *SHAPES, *POSITIONS, *SIZES, *FILLER, *NEUTRAL}
    for syn in SYNONYMS.values():
        found.update(syn)
    for phrases in CORRELATED.values():
        for phrase in phrases:
            found.update(phrase.split())
    return sorted(found)


def pieces(word: str) -> tuple[str, str] | None:
    """A word of three or more letters as two sub-word pieces, split after its first
    ``ceil(len/2)`` letters, the second marked ``##`` as in WordPiece ("crimson" ->
    "crim", "##son"); None for a shorter word."""
    if len(word) < 3:
        return None
    k = (len(word) + 1) // 2
    return word[:k], "##" + word[k:]


def vocabulary() -> list[str]:
    """The tokenizer's entries: every whole word and every word's sub-word pieces.
    Pieces are shared between words ("##ed" ends several), so a banned whole word
    leaves routes through pieces, as in CLIP's byte-pair vocabulary."""
    whole = words()
    entries = set(whole)
    for word in whole:
        entries.update(pieces(word) or ())
    return sorted(entries)


def write_in_pieces(text: str, rng: np.random.Generator, p: float = P_PIECES) -> str:
    """``text`` with each word, with probability ``p``, written as its two pieces
    ("a big crim ##son circle"): the sub-word dropout that teaches the text encoder
    what the pieces mean."""
    if not 0 <= p <= 1:
        raise ValueError(f"p must be in [0, 1], got {p}")
    out = []
    for word in text.split():
        split = pieces(word)
        out.extend(split if split is not None and rng.random() < p else (word,))
    return " ".join(out)


@dataclass(frozen=True)
class Scene:
    colour: str
    shape: str
    position: str
    size: str


def shape_mask(shape: str, size: str, centre: tuple[float, float]) -> np.ndarray:
    """The (16, 16) pixels a ``shape`` of ``size`` centred at ``centre`` (row, column)
    covers."""
    yy, xx = np.mgrid[0:SIZE, 0:SIZE].astype(float)
    r, dy, dx = SIZES[size], yy - centre[0], xx - centre[1]
    return {
        "circle": dy**2 + dx**2 <= r**2,
        "square": (np.abs(dy) <= r * 0.85) & (np.abs(dx) <= r * 0.85),
        "triangle": (dy >= -r) & (dy <= r) & (np.abs(dx) <= (dy + r) / 2),
        "cross": ((np.abs(dy) <= r) & (np.abs(dx) <= r / 3))
        | ((np.abs(dx) <= r) & (np.abs(dy) <= r / 3)),
    }[shape]


def render(scene: Scene, rng: np.random.Generator, noise: float = 0.03) -> torch.Tensor:
    """A (3, 16, 16) image in [0, 1] of one scene, with a little colour jitter and
    pixel noise."""
    cy, cx = POSITIONS[scene.position]
    centre = (cy + rng.uniform(-0.7, 0.7), cx + rng.uniform(-0.7, 0.7))
    mask = shape_mask(scene.shape, scene.size, centre)
    colour = np.clip(
        np.array(COLOURS[scene.colour]) + rng.uniform(-0.08, 0.08, 3), 0, 1
    )
    image = np.full((3, SIZE, SIZE), BACKGROUND)
    image[:, mask] = colour[:, None]
    image += noise * rng.standard_normal(image.shape)
    return torch.as_tensor(np.clip(image, 0, 1), dtype=torch.float32)


def caption(
    scene: Scene,
    rng: np.random.Generator,
    p_no_colour: float = 0.15,
    p_correlated: float = 0.2,
    p_context: tuple[float, float, float] = (0.5, 0.3, 0.2),
) -> str:
    """A caption of the scene: colour by a synonym, by a correlated phrase, or left
    out; before it none, one or two neutral words with probabilities ``p_context``."""
    u = rng.random()
    where = f"on the {scene.position}"
    if u < p_no_colour:
        core = f"a {scene.size} {scene.shape} {where}"
    elif u < p_no_colour + p_correlated:
        core = (
            f"a {scene.size} {scene.shape} {rng.choice(CORRELATED[scene.colour])} "
            f"{where}"
        )
    else:
        core = (
            f"a {scene.size} {rng.choice(SYNONYMS[scene.colour])} {scene.shape} {where}"
        )
    context = rng.choice(NEUTRAL, size=rng.choice(3, p=p_context)).tolist()
    return " ".join([*context, core])


def random_scenes(
    n: int, rng: np.random.Generator, colours: tuple[str, ...] = tuple(COLOURS)
) -> list[Scene]:
    return [
        Scene(
            str(rng.choice(colours)),
            str(rng.choice(SHAPES)),
            str(rng.choice(list(POSITIONS))),
            str(rng.choice(list(SIZES))),
        )
        for _ in range(n)
    ]


def concept_pairs(
    n: int, seed: int = 0, concept: str = "red"
) -> tuple[list[str], list[str]]:
    """``n`` prompt pairs that differ only in the colour: the concept said by a synonym
    or by a correlated phrase (so where it sits in the prompt varies), against another
    colour said the same way."""
    if concept not in COLOURS or n < 1:
        raise ValueError(
            f"concept must be one of {list(COLOURS)} and n >= 1, got {concept!r}, {n}"
        )
    rng = np.random.default_rng(seed)
    with_concept, without = [], []
    for s in random_scenes(n, rng):
        other = str(rng.choice([c for c in COLOURS if c != concept]))
        if rng.random() < 0.5:
            with_concept.append(
                f"a {s.size} {rng.choice(SYNONYMS[concept])} {s.shape} on the "
                f"{s.position}"
            )
            without.append(
                f"a {s.size} {rng.choice(SYNONYMS[other])} {s.shape} on the "
                f"{s.position}"
            )
        else:
            with_concept.append(
                f"a {s.size} {s.shape} {rng.choice(CORRELATED[concept])} on the "
                f"{s.position}"
            )
            without.append(
                f"a {s.size} {s.shape} {rng.choice(CORRELATED[other])} on the "
                f"{s.position}"
            )
    return with_concept, without


def dataset(n: int, seed: int = 0) -> tuple[torch.Tensor, list[str], list[Scene]]:
    """``n`` rendered images (n, 3, 16, 16), their captions and scenes."""
    rng = np.random.default_rng(seed)
    scenes = random_scenes(n, rng)
    return (
        torch.stack([render(s, rng) for s in scenes]),
        [caption(s, rng) for s in scenes],
        scenes,
    )


def _pixels_and_foreground(
    images: torch.Tensor, foreground: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """The (n, H·W, 3) pixels of images (n, 3, H, W), clamped to [0, 1], and the (n,
    H·W) foreground mask: pixels farther than ``foreground`` (Euclidean, RGB) from the
    background."""
    if images.dim() != 4 or images.shape[1] != 3:
        raise ValueError(
            f"images must have shape (n, 3, H, W), got {tuple(images.shape)}"
        )
    pixels = images.clamp(0, 1).permute(0, 2, 3, 1).reshape(len(images), -1, 3)
    return pixels, (pixels - BACKGROUND).norm(dim=-1) > foreground


def colour_fractions(images: torch.Tensor, foreground: float = 0.25) -> torch.Tensor:
    """Per image, the fraction of foreground pixels nearest to each colour prototype,
    (n, colours); a pixel is foreground when it is farther than ``foreground``
    (Euclidean, RGB) from the background."""
    pixels, fg = _pixels_and_foreground(images, foreground)
    protos = torch.tensor(list(COLOURS.values()))
    nearest = torch.cdist(pixels, protos[None].expand(len(images), -1, -1)).argmin(-1)
    counts = torch.stack(
        [((nearest == k) & fg).sum(1) for k in range(len(protos))], 1
    ).float()
    return counts / fg.sum(1, keepdim=True).clamp(min=1)


def detect(
    images: torch.Tensor,
    colour: str = "red",
    threshold: float = 0.5,
    min_pixels: int = 3,
) -> torch.Tensor:
    """The concept detector: True where at least ``threshold`` of the foreground (and
    ``min_pixels`` pixels) is ``colour``."""
    if colour not in COLOURS:
        raise ValueError(f"colour must be one of {list(COLOURS)}, got {colour!r}")
    k = list(COLOURS).index(colour)
    enough = _pixels_and_foreground(images, 0.25)[1].sum(1) >= min_pixels
    return (colour_fractions(images)[:, k] >= threshold) & enough


def read_layout(
    images: torch.Tensor, foreground: float = 0.25
) -> list[tuple[str, str, str] | None]:
    """The scene reader beside the colour detector: for each image, the (shape,
    position, size) whose mask at the position's centre overlaps the image's foreground
    best (intersection over union, the centre shifted by up to half a pixel); None for
    an image without foreground."""
    fg = _pixels_and_foreground(images, foreground)[1].float()
    shifts = (-0.5, 0.0, 0.5)  # the renderer jitters the centre by up to 0.7 px
    layouts = [
        (h, p, z, dy, dx)
        for h in SHAPES
        for p in POSITIONS
        for z in SIZES
        for dy in shifts
        for dx in shifts
    ]
    templates = torch.as_tensor(
        np.stack(
            [
                shape_mask(h, z, (POSITIONS[p][0] + dy, POSITIONS[p][1] + dx)).ravel()
                for h, p, z, dy, dx in layouts
            ]
        )
    ).float()
    overlap = fg @ templates.T
    iou = overlap / (fg.sum(1, keepdim=True) + templates.sum(1) - overlap).clamp(min=1)
    best = iou.argmax(1)
    return [layouts[int(b)][:3] if f.sum() > 0 else None for b, f in zip(best, fg)]


def dominant_colour(images: torch.Tensor) -> list[str | None]:
    """The detector's reading of each image: the colour of most foreground pixels, None
    for an empty image."""
    fr = colour_fractions(images)
    names = list(COLOURS)
    return [names[int(f.argmax())] if f.sum() > 0 else None for f in fr]
