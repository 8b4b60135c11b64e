"""How long autograding takes with the trusted grader: the sandbox pool's start-up, one student's three assignments
on a warm pool, and a class of generated submissions; and, in the same run, stock nbgrader (a Jupyter kernel per
notebook, nbgrader's own Execute) on the same student, as the peer.

A benchmark, not a test: it prints wall times and ratios, and writes them to book/data/autograde_speed.json for the
assignments page. Everything runs on a temporary copy of the course, in this process, with the classroom driver's
grade_class (what `make autograde` runs after starting the pool).

The class: 100 submissions, one assignment per student in turn (a1, a2, a3): 10 broken (not JSON, renamed
notebook, endless loop, a loop that swallows the interrupt, crashing code, 50 MB of output, ...), 10 adversarial
(patched numpy, reading the course files, a fork bomb, a network connection, killing the parent, ...), 25 with a
mistake of the library (drawn with a fixed seed), the rest correct.

The grader's automatic diagnosis (grader/diagnosis.py: when no mistake of the library matches, a search over the
single-edit mutants of the solution) is on, as in `make autograde`; --no-diagnosis switches it off.
--diagnosis-overhead grades one class twice, on two copies of one course with the same submissions, without and then
with the diagnosis, and prints both times and their ratio; its class has every other mistaken submission of a2 and
a3 drawn from the twelve mistakes the library does not list (tests/unlisted_mistakes.py), so that the search runs to
its end where it finds nothing and is not cut short by the library.

    .venv/bin/python bench/autograde_speed.py [--class-size 100] [--jobs 2] [--out book/data/autograde_speed.json]
    .venv/bin/python bench/autograde_speed.py --diagnosis-overhead [--class-size 100] [--jobs 2]
"""

import argparse
import json
import os
import pathlib
import platform
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import types

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

import nbgrader_course as nc  # noqa: E402
import unlisted_mistakes  # noqa: E402

from grader import classroom, diagnosis, secret  # noqa: E402
from grader.sandbox import Pool  # noqa: E402

BROKEN = {
    "not JSON": lambda nb, a: dict(raw=nc.nbformat.writes(nb)[: 2000]),
    "renamed": lambda nb, a: dict(nb=nb, filename=f"{a} (1).ipynb"),
    "endless loop": lambda nb, a: dict(nb=_append(nb, "while True:\n    pass")),
    "loop swallowing the interrupt": lambda nb, a: dict(nb=_append(
        nb, "while True:\n    try:\n        while True:\n            pass\n    except BaseException:\n        pass")),
    "os._exit": lambda nb, a: dict(nb=_append(nb, "import os\nos._exit(1)")),
    "50 MB of output": lambda nb, a: dict(nb=_append(nb, "print('x' * 50_000_000)")),
    "syntax error": lambda nb, a: dict(nb=_append(nb, "def (:")),
    "deleted test cell": lambda nb, a: dict(nb=_drop_first_test(nb)),
    "memory flood": lambda nb, a: dict(nb=_append(nb, "blocks = [bytearray(10**9) for _ in range(100)]")),
    "NaN everywhere": lambda nb, a: dict(nb=_append(nb, "import numpy as np\nnp.seterr(all='ignore')")),
}
ATTACKS = {
    "numpy comparators patched": "import numpy as np\nnp.allclose = lambda *a, **k: True\nnp.all = lambda *a, **k: True",
    "reads the course folder": "import glob\nprint(glob.glob('/work/**/source/**/*.ipynb', recursive=True)[:3])",
    "fork bomb": "import os\nfor _ in range(10000):\n    try:\n        os.fork()\n    except OSError:\n        break",
    "network": "import socket\ntry:\n    socket.create_connection(('127.0.0.1', 22), timeout=1)\nexcept OSError as e:"
               "\n    print(e)",
    "kills its parent": "import os, signal\nos.kill(os.getppid(), signal.SIGKILL)",
    "patches sys.modules": "import sys, types\nsys.modules['course_pkg.checks.core'] = types.ModuleType('x')",
    "detached process": "import subprocess\nsubprocess.Popen(['sleep', '600'], start_new_session=True)",
    "input transformer": "get_ipython().input_transformers_cleanup.append(lambda lines: ['1\\n'])",
    "ndarray subclass": "import numpy as np\nclass Yes(np.ndarray):\n    def __eq__(self, o):\n        return True",
    "writes a file flood": "open('big', 'wb').write(b'x' * 10**9)",
}


def _append(nb, code):
    """The notebook with `code` at the end of its first solution cell (runs when the cell runs)."""
    nb = nc.nbformat.from_dict(nb)
    cell = next(c for c in nb.cells if c.get("metadata", {}).get("nbgrader", {}).get("solution")
                and c.cell_type == "code")
    cell.source += "\n" + code + "\n"
    return nb


def _drop_first_test(nb):
    nb = nc.nbformat.from_dict(nb)
    index = next(i for i, c in enumerate(nb.cells) if c.get("metadata", {}).get("nbgrader", {}).get("grade")
                 and c.cell_type == "code")
    del nb.cells[index]
    return nb


def options(jobs):
    return types.SimpleNamespace(jobs=jobs, timeout=None, submission_timeout_given=False, submission_timeout=None,
                                 max_notebook_mb=500, unsafe_no_sandbox=False)


def new_course(tmp):
    course = nc.make_course(pathlib.Path(tmp) / "course")
    for a in nc.ASSIGNMENTS:
        nc.nbgrader(course, "generate_assignment", a, "--force")
    return course


TIMES = {}  # (student, assignment) -> seconds of its last grading


def _timed(grade_one):
    def timed(course, assignment, student, config):
        start = time.perf_counter()
        try:
            return grade_one(course, assignment, student, config)
        finally:
            TIMES[(student, assignment)] = time.perf_counter() - start
    return timed


classroom.autograde_one = _timed(classroom.autograde_one)

DIAGNOSIS = {"on": True}  # SandboxExecute.diagnosis for the gradings of this run
_course_overrides = classroom.overrides


def _overrides(options):
    config = _course_overrides(options)
    config.SandboxExecute.diagnosis = DIAGNOSIS["on"]
    return config


classroom.overrides = _overrides

SEARCH = {"calls": 0, "wall": 0.0, "cpu": 0.0}  # time inside the diagnosis (its mutants' first build included)
_SEARCH_LOCK = threading.Lock()
_explain = diagnosis.Diagnoser.__call__


def _timed_explain(self, *args):
    wall, cpu = time.perf_counter(), time.thread_time()
    try:
        return _explain(self, *args)
    finally:
        with _SEARCH_LOCK:
            SEARCH["calls"] += 1
            SEARCH["wall"] += time.perf_counter() - wall
            SEARCH["cpu"] += time.thread_time() - cpu


diagnosis.Diagnoser.__call__ = _timed_explain


def grade(course, pool, jobs, assignments=nc.ASSIGNMENTS):
    start = time.perf_counter()
    outcomes = classroom.grade_class(classroom.Course.load(course), list(assignments), options(jobs), pool,
                                     say=lambda *a: None)
    return time.perf_counter() - start, outcomes


def one_student(course, pool, jobs, repeats):
    for a in nc.ASSIGNMENTS:
        nc.submit(course, "s001", a, nc.perfect_student(nc.source_notebook(course, a)))
    walls = []
    for _ in range(repeats):
        wall, outcomes = grade(course, pool, jobs)
        assert all(o.status == classroom.GRADED for o in outcomes), [(o.assignment, o.reason) for o in outcomes]
        walls.append(wall)
    return walls


def stock_one_student(course, repeats):
    """The peer: stock nbgrader autograde (nbgrader's Execute: a kernel per notebook, tests run in it), on a copy of
    the course whose configuration lists nbgrader's own preprocessors."""
    stock = pathlib.Path(course).parent / "stock"
    shutil.copytree(course, stock, ignore=shutil.ignore_patterns("autograded", "feedback"))
    config = stock / "nbgrader_config.py"
    config.write_text(config.read_text().replace("c.Autograde.autograde_preprocessors", "_unused_autograde") +
                      f"\nc.CourseDirectory.root = {str(stock)!r}\n")
    walls = []
    for _ in range(repeats):  # one nbgrader run per assignment, one after the other
        start = time.perf_counter()
        for a in nc.ASSIGNMENTS:
            nc.nbgrader(stock, "autograde", a, "--student=s001", "--force")
        walls.append(time.perf_counter() - start)
    return walls


def with_unlisted(nb, mistake):
    """The notebook with the solution cell of the mistake's function replaced by the mistaken function."""
    nb = nc.nbformat.from_dict(nb)
    cells = [c for c in nb.cells if c.get("metadata", {}).get("nbgrader", {}).get("grade_id") == mistake.function]
    assert len(cells) == 1, mistake.function
    cells[0].source = mistake.code.strip() + "\n"
    return nb


def a_class(course, size, pool, jobs, seed=0, unlisted=False):
    """Submit a class and grade it. unlisted: every other mistaken submission of an assignment that has them carries
    one of tests/unlisted_mistakes.py instead of one of the library."""
    rng = random.Random(seed)
    perfect = {a: nc.perfect_student(nc.source_notebook(course, a)) for a in nc.ASSIGNMENTS}
    injections = {a: nc.load_injections(a) for a in nc.ASSIGNMENTS}
    kinds, mistaken = {}, {}
    broken, attacks = list(BROKEN), list(ATTACKS)
    n_broken, n_attack, n_wrong = size // 10, size // 10, size // 4
    for k in range(size):
        student, a = f"c{k:03d}", nc.ASSIGNMENTS[k % len(nc.ASSIGNMENTS)]
        if k < n_broken:
            kind = broken[k % len(broken)]
            nc.submit(course, student, a, **BROKEN[kind](perfect[a], a))
        elif k < n_broken + n_attack:
            kind = attacks[(k - n_broken) % len(attacks)]
            nc.submit(course, student, a, nc.release_notebook(course, a) if a == "a2_lstm" else perfect[a])
            path = pathlib.Path(course) / "submitted" / student / a / f"{a}.ipynb"
            nb = nc.nbformat.read(path, as_version=4)
            nb.cells.insert(2, nc.nbformat.v4.new_code_cell(ATTACKS[kind]))
            nc.nbformat.write(nb, path)
        elif k < n_broken + n_attack + n_wrong:
            mistake_id, grade_id, old, new, _ = rng.choice(injections[a])
            others = [u for u in unlisted_mistakes.UNLISTED if u.assignment == a]
            mistaken[a] = mistaken.get(a, 0) + 1
            if unlisted and others and mistaken[a] % 2:  # the first, third, ... of the assignment
                u = rng.choice(others)
                kind = f"mistake {u.id} (unlisted)"
                nc.submit(course, student, a, with_unlisted(perfect[a], u))
            else:
                kind = f"mistake {mistake_id}"
                nc.submit(course, student, a, nc.with_injection(perfect[a], grade_id, old, new))
        else:
            kind = "correct"
            nc.submit(course, student, a, perfect[a])
        kinds[(student, a)] = kind
    wall, outcomes = grade(course, pool, jobs)
    return wall, kinds, outcomes


def report_class(wall, kinds, outcomes):
    """Print the class's figures, with the time of each kind of submission; return the count of each status."""
    by_kind = {}
    for job, kind in kinds.items():
        by_kind.setdefault(kind if not kind.startswith("mistake") else "with a mistake", []).append(TIMES.get(job, 0))
    print("seconds per submission, by kind (median, max; the class total is their sum over the slots):")
    for kind, times in sorted(by_kind.items(), key=lambda kv: -max(kv[1])):
        print(f"  {kind:32s} {len(times):3d}  {statistics.median(times):6.1f} {max(times):6.1f}")
    counts = {status: sum(o.status == status for o in outcomes)
              for status in (classroom.GRADED, classroom.WITH_PROBLEMS, classroom.NOT_GRADED)}
    n = len(kinds)
    print(f"class of {n} submissions ({sum(k == 'correct' for k in kinds.values())} correct, "
          f"{sum(k.startswith('mistake') for k in kinds.values())} with a mistake, "
          f"{sum(k in BROKEN for k in kinds.values())} broken, {sum(k in ATTACKS for k in kinds.values())} "
          f"adversarial): {wall:.1f} s wall, {wall / n:.2f} s per submission; {counts}")
    return counts


def diagnosis_overhead(size, jobs, seed=0, rounds=2):
    """The same class graded without and with the diagnosis, in the order off, on, on, off, ... (`rounds` pairs, so
    that neither side always goes first on a warming machine), each time on a fresh copy of one course (same secret,
    same submissions) on one warm pool. Prints the mean wall time of each side and their ratio, and how many graded
    notebooks name a mutant (none without the diagnosis)."""
    walls, inside = {False: [], True: []}, {False: [], True: []}
    with tempfile.TemporaryDirectory() as tmp, Pool(jobs) as pool:
        course = new_course(tmp)
        secret.load(course)  # one secret for all copies: the same hidden cases
        order = [on for k in range(rounds) for on in ((False, True) if k % 2 == 0 else (True, False))]
        for run, on in enumerate(order):
            copy = pathlib.Path(tmp) / f"run-{run}"
            shutil.copytree(course, copy)
            DIAGNOSIS["on"] = on
            TIMES.clear()
            SEARCH.update(calls=0, wall=0.0, cpu=0.0)
            print(f"-- run {run + 1} of {len(order)}: diagnosis {'on' if on else 'off'}")
            wall, kinds, outcomes = a_class(copy, size, pool, jobs, seed=seed, unlisted=True)
            report_class(wall, kinds, outcomes)
            named = sum("Likely mistake [auto-" in p.read_text() for p in (copy / "autograded").rglob("*.ipynb"))
            print(f"   graded notebooks naming a mutant: {named}; searches: {SEARCH['calls']}, "
                  f"{SEARCH['wall']:.1f} s inside them ({SEARCH['cpu']:.1f} s of CPU in the grading threads)")
            walls[on].append(wall)
            inside[on].append(SEARCH["wall"])
    off, on = statistics.mean(walls[False]), statistics.mean(walls[True])
    print(f"diagnosis overhead on a class with mistakes: {off:.1f} s without (runs: "
          f"{', '.join(f'{w:.1f}' for w in walls[False])}), {on:.1f} s with (runs: "
          f"{', '.join(f'{w:.1f}' for w in walls[True])}); ratio {on / off:.3f}; time inside the search "
          f"{statistics.mean(inside[True]):.1f} s per class ({statistics.mean(inside[True]) / off:.1%} of the "
          "class without it, spread over the grading threads)")
    return walls


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--class-size", type=int, default=100, help="submissions in the class")
    parser.add_argument("--jobs", type=int, default=2, help="sandbox slots, and submissions graded at once")
    parser.add_argument("--repeats", type=int, default=3, help="runs of the one-student case")
    parser.add_argument("--class-only", action="store_true", help="skip the one-student case and its peer")
    parser.add_argument("--out", type=pathlib.Path, default=None, help="write the results as JSON here")
    parser.add_argument("--no-diagnosis", action="store_true", help="grade without the automatic diagnosis")
    parser.add_argument("--diagnosis-overhead", action="store_true",
                        help="only grade a class with mistakes without and with the diagnosis, and compare")
    parser.add_argument("--rounds", type=int, default=2, help="pairs of runs (off, on) of --diagnosis-overhead")
    args = parser.parse_args()
    DIAGNOSIS["on"] = not args.no_diagnosis
    if args.diagnosis_overhead:
        if args.out or args.class_only or args.no_diagnosis:
            parser.error("--diagnosis-overhead runs alone")
        return diagnosis_overhead(args.class_size, args.jobs, rounds=args.rounds)
    if args.class_only and args.out:
        parser.error("--out needs the one-student case: leave out --class-only")
    load_before = os.getloadavg()[0]  # (the machine's other work: the figures are only as quiet as it was)
    with tempfile.TemporaryDirectory() as tmp, Pool(args.jobs) as pool:
        if args.class_only:
            course = new_course(tmp)
            wall, kinds, outcomes = a_class(course, args.class_size, pool, args.jobs)
            return report_class(wall, kinds, outcomes)
        print(f"sandbox pool: {args.jobs} slot(s) (numpy, IPython, TensorFlow imported) ready in "
              f"{pool.start_seconds:.1f} s")
        course = new_course(tmp)
        ours = one_student(course, pool, args.jobs, args.repeats)
        pool_start = pool.start_seconds
        stock = stock_one_student(course, args.repeats)
        print(f"one student, {len(nc.ASSIGNMENTS)} assignments, warm pool: median {statistics.median(ours):.1f} s "
              f"(runs: {', '.join(f'{w:.1f}' for w in ours)})")
        print(f"  peer, stock nbgrader autograde (a kernel per notebook): median {statistics.median(stock):.1f} s "
              f"(runs: {', '.join(f'{w:.1f}' for w in stock)}); ratio ours / stock "
              f"{statistics.median(ours) / statistics.median(stock):.2f}")
    with tempfile.TemporaryDirectory() as tmp, Pool(args.jobs) as pool:
        course = new_course(tmp)
        wall, kinds, outcomes = a_class(course, args.class_size, pool, args.jobs)
        cell_timeout = classroom.Course.load(course).config.SandboxExecute.cell_timeout
    counts = report_class(wall, kinds, outcomes)
    n = len(kinds)
    if args.out:
        args.out.write_text(json.dumps({
            "pool_start_s": round(pool_start, 1), "jobs": args.jobs, "one_student_assignments": len(nc.ASSIGNMENTS),
            "one_student_s": round(statistics.median(ours), 1), "one_student_runs_s": [round(w, 2) for w in ours],
            "stock_one_student_s": round(statistics.median(stock), 1),
            "stock_one_student_runs_s": [round(w, 2) for w in stock],
            "class_size": n, "class_s": round(wall, 1), "class_per_submission_s": round(wall / n, 2),
            "class_broken": sum(k in BROKEN for k in kinds.values()),
            "class_adversarial": sum(k in ATTACKS for k in kinds.values()),
            "class_with_mistake": sum(k.startswith("mistake") for k in kinds.values()),
            "class_statuses": counts,
            "cell_timeout_s": cell_timeout,
            "load_average_before": round(load_before, 2), "load_average_after": round(os.getloadavg()[0], 2),
            "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        }, indent=1) + "\n")


if __name__ == "__main__":
    main()
