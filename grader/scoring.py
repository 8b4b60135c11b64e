"""The score of one autograded test cell, computed by the trusted side.

A test cell's grade_id is "test_<key>": <key> is either a check of course_pkg.checks (one graded function, on the
notebook's small example and then on hidden random cases) or a cell check (for example the gradient check a
student runs). The namespace stands for the student's notebook: a sandboxed worker in the grader (engine.py), or a
plain dict in the course's fast in-process tests. Nothing the student's code does can reach this module: it runs in
the grader's process, on arrays the worker sent back as plain data.
"""

from __future__ import annotations

import dataclasses
import io

from course_pkg.checks.core import _report, hidden_cases, run_case, student_for

PREFIX = "test_"


@dataclasses.dataclass
class CellResult:
    """What one test cell shows and earns. error: the cell failed as a whole (shown as an error; nbgrader gives 0)."""

    text: str
    score: float
    error: str | None = None


def key_of(grade_id):
    return grade_id[len(PREFIX):] if grade_id.startswith(PREFIX) else None


def grade_check(registry, key, namespace, seed, points):
    """The notebook's small example first (as its visible self-check: a failure there fails the cell), then the
    hidden cases; the score is the share of hidden cases passed times the points."""
    spec = registry.spec(key)
    student = student_for(namespace, spec, registry)
    problem = student.problem()
    if problem:
        return CellResult("", 0.0, f"{key}: {problem}")
    visible = run_case(registry, spec, student, spec.visible_case())
    report = _report(spec, [visible], f"{key}: visible check on the small example")
    if not visible.passed:
        return CellResult("", 0.0, "\n" + report)
    results = [run_case(registry, spec, student, case) for case in hidden_cases(spec, seed)]
    passed = sum(r.passed for r in results)
    score = round(points * passed / len(results), 2)
    hidden = _report(spec, results, f"{key}: {passed} of {len(results)} hidden checks passed -> "
                                    f"{score:g} of {points:g} points")
    return CellResult(f"{report}\n{hidden}", score)


def grade_cell(registry, grade_id, points, namespace, seed_for):
    """The CellResult of the test cell grade_id; seed_for(key) gives the hidden cases' seed of a check."""
    key = key_of(grade_id)
    if key in registry.specs:
        return grade_check(registry, key, namespace, seed_for(key), points)
    if key in registry.cell_checks:
        out = io.StringIO()
        try:
            registry.cell_checks[key](namespace, out=out)
        except AssertionError as exc:
            return CellResult(out.getvalue(), 0.0, str(exc))
        return CellResult(out.getvalue().rstrip("\n"), float(points))
    return CellResult("", 0.0, f"the grader has no check for the test cell {grade_id!r} of {registry.assignment}")
