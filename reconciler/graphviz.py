"""Graphviz, run for `graph -o svg`: DOT text in on stdin, SVG out; never through a shell."""

from __future__ import annotations

import shutil
import subprocess

from reconciler.errors import PrerequisiteError

DOT_COMMAND = "dot"
RENDER_TIMEOUT = 120  # seconds: a spec of thousands of containers takes dot a while


def dot_to_svg(dot: str) -> str:
    """The SVG Graphviz draws from `dot`; PrerequisiteError when `dot` is missing or fails."""
    program = shutil.which(DOT_COMMAND)
    if program is None:
        raise PrerequisiteError("-o svg needs Graphviz's `dot` command, which is not installed: install the "
                                "graphviz package (apt-get install graphviz), or use -o dot or -o mermaid")
    try:
        result = subprocess.run([program, "-Tsvg"], input=dot.encode(), capture_output=True,
                                timeout=RENDER_TIMEOUT, check=False)
    except subprocess.TimeoutExpired:
        raise PrerequisiteError(f"Graphviz's dot did not finish within {RENDER_TIMEOUT} s") from None
    if result.returncode != 0:
        detail = result.stderr.decode(errors="replace").strip()
        raise PrerequisiteError(f"Graphviz's dot failed (exit {result.returncode}): {detail}")
    return result.stdout.decode()
