"""Class-scale grading on Dask (grader/cluster.py) against the classroom driver of today (the threads engine), in
the same run, on a generated class of the toy course of tests/test_classroom.py (two graded functions; each
submission is correct, has a known mistake, has the wrong dtype or is the unchanged student version, in turn).

A benchmark, not a test: for each engine, `python -m grader.classroom autograde` on a fresh copy of the class, its
start-up (sandbox pool or cluster and its workers' sandboxes) and its grading time as printed, the throughput in
submissions per second of grading; then the Dask scheduler's own cost per task: 200 empty tasks on a 2-process
LocalCluster, one after the other (a round trip each) and all at once, as a share of the measured grading time of
one submission.

    .venv/bin/python bench/autograde_scale.py [--class-size 300] [--out FILE.json]
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
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

import nbformat  # noqa: E402

import test_classroom as toy  # noqa: E402

KINDS = ("good", "mistake", "dtype", "blank")


def make_class(folder, size):
    course, checks = toy.make_course(folder)
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


def grade(course, env, *args):
    started = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "grader.classroom", "autograde", "--course", str(course),
                           "--no-similarity", *args], cwd=ROOT, env=env, capture_output=True, text=True)
    wall = time.monotonic() - started
    if proc.returncode:
        raise SystemExit(f"autograde {' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}")
    ready = float(re.search(r"ready in ([\d.]+) s", proc.stdout).group(1))
    total = float(re.search(r"Autograded \d+ submission\(s\).*? in ([\d.]+) s", proc.stdout).group(1))
    graded = int(re.search(r"Autograded (\d+) submission", proc.stdout).group(1))
    return {"wall_seconds": round(wall, 2), "startup_seconds": ready, "grading_seconds": round(total - ready, 2),
            "graded": graded, "per_second": round(graded / (total - ready), 3)}


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


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--class-size", type=int, default=300)
    p.add_argument("--out", type=pathlib.Path, default=None)
    options = p.parse_args()
    runs = {}
    for name, args in (("threads driver, 2 at once (today)", ["--engine", "threads", "--jobs", "2"]),
                       ("dask, 1 worker", ["--engine", "dask", "--jobs", "1"]),
                       ("dask, 2 workers", ["--engine", "dask", "--jobs", "2"])):
        folder = pathlib.Path(tempfile.mkdtemp(prefix="autograde-scale-"))
        try:
            course, env = make_class(folder, options.class_size)
            runs[name] = grade(course, env, *args)
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        print(f"{name}: {runs[name]}", flush=True)
    overhead = scheduler_overhead()
    one = runs["dask, 1 worker"]
    per_submission = one["grading_seconds"] / one["graded"]
    result = {
        "machine": f"{platform.machine()}, {os.cpu_count()} CPU(s) (shared with other work while measured)",
        "class_size": options.class_size, "runs": runs, "scheduler": overhead,
        "seconds_per_submission_1_worker": round(per_submission, 3),
        "overhead_share_serial": round(overhead["serial_seconds_per_task"] / per_submission, 4),
        "speedup_2_workers": round(runs["dask, 2 workers"]["per_second"] / one["per_second"], 2),
        "dask_2_against_threads_2": round(runs["dask, 2 workers"]["per_second"]
                                          / runs["threads driver, 2 at once (today)"]["per_second"], 2),
    }
    print(json.dumps(result, indent=1))
    if options.out:
        options.out.write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
