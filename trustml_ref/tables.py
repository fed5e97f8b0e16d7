"""Results as tables: an HTML table in the notebook and the book, aligned text when
printed.

``results_table`` takes either rows (a list of dicts, one per row) or columns (a dict
from a column name to a sequence of values, all of one length), formats numbers to a
fixed number of decimals and returns a :class:`Table`. Shown as a cell's last value it
renders as HTML; ``print(table)`` gives aligned plain text.
"""

from __future__ import annotations

import html
import numbers
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["Table", "results_table"]


@dataclass(frozen=True, repr=False)
class Table:
    """Formatted cells under named columns, with an optional caption (``repr`` is the
    text form)."""

    columns: tuple[str, ...]
    cells: tuple[tuple[str, ...], ...]
    caption: str | None = None
    numeric: tuple[bool, ...] = ()

    def __str__(self) -> str:
        widths = [
            max(len(c), *(len(row[i]) for row in self.cells))
            for i, c in enumerate(self.columns)
        ]

        def line(values: Sequence[str]) -> str:
            return "  ".join(
                v.rjust(w) if num else v.ljust(w)
                for v, w, num in zip(values, widths, self.numeric)
            )

        rule = "  ".join("-" * w for w in widths)
        body = [line(self.columns), rule, *(line(row) for row in self.cells)]
        return "\n".join(([self.caption] if self.caption else []) + body)

    __repr__ = __str__

    def _repr_html_(self) -> str:
        def cell(tag: str, value: str, num: bool) -> str:
            align = ' style="text-align: right"' if num else ""
            return f"<{tag}{align}>{html.escape(value)}</{tag}>"

        head = "".join(cell("th", c, n) for c, n in zip(self.columns, self.numeric))
        rows = "".join(
            "<tr>"
            + "".join(cell("td", v, n) for v, n in zip(row, self.numeric))
            + "</tr>"
            for row in self.cells
        )
        caption = (
            f"<caption>{html.escape(self.caption)}</caption>" if self.caption else ""
        )
        return (
            f'<table class="trustml-results">{caption}<thead><tr>{head}</tr></thead>'
            f"<tbody>{rows}</tbody></table>"
        )


def _format(value: Any, digits: int, column: str) -> str:
    if value is None:
        return "–"
    if hasattr(value, "item") and getattr(value, "ndim", 0) == 0:
        value = value.item()
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, numbers.Integral):
        return str(int(value))
    if isinstance(value, numbers.Real):
        return f"{float(value):.{digits}f}"
    if isinstance(value, str):
        return value
    raise TypeError(
        f"column {column!r} holds a {type(value).__name__}; cells must be numbers, "
        "strings, booleans or None"
    )


def results_table(
    data: Sequence[Mapping[str, Any]] | Mapping[str, Sequence[Any]],
    *,
    columns: Sequence[str] | None = None,
    digits: int = 3,
    caption: str | None = None,
) -> Table:
    """A table from rows (list of dicts) or columns (dict of equal-length sequences).

    ``columns`` picks and orders the columns (default: in order of first appearance); a
    row without a column shows "–". Numbers get ``digits`` decimals, integers none.
    """
    if not isinstance(digits, int) or digits < 0:
        raise ValueError(f"digits must be a non-negative integer, got {digits!r}")
    if isinstance(data, Mapping):
        lengths = {name: len(values) for name, values in data.items()}
        if len(set(lengths.values())) > 1:
            raise ValueError(f"data's columns must have one length, got {lengths}")
        n = next(iter(lengths.values()), 0)
        rows = [{name: values[i] for name, values in data.items()} for i in range(n)]
    else:
        rows = list(data)
        if not all(isinstance(r, Mapping) for r in rows):
            raise TypeError(
                "data must be a list of dicts (rows) or a dict of sequences (columns)"
            )
    names = (
        list(columns)
        if columns is not None
        else list(dict.fromkeys(k for r in rows for k in r))
    )
    if not names or not rows:
        raise ValueError("data must hold at least one row and one column")
    cells = tuple(tuple(_format(r.get(c), digits, c) for c in names) for r in rows)
    numeric = tuple(
        all(isinstance(r.get(c), numbers.Number) or r.get(c) is None for r in rows)
        for c in names
    )
    return Table(tuple(str(c) for c in names), cells, caption, numeric)
