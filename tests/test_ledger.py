"""The grading ledger (grader/ledger.py) on SQLite and on a throwaway PostgreSQL server: a result is written once,
only by the run that holds the claim; a run resumes what was graded from the same content and grades again what
changed; a live run's claim is never taken, a dead run's is; two processes claiming one class at once share it
without a submission claimed twice."""

import multiprocessing
import os
import pathlib
import queue
import socket
import sys
import time
import traceback

import pytest

from grader import ledger
from pg_server import PostgresServer

BIN = pathlib.Path(sys.executable).parent
os.environ["PATH"] = os.pathsep.join([str(BIN), os.environ.get("PATH", "")])  # (nbgrader runs alembic)


@pytest.fixture(scope="module")
def server():
    with PostgresServer() as running:
        yield running


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request, tmp_path):
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'gradebook.db'}"
    return request.getfixturevalue("server").create_database(f"ledger_{tmp_path.name[-20:].lower()}")


def test_content_hash_follows_names_and_bytes(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "hw.ipynb").write_text("{}")
    first = ledger.content_hash(tmp_path / "a")
    assert ledger.content_hash(tmp_path / "a") == first
    (tmp_path / "a" / "hw.ipynb").write_text("{ }")
    assert ledger.content_hash(tmp_path / "a") != first
    (tmp_path / "a" / "hw.ipynb").write_text("{}")
    (tmp_path / "a" / "hw.ipynb").rename(tmp_path / "a" / "hw2.ipynb")
    assert ledger.content_hash(tmp_path / "a") != first


def test_claim_finish_resume_and_changed_content(url):
    one = ledger.Ledger(url, "c")
    assert one.claim("hw", "s1", "h1") == (ledger.GRADE, None)
    two = ledger.Ledger(url, "c")
    state, owner = two.claim("hw", "s1", "h1")
    assert state == ledger.BUSY and owner == one.owner  # a live run's claim
    assert one.finish("hw", "s1", "h1", ledger.Result("graded", 4.0, 5.0, ""))
    assert not one.finish("hw", "s1", "h1", ledger.Result("graded", 1.0, 5.0, ""))  # written once
    state, result = two.claim("hw", "s1", "h1")
    assert state == ledger.RESUME and result == ledger.Result("graded", 4.0, 5.0, "")
    assert two.claim("hw", "s1", "h2") == (ledger.GRADE, None)  # the submission changed
    assert len(two.rows()) == 1 and two.rows()[0]["run_id"] == two.run_id
    two.release("hw", "s1")
    assert two.rows() == [] and one.claim("hw", "s1", "h2") == (ledger.GRADE, None)


def test_a_dead_runs_claim_is_taken_and_its_late_result_is_not_written(url):
    dead = ledger.Ledger(url, "c")
    proc = multiprocessing.get_context("spawn").Process(target=int)
    proc.start()
    proc.join()
    dead.owner = f"{socket.gethostname()}:{proc.pid}"  # a driver that was killed
    assert dead.claim("hw", "s1", "h1") == (ledger.GRADE, None)
    other_host = ledger.Ledger(url, "c")
    other_host.owner = "elsewhere:1"
    assert other_host.claim("hw", "s2", "h1") == (ledger.GRADE, None)
    rerun = ledger.Ledger(url, "c")
    assert rerun.claim("hw", "s1", "h1") == (ledger.GRADE, None)  # the dead run's: at once
    assert rerun.claim("hw", "s2", "h1")[0] == ledger.BUSY  # another host's: within the lease
    assert ledger.Ledger(url, "c", lease_seconds=0).claim("hw", "s2", "h1") == (ledger.GRADE, None)
    assert not dead.finish("hw", "s1", "h1", ledger.Result("graded", 1.0, 5.0, ""))
    assert rerun.finish("hw", "s1", "h1", ledger.Result("graded", 5.0, 5.0, ""))
    row = rerun.row("hw", "s1")
    assert (row["state"], row["score"], row["run_id"]) == (ledger.DONE, 5.0, rerun.run_id)


def _claim_all(url, start, out):
    try:
        book = ledger.Ledger(url, "c")
        start.wait()
        got = [s for s in range(120) if book.claim("hw", f"s{s:03d}", "h")[0] == ledger.GRADE]
        for s in got:
            assert book.finish("hw", f"s{s:03d}", "h", ledger.Result("graded", 1.0, 1.0, ""))
    except BaseException:
        out.put(("error", traceback.format_exc()))
        raise
    out.put(("claimed", got))


def _collect(procs, out, limit=300.0):
    """Each child's ("claimed", list) from the queue. A child that dies or fails fails the test at once, with its
    exit code and its traceback when it could send one (not after the limit)."""
    results, deadline = [], time.monotonic() + limit
    while len(results) < len(procs):
        try:
            kind, value = out.get(timeout=0.2)
        except queue.Empty:
            dead = [p for p in procs if p.exitcode not in (None, 0)]
            if dead:
                try:  # (what it sent just before it died)
                    kind, value = out.get(timeout=1)
                except queue.Empty:
                    pytest.fail(f"child process {dead[0].pid} died with exit code {dead[0].exitcode} "
                                "without a result")
            elif time.monotonic() > deadline:
                pytest.fail(f"no result from the children within {limit:g} s: {procs}")
            else:
                continue
        if kind == "error":
            pytest.fail(f"a child process failed:\n{value}")
        results.append(value)
    return results


def _exit_with(code):
    os._exit(code)


def test_a_child_that_dies_fails_the_test_at_once():
    context = multiprocessing.get_context("spawn")
    out = context.Queue()
    procs = [context.Process(target=_exit_with, args=(3,))]
    procs[0].start()
    with pytest.raises(pytest.fail.Exception, match="exit code 3 without a result"):  # (not "within 120 s")
        _collect(procs, out, limit=120)
    procs[0].join()


def test_two_runs_at_once_claim_each_submission_once(url):
    ledger.Ledger(url, "c")  # (the tables made once, as a run's driver does before it starts)
    context = multiprocessing.get_context("spawn")
    start, out = context.Event(), context.Queue()
    procs = [context.Process(target=_claim_all, args=(url, start, out)) for _ in range(2)]
    for p in procs:
        p.start()
    start.set()
    try:
        got = _collect(procs, out)
    finally:
        for p in procs:
            p.join(60)
            if p.exitcode is None:
                p.kill()
    assert [p.exitcode for p in procs] == [0, 0]
    assert sorted(got[0] + got[1]) == list(range(120))  # none lost, none twice
    rows = ledger.Ledger(url, "c").rows()
    assert len(rows) == 120 and all(r["state"] == ledger.DONE for r in rows)
