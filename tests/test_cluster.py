"""The Dask engine (grader/cluster.py, `autograde --engine dask`) on the toy course of tests/test_classroom.py, a real
multi-process LocalCluster of 2 workers, each with its own sandbox slot: the same scores as the threads engine; a
re-run resumes (nothing graded again) and grades only a submission that changed; a worker killed in the middle of a
submission: that submission is graded again, once, and nothing is lost or doubled; a driver killed mid-run: the
next run grades only what has no result; an unreachable scheduler is one line, before anything is touched."""

import csv
import os
import re
import signal
import subprocess
import sys
import time

import nbformat
import psutil
import pytest

import test_classroom as toy
from grader import classroom, ledger

ROOT = toy.ROOT
SLOW = "import time\ntime.sleep(1.5)"  # in an ordinary cell: each submission takes a few seconds to grade

# student -> (status, score) (as in test_classroom's EXPECTED)
STUDENTS = {"good1": (classroom.GRADED, 5), "good2": (classroom.GRADED, 5), "partial": (classroom.GRADED, 4),
            "blank": (classroom.GRADED, 0), "bad_json": (classroom.NOT_GRADED, 0),
            "os_exit": (classroom.WITH_PROBLEMS, 3)}


def write_class(course, slow=0):
    """The students above, and `slow` more good students whose cells sleep (slow00, slow01, ...)."""
    release = nbformat.read(course / "release" / "toy" / "toy.ipynb", as_version=4)
    good = toy.fill(release, **toy.GOOD)
    notebooks = {"good1": good, "good2": good, "blank": release,
                 "partial": toy.fill(release, square="return np.where(x > 0, x * x, 0 * x)", cube=toy.GOOD["cube"]),
                 "os_exit": toy.fill(release, square="import os\nos._exit(1)", cube=toy.GOOD["cube"])}
    for i in range(slow):
        notebooks[f"slow{i:02d}"] = toy.fill(good, after={"square": SLOW, "cube": SLOW})
    for student, nb in notebooks.items():
        (course / "submitted" / student / "toy").mkdir(parents=True)
        nbformat.write(nb, course / "submitted" / student / "toy" / "toy.ipynb")
    (course / "submitted" / "bad_json" / "toy").mkdir(parents=True)
    (course / "submitted" / "bad_json" / "toy" / "toy.ipynb").write_text("{")
    return {**STUDENTS, **{f"slow{i:02d}": (classroom.GRADED, 5) for i in range(slow)}}


def command(course, *args):
    return [sys.executable, "-m", "grader.classroom", "autograde", "--course", str(course), "--engine", "dask",
            "--jobs", "2", "--no-similarity", *args]


def run(course, env, *args):
    proc = subprocess.run(command(course, *args), cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


def report(course):
    with open(course / "autograded" / classroom.REPORT_NAME, newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == len({r["student"] for r in rows}), rows  # one row per submission
    return {r["student"]: (r["status"], float(r["score"])) for r in rows}


def ledger_rows(course):
    book = ledger.Ledger(toy.db_url(course), "rnn-course")
    try:
        return {r["student"]: r for r in book.rows()}
    finally:
        book.close()


def summary(out):
    found = re.search(r"Autograded (\d+) submission\(s\) in [\d.]+ s: (\d+) graded, (\d+) graded with problems, "
                      r"(\d+) not graded; (\d+) resumed .*?, (\d+) being graded by another run, (\d+) failed", out)
    assert found, out
    return tuple(map(int, found.groups()))


def check_everything_once(course, expected):
    """The report, the gradebook and the ledger: every submission once, with its expected status and score."""
    assert report(course) == {s: (status, float(score)) for s, (status, score) in expected.items()}
    view = toy.gradebook_view(course)
    assert {s: v["score"] for s, v in view.items()} == {s: score for s, (_, score) in expected.items()}
    rows = ledger_rows(course)
    assert set(rows) == set(expected)
    assert all(r["state"] == ledger.DONE and r["status"] == expected[s][0] for s, r in rows.items()), rows
    return rows


@pytest.fixture(scope="module")
def course(tmp_path_factory):
    course, checks = toy.make_course(tmp_path_factory.mktemp("dask"))
    return course, toy.env_with_checks(checks)


def test_a_class_graded_on_a_local_cluster_then_resumed_then_one_change(course):
    course, env = course
    expected = write_class(course)
    out = run(course, env)
    assert "Dask scheduler tcp://" in out and "2 worker(s), each with a sandbox slot, ready in" in out, out
    assert summary(out) == (6, 4, 1, 1, 0, 0, 0), out
    rows = check_everything_once(course, expected)
    assert all(r["attempts"] == (0 if s == "bad_json" else 1) for s, r in rows.items()), rows
    before = toy.gradebook_view(course)
    out = run(course, env)  # nothing changed: nothing graded again
    assert summary(out) == (0, 0, 0, 0, 6, 0, 0), out
    assert toy.gradebook_view(course) == before and ledger_rows(course) == rows
    changed = course / "submitted" / "blank" / "toy" / "toy.ipynb"
    release = nbformat.read(course / "release" / "toy" / "toy.ipynb", as_version=4)
    nbformat.write(toy.fill(release, **toy.GOOD), changed)  # blank hands in again, all correct
    out = run(course, env)
    assert summary(out) == (1, 1, 0, 0, 5, 0, 0), out
    expected["blank"] = (classroom.GRADED, 5)
    check_everything_once(course, expected)
    assert toy.gradebook_view(course)["good1"] == before["good1"]
    out = run(course, env, "--regrade")
    assert summary(out) == (6, 4, 1, 1, 0, 0, 0), out
    config = course / "nbgrader_config.py"
    config.write_text(config.read_text() + "# the grading configuration changed\n")
    out = run(course, env)  # the assignment's grading changed: every submission graded again
    assert summary(out) == (6, 4, 1, 1, 0, 0, 0), out


def _workers(driver):
    """The Dask worker processes of a driver (its LocalCluster's, spawned by multiprocessing)."""
    return [p for p in driver.children() if any("spawn_main" in part or "forkserver" in part for part in p.cmdline())]


def _wait_for_done(course, count, proc, limit=600):
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate()
        try:
            done = sum(r["state"] == ledger.DONE for r in ledger_rows(course).values())
        except Exception:  # noqa: BLE001 - the table not made yet
            done = 0
        if done >= count:
            return done
        time.sleep(0.3)
    raise AssertionError("no progress")


def test_a_worker_killed_mid_submission_costs_one_more_grading_of_it(tmp_path):
    """SIGKILL to a worker process while both are busy: Dask gives its submission to a worker (the nanny starts a
    new one); every submission ends graded exactly once in the report, the gradebook and the ledger, and the
    ledger counts exactly one grading more than there are submissions."""
    course, checks = toy.make_course(tmp_path)
    env = toy.env_with_checks(checks)
    expected = write_class(course, slow=8)
    proc = subprocess.Popen(command(course), cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True)
    try:
        _wait_for_done(course, 2, proc)
        workers = _workers(psutil.Process(proc.pid))
        assert len(workers) == 2, workers
        for _ in range(200):  # a worker between begin() and finish(): in the middle of a submission
            busy = [r["worker"] for r in ledger_rows(course).values() if r["state"] == ledger.CLAIMED
                    and r["attempts"] == 1]
            if busy:
                break
            time.sleep(0.05)
        pid = int(busy[0].rsplit(":", 1)[1])
        assert pid in {w.pid for w in workers}, (busy, workers)
        psutil.Process(pid).send_signal(signal.SIGKILL)
        out, err = proc.communicate(timeout=900)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 0, out + err
    assert summary(out) == (len(expected), len(expected) - 2, 1, 1, 0, 0, 0), out
    rows = check_everything_once(course, expected)
    attempts = sorted(r["attempts"] for s, r in rows.items() if s != "bad_json")
    twice = {s: r["attempts"] for s, r in rows.items() if r["attempts"] != 1}
    assert sum(attempts) == len(expected) - 1 + 1 and attempts[-1] == 2, twice  # one graded twice, the rest once


def test_a_killed_driver_is_resumed_by_the_next_run(tmp_path):
    course, checks = toy.make_course(tmp_path)
    env = toy.env_with_checks(checks)
    expected = write_class(course, slow=8)
    proc = subprocess.Popen(command(course), cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True)
    try:
        _wait_for_done(course, 3, proc)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # the driver, its cluster and their sandboxes: its own session
        proc.communicate()
    rows = ledger_rows(course)
    done = {s for s, r in rows.items() if r["state"] == ledger.DONE}
    assert 3 <= len(done) < len(expected), rows
    out = run(course, env)
    graded = len(expected) - len(done)
    assert summary(out)[0] == graded and summary(out)[4:] == (len(done), 0, 0), out
    rows = check_everything_once(course, expected)
    assert all(r["attempts"] in (1, 2) for s, r in rows.items() if s != "bad_json"), rows


def test_an_unreachable_scheduler_is_one_line_before_anything_is_touched(course):
    course, env = course
    before = toy.fingerprint(course)
    proc = subprocess.run(command(course, "--scheduler", "tcp://127.0.0.1:1"), cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    lines = proc.stdout.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Cannot grade: the Dask scheduler at tcp://127.0.0.1:1 cannot "
                                                   "be reached"), proc.stdout
    assert toy.fingerprint(course) == before


def test_a_worker_without_the_sandbox_is_one_line_before_anything_is_touched(course):
    """The workers cannot find bubblewrap (PATH without it): the driver names the worker and the reason, exits 2,
    and grades nothing."""
    course, env = course
    before = toy.fingerprint(course)
    env = dict(env, PATH=str(toy.BIN))  # the venv's bin/ only: no /usr/bin/bwrap
    proc = subprocess.run(command(course), cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    lines = proc.stdout.strip().splitlines()
    assert len(lines) == 1 and re.match(r"Cannot grade: worker tcp://\S+ of the Dask scheduler tcp://\S+ \(a "
                                        r"LocalCluster\): SandboxError: the grading sandbox needs bubblewrap", lines[0]), \
        proc.stdout
    assert toy.fingerprint(course) == before
