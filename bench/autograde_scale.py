"""Class-scale grading on Dask (grader/cluster.py) against the classroom driver of today (the threads engine), in
the same run, on a generated class of the toy course of tests/test_classroom.py (two graded functions; each
submission is correct, has a known mistake, has the wrong dtype or is the unchanged student version, in turn).

A benchmark, not a test: for each engine, `python -m grader.classroom autograde` on a fresh copy of the class, its
start-up (sandbox pool or cluster and its workers' sandboxes) and its grading time as printed, the throughput in
submissions per second of grading; then the Dask scheduler's own cost per task: 200 empty tasks on a 2-process
LocalCluster, one after the other (a round trip each) and all at once, as a share of the measured grading time of
one submission.

CPU per submission, to tell a slow engine from a busy machine: the command's process tree is sampled (psutil) from
the moment it prints that it is ready to the moment it prints its summary; the CPU time of the sandboxes (bwrap and
everything under it: the students' code) and of the trusted side (the driver, the Dask scheduler and workers:
nbgrader, scoring, the gradebook) is divided by the submissions graded; with --postgres, the database server's CPU
too. The load average before and after each run says how much of the 2 CPUs other work took meanwhile.

    .venv/bin/python bench/autograde_scale.py [--class-size 300] [--postgres] [--out FILE.json]

--postgres: every run's gradebook (and ledger) in a fresh database of a throwaway PostgreSQL server
(tests/pg_server.py: fsync off, as for the tests), instead of the course's SQLite file.
"""

import argparse
import json
import os
import pathlib
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

import nbformat  # noqa: E402

import test_classroom as toy  # noqa: E402

KINDS = ("good", "mistake", "dtype", "blank")


def make_class(folder, size, db_url=None):
    course, checks = toy.make_course(folder, db_url)
    release = nbformat.read(course / "release" / "toy" / "toy.ipynb", as_version=4)
    notebooks = {
        "good": toy.fill(release, **toy.GOOD),
        "mistake": toy.fill(release, square="return np.where(x > 0, x * x, 0 * x)", cube=toy.GOOD["cube"]),
        "dtype": toy.fill(release, square=toy.GOOD["square"], cube="return (x ** 3).astype(np.float64)"),
        "blank": release,
    }
    for i in range(size):
        folder = course / "submitted" / f"s{i:04d}" / "toy"
        folder.mkdir(parents=True)
        nbformat.write(notebooks[KINDS[i % len(KINDS)]], folder / "toy.ipynb")
    return course, toy.env_with_checks(checks)


class TreeCPU:
    """CPU seconds used so far by a process tree, split into the sandboxes (a bwrap process and everything under it,
    with the time of the processes they have reaped) and the trusted side (every other process's own time: the
    driver, the Dask scheduler, nannies and workers all live from the start of grading to its summary). A sandbox
    that has ended (the threads driver stops its pool before its summary) counts as last sampled."""

    def __init__(self, pid, period=0.2):
        import psutil

        self.root, self.period, self.last = psutil.Process(pid), period, {}
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._poll, daemon=True)
        self.thread.start()

    def _poll(self):
        while not self.stop.wait(self.period):
            self.sample()

    def sample(self):
        """(trusted, sandbox) CPU seconds so far."""
        import psutil

        try:
            procs = [self.root, *self.root.children(recursive=True)]
        except psutil.NoSuchProcess:
            return None
        boxed = set()
        for proc in procs:  # the sandboxes first: bwrap and everything under it
            try:
                if proc.name() == "bwrap":
                    below = proc.children(recursive=True)
                    boxed.update([proc.pid, *(p.pid for p in below)])
                    self.last[proc.pid] = self._own(proc) + sum(self._own(p) for p in below)
            except psutil.NoSuchProcess:
                continue
        trusted = 0.0
        for proc in procs:
            if proc.pid not in boxed:
                try:
                    times = proc.cpu_times()
                except psutil.NoSuchProcess:
                    continue
                trusted += times.user + times.system
        return trusted, sum(self.last.values())

    @staticmethod
    def _own(proc):
        import psutil

        try:
            times = proc.cpu_times()
        except psutil.NoSuchProcess:
            return 0.0
        return times.user + times.system + times.children_user + times.children_system

    def close(self):
        self.stop.set()
        self.thread.join()


def server_cpu(server):
    """CPU seconds so far of a PostgresServer's processes (the postmaster and its backends, live and reaped)."""
    import psutil

    if server is None:
        return 0.0
    pid = int((server.data / "postmaster.pid").read_text().split()[0])
    root = psutil.Process(pid)
    return sum(TreeCPU._own(p) for p in [root, *root.children(recursive=True)])


def grade(course, env, *args, server=None):
    started = time.monotonic()
    load_before = os.getloadavg()[0]
    proc = subprocess.Popen([sys.executable, "-m", "grader.classroom", "autograde", "--course", str(course),
                             "--no-similarity", *args], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    tree, lines, marks = TreeCPU(proc.pid), [], {}
    err = []
    reader = threading.Thread(target=lambda: err.append(proc.stderr.read()), daemon=True)
    reader.start()
    for line in proc.stdout:  # (the CPU used so far when it says it is ready, and when it gives its summary)
        lines.append(line)
        if "ready in" in line and "ready" not in marks:
            marks["ready"] = (tree.sample(), server_cpu(server))
        elif line.startswith("Autograded ") and "done" not in marks:
            marks["done"] = (tree.sample(), server_cpu(server))
    proc.wait()
    tree.close()
    reader.join()
    wall = time.monotonic() - started
    out = "".join(lines)
    if proc.returncode:
        raise SystemExit(f"autograde {' '.join(args)} failed:\n{out}\n{''.join(err)}")
    ready = float(re.search(r"ready in ([\d.]+) s", out).group(1))
    total = float(re.search(r"Autograded \d+ submission\(s\).*? in ([\d.]+) s", out).group(1))
    graded = int(re.search(r"Autograded (\d+) submission", out).group(1))
    (trusted0, boxes0), db0 = marks["ready"]
    (trusted1, boxes1), db1 = marks["done"]
    return {"wall_seconds": round(wall, 2), "startup_seconds": ready, "grading_seconds": round(total - ready, 2),
            "graded": graded, "per_second": round(graded / (total - ready), 3),
            "cpu_seconds_per_submission": {"trusted": round((trusted1 - trusted0) / graded, 4),
                                           "sandbox": round((boxes1 - boxes0) / graded, 4),
                                           "database_server": round((db1 - db0) / graded, 4)},
            "load_average_1min_before_after": [round(load_before, 2), round(os.getloadavg()[0], 2)]}


def scheduler_overhead(tasks=200):
    """Seconds per empty task on a 2-process LocalCluster: one at a time (submit, wait) and all at once."""
    from distributed import Client, LocalCluster, wait

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster, \
            Client(cluster) as client:
        client.submit(int, 0, pure=False).result()  # warm
        started = time.monotonic()
        for i in range(tasks):
            client.submit(int, i, pure=False).result()
        serial = (time.monotonic() - started) / tasks
        started = time.monotonic()
        wait([client.submit(int, i, pure=False) for i in range(tasks)])
        bulk = (time.monotonic() - started) / tasks
    return {"serial_seconds_per_task": round(serial, 4), "bulk_seconds_per_task": round(bulk, 4)}


RUNS = (("threads driver, 2 at once (today)", ["--engine", "threads", "--jobs", "2"]),
        ("dask, 1 worker", ["--engine", "dask", "--jobs", "1"]),
        ("dask, 2 workers", ["--engine", "dask", "--jobs", "2"]))


def provenance():
    def git(*args):
        proc = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True)
        return proc.stdout.rstrip("\n")  # (porcelain lines begin with a space)

    return {"date_utc": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime()), "commit": git("rev-parse", "HEAD"),
            "python": platform.python_version(), "platform": platform.platform(),
            "command": " ".join(["bench/autograde_scale.py", *sys.argv[1:]]),
            # files of the grader that differed from that commit while it ran (the work tree is shared)
            "uncommitted": sorted(line[3:] for line in git("status", "--porcelain", "--", "grader", "bench",
                                                           "tests/test_classroom.py").splitlines())}


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--class-size", type=int, default=300)
    p.add_argument("--postgres", action="store_true",
                   help="the gradebooks in a throwaway PostgreSQL server (tests/pg_server.py), not SQLite")
    p.add_argument("--out", type=pathlib.Path, default=None)
    options = p.parse_args()
    started = provenance()
    server = None
    if options.postgres:
        from pg_server import PostgresServer

        server = PostgresServer().start()
    runs = {}
    try:
        for index, (name, args) in enumerate(RUNS):
            folder = pathlib.Path(tempfile.mkdtemp(prefix="autograde-scale-"))
            try:
                url = server.create_database(f"scale{index}") if server else None
                course, env = make_class(folder, options.class_size, url)
                runs[name] = grade(course, env, *args, server=server)
                runs[name]["database"] = "postgresql (throwaway server, fsync off)" if server else "sqlite"
            finally:
                shutil.rmtree(folder, ignore_errors=True)
            print(f"{name}: {runs[name]}", flush=True)
    finally:
        if server is not None:
            server.stop()
    overhead = scheduler_overhead()
    one, two = runs["dask, 1 worker"], runs["dask, 2 workers"]
    per_submission = one["grading_seconds"] / one["graded"]
    cpu = {name: sum(run["cpu_seconds_per_submission"].values()) for name, run in runs.items()}
    result = {
        "machine": f"{platform.machine()}, {os.cpu_count()} CPU(s) (shared with other work while measured: see "
                   "each run's load average)",
        "provenance": started,
        "class_size": options.class_size, "database": "postgresql" if server else "sqlite",
        "runs": runs, "scheduler": overhead,
        "seconds_per_submission_1_worker": round(per_submission, 3),
        "overhead_share_serial": round(overhead["serial_seconds_per_task"] / per_submission, 4),
        "speedup_2_workers": round(two["per_second"] / one["per_second"], 2),
        "dask_2_against_threads_2": round(two["per_second"]
                                          / runs["threads driver, 2 at once (today)"]["per_second"], 2),
        # the most this machine's CPUs could grade per second if nothing else ran and no one waited (CPU-bound)
        "cpu_seconds_per_submission": {name: round(value, 4) for name, value in cpu.items()},
        "cpu_bound_ceiling_per_second": {name: round(os.cpu_count() / value, 2) for name, value in cpu.items()},
        # the CPUs each run got: submissions per second times CPU seconds per submission (of os.cpu_count())
        "cpus_used": {name: round(run["per_second"] * cpu[name], 2) for name, run in runs.items()},
        "completed": True,
    }
    print(json.dumps(result, indent=1))
    if options.out:
        options.out.write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
