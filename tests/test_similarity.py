"""Copying flagged for the instructor (grader/similarity.py).

Unit tests (no nbgrader) on assignment a3_gru: a submission pasted from the book (chapter 6's GRU step and step
backward, variables renamed, comments changed), two students sharing code (one is the other's with names, comments
and layout changed), and an honest student whose functions are written independently (and checked correct here
against course_pkg): the first three are flagged, the honest one is not, against anyone. `measure()` prints the
similarity values behind grader/similarity.THRESHOLD (python tests/test_similarity.py).

One end-to-end test on the toy course of tests/test_classroom.py (one `generate_assignment`, one autograde, one
feedback): the classroom driver writes the report and flags the gradebook; no score, comment, autograded notebook or
feedback page changes or shows it.
"""

import copy
import csv
import json
import os
import pathlib
import subprocess
import sys

import nbformat
import numpy as np
import pytest

from grader import classroom, similarity

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
import nbgrader_course as nc  # noqa: E402

A3 = "a3_gru"
GRADED = ("update_gate", "reset_gate", "candidate", "gru_step_forward", "gru_forward", "gru_step_backward",
          "gru_backward")

# ---------------------------------------------------------------- the students' functions

# chapter 6's gru_step_by_hand and gru_step_backward_by_hand, pasted into the graded functions: names changed,
# comments changed or added, the by-hand forward's outputs read from the cache instead
BOOK_COPY = {
    "gru_step_forward": '''
def gru_step_forward(x_t, h_prev, W, U, b, reset_after=True):
    n = h_prev.shape[1]
    Wa, Wb, Wc = W[:, :n], W[:, n : 2 * n], W[:, 2 * n :]
    Ua, Ub, Uc = U[:, :n], U[:, n : 2 * n], U[:, 2 * n :]
    if reset_after:
        bias_x, bias_h = b[0], b[1]  # two bias rows
        upd = sigmoid(x_t @ Wa + bias_x[:n] + h_prev @ Ua + bias_h[:n])
        rst = sigmoid(x_t @ Wb + bias_x[n : 2 * n] + h_prev @ Ub + bias_h[n : 2 * n])
        cand = np.tanh(x_t @ Wc + bias_x[2 * n :] + rst * (h_prev @ Uc + bias_h[2 * n :]))
    else:
        upd = sigmoid(x_t @ Wa + h_prev @ Ua + b[:n])
        rst = sigmoid(x_t @ Wb + h_prev @ Ub + b[n : 2 * n])
        cand = np.tanh(x_t @ Wc + (rst * h_prev) @ Uc + b[2 * n :])
    new_h = upd * h_prev + (1 - upd) * cand  # mix old and new
    return new_h, {"x_t": x_t, "h_prev": h_prev, "W": W, "U": U, "b": b, "reset_after": reset_after,
                   "z": upd, "r": rst, "h_tilde": cand}
''',
    "gru_step_backward": '''
def gru_step_backward(dh_t, cache):
    x_in, h_old, W, U, b = cache["x_t"], cache["h_prev"], cache["W"], cache["U"], cache["b"]
    n = h_old.shape[1]
    upd, rst, cand = cache["z"], cache["r"], cache["h_tilde"]
    g_cand = dh_t * (1 - upd)
    g_upd = dh_t * (h_old - cand)
    g_old = dh_t * upd  # straight through
    pre_upd = g_upd * upd * (1 - upd)
    pre_cand = g_cand * (1 - cand * cand)
    if cache["reset_after"]:
        rec = h_old @ U[:, 2 * n :] + b[1, 2 * n :]
        pre_rst = pre_cand * rec * rst * (1 - rst)
        g_rec = pre_cand * rst
        rec_all = np.concatenate([pre_upd, pre_rst, g_rec], axis=1)  # all three recurrent parts
        g_old = g_old + rec_all @ U.T
        gU = h_old.T @ rec_all
        pre_all = np.concatenate([pre_upd, pre_rst, pre_cand], axis=1)
        gb = np.stack([pre_all.sum(axis=0), rec_all.sum(axis=0)])
    else:
        g_rh = pre_cand @ U[:, 2 * n :].T
        pre_rst = g_rh * h_old * rst * (1 - rst)
        pre_ur = np.concatenate([pre_upd, pre_rst], axis=1)
        g_old = g_old + g_rh * rst + pre_ur @ U[:, : 2 * n].T
        gU = np.concatenate([h_old.T @ pre_ur, (rst * h_old).T @ pre_cand], axis=1)
        pre_all = np.concatenate([pre_upd, pre_rst, pre_cand], axis=1)
        gb = pre_all.sum(axis=0)
    return pre_all @ W.T, g_old, x_in.T @ pre_all, gU, gb
''',
}

# A student's gru_step_backward and gru_backward as another student hands them in: every local renamed, comments
# rewritten, lines re-wrapped (SHARER's copy of the notebook's solution, see shared_copy())
SHARED_RENAMES = {"dz": "grad_upd", "da_h": "g_hc", "da_z": "g_zz", "q": "rec_term", "da_r": "g_rr",
                  "da_x": "g_input", "da_rec": "g_recur", "d_rh": "g_rh", "dh_next": "carry", "dxs": "x_grads",
                  "dx_t": "gx", "dW_t": "gW", "dU_t": "gU", "db_t": "gb", "U_h": "Ucand"}

# Written independently of the book, the notebook's solution and course_pkg: other structure, other idioms
HONEST = {
    "update_gate": '''
def update_gate(x_t, h_prev, W, U, b, reset_after=True):
    n = U.shape[0]
    pre = np.dot(x_t, W[:, :n]) + np.dot(h_prev, U[:, :n])
    pre = pre + (np.sum(b, axis=0)[:n] if reset_after else b[:n])
    return 1.0 / (1.0 + np.exp(-pre))
''',
    "reset_gate": '''
def reset_gate(x_t, h_prev, W, U, b, reset_after=True):
    n = U.shape[0]
    lo, hi = n, 2 * n
    total_bias = b.sum(axis=0) if reset_after else b
    return 0.5 * (1.0 + np.tanh(0.5 * (x_t.dot(W[:, lo:hi]) + h_prev.dot(U[:, lo:hi]) + total_bias[lo:hi])))
''',
    "candidate": '''
def candidate(x_t, h_prev, r, W, U, b, reset_after=True):
    n = U.shape[0]
    Wc, Uc = W[:, -n:], U[:, -n:]
    if not reset_after:
        return np.tanh(np.dot(x_t, Wc) + np.dot(r * h_prev, Uc) + b[-n:])
    inp_bias, rec_bias = b[0, -n:], b[1, -n:]
    recurrent = np.dot(h_prev, Uc) + rec_bias
    return np.tanh(np.dot(x_t, Wc) + inp_bias + r * recurrent)
''',
    "gru_step_forward": '''
def gru_step_forward(x_t, h_prev, W, U, b, reset_after=True):
    gates = {}
    gates["z"] = update_gate(x_t, h_prev, W, U, b, reset_after)
    gates["r"] = reset_gate(x_t, h_prev, W, U, b, reset_after)
    gates["h_tilde"] = candidate(x_t, h_prev, gates["r"], W, U, b, reset_after)
    new_state = gates["h_tilde"] + gates["z"] * (h_prev - gates["h_tilde"])
    gates.update(x_t=x_t, h_prev=h_prev, W=W, U=U, b=b, reset_after=reset_after)
    return new_state, gates
''',
    "gru_forward": '''
def gru_forward(x, h0, W, U, b, reset_after=True):
    states, memo = [h0], []
    for x_step in np.moveaxis(x, 1, 0):
        nxt, c = gru_step_forward(x_step, states[-1], W, U, b, reset_after)
        states.append(nxt)
        memo.append(c)
    return np.stack(states[1:], axis=1).astype(x.dtype, copy=False), memo
''',
    "gru_step_backward": '''
def gru_step_backward(dh_t, cache):
    z, r, hc = cache["z"], cache["r"], cache["h_tilde"]
    xs, hp, W, U, b = (cache[k] for k in ("x_t", "h_prev", "W", "U", "b"))
    Uz, Ur, Uh = np.split(U, 3, axis=1)
    g_cand = dh_t * (1.0 - z) * (1.0 - np.square(hc))
    g_upd = dh_t * (hp - hc) * z * (1.0 - z)
    if not cache["reset_after"]:
        g_rh = g_cand.dot(Uh.T)
        g_rst = g_rh * hp * r * (1.0 - r)
        g_in = np.hstack([g_upd, g_rst, g_cand])
        grad_U = np.hstack([hp.T.dot(g_upd), hp.T.dot(g_rst), (r * hp).T.dot(g_cand)])
        grad_hp = dh_t * z + g_rh * r + g_upd.dot(Uz.T) + g_rst.dot(Ur.T)
        return g_in.dot(W.T), grad_hp, xs.T.dot(g_in), grad_U, g_in.sum(0)
    n = hp.shape[1]
    inner = hp.dot(Uh) + b[1, 2 * n:]
    g_rst = g_cand * inner * r * (1.0 - r)
    g_in = np.hstack([g_upd, g_rst, g_cand])
    g_rec = np.hstack([g_upd, g_rst, r * g_cand])
    grad_hp = dh_t * z + g_rec.dot(U.T)
    return g_in.dot(W.T), grad_hp, xs.T.dot(g_in), hp.T.dot(g_rec), np.vstack([g_in.sum(0), g_rec.sum(0)])
''',
    "gru_backward": '''
def gru_backward(dh, cache):
    steps = len(cache)
    grads_x = [None] * steps
    carry = np.zeros_like(dh[:, 0])
    totals = None
    for t in range(steps - 1, -1, -1):
        out = gru_step_backward(dh[:, t] + carry, cache[t])
        grads_x[t], carry = out[0], out[1]
        totals = list(out[2:]) if totals is None else [acc + g for acc, g in zip(totals, out[2:])]
    return (np.stack(grads_x, axis=1), carry, *totals)
''',
}


def source_nb():
    return nbformat.read(ROOT / "assignments" / "source" / A3 / f"{A3}.ipynb", as_version=4)


def released(nb):
    """The student version of a source notebook: each solution region replaced by the stub (as nbgrader does)."""
    nb = copy.deepcopy(nb)
    for cell in nb.cells:
        if "### BEGIN SOLUTION" in cell.source:
            head, rest = cell.source.split("### BEGIN SOLUTION", 1)
            indent = head[head.rfind("\n") + 1:]
            tail = rest.split("### END SOLUTION", 1)[1]
            cell.source = head + "# YOUR CODE HERE\n" + indent + "raise NotImplementedError()" + tail
    return nb


def with_functions(nb, codes):
    """nb with the solution cell of each named function replaced by this code."""
    nb = copy.deepcopy(nb)
    for cell in nb.cells:
        name = cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")
        if name in codes:
            cell.source = codes[name].strip()
    return nb


def renamed(code, renames):
    import re

    for old, new in renames.items():
        code = re.sub(rf"\b{old}\b", new, code)
    return code


def shared_copy(perfect):
    """The sharer's notebook: the solution's gru_step_backward and gru_backward with locals renamed, comments
    rewritten and a blank line or two added."""
    codes = {}
    for cell in perfect.cells:
        name = cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")
        if name in ("gru_step_backward", "gru_backward"):
            lines = []
            for line in cell.source.splitlines():
                code, _, comment = line.partition("  # ")
                lines.append(code + ("  # my note: " + comment[::-1] if comment else ""))
                if code.strip().startswith("if ") or code.strip() == "else:":
                    lines.append("")
            codes[name] = renamed("\n".join(lines), SHARED_RENAMES)
    return with_functions(perfect, codes)


def class_notebooks():
    perfect = nc.perfect_student(source_nb())
    return {"author": perfect,  # hands in the notebook's solution (lent to "sharer")
            "sharer": shared_copy(perfect),
            "book_copier": with_functions(perfect, BOOK_COPY),
            "honest": with_functions(released(source_nb()), HONEST)}


def write_class(root, notebooks):
    for student, nb in notebooks.items():
        nc.submit(root, student, A3, nb)
    folder = root / "release" / A3
    folder.mkdir(parents=True)
    nbformat.write(released(source_nb()), folder / f"{A3}.ipynb")


@pytest.fixture(scope="module")
def findings(tmp_path_factory):
    root = tmp_path_factory.mktemp("similarity")
    notebooks = class_notebooks()
    write_class(root, notebooks)
    return similarity.assignment_findings(root, A3, sorted(notebooks))


def matches(findings, student):
    return {f.matched_with: f for f in findings if f.student == student}


# ---------------------------------------------------------------- unit tests (no nbgrader)


def test_the_honest_functions_are_correct():
    """The honest student's functions, run here against course_pkg on random inputs of both conventions."""
    from course_pkg import gru
    from course_pkg.activations import sigmoid

    namespace = {"np": np, "sigmoid": sigmoid}
    for name in GRADED:
        exec(HONEST[name], namespace)  # test code of this file, never a submission
    rng = np.random.default_rng(0)
    B, T, D, H = 3, 4, 2, 5
    for reset_after in (True, False):
        x, h0 = rng.standard_normal((B, T, D)), rng.standard_normal((B, H))
        W, U = rng.standard_normal((D, 3 * H)), rng.standard_normal((H, 3 * H))
        b = rng.standard_normal((2, 3 * H) if reset_after else (3 * H,))
        dh = rng.standard_normal((B, T, H))
        h_ref, cache_ref = gru.gru_forward(x, h0, W, U, b, reset_after=reset_after)
        h, cache = namespace["gru_forward"](x, h0, W, U, b, reset_after)
        np.testing.assert_allclose(h, h_ref, rtol=1e-10, atol=1e-12)
        for got, want in zip(namespace["gru_backward"](dh, cache), gru.gru_backward(dh, cache_ref)):
            np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-11)


def test_a_copy_from_the_book_is_flagged_with_its_chapter(findings):
    found = matches(findings, "book_copier")
    assert "book chapter 6" in found, [f.row() for f in findings]
    chapter6 = found["book chapter 6"]
    assert set(chapter6.functions) == {"gru_step_forward", "gru_step_backward"}, chapter6.row()
    assert chapter6.functions["gru_step_forward"][1] == "gru_step_by_hand"
    assert chapter6.functions["gru_step_backward"][1] == "gru_step_backward_by_hand"
    assert chapter6.similarity >= similarity.THRESHOLD


def test_two_students_sharing_code_are_flagged_both_ways(findings):
    for student, other in (("author", "sharer"), ("sharer", "author")):
        found = matches(findings, student)
        assert other in found, [f.row() for f in findings]
        # the two disguised functions, and gru_step_forward, which the sharer took unchanged
        assert set(found[other].functions) == {"gru_step_forward", "gru_step_backward", "gru_backward"}, \
            found[other].row()
        assert found[other].similarity == 1.0  # renaming, comments and layout are invisible to the fingerprints


def test_the_honest_student_is_flagged_against_no_one(findings):
    assert not matches(findings, "honest"), [f.row() for f in findings if f.student == "honest"]
    assert all(f.matched_with != "honest" for f in findings), [f.row() for f in findings]


def test_the_released_stub_and_tiny_functions_are_not_compared(tmp_path):
    notebooks = {"blank1": released(source_nb()), "blank2": released(source_nb())}
    write_class(tmp_path, notebooks)
    assert similarity.assignment_findings(tmp_path, A3, sorted(notebooks)) == []
    gate = similarity.submission_codes(nc.perfect_student(source_nb()), {"update_gate"}, {})
    assert gate == {}  # a one-line gate: every correct version looks alike


def test_a_notebook_that_cannot_be_read_or_parsed_is_left_out(tmp_path):
    """Deeply nested code (RecursionError in ast), cells that are not strings, a file that is not JSON: that student
    has nothing compared; the others still are."""
    notebooks = class_notebooks()
    deep = with_functions(notebooks["honest"], {"gru_backward": "def gru_backward(dh, cache):\n    return " +
                                                "(" * 5000 + "1" + ")" * 5000})
    write_class(tmp_path, {"deep": deep, "author": notebooks["author"], "sharer": notebooks["sharer"]})
    nc.submit(tmp_path, "garbage", A3, raw="{not json")
    nc.submit(tmp_path, "odd", A3, raw=json.dumps({"cells": [{"cell_type": "code", "source": 5,
                                                            "metadata": {"nbgrader": {"solution": True}}}]}))
    found = similarity.assignment_findings(tmp_path, A3, ["author", "deep", "garbage", "odd", "sharer"])
    assert {f.student for f in found} == {"author", "sharer"}, [f.row() for f in found]


def test_the_report_is_sorted_and_keeps_other_assignments(tmp_path, findings):
    path = similarity.write_report(tmp_path, [similarity.Finding("a1_rnn", "zed", "course_pkg",
                                                                 {"rnn_backward": (0.9, "rnn_backward")})], ["a1_rnn"])
    similarity.write_report(tmp_path, list(reversed(findings)), [A3])
    with open(path, newline="") as fh:
        rows = list(csv.DictReader(fh))
    keys = [(r["assignment"], r["student"], r["matched_with"]) for r in rows]
    assert keys == sorted(keys) and keys[0] == ("a1_rnn", "zed", "course_pkg")
    assert len(rows) == len(findings) + 1
    assert {r["student"] for r in rows} >= {"author", "sharer", "book_copier"}


def measure():
    """Similarity of each graded function of the class above to each source (the best match): the numbers behind
    similarity.THRESHOLD."""
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        root = pathlib.Path(tmp)
        notebooks = class_notebooks()
        write_class(root, notebooks)
        all_findings = similarity.assignment_findings(root, A3, sorted(notebooks), threshold=0.0)
    for f in all_findings:
        for name, (value, other) in sorted(f.functions.items()):
            print(f"{f.student:12} {name:18} {value:5.2f}  {f.matched_with} ({other})")


# ---------------------------------------------------------------- end to end: the classroom driver on the toy course

LONG_CUBE = '''\
flat = np.asarray(x).reshape(-1)
out = np.empty_like(flat)
for i in range(flat.shape[0]):
    value = flat[i]
    squared = value * value
    out[i] = squared * value
out = out.reshape(np.shape(x))
assert out.shape == x.shape and out.dtype == x.dtype
if not np.all(np.isfinite(out)):
    out = np.where(np.isfinite(out), out, np.sign(x) * np.inf)
return out'''
# the same, renamed and commented
LONG_CUBE_SHARED = '''\
values = np.asarray(x).reshape(-1)  # one dimension
res = np.empty_like(values)
for k in range(values.shape[0]):
    v = values[k]
    sq = v * v  # the square first
    res[k] = sq * v
res = res.reshape(np.shape(x))  # back to x's shape
assert res.shape == x.shape and res.dtype == x.dtype
if not np.all(np.isfinite(res)):
    res = np.where(np.isfinite(res), res, np.sign(x) * np.inf)
return res'''
HONEST_CUBE = '''\
powers = [np.ones_like(x)]
while len(powers) < 4:
    powers.append(powers[-1] * x)
result = powers[3]
if result.dtype != x.dtype:
    result = result.astype(x.dtype)
checked = np.allclose(result, np.power(x, 3, dtype=np.float64), rtol=1e-5, equal_nan=True)
return result if checked else np.power(x, 3).astype(x.dtype)'''


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    from test_classroom import GOOD, env_with_checks, fill, make_course

    course, checks = make_course(tmp_path_factory.mktemp("toy_similarity"))
    env = env_with_checks(checks)
    release = nbformat.read(course / "release" / "toy" / "toy.ipynb", as_version=4)
    students = {"ann": LONG_CUBE, "bob": LONG_CUBE_SHARED, "cyd": HONEST_CUBE}
    for student, cube in students.items():
        nc.submit(course, student, "toy", fill(release, square=GOOD["square"], cube=cube))
    proc = subprocess.run([sys.executable, "-m", "grader.classroom", "autograde", "--course", str(course),
                           "--jobs", "2"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    feedback = subprocess.run([sys.executable, "-m", "grader.classroom", "feedback", "--course", str(course)],
                              cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert feedback.returncode == 0, feedback.stdout + feedback.stderr
    return {"course": course, "stdout": proc.stdout, "students": sorted(students), "env": env}


def gradebook_state(course):
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{course / 'gradebook.db'}", "rnn-course") as gb:
        out = {}
        for student in gb.students:
            nb = gb.find_submission("toy", student.id).notebooks[0]
            out[student.id] = {"grades": {g.name: g.score for g in nb.grades},
                               "comments": {c.name: c.comment for c in nb.comments}, "flagged": nb.flagged}
        return out


def test_autograde_reports_the_shared_code_and_flags_only_those_notebooks(toy):
    course = toy["course"]
    assert "Similarity (copydetect, threshold" in toy["stdout"], toy["stdout"]
    assert "2 of 3 graded submission(s) flagged" in toy["stdout"], toy["stdout"]
    with open(course / "autograded" / similarity.REPORT_NAME, newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [(r["assignment"], r["student"], r["matched_with"], r["functions"]) for r in rows] == [
        ("toy", "ann", "bob", "cube"), ("toy", "bob", "ann", "cube")], rows
    state = gradebook_state(course)
    assert {s: v["flagged"] for s, v in state.items()} == {"ann": True, "bob": True, "cyd": False}
    # every function is correct: full marks, as without the similarity check; no comment says anything
    assert all(v["grades"] == {"test_square": 2.0, "test_cube": 3.0} for v in state.values()), state
    assert all(not c for v in state.values() for c in v["comments"].values()), state


def test_the_finding_never_reaches_a_student(toy):
    course = toy["course"]
    words = ("similar", "copydetect", "near-identical", "flagged", "bob", "ann")
    for student in toy["students"]:
        other = [w for w in words if w != student]
        autograded = json.dumps(json.loads((course / "autograded" / student / "toy" / "toy.ipynb").read_text())
                                ["cells"])
        html = (course / "feedback" / student / "toy" / "toy.html").read_text()
        for word in other:
            assert word not in autograded.lower(), (student, word)
            assert word not in html.lower(), (student, word)


def test_running_it_again_changes_no_score_or_comment_and_no_similarity_skips_it(toy):
    course_dir = toy["course"]
    sys.path.insert(0, toy["env"]["PYTHONPATH"].split(os.pathsep)[0])  # the toy's checks package
    before = gradebook_state(course_dir)
    course = classroom.Course.load(course_dir)
    outcomes = [classroom.Outcome(s, "toy") for s in toy["students"]]
    line = similarity.run(course, outcomes)
    assert "2 of 3" in line and gradebook_state(course_dir) == before


def test_the_autograde_command_runs_it_after_grading_unless_told_not_to(toy, monkeypatch):
    """cmd_autograde with the grading itself stubbed (the toy's outcomes): the summary line, or none with
    --no-similarity."""
    import types

    sys.path.insert(0, toy["env"]["PYTHONPATH"].split(os.pathsep)[0])
    pool = types.SimpleNamespace(slots=[types.SimpleNamespace(cgroups=None)], start_seconds=0.0, start=lambda: pool,
                                 stop=lambda: None)
    monkeypatch.setattr(classroom, "Pool", lambda *a, **k: pool)
    monkeypatch.setattr(classroom, "grade_class", lambda course, assignments, options, sandboxes, say: [
        classroom.Outcome(s, "toy", score=5.0, max_score=5.0) for s in toy["students"]])
    for flag, expected in (([], True), (["--no-similarity"], False)):
        options = classroom.parser().parse_args(["autograde", "--course", str(toy["course"]), *flag])
        lines = []
        assert classroom.cmd_autograde(options, say=lines.append) == 0
        said = [line for line in lines if line.startswith("Similarity (copydetect")]
        assert bool(said) == expected, lines
        if said:
            assert "2 of 3 graded submission(s) flagged" in said[0], said


if __name__ == "__main__":
    measure()
