"""A throwaway PostgreSQL server for the tests and the benchmark: Debian's `postgresql` package (its server binaries
live in /usr/lib/postgresql/<version>/bin, off PATH), `initdb` and `pg_ctl` in a temporary folder, run as an
unprivileged user (nobody when the tests run as root: PostgreSQL refuses to run as root), listening on a Unix socket
in that folder only (no TCP port, so servers of parallel runs never collide). Trust authentication: only who can
reach the folder can connect, and the folder is removed when the server stops.

    with PostgresServer() as server:
        url = server.create_database("gradebook")  # postgresql+psycopg2://grader@/gradebook?host=<folder>

Nothing here skips: a machine without the server package gets a RuntimeError that says how to install it
(`make test` installs it, as it does bubblewrap).
"""

from __future__ import annotations

import glob
import os
import pathlib
import pwd
import shutil
import subprocess
import tempfile
import time

USER = "grader"  # the database role initdb makes (the superuser of this throwaway cluster)


def server_bin():
    """The newest installed PostgreSQL's server binaries folder."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"), key=lambda p: int(p.split("/")[4]))
    if not found:
        raise RuntimeError("PostgreSQL's server is not installed (no /usr/lib/postgresql/*/bin/pg_ctl): "
                           "apt-get install postgresql (`make test` installs it)")
    return pathlib.Path(found[-1]).parent


class PostgresServer:
    def __init__(self):
        self.bin = server_bin()
        self.folder = None
        self.started = False
        if os.geteuid() == 0:
            nobody = pwd.getpwnam("nobody")
            self.uid, self.gid = nobody.pw_uid, nobody.pw_gid
        else:
            self.uid = self.gid = None

    @property
    def data(self):
        return self.folder / "data"

    @property
    def socket_dir(self):
        return self.folder

    def _run(self, *args, check=True):
        kwargs = {"user": self.uid, "group": self.gid, "extra_groups": []} if self.uid is not None else {}
        env = {"PATH": f"{self.bin}:/usr/bin:/bin", "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8", "HOME": str(self.folder)}
        proc = subprocess.run([str(self.bin / args[0]), *args[1:]], cwd=self.folder, env=env, capture_output=True,
                              text=True, timeout=120, **kwargs)
        if check and proc.returncode:
            raise RuntimeError(f"{args[0]} failed ({proc.returncode}): {proc.stdout}{proc.stderr}")
        return proc

    def start(self):
        started = time.monotonic()
        # /tmp itself (not pytest's tmp_path, whose parents are root's, mode 0700): the server's user must reach it
        self.folder = pathlib.Path(tempfile.mkdtemp(prefix="grader-pg-", dir="/tmp"))
        if self.uid is not None:
            os.chown(self.folder, self.uid, self.gid)
        self._run("initdb", "-D", str(self.data), "-U", USER, "--auth=trust", "-E", "UTF8", "--locale=C.UTF-8",
                  "--no-sync")
        # no TCP at all (listen_addresses empty); the socket in the folder; fsync off: a test server, thrown away
        options = f"-k {self.socket_dir} -c listen_addresses='' -c fsync=off -c max_connections=200"
        self._run("pg_ctl", "-D", str(self.data), "-o", options, "-l", str(self.folder / "server.log"), "-w",
                  "-t", "60", "start")
        self.started = True
        self.start_seconds = time.monotonic() - started
        return self

    def url(self, database="gradebook", driver="postgresql+psycopg2"):
        return f"{driver}://{USER}@/{database}?host={self.socket_dir}"

    def create_database(self, name="gradebook"):
        """An empty database on this server; its SQLAlchemy URL (nbgrader's db_url)."""
        import psycopg2

        connection = psycopg2.connect(dbname="postgres", user=USER, host=str(self.socket_dir))
        try:
            connection.autocommit = True
            with connection.cursor() as cursor:
                cursor.execute(f'CREATE DATABASE "{name}"')
        finally:
            connection.close()
        return self.url(name)

    def log(self):
        path = self.folder / "server.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def stop(self):
        """Stop the server (fast: its connections are ended) and remove its folder."""
        if self.started:
            self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "-t", "60", "stop", check=False)
            self.started = False
        if self.folder is not None:
            shutil.rmtree(self.folder, ignore_errors=True)
            self.folder = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
