"""The documents the code, the tests and the README cite are in the project.

A module docstring or a test that points a reader at a document the repository does not
hold (notes kept beside it, say) leaves the reader with nothing: cite the public source
(moby's file at a version, a kernel document) or the project's own docs instead. The one
input from outside, the Docker vectors file, is read by tests/docker_vectors.py and is
not a document.
"""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SCANNED = ["reconciler/**/*.py", "tests/**/*.py", "benchmarks/*", "README.md", "pyproject.toml", ".ci/*"]
# a Markdown document named by its file name, with or without a path: DESIGN.md, benchmarks/README.md
CITATION = re.compile(r"(?<![\w/.-])((?:[\w.-]+/)*[A-Z][A-Z0-9_-]*\.md)\b")


def citations(text: str) -> list[str]:
    return CITATION.findall(text)


def test_the_citation_pattern_finds_documents_with_and_without_a_path():
    assert citations("see DESIGN.md section 2, benchmarks/README.md and ../shared/PERFORMANCE.md") == [
        "DESIGN.md", "benchmarks/README.md", "../shared/PERFORMANCE.md"]
    assert citations("readme.md, x.MD, a_DESIGN.md") == []


def test_every_cited_document_is_in_the_repository():
    documents = {path.relative_to(REPO).as_posix() for path in REPO.rglob("*.md") if ".git" not in path.parts}
    names = {Path(document).name for document in documents}
    missing = []
    for pattern in SCANNED:
        assert list(REPO.glob(pattern)), f"{pattern} matches no file: the scan would check nothing there"
        for path in sorted(REPO.glob(pattern)):
            if not path.is_file() or path.suffix == ".pyc" or path == Path(__file__).resolve():
                continue  # this file names missing documents as examples
            for number, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
                for cited in citations(line):
                    found = cited in documents if "/" in cited else cited in names
                    if not found:
                        missing.append(f"{path.relative_to(REPO)}:{number}: {cited}")
    assert missing == []
