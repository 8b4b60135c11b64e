"""The book's table of contents (_toc.yml) as a list of pages, for the build tests and the timing script."""

from pathlib import Path


def _docnames(node):
    for key in ("root", "file"):
        if key in node:
            name = node[key]
            yield name[: -len(Path(name).suffix)] if Path(name).suffix in (".md", ".ipynb") else name
    for child in node.get("parts", []) + node.get("chapters", []) + node.get("sections", []):
        yield from _docnames(child)


def toc_docnames(toc_path):
    """The pages of a Jupyter Book _toc.yml, in order, without file extensions ("book/03_bptt", ...)."""
    import yaml

    return list(_docnames(yaml.safe_load(Path(toc_path).read_text())))
