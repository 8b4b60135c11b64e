"""The gradebook's database (grader/gradebook_db.py): a wrong or unreachable db_url is one clear line, said before any
submission is touched, by each of the classroom's commands; the password never shows; nbgrader's gradebook works on
a real PostgreSQL server (tests/pg_server.py: Debian's postgresql, initdb + pg_ctl in a temporary folder, as an
unprivileged user, on a Unix socket). The whole class graded end to end on PostgreSQL is in tests/test_classroom.py
(its `graded` fixture runs every end-to-end test on SQLite and on PostgreSQL)."""

import os
import pathlib
import sys

import pytest

from grader import classroom, gradebook_db
from pg_server import PostgresServer

BIN = pathlib.Path(sys.executable).parent


@pytest.fixture(scope="module")
def server():
    with PostgresServer() as running:
        yield running


@pytest.fixture(autouse=True)
def venv_path(monkeypatch):
    monkeypatch.setenv("PATH", os.pathsep.join([str(BIN), os.environ.get("PATH", "")]))  # (nbgrader runs alembic)


def test_a_reachable_database_passes_and_nbgrader_keeps_its_gradebook_there(server):
    from nbgrader.api import Gradebook

    url = server.create_database("good")
    gradebook_db.check(url)
    with Gradebook(url, "c") as gb:
        gb.update_or_create_student("s1")
        gb.update_or_create_assignment("hw")
    with Gradebook(url, "c") as gb:  # a new connection: it was committed in the server
        assert [s.id for s in gb.students] == ["s1"] and [a.name for a in gb.assignments] == ["hw"]


def _error(url):
    with pytest.raises(gradebook_db.GradebookError) as info:
        gradebook_db.check(url)
    message = str(info.value)
    assert "\n" not in message, message
    return message


def test_each_wrong_db_url_says_what_and_where_in_one_line(server, tmp_path):
    assert "is not a database URL" in _error("gradebook.db")
    assert "is empty" in _error("")
    # SQLAlchemy 2 dropped the postgres:// spelling: a common typo
    assert "'postgres' is not a kind of database SQLAlchemy knows" in _error("postgres://grader@/gradebook")
    assert "needs the Python driver 'pg8000', which is not installed" in _error("postgresql+pg8000://u@h/gradebook")
    message = _error(f"sqlite:///{tmp_path}/no/such/folder/gradebook.db")
    assert f"its folder {tmp_path}/no/such/folder does not exist" in message, message
    message = _error(server.url("nosuch"))
    assert message.startswith(f"cannot reach the gradebook database at {server.socket_dir}, database 'nosuch'")
    assert 'database "nosuch" does not exist' in message, message
    empty = tmp_path / "no_server"
    empty.mkdir()
    message = _error(f"postgresql+psycopg2://grader@/gradebook?host={empty}")
    assert message.startswith(f"cannot reach the gradebook database at {empty}, database 'gradebook'"), message
    assert "No such file or directory" in message, message


def test_a_password_is_never_printed():
    message = _error("postgresql+psycopg2://grader:s3cr3t-pw@127.0.0.1:1/gradebook")  # (port 1: refused at once)
    assert "s3cr3t" not in message and "grader:***@127.0.0.1:1" in message, message
    assert message.startswith("cannot reach the gradebook database at 127.0.0.1:1, database 'gradebook'"), message


def _course(tmp_path, url):
    """A course whose configuration names this gradebook, with one submission."""
    course = tmp_path / "course"
    (course / "submitted" / "s1" / "hw").mkdir(parents=True)
    (course / "submitted" / "s1" / "hw" / "hw.ipynb").write_text("{}")
    (course / "nbgrader_config.py").write_text(f"c = get_config()\nc.CourseDirectory.db_url = {url!r}\n")
    return course


def _files(folder):
    return {str(p.relative_to(folder)): p.stat().st_mtime_ns for p in folder.rglob("*")}


@pytest.mark.parametrize("command", ["autograde", "feedback", "grades"])
def test_the_classroom_stops_before_touching_anything(server, tmp_path, capsys, command):
    """The configuration's db_url names a database that does not exist; then --db-url names a server that is not
    running: each command says so in one line and exits 2; the course folder is as it was (no autograded/ folder,
    no gradebook, no sandbox started)."""
    course = _course(tmp_path, server.url("missing"))
    before = _files(course)
    args = [command, "--course", str(course)] + (["--no-similarity"] if command == "autograde" else [])
    assert classroom.main(args) == 2
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1 and out[0].startswith("Cannot ") and 'database "missing" does not exist' in out[0], out
    stopped = tmp_path / "stopped"
    stopped.mkdir()
    assert classroom.main([*args, "--db-url", f"postgresql+psycopg2://grader@/gradebook?host={stopped}"]) == 2
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1 and f"cannot reach the gradebook database at {stopped}" in out[0], out
    assert _files(course) == before


def test_db_url_on_the_command_line_wins_over_the_configuration(server, tmp_path, capsys):
    """--db-url: the grades come from that database (an empty gradebook: no rows, exit 0), although the
    configuration names one that does not exist."""
    course = _course(tmp_path, server.url("missing"))
    url = server.create_database("given")
    target = tmp_path / "grades.csv"
    assert classroom.main(["grades", "--course", str(course), "--db-url", url, "--to", str(target)]) == 0
    assert "Grades:" in capsys.readouterr().out
    assert target.read_text().splitlines()[0].startswith("assignment,duedate")
    assert classroom.Course.load(course, url).coursedir.db_url == url
