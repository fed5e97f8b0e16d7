"""The benchmark scripts run and agree with their references at a tiny size (their
timings are printed, never asserted)."""

from __future__ import annotations

import subprocess
import sys

import pytest
from booktools import ROOT


def _benchmark(script: str, *args: str) -> str:
    """The standard output of ``benchmarks/<script>`` run with ``args`` (it must exit
    0: a benchmark exits non-zero when its two computations disagree)."""
    return subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / script), *args],
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    ).stdout


@pytest.mark.slow  # about 40 s: two checkpoints written, two processes
def test_safe_lora_end_to_end_runs_and_agrees_at_a_tiny_size():
    out = _benchmark(
        "safe_lora_end_to_end.py", "--layers", "2", "--dim", "128", "--threads", "1"
    )
    assert "same modules projected: True" in out
    assert "official / ours, time" in out


def test_pate_teachers_runs_and_agrees_at_a_tiny_size():
    out = _benchmark("pate_teachers.py", "--teachers", "4", "--n", "40", "--steps", "3")
    assert "ratio" in out and "the predictions agree" in out
