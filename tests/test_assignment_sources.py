"""What every assignment's source notebook must hold for nbgrader and for the checker, across the three."""

import pytest

import assignment_tools as at
from course_pkg.checks import ASSIGNMENTS, registry


def hidden_calls(assignment):
    """(grade_id, metadata points, key, seed, points in the call) of every test cell with a hidden part."""
    out = []
    for cell in at.load(assignment).cells:
        meta = at.nbgrader_meta(cell)
        if "BEGIN HIDDEN TESTS" in cell.source:
            body = cell.source.split("### BEGIN HIDDEN TESTS")[1].split("### END HIDDEN TESTS")[0].strip()
            match = at.HIDDEN_CALL.match(body.splitlines()[-1])
            assert match, f"{assignment}/{meta.get('grade_id')}: the hidden part must end with the _grade(...) call"
            out.append((meta["grade_id"], float(meta["points"]), match["key"], int(match["seed"]),
                        float(match["points"])))
    return out


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_hidden_calls_match_their_cells(assignment):
    calls = hidden_calls(assignment)
    assert calls, f"{assignment} has no hidden tests"
    for grade_id, meta_points, key, _, call_points in calls:
        assert grade_id == f"test_{key}", (grade_id, key)
        assert call_points == meta_points, f"{grade_id}: points={call_points} in the call, {meta_points} in metadata"
        registry(assignment).spec(key)  # the key exists in the assignment's checker


def test_hidden_seeds_are_distinct_across_the_course():
    seeds = [seed for a in ASSIGNMENTS for *_, seed, _ in hidden_calls(a)]
    assert len(seeds) == len(set(seeds))
    assert all(seed >= 10**17 for seed in seeds)  # not a guessable small number


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_committed_without_outputs_and_with_unique_grade_ids(assignment):
    nb = at.load(assignment)
    ids = [at.nbgrader_meta(c).get("grade_id") for c in nb.cells if at.nbgrader_meta(c)]
    assert len(ids) == len(set(ids))
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert not cell.outputs and cell.execution_count is None
        assert at.nbgrader_meta(cell).get("schema_version") == 3
