"""Assignment a4_attention: its checks against course_pkg, its source notebook scored in-process as the grader scores
it (grader.scoring, hidden cases drawn from assignment_tools.TEST_SECRET), and the mistake library (each mistake
injected into the solution loses the expected points and is named); what holds for every assignment is in
test_assignments.py, over the manifest.
"""

import nbformat
import numpy as np
import pytest

from assignment_tools import (SOLUTION_REGION, assert_hidden_cases_fail, cell_by_id, inject, load, nbgrader_meta,
                              run_in_process, seed_for, student_version, test_cells)
from course_pkg import decoding
from course_pkg.checks import a4_attention, core
from injections_a4_attention import INJECTIONS

AID = "a4_attention"
REGISTRY = a4_attention.REGISTRY
SEED = seed_for(AID)
POINTS = {"test_additive_attention_forward": 2, "test_additive_attention_backward": 3,
          "test_decoder_step_forward": 2, "test_beam_search": 3}


@pytest.fixture(scope="module")
def nb():
    return load(AID)


@pytest.fixture(scope="module")
def solution_run(nb):
    return run_in_process(nb)


# ---------------------------------------------------------------- the notebook's form

def test_notebook_follows_the_conventions(nb):
    nbformat.validate(nb)
    assert nb.metadata.kernelspec.name == "python3"
    ids = [nbgrader_meta(c).get("grade_id") for c in nb.cells]
    assert None not in ids and len(ids) == len(set(ids)), "every cell needs a unique grade_id"
    for cell in nb.cells:
        meta = nbgrader_meta(cell)
        assert meta["schema_version"] == 3 and meta["task"] is False
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, f"{meta['grade_id']} has outputs"
        if meta["solution"]:
            assert not meta["grade"] and not meta["locked"]
            assert cell.source.startswith(f"def {meta['grade_id']}(")
            assert SOLUTION_REGION.search(cell.source)
        elif not meta["grade"]:
            assert meta["locked"]
    assert test_cells(nb) == POINTS and sum(POINTS.values()) == 10
    for grade_id in POINTS:
        assert cell_by_id(nb, grade_id).source == f'check("{grade_id.removeprefix("test_")}", globals())'
    intro = nb.cells[0].source
    for chapter in ("Chapter 16", "chapter 14", "chapter 15"):
        assert chapter in intro


def test_the_cache_the_notebook_prescribes_is_the_checks(nb):
    text = "".join(c.source for c in nb.cells)
    for name in a4_attention.CACHE.names:
        assert f'`"{name}"`' in text, name


# ---------------------------------------------------------------- the checks themselves

def test_hidden_cases_vary_and_cover_masks_penalties_and_width_one():
    spec = REGISTRY.spec("additive_attention_forward")
    hidden = core.hidden_cases(spec, SEED("additive_attention_forward"))
    assert [c.inputs["mask"] is not None for c in hidden] == list(a4_attention.MASKED)
    for c in hidden:
        if c.inputs["mask"] is not None:
            m = c.inputs["mask"]
            assert m.any(axis=1).all() and not m.all(), "a padded mask with a key for every row"
    assert spec.visible_case().inputs["mask"] is None
    beam = REGISTRY.spec("beam_search")
    hidden = core.hidden_cases(beam, SEED("beam_search"))
    assert [c.inputs["length_penalty"] for c in hidden] == list(a4_attention.PENALTIES)
    assert any(c.inputs["beam_width"] == 1 for c in hidden)
    assert len({c.label for c in hidden}) > 2


def test_the_beam_checks_reference_is_course_pkgs_and_the_mistakes_generator_agrees_with_it():
    """a4_attention._beam(None) (from which the beam mistakes are made) computes course_pkg.decoding.beam_search
    exactly, on many random models, widths, lengths and penalties."""
    spec = REGISTRY.spec("beam_search")
    rng = np.random.default_rng(7)
    for k in range(200):
        case = a4_attention._beam_case(rng, np.dtype(np.float64), index=k)
        expected = spec.run(REGISTRY.reference, core._copy_inputs(case.inputs))
        got = spec.run(lambda name: a4_attention._beam(None), core._copy_inputs(case.inputs))
        core.compare(spec, case, got, expected)
        assert np.array_equal(got[0], expected[0])


def test_width_one_is_greedy_search():
    rng = np.random.default_rng(3)
    for k in range(50):
        i = a4_attention._beam_case(rng, np.dtype(np.float64), index=k)
        i = i.inputs
        step = a4_attention.table_step(i["E"], i["Wh"], i["Wo"], i["bo"])
        [(tokens, logp, _, finished)] = a4_attention.beam(step, i["h0"], i["bos"], i["eos"], i["max_len"], 1)
        greedy = decoding.greedy_decode(step, i["h0"], i["bos"], i["eos"], i["max_len"])
        assert np.array_equal(tokens, greedy.tokens[0]) and finished == greedy.finished[0]
        assert abs(logp - greedy.logp[0]) < 1e-12


def test_the_prescribed_attention_cache_gives_course_pkgs_gradients():
    spec = REGISTRY.spec("additive_attention_backward")
    from course_pkg import attention

    for case in [spec.visible_case(), *core.hidden_cases(spec, SEED("additive_attention_backward"))]:
        i = case.inputs
        _, _, cache = attention.additive_attention_forward(i["query"], i["keys"], i["values"], i["Wq"], i["Wk"],
                                                           i["v"], mask=i["mask"])
        expected = attention.additive_attention_backward(i["dc"], cache)
        got = spec.run(REGISTRY.reference, core._copy_inputs(i))
        for g, e in zip(got, expected, strict=True):
            np.testing.assert_allclose(g, e, rtol=1e-6, atol=1e-6)


# ---------------------------------------------------------------- the notebook, scored in-process

def test_solution_gets_full_points(solution_run):
    assert {k: r.score for k, r in solution_run.items()} == {k: float(p) for k, p in POINTS.items()}
    for run in solution_run.values():
        assert "6 of 6 hidden checks passed" in run.output, run.output


def test_student_version_gets_zero_without_a_checker_error(nb):
    student = student_version(nb)
    assert "### BEGIN SOLUTION" not in "".join(c.source for c in student.cells)
    runs = run_in_process(student)
    assert {k: r.score for k, r in runs.items()} == {k: 0.0 for k in POINTS}
    for run in runs.values():
        assert "NotImplementedError" in run.output and "checker error" not in run.output, run.output
    assert_hidden_cases_fail(student, REGISTRY, AID)


# ---------------------------------------------------------------- the mistake library

def test_every_mistake_has_one_injection():
    ids = [m.id for m in REGISTRY.all_mistakes()]
    assert sorted(ids) == sorted(inj[0] for inj in INJECTIONS)
    assert len(ids) >= 8
    by_id = {m.id: m for m in REGISTRY.all_mistakes()}
    for mistake_id, _, _, _, expected in INJECTIONS:
        assert f"test_{by_id[mistake_id].function}" in expected, mistake_id


@pytest.mark.parametrize("mistake_id, grade_id, old, new, expected", INJECTIONS, ids=[i[0] for i in INJECTIONS])
def test_injected_mistake_loses_the_expected_points_and_is_named(nb, mistake_id, grade_id, old, new, expected):
    runs = run_in_process(inject(nb, grade_id, old, new))
    scores = {k: r.score for k, r in runs.items()}
    assert scores == {k: float(expected.get(k, p)) for k, p in POINTS.items()}
    for cell in expected:
        assert f"[{mistake_id}]" in runs[cell].output, runs[cell].output


def test_a_beam_that_returns_something_else_is_told_what_to_return(nb):
    wrong = inject(nb, "beam_search", "    return beam\n", "    return beam[0]\n")
    runs = run_in_process(wrong)
    assert runs["test_beam_search"].score == 0
    assert "list of (tokens, logp, score, finished)" in runs["test_beam_search"].output


def test_the_beam_search_check_runs_the_students_code_on_the_checkers_step_function(nb):
    """A beam search that calls its own model instead of the step function it is given fails."""
    wrong = inject(nb, "beam_search", "logits, new_states = step(last, states)",
                   "logits, new_states = example_step(last, states)")
    runs = run_in_process(wrong)
    assert runs["test_beam_search"].score == 0
