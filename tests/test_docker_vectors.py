"""The Docker vectors are found beside the repository, or the run fails: never zero cases."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.docker_vectors import REPO, load_vectors, vectors_path


def test_the_shared_vectors_are_found_above_the_repository_in_a_worktree_too(tmp_path):
    shared = tmp_path / "shared"
    shared.mkdir()
    (shared / "docker-vectors.json").write_text("[]")
    assert vectors_path(tmp_path / "repo") == shared / "docker-vectors.json"
    assert vectors_path(tmp_path / "worktrees" / "repo") == shared / "docker-vectors.json"


def test_missing_shared_vectors_are_an_error_naming_what_is_missing(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"no shared/docker-vectors.json next to .*/repo or above it"):
        vectors_path(tmp_path / "repo")


def test_an_area_without_vectors_is_an_error(tmp_path):
    path = tmp_path / "docker-vectors.json"
    path.write_text(json.dumps([{"area": "resolvconf", "name": "a"}]))
    assert load_vectors("resolvconf", path=path) == [{"area": "resolvconf", "name": "a"}]
    with pytest.raises(LookupError, match="has no vectors of area\\(s\\) etchosts"):
        load_vectors("resolvconf", "etchosts", path=path)


def test_a_parametrized_test_with_zero_cases_fails_the_run(tmp_path):
    (tmp_path / "test_nothing.py").write_text(
        "import pytest\n\n@pytest.mark.parametrize('case', [])\ndef test_case(case):\n    pass\n")
    (tmp_path / "pyproject.toml").write_text((REPO / "pyproject.toml").read_text())
    result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tmp_path)],
                            capture_output=True, text=True, cwd=tmp_path)
    assert result.returncode != 0
    assert "Empty parameter set" in result.stdout
