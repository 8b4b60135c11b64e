"""The committed notebooks: no outputs, no execution counts (the build executes them), and every chapter starts with
the set-up cell tagged remove-cell that installs course_pkg where it is missing (Colab, Binder).

The notebooks are those git would commit (`git ls-files --cached --others --exclude-standard '*.ipynb'`: tracked ones
and new ones not ignored); without git (or outside a clone), book/*.ipynb.
"""

import subprocess
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]


def committed_notebooks():
    try:
        proc = subprocess.run(
            ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard", "--", "*.ipynb"],
            cwd=ROOT, capture_output=True, text=True, timeout=60,
        )
    except FileNotFoundError:  # no git
        proc = None
    if proc is not None and proc.returncode == 0:
        paths = sorted({ROOT / name for name in proc.stdout.split("\0") if name})
    else:  # not a git clone (an exported tarball, a copy)
        paths = sorted(ROOT.glob("book/*.ipynb"))
    return [path for path in paths if path.is_file()]  # a tracked file deleted in the working tree is not checked


NOTEBOOKS = committed_notebooks()
CHAPTERS = [path for path in NOTEBOOKS if path.parent == ROOT / "book"]
ids = [str(path.relative_to(ROOT)) for path in NOTEBOOKS]
chapter_ids = [str(path.relative_to(ROOT)) for path in CHAPTERS]


def test_there_are_chapters():
    assert CHAPTERS, f"no notebook found in {ROOT / 'book'}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=ids)
def test_notebook_is_committed_without_outputs(path):
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    dirty = [
        f"cell {index + 1}: " + ", ".join(
            what for what, present in [
                (f"{len(cell.outputs)} output(s)", cell.outputs),
                (f"execution_count {cell.execution_count}", cell.execution_count is not None),
            ] if present
        )
        for index, cell in enumerate(nb.cells)
        if cell.cell_type == "code" and (cell.outputs or cell.execution_count is not None)
    ]
    assert not dirty, (
        f"{path.relative_to(ROOT)} carries outputs; clear them with "
        f"`.venv/bin/jupyter nbconvert --clear-output --inplace {path.relative_to(ROOT)}`:\n" + "\n".join(dirty)
    )


@pytest.mark.parametrize("path", CHAPTERS, ids=chapter_ids)
def test_first_code_cell_is_the_setup_cell(path):
    nb = nbformat.read(path, as_version=4)
    code = [cell for cell in nb.cells if cell.cell_type == "code"]
    assert code, f"{path.relative_to(ROOT)} has no code cell (the first must be the set-up cell)"
    first, name = code[0], path.relative_to(ROOT)
    assert "remove-cell" in first.metadata.get("tags", []), (
        f"{name}: the first code cell is not tagged remove-cell:\n{first.source}"
    )
    assert "course_pkg" in first.source and "pip install" in first.source, (
        f"{name}: the first code cell does not install course_pkg where it is missing:\n{first.source}"
    )
