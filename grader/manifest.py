"""The manifest of the course's assignments (assignments/manifest.toml): one entry per assignment, read here.

Everything that enumerates the assignments derives from it: the grader (which checks module scores a notebook, what
its sandboxed worker may import), the copy check, the tests, the book's assignments page and `make release`.
COURSE_MANIFEST=path reads another manifest (a test adds a throwaway assignment that way).

    python -m grader.manifest ids          the assignment ids, one per line (for make)
    python -m grader.manifest check        load every entry and its checks module; say what is wrong
"""

from __future__ import annotations

import dataclasses
import functools
import importlib
import json
import os
import pathlib
import re
import sys
import tomllib

ROOT = pathlib.Path(__file__).resolve().parents[1]
DEFAULT = ROOT / "assignments" / "manifest.toml"
FIELDS = {"id", "title", "notebook", "checks", "sandbox_modules", "chapters"}
REQUIRED = ("id", "title", "checks")


class ManifestError(ValueError):
    """The manifest cannot be used: the message says which entry, which field, what was expected and what came."""


@dataclasses.dataclass(frozen=True)
class Assignment:
    id: str
    title: str
    checks: str
    notebook: str
    sandbox_modules: tuple  # ((module, None for all of it or a tuple of names), ...)
    chapters: tuple
    source: pathlib.Path  # the course's source/ folder this entry's notebook lives in

    @property
    def registry(self):
        """The assignment's Registry (its graded functions, their references, its mistakes)."""
        return registry_of(self.checks)

    @property
    def notebook_path(self):
        return self.source / self.id / self.notebook

    def points(self):
        """{grade_id: points} of the notebook's graded cells, as nbgrader reads them (test cells and manual ones)."""
        nb = json.loads(self.notebook_path.read_text(encoding="utf-8"))
        out = {}
        for cell in nb.get("cells", []):
            meta = cell.get("metadata", {}).get("nbgrader", {})
            if meta.get("grade"):
                out[meta["grade_id"]] = float(meta.get("points", 0))
        return out


@functools.lru_cache(maxsize=None)
def registry_of(module):
    try:
        return importlib.import_module(module).REGISTRY
    except ImportError as exc:
        raise ManifestError(f"the checks module {module!r} cannot be imported: {exc}") from None
    except AttributeError:
        raise ManifestError(f"the checks module {module!r} has no REGISTRY") from None


def path():
    return pathlib.Path(os.environ.get("COURSE_MANIFEST") or DEFAULT)


def _entry(raw, where, source):
    if not isinstance(raw, dict):
        raise ManifestError(f"{where}: expected a table of fields, got {type(raw).__name__}")
    unknown = set(raw) - FIELDS
    if unknown:
        raise ManifestError(f"{where}: unknown field(s) {', '.join(sorted(unknown))}; known: {', '.join(sorted(FIELDS))}")
    for name in REQUIRED:
        if not isinstance(raw.get(name), str) or not raw[name].strip():
            raise ManifestError(f"{where}: the field {name!r} must be a non-empty string, got {raw.get(name)!r}")
    if not re.fullmatch(r"[A-Za-z0-9_]+", raw["id"]):
        raise ManifestError(f"{where}: the id {raw['id']!r} must be letters, digits and underscores")
    modules = raw.get("sandbox_modules", {"activations": "*"})
    if not isinstance(modules, dict):
        raise ManifestError(f"{where}: sandbox_modules must be a table of module = \"*\" or [names]")
    parsed = []
    for module, names in modules.items():
        if names == "*":
            parsed.append((module, None))
        elif isinstance(names, list) and all(isinstance(n, str) for n in names):
            parsed.append((module, tuple(names)))
        else:
            raise ManifestError(f"{where}: sandbox_modules.{module} must be \"*\" or a list of names, got {names!r}")
    chapters = raw.get("chapters", [])
    if not (isinstance(chapters, list) and all(isinstance(c, str) for c in chapters)):
        raise ManifestError(f"{where}: chapters must be a list of chapter names, got {chapters!r}")
    return Assignment(id=raw["id"], title=raw["title"].strip(), checks=raw["checks"],
                      notebook=raw.get("notebook", f"{raw['id']}.ipynb"), sandbox_modules=tuple(parsed),
                      chapters=tuple(chapters), source=source)


@functools.lru_cache(maxsize=None)
def _load(manifest, source, _mtime):
    manifest = pathlib.Path(manifest)
    try:
        data = tomllib.loads(manifest.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ManifestError(f"the manifest {manifest} cannot be read: {exc.strerror or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ManifestError(f"the manifest {manifest} is not valid TOML: {exc}") from None
    entries = data.get("assignment")
    if not isinstance(entries, list) or not entries:
        raise ManifestError(f"the manifest {manifest} lists no [[assignment]]")
    source = pathlib.Path(source) if source else manifest.parent / "source"
    found = [_entry(raw, f"{manifest.name}, assignment {k + 1}", source) for k, raw in enumerate(entries)]
    ids = [a.id for a in found]
    doubled = sorted({i for i in ids if ids.count(i) > 1})
    if doubled:
        raise ManifestError(f"{manifest.name}: the id(s) {', '.join(doubled)} appear more than once")
    return tuple(found)


def assignments(manifest=None, source=None):
    """The manifest's assignments, in its order. source: another course's source/ folder (default: beside the
    manifest)."""
    manifest = pathlib.Path(manifest or path())
    try:
        mtime = manifest.stat().st_mtime_ns  # a manifest changed on disk is read again
    except OSError:
        mtime = None
    return _load(str(manifest), str(source) if source else None, mtime)


def ids(manifest=None):
    return [a.id for a in assignments(manifest)]


def get(assignment_id, manifest=None, source=None):
    for a in assignments(manifest, source):
        if a.id == assignment_id:
            return a
    raise ManifestError(f"no assignment {assignment_id!r} in {manifest or path()}; known: "
                        f"{', '.join(ids(manifest))}")


def of_course(root):
    """The manifest of a course folder (<root>/manifest.toml): the grader scores a course's notebooks with the checks
    its own manifest names."""
    found = pathlib.Path(root) / "manifest.toml"
    if not found.is_file():
        raise ManifestError(f"the course folder {root} has no manifest.toml: the list of its assignments and their "
                            "checks (the course's own is assignments/manifest.toml)")
    return found


def course_assignment(root, assignment_id):
    """The manifest entry of one assignment of a course folder."""
    return get(assignment_id, of_course(root), pathlib.Path(root) / "source")


def registry(assignment_id, manifest=None):
    """The Registry of one assignment of the manifest."""
    return get(assignment_id, manifest).registry


def main(argv=None):
    args = sys.argv[1:] if argv is None else argv
    try:
        if args == ["ids"]:
            print("\n".join(ids()))
        elif args == ["check"]:
            for a in assignments():
                specs = a.registry.specs
                print(f"{a.id}: {a.title}; {len(specs)} checks; notebook {a.notebook_path}")
        else:
            print("usage: python -m grader.manifest ids|check", file=sys.stderr)
            return 2
    except ManifestError as exc:
        print(f"manifest: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
