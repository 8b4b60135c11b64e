"""What the grader changes in nbgrader's and SQLite's defaults to grade faster, checked to change nothing else:
nbgrader's cell-metadata check with each schema checked once (grader/nbgrader_ext.py), and SQLite gradebooks in
WAL mode (grader/gradebook_db.py)."""

import copy
import multiprocessing
import os
import sys

import jsonschema
import pytest
from nbgrader.nbgraderformat import common, v3

from grader import gradebook_db, nbgrader_ext

@pytest.fixture(autouse=True)
def alembic_on_path(monkeypatch):
    """nbgrader's Gradebook runs `alembic` when it makes a new database: the virtual environment's."""
    monkeypatch.setenv("PATH", os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", ""))


GOOD = {"grade": True, "grade_id": "lstm_forward", "locked": True, "points": 2, "schema_version": 3,
        "solution": False}
BAD = [
    {**GOOD, "points": "two"},
    {**GOOD, "grade": "yes"},
    {k: v for k, v in GOOD.items() if k != "grade_id"},
    {**GOOD, "solution": None},
]


def test_nbgrader_uses_the_schema_checked_once():
    assert isinstance(common.jsonschema, nbgrader_ext._SchemaCheckedOnce)


def test_metadata_check_accepts_and_refuses_what_jsonschema_does():
    schema = v3.MetadataValidatorV3().schema
    shim = nbgrader_ext._SchemaCheckedOnce()
    shim.validate(copy.deepcopy(GOOD), schema)
    jsonschema.validate(copy.deepcopy(GOOD), schema)
    refused = 0
    for meta in BAD:
        errors = []
        for check in (shim.validate, jsonschema.validate):
            try:
                check(copy.deepcopy(meta), schema)
                errors.append(None)
            except jsonschema.ValidationError as exc:
                errors.append((exc.message, list(exc.path)))
        assert errors[0] == errors[1], meta
        refused += errors[0] is not None
    assert refused >= 3


def test_a_broken_schema_is_still_refused():
    shim = nbgrader_ext._SchemaCheckedOnce()
    with pytest.raises(jsonschema.SchemaError):
        shim.validate({}, {"type": "no such type"})


def test_the_validator_of_a_schema_is_made_once(monkeypatch):
    schema = v3.MetadataValidatorV3().schema
    shim = nbgrader_ext._SchemaCheckedOnce()
    checks = []
    cls = jsonschema.validators.validator_for(schema)
    original = cls.check_schema
    monkeypatch.setattr(cls, "check_schema", classmethod(lambda c, s, **k: checks.append(1) or original(s, **k)))
    for _ in range(5):
        shim.validate(GOOD, copy.deepcopy(schema))  # an equal schema, as each nbgrader validator loads its own
    assert len(checks) == 1


def _write_rows(url, start, count):
    from sqlalchemy import create_engine, text

    gradebook_db.tune_sqlite()
    engine = create_engine(url)
    for k in range(start, start + count):
        with engine.begin() as connection:
            connection.execute(text("INSERT INTO t VALUES (:k)"), {"k": k})
    engine.dispose()


def test_sqlite_gradebooks_use_wal_and_writers_wait(tmp_path):
    from sqlalchemy import create_engine, text

    gradebook_db.tune_sqlite()
    gradebook_db.tune_sqlite()  # idempotent: one listener
    url = f"sqlite:///{tmp_path / 'gradebook.db'}"
    engine = create_engine(url)
    with engine.begin() as connection:
        connection.execute(text("CREATE TABLE t (k INTEGER PRIMARY KEY)"))
    with engine.connect() as connection:
        assert connection.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert connection.execute(text("PRAGMA synchronous")).scalar() == 1  # NORMAL
        assert connection.execute(text("PRAGMA busy_timeout")).scalar() == gradebook_db.SQLITE_BUSY_SECONDS * 1000
    context = multiprocessing.get_context("spawn")
    writers = [context.Process(target=_write_rows, args=(url, 1000 * w, 200)) for w in range(3)]
    for w in writers:
        w.start()
    for w in writers:
        w.join(120)
        assert w.exitcode == 0
    with engine.connect() as connection:  # three processes at once: every commit kept, none refused as locked
        assert connection.execute(text("SELECT COUNT(*) FROM t")).scalar() == 600
    engine.dispose()


def test_gradebooks_share_one_engine_per_database_file(tmp_path):
    from nbgrader import api

    assert isinstance(api.create_engine, nbgrader_ext._SharedEngines)
    url = f"sqlite:///{tmp_path / 'gradebook.db'}"
    with api.Gradebook(url, "course") as gb:  # made here: its engine is not kept (the file had no identity yet)
        gb.add_assignment("a1")
    with api.Gradebook(url, "course") as first, api.Gradebook(url, "course") as second:
        assert first.engine is second.engine
        first.update_or_create_student("ada")
    with api.Gradebook(url, "course") as third:  # the engine outlives the closes, and sees what was written
        assert [s.id for s in third.students] == ["ada"] and [a.name for a in third.assignments] == ["a1"]
        kept = third.engine


def test_a_replaced_gradebook_gets_its_tables_again(tmp_path):
    from nbgrader import api

    path = tmp_path / "gradebook.db"
    url = f"sqlite:///{path}"
    for _ in range(2):
        with api.Gradebook(url, "course") as gb:
            gb.update_or_create_student("ada")
        with api.Gradebook(url, "course") as gb:  # a kept engine, its tables known to exist
            assert [s.id for s in gb.students] == ["ada"]
        path.unlink()  # a new gradebook in the same place: not the old file's engine, tables made anew


def test_engines_of_other_courses_are_disposed_beyond_a_few(tmp_path, monkeypatch):
    from nbgrader import api

    shared = api.create_engine
    monkeypatch.setattr(shared, "SIZE", 2)  # (each new gradebook runs alembic: a few of them)
    urls = [f"sqlite:///{tmp_path / f'g{k}.db'}" for k in range(shared.SIZE + 2)]
    for url in urls:
        for _ in range(2):  # (the second open keeps the engine: the file exists by then)
            with api.Gradebook(url, "course") as gb:
                gb.update_or_create_student("ada")
    kept = [key[0] for key in shared.engines]
    assert len(kept) <= shared.SIZE and urls[-1] in kept and urls[0] not in kept
    with api.Gradebook(urls[0], "course") as gb:  # an evicted one opens again, with its data
        assert [s.id for s in gb.students] == ["ada"]


def test_threads_write_one_gradebook_at_once(tmp_path):
    import threading

    from nbgrader import api

    url = f"sqlite:///{tmp_path / 'gradebook.db'}"
    with api.Gradebook(url, "course") as gb:
        gb.add_assignment("a1")
    errors = []

    def write(prefix):
        try:
            for k in range(10):
                with api.Gradebook(url, "course") as gb:
                    gb.update_or_create_student(f"{prefix}{k}")
        except Exception as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(p,)) for p in "abc"]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    with api.Gradebook(url, "course") as gb:
        assert len(gb.students) == 30


def test_another_process_writing_between_two_gradebooks_is_seen(tmp_path):
    """A Gradebook of this process, then another process's writes, then another Gradebook here: they are read (an
    idle pooled connection kept across them once read the file as malformed)."""
    import subprocess

    from nbgrader import api

    url = f"sqlite:///{tmp_path / 'gradebook.db'}"
    for _ in range(2):
        with api.Gradebook(url, "course") as gb:
            gb.update_or_create_student("ann")
    code = ("import grader.nbgrader_ext\nfrom nbgrader.api import Gradebook\n"
            f"for k in range(5):\n    with Gradebook({url!r}, 'course') as gb:\n"
            "        gb.update_or_create_student(f's{k}')\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    with api.Gradebook(url, "course") as gb:
        assert sorted(s.id for s in gb.students) == ["ann", "s0", "s1", "s2", "s3", "s4"]
