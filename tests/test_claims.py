"""Claims: false conclusions fail the book profiles, are recorded in smoke, reach the
results JSON."""

from __future__ import annotations

import json

import numpy as np
import pytest

from trustml_ref.claims import (
    ClaimFailed,
    bootstrap_interval,
    claim,
    glue,
    mean_difference,
    paired_difference,
    proportion_difference,
    recorded_claims,
    start_ledger,
)
from trustml_ref.io import record_results


@pytest.mark.parametrize("profile", ["book", "colab"])
def test_false_claim_fails_where_the_experiment_is_sized_for_it(profile):
    start_ledger(profile)
    made = claim("two exceeds one", 2 > 1, gap=1.0)
    assert made.holds and made.checked
    with pytest.raises(ClaimFailed, match=r"one exceeds two.*gap=-1"):
        claim("one exceeds two", np.bool_(1 > 2), gap=-1.0)
    assert [c.statement for c in recorded_claims()] == [
        "two exceeds one",
        "one exceeds two",
    ]


def test_smoke_records_a_false_claim_as_not_checked(capsys):
    start_ledger("smoke")
    made = claim("one exceeds two", 1 > 2, test="none")
    assert not made.holds and not made.checked
    assert "claim (not checked): one exceeds two [none]" in capsys.readouterr().out


def test_claims_reach_the_results_json(tmp_path):
    start_ledger("smoke")
    claim("a holds", True, values=np.array([0.5, 0.25]))
    path = tmp_path / "results.json"
    record_results(path, acc=0.5)
    written = json.loads(path.read_text())["claims"]
    assert written == [
        {
            "statement": "a holds",
            "holds": True,
            "checked": False,
            "test": None,
            "evidence": {"values": [0.5, 0.25]},
        }
    ]
    with pytest.raises(ValueError, match="'claims' is written by record_results"):
        record_results(None, claims=[])


def test_a_ledger_is_fresh_per_run():
    start_ledger("book")
    claim("x", True)
    start_ledger("book")
    assert recorded_claims() == []


def test_bad_claims_are_refused():
    start_ledger("book")
    with pytest.raises(TypeError, match="holds must be a boolean"):
        claim("a number is not a condition", 0.7)
    with pytest.raises(ValueError, match="statement must be a non-empty"):
        claim("  ", True)
    with pytest.raises(ValueError, match="must be finite"):
        claim("nan evidence", True, value=float("nan"))
    with pytest.raises(ValueError, match="profile must be one of"):
        start_ledger("fast")


def test_paired_difference_reference_values():
    d = paired_difference([3.0, 5.0, 4.0], [1.0, 2.0, 3.0])  # differences 2, 3, 1
    assert (
        d.mean == pytest.approx(2.0)
        and d.se == pytest.approx(1 / np.sqrt(3))
        and d.n == 3
    )
    assert d.lower == pytest.approx(2 - 2 / np.sqrt(3)) and d.upper == pytest.approx(
        2 + 2 / np.sqrt(3)
    )
    # pairing removes the spread the two share: the same data unpaired would not be
    # separated
    shared = np.array([0.1, 0.5, 0.9, 0.3])
    assert paired_difference(shared + 0.01, shared).lower > 0
    assert paired_difference(shared + 0.01, shared).verdict("A", "B") == "A ahead"
    assert paired_difference(shared, shared + 0.01).verdict("A", "B") == "B ahead"
    assert d.verdict("A", "B") == "A ahead"  # 2 - 2/sqrt(3) > 0
    noisy = paired_difference([1.0, 0.0, 1.0], [0.0, 1.0, 0.0])
    assert noisy.verdict("A", "B") == "no difference detected"
    with pytest.raises(ValueError, match="same length"):
        paired_difference([1.0, 2.0], [1.0])
    with pytest.raises(ValueError, match="at least 2 pairs"):
        paired_difference([1.0], [0.0])


def test_mean_difference_reference_values():
    d = mean_difference([1.0, 2.0, 3.0], [0.0, 0.0, 0.0, 0.0])
    assert (
        d.mean == pytest.approx(2.0)
        and d.se == pytest.approx(np.sqrt(1.0 / 3))
        and d.n == 3
    )
    assert "Welch" in d.test
    with pytest.raises(ValueError, match="at least 2 values"):
        mean_difference([1.0], [0.0, 1.0])


def test_proportion_difference_reference_values():
    d = proportion_difference(0.9, 0.5, 100)
    assert d.mean == pytest.approx(0.4) and d.se == pytest.approx(
        np.sqrt(0.09 / 100 + 0.25 / 100)
    )
    assert "100 units" in d.test and d.evidence["n"] == 100
    with pytest.raises(ValueError, match="p_b must be a rate"):
        proportion_difference(0.5, 1.5, 10)


def test_bootstrap_interval_covers_and_is_deterministic():
    rng = np.random.default_rng(1)
    values = rng.normal(0.3, 1.0, size=400)
    a, b = bootstrap_interval(values, seed=3), bootstrap_interval(values, seed=3)
    assert a == b
    assert a.lower < a.estimate < a.upper and a.estimate == pytest.approx(values.mean())
    # normal theory
    assert a.upper - a.lower == pytest.approx(2 * 1.96 / np.sqrt(400), rel=0.2)
    rows = np.stack([values, values + 1], axis=1)  # 2-D: a statistic of whole rows
    assert bootstrap_interval(
        rows, lambda r: float((r[:, 1] - r[:, 0]).mean())
    ).lower == pytest.approx(1.0)
    with pytest.raises(ValueError, match="level must be in"):
        bootstrap_interval(values, level=1.5)


def test_glue_writes_what_myst_nb_reads(monkeypatch):
    shown = []
    monkeypatch.setattr(
        "IPython.display.display", lambda data, **kw: shown.append((data, kw))
    )
    glue("acc_gap", np.float64(0.125))
    ((data, kw),) = shown
    assert data == {"application/papermill.record/text/plain": "0.125"}
    assert kw["metadata"] == {
        "scrapbook": {"name": "acc_gap", "mime_prefix": "application/papermill.record/"}
    }
    with pytest.raises(ValueError, match="non-finite"):
        glue("bad", float("inf"))
    with pytest.raises(ValueError, match="name must be"):
        glue("has space", 1)
    # what the Colab edition's placeholders stand for; refused values are absent
    from trustml_ref.claims import glued

    assert glued()["acc_gap"] == 0.125 and type(glued()["acc_gap"]) is float
    assert "bad" not in glued() and "has space" not in glued()
