"""How long autograding takes: one student's three assignments, then a class of 30 generated submissions.

A benchmark, not a test: it prints wall times (and writes them to book/data/autograde_speed.json for the
assignments page). Everything runs on a temporary copy of the course with the classroom driver that `make autograde`
uses (stock `nbgrader autograde` underneath).

The class: 15 students hand in the solutions, 10 the solutions with one mistake of the library each (drawn with a
fixed seed), 5 a broken submission (not JSON, renamed notebook, endless loop, crashing kernel, 50 MB of output).

    .venv/bin/python bench/autograde_speed.py [--class-size 30] [--out book/data/autograde_speed.json]
"""

import argparse
import json
import os
import pathlib
import platform
import random
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

import nbgrader_course as nc  # noqa: E402

BROKEN = {
    "not_json": lambda nb, a: dict(raw=nc.nbformat.writes(nb)[: 2000]),
    "renamed": lambda nb, a: dict(nb=nb, filename=f"{a} (1).ipynb"),
    "endless_loop": lambda nb, a: dict(nb=_append(nb, "while True:\n    pass")),
    "kernel_crash": lambda nb, a: dict(nb=_append(nb, "import os\nos._exit(1)")),
    "huge_output": lambda nb, a: dict(nb=_append(nb, "print('x' * 50_000_000)")),
}


def _append(nb, code):
    """The notebook with `code` at the end of its first solution cell (runs when the cell runs)."""
    nb = nc.nbformat.from_dict(nb)
    cell = next(c for c in nb.cells if c.get("metadata", {}).get("nbgrader", {}).get("solution")
                and c.cell_type == "code")
    cell.source += "\n" + code + "\n"
    return nb


def autograde(course):
    env = dict(os.environ, PATH=f"{nc.BIN}{os.pathsep}{os.environ['PATH']}")
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "grader.classroom", "autograde", "--course", str(course)],
                          capture_output=True, text=True, env=env)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"autograde failed:\n{proc.stdout}\n{proc.stderr}")
    return wall, proc.stdout


def new_course(tmp):
    course = nc.make_course(pathlib.Path(tmp) / "course")
    for a in nc.ASSIGNMENTS:
        nc.nbgrader(course, "generate_assignment", a, "--force")
    return course


def one_student(tmp):
    course = new_course(tmp)
    for a in nc.ASSIGNMENTS:
        nc.submit(course, "s001", a, nc.perfect_student(nc.source_notebook(course, a)))
    wall, _ = autograde(course)
    return wall


def a_class(tmp, size, seed=0):
    rng = random.Random(seed)
    course = new_course(tmp)
    perfect = {a: nc.perfect_student(nc.source_notebook(course, a)) for a in nc.ASSIGNMENTS}
    injections = [(a, inj) for a in nc.ASSIGNMENTS for inj in nc.load_injections(a)]
    n_broken = len(BROKEN) if size >= 10 else 0
    n_wrong = size // 3
    kinds = {}
    for k in range(size):
        student = f"s{k:03d}"
        if k < n_broken:
            kind = list(BROKEN)[k]
            target = nc.ASSIGNMENTS[k % len(nc.ASSIGNMENTS)]
        elif k < n_broken + n_wrong:
            target, (mistake_id, grade_id, old, new, _) = rng.choice(injections)
            kind = f"mistake {mistake_id}"
        else:
            kind, target = "correct", None
        kinds[student] = kind
        for a in nc.ASSIGNMENTS:
            if a != target:
                nc.submit(course, student, a, perfect[a])
            elif kind in BROKEN:
                nc.submit(course, student, a, **BROKEN[kind](perfect[a], a))
            else:
                nc.submit(course, student, a, nc.with_injection(perfect[a], grade_id, old, new))
    wall, summary = autograde(course)
    return wall, kinds, summary


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--class-size", type=int, default=30)
    parser.add_argument("--out", type=pathlib.Path, default=None, help="write the results as JSON here")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        one = one_student(tmp)
    print(f"one student, three assignments: {one:.1f} s wall")
    with tempfile.TemporaryDirectory() as tmp:
        wall, kinds, summary = a_class(tmp, args.class_size)
    broken = sum(k in BROKEN for k in kinds.values())
    wrong = sum(k.startswith("mistake") for k in kinds.values())
    print(summary.strip().splitlines()[-1] if summary.strip() else "")
    print(f"class of {len(kinds)} ({len(kinds) - broken - wrong} correct, {wrong} with a mistake, {broken} broken), "
          f"three assignments each: {wall:.1f} s wall, {wall / len(kinds):.1f} s per student")
    if args.out:
        args.out.write_text(json.dumps({
            "one_student_s": round(one, 1), "class_size": len(kinds), "class_s": round(wall, 1),
            "class_per_student_s": round(wall / len(kinds), 1), "class_broken": broken, "class_with_mistake": wrong,
            "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        }, indent=1) + "\n")


if __name__ == "__main__":
    main()
