"""tools/compare_results.py finds every difference between two chapters' results."""

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))

from compare_results import differences, main  # noqa: E402


def test_identical_results_have_no_differences():
    results = {"a": [1.0, 2.0], "b": {"c": "x", "d": True}}
    assert list(differences(results, json.loads(json.dumps(results)))) == []


def test_every_kind_of_difference_is_reported_with_its_path():
    before = {"a": [1.0, 2.0], "b": {"c": "x"}, "gone": 1, "n": [1]}
    after = {"a": [1.0, 2.5], "b": {"c": "y"}, "new": 1, "n": [1, 2]}
    lines = list(differences(before, after))
    assert any(line.startswith("a[1]: 2.0 before, 2.5 after") for line in lines)
    assert "b.c: 'x' before, 'y' after" in lines
    assert "gone: only in before" in lines and "new: only in after" in lines
    assert "n: length 1 before, 2 after" in lines
    assert len(lines) == 5


def test_rtol_and_bool_are_respected():
    assert list(differences(1.0, 1.0 + 1e-12, rtol=1e-9)) == []
    assert list(differences(1.0, 1.0 + 1e-12)) != []  # bit-identical by default
    assert list(differences(True, 1)) != []  # a flag is not a number


def test_main_compares_folders_and_exits_1_on_a_change(tmp_path, capsys):
    for side, value in (("before", 1.0), ("after", 1.0)):
        (tmp_path / side).mkdir()
        (tmp_path / side / "05.json").write_text(json.dumps({"x": value}))
    assert main([str(tmp_path / "before"), str(tmp_path / "after")]) == 0
    (tmp_path / "after" / "05.json").write_text(json.dumps({"x": 2.0}))
    assert main([str(tmp_path / "before"), str(tmp_path / "after")]) == 1
    assert "05.json: 1 differences" in capsys.readouterr().out
