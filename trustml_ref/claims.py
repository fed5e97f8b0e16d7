"""Conclusions as code: every sentence a chapter concludes is a checked ``claim``.

A chapter states each qualitative conclusion of its text (A beats B, X grows with Y, no
certificate is broken, the toy does not show Z) right after the experiment that supports
it::

    claim("DP-SGD costs accuracy at eps = 1", gap.lower > 0, test=gap.test,
    **gap.evidence)

In the profiles whose sizes were chosen to support the conclusions (``book`` and
``colab``), a claim that does not hold raises :class:`ClaimFailed`, naming the statement
and its evidence, so the book build fails. In ``smoke`` the claim is recorded as *not
checked at this size* and the run goes on. :func:`trustml_ref.setup` starts a chapter's
ledger; :func:`trustml_ref.io.record_results` writes the claims made so far into the
chapter's results JSON.

Noisy comparisons state their test: :func:`paired_difference` (mean of paired
differences with its standard error), :func:`mean_difference` (independent runs, Welch's
error), :func:`proportion_difference` (two rates, binomial errors) and
:func:`bootstrap_interval` (a percentile interval) return the numbers and a
one-line description to pass as ``test``.

:func:`glue` hands a number to the text, which quotes it with a ``{glue:text}`` role
(myst-nb), so prose and run cannot drift; it writes the same output myst-nb's ``glue``
writes, and needs no myst-nb where the book is not built (Colab).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = [
    "CHECKED_PROFILES",
    "Claim",
    "ClaimFailed",
    "Difference",
    "Interval",
    "bootstrap_interval",
    "claim",
    "glue",
    "glued",
    "mean_difference",
    "paired_difference",
    "proportion_difference",
    "recorded_claims",
    "start_ledger",
]

CHECKED_PROFILES: tuple[str, ...] = ("book", "colab")
"""Profiles sized to support the chapters' conclusions: a false claim fails the run."""


class ClaimFailed(AssertionError):
    """A chapter's conclusion does not hold in a profile sized to support it."""


@dataclass(frozen=True)
class Claim:
    """One conclusion, whether it held, whether it was checked, and its evidence."""

    statement: str
    holds: bool
    checked: bool
    test: str | None = None
    evidence: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "statement": self.statement,
            "holds": self.holds,
            "checked": self.checked,
            "test": self.test,
            "evidence": self.evidence,
        }

    def line(self) -> str:
        mark = ("holds" if self.holds else "FAILS") if self.checked else "not checked"
        shown = ", ".join(f"{k}={_short(v)}" for k, v in self.evidence.items())
        test = f" [{self.test}]" if self.test else ""
        return f"claim ({mark}): {self.statement}{test}" + (
            f" ({shown})" if shown else ""
        )


_LEDGER: dict[str, Any] = {"profile": None, "claims": []}


def start_ledger(profile: str) -> None:
    """Start a fresh list of claims for a run in ``profile`` (called by ``setup``)."""
    from trustml_ref.config import PROFILES

    if profile not in PROFILES:
        raise ValueError(f"profile must be one of {PROFILES}, got {profile!r}")
    _LEDGER["profile"] = profile
    _LEDGER["claims"] = []


def recorded_claims() -> list[Claim]:
    """The claims made since the last :func:`start_ledger`, in order."""
    return list(_LEDGER["claims"])


def _short(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, (list, tuple)) and len(value) > 6:
        return f"[{', '.join(_short(v) for v in value[:6])}, ...] ({len(value)} values)"
    if isinstance(value, (list, tuple)):
        return f"[{', '.join(_short(v) for v in value)}]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {_short(v)}" for k, v in value.items()) + "}"
    return str(value)


def claim(
    statement: str, holds: Any, *, test: str | None = None, **evidence: Any
) -> Claim:
    """Record the conclusion ``statement``; raise :class:`ClaimFailed` if it is false
    and checked.

    ``holds`` is the condition the run computed (a bool or a NumPy/torch boolean
    scalar); ``test`` says how a noisy comparison was decided (seeds, paired difference,
    bootstrap); ``evidence`` holds the numbers behind it (JSON-ready: numbers, strings,
    lists, arrays). Prints one line, so the reader sees each conclusion checked where it
    is drawn.
    """
    from trustml_ref.io import jsonable

    if not isinstance(statement, str) or not statement.strip():
        raise ValueError("statement must be a non-empty sentence")
    if _LEDGER["profile"] is None:
        raise RuntimeError(
            "claim() needs a run profile: call trustml_ref.setup(PROFILE, SEED, "
            "DEVICE) first"
        )
    if hasattr(holds, "item"):
        holds = holds.item()
    if not isinstance(holds, (bool, np.bool_)):
        raise TypeError(
            f"holds must be a boolean condition, got {type(holds).__name__}: {holds!r}"
        )
    checked = _LEDGER["profile"] in CHECKED_PROFILES
    made = Claim(
        statement,
        bool(holds),
        checked,
        test,
        {k: jsonable(v, k) for k, v in evidence.items()},
    )
    _LEDGER["claims"].append(made)
    print(made.line())
    if checked and not made.holds:
        raise ClaimFailed(f"in profile {_LEDGER['profile']!r}: {made.line()}")
    return made


@dataclass(frozen=True)
class Difference:
    """An estimated difference ``a - b`` with its standard error, and how it was
    estimated."""

    mean: float
    se: float
    n: int
    test: str

    @property
    def lower(self) -> float:
        """``mean - 2 se``: above 0 means ``a`` is larger by more than two standard
        errors."""
        return self.mean - 2 * self.se

    @property
    def upper(self) -> float:
        """``mean + 2 se``: below 0 means ``a`` is smaller by more than two standard
        errors."""
        return self.mean + 2 * self.se

    @property
    def evidence(self) -> dict[str, float | int]:
        return {"difference": self.mean, "standard_error": self.se, "n": self.n}

    def verdict(self, a: str, b: str) -> str:
        """``"<a> ahead"`` or ``"<b> ahead"`` where the difference exceeds two standard
        errors, else ``"no difference detected"``."""
        if self.lower > 0:
            return f"{a} ahead"
        if self.upper < 0:
            return f"{b} ahead"
        return "no difference detected"


def paired_difference(a: Sequence[float], b: Sequence[float]) -> Difference:
    """Paired differences ``d_i = a_i - b_i``: mean and standard error ``std(d,
    ddof=1)/sqrt(n)``.

    Pairs share a seed (or a prompt, or a test point), so the spread common to both is
    removed. Needs at least two pairs.
    """
    a_arr, b_arr = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if a_arr.ndim != 1 or a_arr.shape != b_arr.shape:
        raise ValueError(
            f"a and b must be 1-D of the same length, got shapes {a_arr.shape} and "
            f"{b_arr.shape}"
        )
    if len(a_arr) < 2:
        raise ValueError(
            f"a and b need at least 2 pairs for a standard error, got {len(a_arr)}"
        )
    if not (np.isfinite(a_arr).all() and np.isfinite(b_arr).all()):
        raise ValueError("a and b must be finite")
    d = a_arr - b_arr
    se = float(d.std(ddof=1) / np.sqrt(len(d)))
    return Difference(
        float(d.mean()),
        se,
        len(d),
        f"paired difference over {len(d)} pairs, mean +- 2 standard errors",
    )


def mean_difference(a: Sequence[float], b: Sequence[float]) -> Difference:
    """Difference of the means of two independent samples (e.g. seeds of two methods
    that share nothing), with Welch's standard error ``sqrt(var(a)/n_a + var(b)/n_b)``
    (``ddof=1``)."""
    a_arr, b_arr = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if a_arr.ndim != 1 or b_arr.ndim != 1 or len(a_arr) < 2 or len(b_arr) < 2:
        raise ValueError(
            "a and b must be 1-D with at least 2 values each, got shapes "
            f"{a_arr.shape} and {b_arr.shape}"
        )
    if not (np.isfinite(a_arr).all() and np.isfinite(b_arr).all()):
        raise ValueError("a and b must be finite")
    se = float(np.sqrt(a_arr.var(ddof=1) / len(a_arr) + b_arr.var(ddof=1) / len(b_arr)))
    n = min(len(a_arr), len(b_arr))
    return Difference(
        float(a_arr.mean() - b_arr.mean()),
        se,
        n,
        f"difference of means of {len(a_arr)} and {len(b_arr)} independent runs, +- 2 "
        "Welch standard errors",
    )


def proportion_difference(p_a: float, p_b: float, n: int) -> Difference:
    """Difference of two rates measured on ``n`` units each, with the unpaired binomial
    standard error ``sqrt(p_a(1-p_a)/n + p_b(1-p_b)/n)`` (conservative when the units
    are shared)."""
    for name, p in (("p_a", p_a), ("p_b", p_b)):
        if not 0 <= p <= 1:
            raise ValueError(f"{name} must be a rate in [0, 1], got {p}")
    if n < 2:
        raise ValueError(f"n must be at least 2, got {n}")
    se = float(np.sqrt(p_a * (1 - p_a) / n + p_b * (1 - p_b) / n))
    return Difference(
        float(p_a - p_b),
        se,
        int(n),
        f"difference of two rates on {n} units each, +- 2 binomial standard errors",
    )


@dataclass(frozen=True)
class Interval:
    """A percentile bootstrap interval of a statistic, with the statistic on the data
    itself."""

    estimate: float
    lower: float
    upper: float
    level: float
    n: int
    resamples: int

    @property
    def test(self) -> str:
        return (
            f"{self.level:.0%} percentile bootstrap over {self.n} units, "
            f"{self.resamples} resamples"
        )

    @property
    def evidence(self) -> dict[str, float | int]:
        return {
            "estimate": self.estimate,
            "interval": [self.lower, self.upper],
            "units": self.n,
        }


def bootstrap_interval(
    values: Sequence[float] | np.ndarray,
    statistic: Callable[[np.ndarray], float] = np.mean,
    *,
    level: float = 0.95,
    resamples: int = 2000,
    seed: int = 0,
) -> Interval:
    """Percentile bootstrap: resample the units (rows of ``values``) with replacement.

    ``values`` is 1-D (one number per unit, e.g. a paired difference per prompt) or 2-D
    (one row per unit; ``statistic`` maps the resampled rows to a number).
    """
    data = np.asarray(values, dtype=float)
    if data.ndim not in (1, 2) or len(data) < 2:
        raise ValueError(
            f"values must be 1-D or 2-D with at least 2 units, got shape {data.shape}"
        )
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), got {level}")
    if resamples < 100:
        raise ValueError(f"resamples must be at least 100, got {resamples}")
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, len(data), size=(resamples, len(data)))
    stats = np.array([statistic(data[p]) for p in picks], dtype=float)
    lo, hi = np.quantile(stats, [(1 - level) / 2, (1 + level) / 2])
    return Interval(
        float(statistic(data)), float(lo), float(hi), level, len(data), resamples
    )


_GLUE_PREFIX = "application/papermill.record/"
_GLUED: dict[str, Any] = {}


def glue(name: str, value: Any) -> None:
    """Make ``value`` available to the text's ``{glue:text}`` roles under ``name``;
    shows nothing in the cell.

    Writes the output myst-nb's ``glue(name, value, display=False)`` writes (a
    ``text/plain`` record under papermill's mime prefix with ``scrapbook`` metadata), so
    the book can quote it and Colab needs no myst-nb.
    """
    from IPython.display import display

    if (
        not isinstance(name, str)
        or not name.replace("_", "").replace("-", "").isalnum()
    ):
        raise ValueError(f"name must be letters, digits, '-' or '_', got {name!r}")
    if hasattr(value, "item") and getattr(value, "ndim", 0) == 0:
        value = value.item()
    if isinstance(value, float) and not np.isfinite(value):
        raise ValueError(
            f"glued value {name!r} is {value}; the text must not quote a non-finite "
            "number"
        )
    display(
        {_GLUE_PREFIX + "text/plain": repr(value)},
        raw=True,
        metadata={"scrapbook": {"name": name, "mime_prefix": _GLUE_PREFIX}},
    )
    _GLUED[name] = value


def glued() -> dict[str, Any]:
    """Every value :func:`glue` has made available in this session, by name: what the
    Colab edition's ``‹name›`` placeholders stand for."""
    return dict(_GLUED)
