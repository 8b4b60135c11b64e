"""The score of one autograded test cell, computed by the trusted side.

A test cell's grade_id is "test_<key>": <key> is either a check of course_pkg.checks (one graded function, on the
notebook's small example and then on hidden random cases) or a cell check (for example the gradient check a
student runs). The namespace stands for the student's notebook: a sandboxed worker in the grader (engine.py), or a
plain dict in the course's fast in-process tests. Nothing the student's code does can reach this module: it runs in
the grader's process, on arrays the worker sent back as plain data.
"""

from __future__ import annotations

import dataclasses
import inspect
import io

import numpy as np

from course_pkg.checks.core import _copy_inputs, _report, _student_error, hidden_cases, run_case, student_for

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
            check = registry.cell_checks[key]
            # given the registry that scores (the grader's copy adds the mutant search), it can name more
            takes_registry = "registry" in inspect.signature(check).parameters
            check(namespace, out=out, **({"registry": registry} if takes_registry else {}))
        except AssertionError as exc:
            return CellResult(out.getvalue(), 0.0, str(exc))
        disagree = gradient_agreement(registry, namespace)
        if disagree:  # the stored results say the gradients agree; the functions themselves say otherwise
            return CellResult(out.getvalue(), 0.0, "\n".join([
                "The results your gradient check stored pass, but the grader's own gradient check of your functions "
                "(central differences of your forward pass against your backward pass, on the notebook's small "
                "examples) does not:", *(f"  - {line}" for line in disagree)]))
        return CellResult(out.getvalue().rstrip("\n"), float(points))
    return CellResult("", 0.0, f"the grader has no check for the test cell {grade_id!r} of {registry.assignment}")


AGREEMENT_TOL = 1e-5  # relative error; a consistent float64 pair is near 1e-9, an inconsistent one near 1


def _relative_error(a, b):
    denom = np.linalg.norm(a) + np.linalg.norm(b)
    return 0.0 if denom == 0 else float(np.linalg.norm(a - b) / denom)


def gradient_agreement(registry, namespace, eps=1e-6):
    """Sentences naming each gradient of the student's backward pass that disagrees with central differences of
    the student's own forward pass, on registry.gradient_cases() ({(forward key, backward key): [Case]}); empty when
    they agree. A stored gradient check is the student's word; this is the grader's own measurement of the same
    property (no isolation: both passes are entirely the student's)."""
    problems = []
    for (fwd, bwd), cases in registry.gradient_cases().items():
        fspec = dataclasses.replace(registry.spec(fwd), isolate=(), uses=())
        # the backward pass on the cache of the student's own forward pass (its graded check uses a trusted cache)
        bspec = dataclasses.replace(registry.spec(bwd), isolate=(), uses=(fspec.name,))
        forward, backward = student_for(namespace, fspec, registry), student_for(namespace, bspec, registry)
        problem = forward.problem() or backward.problem()
        if problem:
            problems.append(problem)
            continue
        for case in cases:
            problems += _disagreements(fspec, bspec, forward, backward, case, eps)
    return problems


DIRECTIONS = 3  # random directions per input: a wrong gradient agrees with a random direction only by accident


def _disagreements(fspec, bspec, forward, backward, case, eps):
    """Directional derivatives of the student's forward pass (central differences along random directions, a few
    calls through the worker per input instead of two per element) against the same directions of the student's
    analytic gradients."""
    inputs = _copy_inputs(case.inputs)
    rng = np.random.default_rng(0)

    def loss(values):
        outputs = fspec.run(forward, _copy_inputs(values))
        return sum(float(np.sum(np.asarray(o, dtype=np.float64) * values["d" + name]))
                   for name, o in zip(fspec.outputs, outputs) if "d" + name in values)

    try:
        analytic = bspec.run(backward, _copy_inputs(inputs))
        found = []
        for gname, g in zip(bspec.outputs, analytic):
            x = inputs[gname[1:]]
            if not isinstance(g, np.ndarray) or g.shape != x.shape:
                found.append(f"{bspec.name} returned {gname} of the wrong kind or shape on {case.label}")
                continue
            worst = 0.0
            for _ in range(DIRECTIONS):
                v = rng.standard_normal(x.shape)
                saved = x.copy()
                x += eps * v
                up = loss(inputs)
                x[...] = saved - eps * v
                down = loss(inputs)
                x[...] = saved
                numerical = (up - down) / (2 * eps)
                exact = float(np.sum(g.astype(np.float64) * v))
                scale = abs(numerical) + abs(exact)
                worst = max(worst, 0.0 if scale == 0 else abs(numerical - exact) / scale)
            if not worst < AGREEMENT_TOL:
                found.append(f"{gname} from your {bspec.name} is not the gradient of your {fspec.name} "
                             f"({case.label}: relative error {worst:.1e} along a random direction)")
        return found
    except Exception as exc:  # noqa: BLE001 - the student's code raised or its worker died
        return [f"{fspec.name} and {bspec.name} could not be run on {case.label}: {_student_error(exc)}"]
