"""The book's one figure style: every chapter calls :func:`apply_style` (via
``setup``)."""

from __future__ import annotations

import matplotlib as mpl
import matplotlib.pyplot as plt

PALETTE: tuple[str, ...] = (
    "#0072B2",
    "#D55E00",
    "#009E73",
    "#CC79A7",
    "#E69F00",
    "#56B4E9",
    "#F0E442",
    "#000000",
)
"""Okabe-Ito colours: distinguishable with the common colour-vision deficiencies."""

STYLE: dict[str, object] = {
    "figure.figsize": (6.4, 3.6),
    "figure.dpi": 110,
    "savefig.dpi": 150,
    "savefig.bbox": "tight",
    "axes.prop_cycle": mpl.cycler(color=list(PALETTE)),
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "axes.titlesize": "medium",
    "legend.frameon": False,
    "font.size": 10,
}


def apply_style() -> None:
    """Apply :data:`STYLE` to matplotlib's global settings."""
    plt.rcParams.update(STYLE)
