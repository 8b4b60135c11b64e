"""Two instructors start the same class run at once: two `python -m grader.classroom autograde --engine dask` processes
on one course, each with its own LocalCluster, started together. The grading ledger (grader/ledger.py) shares the
class between them: every submission is graded exactly once (one ledger row each, done, begun once; one gradebook
submission each with its grades once; one report row each), both exit 0, and each run's summary names the other
run's share as "being graded by another run" (the other driver's process) or as resumed (graded before it looked).
On SQLite and on a throwaway PostgreSQL server."""

import collections
import re
import subprocess

import nbformat
import pytest
from sqlalchemy import create_engine, text

import test_classroom as toy
from grader import classroom, ledger
from test_cluster import command, ledger_rows, report, summary

ROOT = toy.ROOT
# in an ordinary cell after each function: a submission takes ~5 s, so one run grading all of them (~15 s) outlasts
# the difference between the two runs' start-ups (a few seconds) and the other one finds its claims still held
SLOW = "import time\ntime.sleep(2)"


@pytest.fixture(scope="module")
def postgres():
    from pg_server import PostgresServer

    with PostgresServer() as server:
        yield server


def write_class(course):
    """Three good students whose cells sleep (each takes seconds: the runs overlap) and one with a mistake."""
    release = nbformat.read(course / "release" / "toy" / "toy.ipynb", as_version=4)
    good = toy.fill(release, **toy.GOOD)
    notebooks = {f"slow{i}": toy.fill(good, after={"square": SLOW, "cube": SLOW}) for i in range(3)}
    notebooks["partial"] = toy.fill(release, square="return np.where(x > 0, x * x, 0 * x)", cube=toy.GOOD["cube"])
    for student, nb in notebooks.items():
        (course / "submitted" / student / "toy").mkdir(parents=True)
        nbformat.write(nb, course / "submitted" / student / "toy" / "toy.ipynb")
    return {**{f"slow{i}": (classroom.GRADED, 5.0) for i in range(3)}, "partial": (classroom.GRADED, 4.0)}


_BUSY = re.compile(r"^  (\S+) / toy: being graded by another run \((\S+):(\d+)\): left to it$", re.M)


@pytest.mark.parametrize("database", ["sqlite", "postgresql"])
def test_two_drivers_at_once_grade_each_submission_once(tmp_path, request, database):
    url = request.getfixturevalue("postgres").create_database("two") if database == "postgresql" else None
    course, checks = toy.make_course(tmp_path, url)
    env = toy.env_with_checks(checks)
    expected = write_class(course)
    drivers = [subprocess.Popen(command(course, "--jobs", "1"), cwd=ROOT, env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outs = []
    try:
        for proc in drivers:
            out, err = proc.communicate(timeout=600)
            outs.append(out)
            assert proc.returncode == 0, out + err
    finally:
        for proc in drivers:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
    counts = [summary(out) for out in outs]  # (graded, ok, problems, not graded, resumed, busy, failed)
    assert sum(c[0] for c in counts) == len(expected), outs  # graded once: by one run or the other
    for c in counts:
        assert c[0] + c[4] + c[5] == len(expected) and c[6] == 0, outs  # the rest: the other's, resumed or busy
    for mine, other, out in ((drivers[0], drivers[1], outs[0]), (drivers[1], drivers[0], outs[1])):
        owners = {int(pid) for _, _, pid in _BUSY.findall(out)}
        assert owners <= {other.pid}, out  # left to the other driver, never to itself
    assert sum(c[5] for c in counts) >= 1, outs  # they overlapped: one saw the other's claims while it graded
    # exactly once in the ledger, the report and the gradebook
    rows = ledger_rows(course)
    assert set(rows) == set(expected)
    assert all(r["state"] == ledger.DONE and r["attempts"] == 1 for r in rows.values()), rows
    runs = collections.Counter(r["run_id"] for r in rows.values())
    assert sorted(runs.values()) == sorted(c[0] for c in counts if c[0]), (runs, counts)
    assert report(course) == expected
    view = toy.gradebook_view(course)
    assert {s: v["score"] for s, v in view.items()} == {s: v for s, (_, v) in expected.items()}
    per = len(view["partial"]["grades"])
    engine = create_engine(toy.db_url(course))
    try:
        with engine.connect() as connection:
            submissions = connection.execute(text("SELECT count(*) FROM submitted_assignment")).scalar()
            grades = connection.execute(text("SELECT count(*) FROM grade")).scalar()
    finally:
        engine.dispose()
    assert per >= 2 and submissions == len(expected) and grades == per * len(expected), (submissions, grades)
