"""What the grader changes in nbgrader's and SQLite's defaults to grade faster, checked to change nothing else:
nbgrader's cell-metadata check with each schema checked once (grader/nbgrader_ext.py), and SQLite gradebooks in
WAL mode (grader/gradebook_db.py)."""

import copy
import multiprocessing

import jsonschema
import pytest
from nbgrader.nbgraderformat import common, v3

from grader import gradebook_db, nbgrader_ext

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
