"""Checks students call in their notebooks, the fallback that keeps a notebook running,
and the namespace grader the instructor-side grader appends to a submitted notebook."""

from __future__ import annotations

import functools
import json
import os
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from trustml_ref.teaching.exercises import EXERCISES, Exercise, for_chapter

GRADE_FILE_ENV = "TRUSTML_GRADE_FILE"


def _as_array(value: Any) -> np.ndarray:
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu().numpy()
    return np.asarray(value, dtype=np.float64)


def _exercise(exercise_id: str) -> Exercise:
    if exercise_id not in EXERCISES:
        raise ValueError(
            f"exercise_id must be one of {sorted(EXERCISES)}, got {exercise_id!r}"
        )
    return EXERCISES[exercise_id]


def run_check(
    exercise_id: str,
    function: Callable,
    *,
    trials: int = 5,
    seed: int | None = None,
    rtol: float = 1e-6,
    atol: float = 1e-9,
) -> tuple[bool, str]:
    """Compare ``function`` with the reference on ``trials`` fresh random inputs.

    Returns ``(passed, message)``; the message says what was expected where it fails. A
    function that raises (``NotImplementedError`` included) fails with the error in the
    message.
    """
    exercise = _exercise(exercise_id)
    # judge the student's code, never the fallback
    function = getattr(function, "__wrapped__", function)
    seed = int(torch.randint(0, 2**31 - 1, (1,))) if seed is None else seed
    g = torch.Generator().manual_seed(seed)
    for trial in range(trials):
        args = exercise.inputs(g)
        expected = _as_array(exercise.reference(*args))
        try:
            got = _as_array(function(*args))
        except NotImplementedError:
            return (
                False,
                f"{exercise_id}: {exercise.function} is not implemented yet (hint: "
                f"{exercise.hint})",
            )
        # a student's bug: report it instead of crashing the notebook
        except Exception as err:
            return (
                False,
                f"{exercise_id}: {exercise.function} raised {type(err).__name__}: "
                f"{err}",
            )
        if got.shape != expected.shape:
            return (
                False,
                f"{exercise_id}: expected shape {expected.shape}, got {got.shape} "
                f"(trial {trial})",
            )
        if not np.allclose(got, expected, rtol=rtol, atol=atol, equal_nan=False):
            worst = (
                np.unravel_index(np.argmax(np.abs(got - expected)), got.shape)
                if got.ndim
                else ()
            )
            return False, (
                f"{exercise_id}: wrong value on random trial {trial}: at index {worst} "
                "expected "
                f"{expected[worst]!r}, got {got[worst]!r}"
            )
    return True, f"{exercise_id}: passed {trials} random trials"


def check(exercise_id: str, function: Callable, **kwargs) -> bool:
    """Student-facing: print PASS/FAIL with what was expected, record it for grading,
    return the result."""
    passed, message = run_check(exercise_id, function, **kwargs)
    print(("PASS  " if passed else "FAIL  ") + message)
    _record(exercise_id, passed)
    return passed


def with_fallback(exercise_id: str, function: Callable) -> Callable:
    """Wrap a student's function: while it raises ``NotImplementedError``, use the
    reference implementation instead and say so, so the rest of the notebook still runs.
    """
    exercise = _exercise(exercise_id)

    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        try:
            return function(*args, **kwargs)
        except NotImplementedError:
            if not wrapper.used_reference:
                print(
                    f"[{exercise_id}] {exercise.function} is not implemented yet: "
                    "using the reference implementation"
                )
            wrapper.used_reference = True
            return exercise.reference(*args, **kwargs)

    wrapper.used_reference = False
    return wrapper


def _record(exercise_id: str, passed: bool) -> None:
    path = os.environ.get(GRADE_FILE_ENV)
    if not path:
        return
    scores = (
        json.loads(open(path).read())
        if os.path.exists(path) and os.path.getsize(path)
        else {}
    )
    scores[exercise_id] = bool(passed)
    with open(path, "w") as fh:
        json.dump(scores, fh)


def grade_namespace(namespace: dict, chapter: str, seed: int) -> dict[str, bool]:
    """Grade every implementation exercise of ``chapter`` on the functions defined in
    ``namespace`` (the executed notebook's globals), with the grader's ``seed``. Unwraps
    fallbacks, so a function that still raises ``NotImplementedError`` scores 0."""
    scores = {}
    for exercise in for_chapter(chapter):
        function = namespace.get(exercise.function)
        function = getattr(function, "__wrapped__", function)
        scores[exercise.id] = (
            function is not None and run_check(exercise.id, function, seed=seed)[0]
        )
        _record(exercise.id, scores[exercise.id])
    return scores
