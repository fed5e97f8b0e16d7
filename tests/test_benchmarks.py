"""The benchmark scripts run and agree with their references at a tiny size (their
timings are printed, never asserted)."""

from __future__ import annotations

import subprocess
import sys

import pytest
from booktools import ROOT


@pytest.mark.slow  # about 40 s: two checkpoints written, two processes
def test_safe_lora_end_to_end_runs_and_agrees_at_a_tiny_size():
    out = subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks" / "safe_lora_end_to_end.py"),
            "--layers",
            "2",
            "--dim",
            "128",
            "--threads",
            "1",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    ).stdout
    assert "same modules projected: True" in out
    assert "official / ours, time" in out


def test_pate_teachers_runs_and_agrees_at_a_tiny_size():
    out = subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks" / "pate_teachers.py"),
            "--teachers",
            "4",
            "--n",
            "40",
            "--steps",
            "3",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    ).stdout
    assert "ratio" in out and "the predictions agree" in out
