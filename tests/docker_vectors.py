"""Docker's behaviour vectors (moby's tests in the project's encoding), as the tests read them.

They live in the project's shared notes, `shared/docker-vectors.json` next to the
repository (CI clones the repository beside a copy of shared/; a worktree may sit deeper,
so the nearest `shared/` above the repository counts). They are read from there only,
with no copy to drift, and never come back empty: a missing file or an area without
vectors stops the test run at collection instead of passing with zero cases.
"""

from __future__ import annotations

import json
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
FILENAME = "docker-vectors.json"


def vectors_path(start: Path = REPO) -> Path:
    """shared/docker-vectors.json in the nearest directory above `start` that has one."""
    for directory in start.parents:
        candidate = directory / "shared" / FILENAME
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(f"no shared/{FILENAME} next to {start} or above it: the Docker vector tests need the "
                            f"project's shared/ directory beside the repository (as CI checks it out)")


def load_vectors(*areas: str, path: Path | None = None) -> list[dict]:
    """The vectors of `areas`, in file order; every area must have some."""
    path = path or vectors_path()
    found = [vector for vector in json.loads(path.read_text()) if vector.get("area") in areas]
    empty = sorted(set(areas) - {vector["area"] for vector in found})
    if empty:
        raise LookupError(f"{path} has no vectors of area(s) {', '.join(empty)}")
    return found
