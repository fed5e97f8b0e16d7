"""Teaching tools: student editions of the chapters, checks students call, an
instructor grader.

``python -m trustml_ref.teaching make-student --out DIR`` and ``python -m
trustml_ref.teaching grade NB``; see the instructor guide in the book.
"""

from trustml_ref.teaching.checks import check, grade_namespace, run_check, with_fallback
from trustml_ref.teaching.exercises import EXERCISES, Exercise, for_chapter

__all__ = [
    "EXERCISES",
    "Exercise",
    "check",
    "for_chapter",
    "grade_namespace",
    "run_check",
    "with_fallback",
]
