"""How long each chapter took to execute in the last book build, from jupyter-book's execution cache.

Run after `make book` (or `make test`, which builds into the same _build/):

    .venv/bin/python bench/chapter_times.py [--build-dir _build] [--budget 60]

The cache (_build/.jupyter_cache, jupyter-cache) keeps one record per executed notebook with its execution time
(data["execution_seconds"]), keyed by a hash of the notebook's code cells. A chapter is matched to its record the way
the build does it (cache.match_cache_notebook), so the time shown is that of the notebook as it is now. A chapter
edited since it was last executed shows the time of its latest record, marked "stale". Two notebooks with exactly the
same code cells (placeholders) share one record: the time was measured on whichever ran first.
"""

import argparse
import sys
from pathlib import Path

import nbformat
from jupyter_cache import get_cache

from course_pkg.toc import toc_docnames

ROOT = Path(__file__).resolve().parents[1]


def chapter_times(build_dir):
    """[(notebook path relative to the repository, seconds or None, status)] for the notebooks of _toc.yml."""
    cache = get_cache(str(build_dir / ".jupyter_cache"))
    records = cache.list_cache_records()
    failed = {Path(record.uri).resolve(): record for record in cache.list_project_records() if record.traceback}
    rows = []
    for docname in toc_docnames(ROOT / "_toc.yml"):
        path = ROOT / f"{docname}.ipynb"
        if not path.is_file():
            continue  # a Markdown page: nothing executed
        try:
            record = cache.match_cache_notebook(nbformat.read(path, as_version=4))
            ran = Path(record.uri).resolve()
            status = "cached" if ran == path.resolve() else f"cached (identical code cells ran as {ran.name})"
        except KeyError:
            mine = [record for record in records if Path(record.uri).resolve() == path.resolve()]
            record = max(mine, key=lambda record: record.pk, default=None)
            status = "stale: edited since" if record else "not executed"
            if path.resolve() in failed:
                status = "FAILED in the last build"
        seconds = None if record is None else record.data.get("execution_seconds")
        rows.append((str(path.relative_to(ROOT)), seconds, status))
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--build-dir", type=Path, default=ROOT / "_build", help="jupyter-book's _build folder")
    parser.add_argument("--budget", type=float, default=60.0, help="seconds a chapter may take (flagged above)")
    args = parser.parse_args(argv)
    if not (args.build_dir / ".jupyter_cache").is_dir():
        print(f"no execution cache in {args.build_dir}: build the book first (`make book`)", file=sys.stderr)
        return 1
    rows = chapter_times(args.build_dir)
    width = max([len("chapter"), *(len(name) for name, _, _ in rows)])
    print(f"{'chapter':<{width}}  {'seconds':>8}  status")
    print(f"{'-' * width}  {'-' * 8}  {'-' * 6}")
    total = 0.0
    for name, seconds, status in rows:
        shown = "-" if seconds is None else f"{seconds:8.1f}"
        if seconds is not None:
            total += seconds
            if seconds > args.budget:
                status += f"; OVER the {args.budget:g} s budget"
        print(f"{name:<{width}}  {shown:>8}  {status}")
    print(f"{'-' * width}  {'-' * 8}")
    print(f"{'total':<{width}}  {total:8.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
