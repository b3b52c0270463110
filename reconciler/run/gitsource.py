"""The spec at a git revision, read with dulwich (pure Python; no `git` binary).

A repository is given as a local path or a URL. It is fetched into a bare cache in
the state directory, the ref (default: the repository's HEAD, its default branch) is
resolved to a commit, and the spec file is read from that commit's tree: never from
a working copy, which may be half-updated or edited by hand.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from reconciler.errors import SourceError


@dataclass(frozen=True)
class Revision:
    commit: str  # hex SHA-1
    ref: str  # the ref it was resolved from, e.g. refs/heads/main
    text: str  # the spec file's content at that commit
    path: str  # the spec file's path in the tree
    # the commit applied before, when this one does not descend from it (the branch's history
    # was rewritten: a force push); None otherwise, or when that cannot be told
    rewritten_from: str | None = None

    @property
    def display_name(self) -> str:
        """How locations in this spec are shown: git's REV:PATH."""
        return f"{self.commit[:12]}:{self.path}"


def fetch(repository: str, path: str, ref: str | None, cache_root: Path, applied: str | None = None) -> Revision:
    """Fetch `repository`, resolve `ref` and read `path` at that commit; say whether it
    descends from the commit `applied` before."""
    from dulwich.client import get_transport_and_path
    from dulwich.errors import GitProtocolError, HangupException, NotGitRepository
    from dulwich.repo import Repo

    cache = cache_root / hashlib.sha256(repository.encode()).hexdigest()[:16]
    try:
        cache_root.mkdir(parents=True, exist_ok=True)
        target = Repo(str(cache)) if (cache / "objects").is_dir() else Repo.init_bare(str(cache), mkdir=True)
    except OSError as error:
        raise SourceError(f"cannot create the git cache {cache}: {error.strerror or error}") from error
    with target:
        try:
            client, remote_path = get_transport_and_path(_location(repository))
            result = client.fetch(remote_path, target)
        except (NotGitRepository, GitProtocolError, HangupException, OSError) as error:
            raise SourceError(f"cannot fetch {repository}: {error}") from error
        refs = {name.decode(): sha.decode() for name, sha in result.refs.items() if sha}
        symrefs = {name.decode(): value.decode() for name, value in (result.symrefs or {}).items()}
        ref_name, commit = _resolve(repository, ref, refs, symrefs)
        rewritten = applied if applied and not _descends(target, commit, applied) else None
        return Revision(commit, ref_name, _read(target, repository, commit, path), path, rewritten)


def _descends(repo, commit: str, ancestor: str) -> bool:
    """Whether `commit` is `ancestor` or has it in its history; True when that cannot be
    told (the ancestor is not in the cache): no warning without knowing."""
    from dulwich.graph import can_fast_forward

    if commit == ancestor:
        return True
    try:
        return can_fast_forward(repo, ancestor.encode(), commit.encode())
    except KeyError:
        return True


def _location(repository: str) -> str:
    """dulwich takes local repositories as paths; make relative ones absolute."""
    if "://" in repository or repository.startswith("git@"):
        return repository
    return os.path.abspath(repository)


def _resolve(repository: str, ref: str | None, refs: dict[str, str], symrefs: dict[str, str]) -> tuple[str, str]:
    if ref is None:
        name = symrefs.get("HEAD")
        if name is None or name not in refs:
            if "HEAD" in refs:
                return "HEAD", refs["HEAD"]
            raise SourceError(f"{repository} has no default branch (HEAD); give --ref")
        return name, refs[name]
    for name in (ref, f"refs/heads/{ref}", f"refs/tags/{ref}"):
        if name in refs:
            return name, refs[name]
    branches = sorted(name.removeprefix("refs/heads/") for name in refs if name.startswith("refs/heads/"))
    raise SourceError(f"{repository} has no branch or tag {ref!r} (branches: {', '.join(branches) or 'none'})")


def _read(repo, repository: str, commit: str, path: str) -> str:
    from dulwich.object_store import tree_lookup_path

    try:
        tree = repo[commit.encode()].tree
        _, blob_sha = tree_lookup_path(repo.__getitem__, tree, path.strip("/").encode())
        data = repo[blob_sha].data
    except KeyError:
        raise SourceError(f"{path} does not exist in {repository} at commit {commit[:12]}") from None
    except (NotADirectoryError, AttributeError):
        raise SourceError(f"{path} is not a file in {repository} at commit {commit[:12]}") from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise SourceError(f"{path} at commit {commit[:12]} is not valid UTF-8 ({error})") from None
