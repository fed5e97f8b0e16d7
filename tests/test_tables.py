"""Results tables: the same cells from rows and from columns, HTML and aligned text,
clear errors."""

from __future__ import annotations

import numpy as np
import pytest

from trustml_ref.tables import results_table


def test_rows_and_columns_give_the_same_table():
    rows = [
        {"method": "ESD", "ASR": 0.6667, "prompts": 12},
        {"method": "none", "ASR": np.float32(0.25), "prompts": 12},
    ]
    columns = {"method": ["ESD", "none"], "ASR": [0.6667, 0.25], "prompts": [12, 12]}
    a, b = results_table(rows, digits=2), results_table(columns, digits=2)
    assert a == b
    assert a.cells == (("ESD", "0.67", "12"), ("none", "0.25", "12"))
    assert a.numeric == (False, True, True)


def test_text_is_aligned_and_html_is_escaped():
    t = results_table(
        [{"name": "a<b", "x": 1.5}, {"name": "long name", "x": None}],
        caption="Table 1",
        digits=1,
    )
    lines = str(t).splitlines()
    assert lines[0] == "Table 1" and lines[1].split() == ["name", "x"]
    # every row as wide as the header
    assert len({len(line) for line in lines[1:]}) == 1
    assert lines[3].rstrip().endswith("1.5") and lines[4].rstrip().endswith("–")
    # where only text is shown (a terminal, a text output), the aligned table
    assert repr(t) == str(t)
    html = t._repr_html_()
    assert (
        "a&lt;b" in html
        and "<caption>Table 1</caption>" in html
        and html.count("<tr>") == 3
    )


def test_columns_pick_and_order():
    t = results_table([{"a": 1, "b": 2.0}], columns=["b", "a", "c"])
    assert t.columns == ("b", "a", "c") and t.cells == (("2.000", "1", "–"),)


@pytest.mark.parametrize(
    "data,match",
    [
        ({"a": [1, 2], "b": [1]}, "one length"),
        ([], "at least one row"),
        ([{"a": object()}], "column 'a' holds a object"),
        ([1, 2], "list of dicts"),
    ],
)
def test_bad_input_is_named(data, match):
    with pytest.raises((ValueError, TypeError), match=match):
        results_table(data)
