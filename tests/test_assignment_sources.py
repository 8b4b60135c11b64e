"""What every assignment's source notebook must hold for nbgrader and for the grader, across the three, and where
the hidden cases come from: a course secret, never the notebooks."""

import ast
import json
import os
import re
import stat

import nbformat
import numpy as np
import pytest

import assignment_tools as at
from course_pkg.checks import core
from grader.manifest import get, ids, registry
from grader import engine, secret

ASSIGNMENTS = tuple(ids())  # assignments/manifest.toml


def test_cells(assignment):
    """grade_id -> source of the notebook's autograded test cells."""
    return {at.nbgrader_meta(c)["grade_id"]: c.source for c in at.load(assignment).cells if at.is_test_cell(c)}


test_cells.__test__ = False


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_each_test_cell_is_a_self_check_the_grader_scores(assignment):
    """A check's test cell is only the student's visible self-check; the grader knows every test cell's key (a
    check or a cell check), and every check and cell check of the assignment has exactly one test cell."""
    checks = registry(assignment)
    cells = test_cells(assignment)
    keys = []
    for grade_id, source in cells.items():
        assert grade_id.startswith("test_"), grade_id
        key = grade_id.removeprefix("test_")
        keys.append(key)
        if key in checks.specs:
            assert source == f'check("{key}", globals())', f"{assignment}/{grade_id}:\n{source}"
        else:
            assert key in checks.cell_checks, f"{assignment}/{grade_id}: the grader has no check for it"
            name = checks.cell_checks[key].__name__
            lines = [line for line in source.splitlines() if line.strip()]
            assert lines[0] == f"from course_pkg.checks.{assignment} import {name}", source
            assert re.fullmatch(rf"{name}\(globals\(\)\)(  #.*)?", lines[-1]), source
            assert len(lines) == 2, source
        points = float(at.nbgrader_meta(at.cell_by_id(at.load(assignment), grade_id))["points"])
        assert points > 0, grade_id
    assert sorted(keys) == sorted([*checks.specs, *checks.cell_checks])


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_source_notebooks_hold_no_hidden_test_and_no_seed(assignment):
    """The notebooks (source and so released) carry nothing of the grading: no hidden block, no call of a grading
    function, no seed (a demonstration cell may seed its own example; no number long enough to be a hidden seed
    anywhere), no import of the grader."""
    nb = at.load(assignment)
    text = json.dumps(nb)  # every cell, its metadata and the notebook's
    for marker in ("HIDDEN", "grade(", "_grade", "hidden_cases", "TEST_SECRET", "secret"):
        assert marker not in text, marker
    for source in test_cells(assignment).values():
        assert "seed" not in source and "points" not in source, source
    assert not re.search(r"(?<!nb)grader\b", text)  # nbgrader's metadata aside
    long_numbers = re.findall(r"(?<![\w.])\d{9,}", text)
    assert not long_numbers, long_numbers
    checks = registry(assignment)
    for key in checks.specs:
        for s in (secret.seed(at.TEST_SECRET, assignment, key), secret.seed(b"\0" * 32, assignment, key)):
            assert str(s) not in text and hex(s)[2:] not in text
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert not re.search(r"^\s*(from|import)\s+grader\b", cell.source, re.M), cell.source


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_notebooks_import_of_course_pkg_only_what_the_graders_worker_provides(assignment):
    """The worker that runs a student's cells has the modules of course_pkg the grader gives the assignment
    (the manifest entry's sandbox_modules: no reference implementation) and stubs of course_pkg.checks; an import
    of anything else would fail there and cost the cells after it."""
    provided = dict(get(assignment).sandbox_modules)
    assert set(engine.student_modules(assignment)) == {f"course_pkg.{m}" for m in provided}
    for cell in at.load(assignment).cells:
        if cell.cell_type != "code" or at.is_test_cell(cell):
            continue
        for node in ast.walk(ast.parse(cell.source)):
            if isinstance(node, ast.Import):
                imports = [(alias.name, None) for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                imports = [(node.module or "", alias.name) for alias in node.names]
            else:
                continue
            for module, name in imports:
                if module.split(".")[0] != "course_pkg":
                    continue
                if module == f"course_pkg.checks.{assignment}":
                    continue
                if module == "course_pkg" and name in provided:
                    continue  # from course_pkg import activations
                child = module.removeprefix("course_pkg.")
                assert child in provided, f"{assignment}: {cell.source}"
                names = provided[child]
                assert names is None or name in names, f"{assignment}: {module}.{name} is not given to the worker"


def _all_seeds(course_secret):
    return {(a, key): secret.seed(course_secret, a, key) for a in ASSIGNMENTS for key in registry(a).specs}


def test_hidden_seeds_from_a_secret_differ_across_checks_and_assignments():
    seeds = _all_seeds(at.TEST_SECRET)
    assert len(seeds) >= 24
    assert len(set(seeds.values())) == len(seeds)
    assert all(0 <= s < 2**64 for s in seeds.values())
    assert all(s.bit_length() > 32 for s in seeds.values())  # not a small, guessable number
    assert _all_seeds(at.TEST_SECRET) == seeds  # the same secret gives the same cases (a re-run grades alike)
    # a check with the same key in two assignments (a2's and a3's candidate, gates, get_params) still differs
    assert secret.seed(at.TEST_SECRET, "a2_lstm", "candidate") != secret.seed(at.TEST_SECRET, "a3_gru", "candidate")


def test_hidden_seeds_change_with_the_secret():
    ours, other = _all_seeds(at.TEST_SECRET), _all_seeds(at.TEST_SECRET + b"!")
    assert all(ours[k] != other[k] for k in ours)
    assert not set(ours.values()) & set(other.values())


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_hidden_cases_change_with_the_secret(assignment):
    """Knowing one course's secret (or the tests') tells nothing of another course's hidden inputs: every check's
    hidden cases differ in their arrays."""
    for key, spec in registry(assignment).specs.items():
        ours = core.hidden_cases(spec, secret.seed(at.TEST_SECRET, assignment, key))
        other = core.hidden_cases(spec, secret.seed(b"another course's secret", assignment, key))
        assert len(ours) == len(other) == 6
        for a, b in zip(ours, other):
            arrays_a, arrays_b = _arrays(a.inputs), _arrays(b.inputs)
            assert not (len(arrays_a) == len(arrays_b) and all(
                x.shape == y.shape and np.array_equal(x, y) for x, y in zip(arrays_a, arrays_b))), (key, a.label)


def _arrays(inputs):
    """The input arrays of a case, those of a Keras layer's description included."""
    out = []
    for value in inputs.values():
        if isinstance(value, np.ndarray):
            out.append(value)
        elif hasattr(value, "get_weights"):
            out += value.get_weights()
    return out


def test_the_secret_is_made_once_private_and_rotated(tmp_path):
    course = tmp_path / "course"
    course.mkdir()
    first = secret.load(course)
    path = secret.path(course)
    assert len(first) == 32 and stat.S_IMODE(path.stat().st_mode) == 0o600
    assert secret.load(course) == first  # made once, then read
    rotated = secret.rotate(course)
    assert rotated != first and secret.load(course) == rotated
    assert secret.seed(first, "a1_rnn", "rnn_forward") != secret.seed(rotated, "a1_rnn", "rnn_forward")
    os.chmod(path, 0o600)
    path.write_text("not a secret\n")
    with pytest.raises(ValueError, match="does not hold a secret"):
        secret.load(course)
    with pytest.raises(FileNotFoundError):
        secret.load(tmp_path / "empty", create=False)


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_student_version_hides_every_solution_line(assignment):
    """What nbgrader's generate_assignment makes of the notebook (at.student_version) holds no marker of a solution
    and no line of one (short lines, such as `return h, c`, and comments aside)."""
    nb = at.load(assignment)
    student = at.student_version(nb)
    released = "\n".join(c.source for c in student.cells)
    for marker in ("SOLUTION", "HIDDEN"):
        assert marker not in released, marker
    regions = []
    for cell in nb.cells:
        found = re.findall(r"### BEGIN SOLUTION\n(.*?)### END SOLUTION", cell.source, re.S)
        assert bool(found) == bool(at.nbgrader_meta(cell).get("solution")), at.nbgrader_meta(cell)["grade_id"]
        regions += found
    for region in regions:
        for line in region.splitlines():
            line = line.strip()
            assert len(line) <= 12 or line.startswith("#") or line not in released, line


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_committed_without_outputs_and_with_unique_grade_ids(assignment):
    nb = at.load(assignment)
    nbformat.validate(nb)
    ids = [at.nbgrader_meta(c).get("grade_id") for c in nb.cells if at.nbgrader_meta(c)]
    assert len(ids) == len(set(ids))
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert not cell.outputs and cell.execution_count is None
        assert at.nbgrader_meta(cell).get("schema_version") == 3
