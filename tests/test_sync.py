"""GitOps: `sync` against repositories made by the test (with dulwich), in throwaway namespaces."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from dulwich import porcelain

from tests.conftest import REPO, eventually, netns_names

pytestmark = pytest.mark.kernel

BASE = """\
version: 1
networks:
  front:
    bridge: "@br"
    subnet: 172.25.0.0/24
containers:
  "@web":
    networks: [front]
"""
MORE = BASE + '  "@db":\n    networks: [front]\n'
IDENTITY = b"netreconcile tests <tests@example.invalid>"


class Repository:
    def __init__(self, path: Path, sandbox):
        self.path = path
        self.sandbox = sandbox
        porcelain.init(str(path))

    def commit(self, text: str, message: str = "change", filename: str = "specs/host.yaml") -> str:
        target = self.path / filename
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text.replace("@", f"{self.sandbox.prefix}-"))
        porcelain.add(str(self.path), [str(target)])
        return porcelain.commit(str(self.path), message.encode(), author=IDENTITY, committer=IDENTITY).decode()


@pytest.fixture
def repo(sandbox, tmp_path):
    return Repository(tmp_path / "network-repo", sandbox)


def sync(sandbox, repo: Repository, *extra: str):
    return sandbox.run("sync", str(repo.path), "--path", "specs/host.yaml", "--once", "-o", "json", *extra)


def git_status(sandbox, repo: Repository, spec_text: str | None = None) -> dict:
    """status -o json's "git" part, for the spec file of the working tree (or `spec_text`)."""
    spec = repo.path / "specs" / "host.yaml"
    if spec_text is not None:
        spec = sandbox.write_spec(spec_text, "applied.yaml")
    result = sandbox.run("status", "-o", "json", spec=spec)
    assert result.code == 0, result.stderr
    return result.json()["git"]


def test_sync_applies_the_branch_head_records_it_and_follows_new_commits(sandbox, repo):
    first = repo.commit(BASE, "one container")
    result = sync(sandbox, repo)
    assert result.code == 0, result.stderr
    assert result.json()["git"]["applied"] == first
    assert sandbox.name("web") in netns_names()
    status = git_status(sandbox, repo)
    assert (status["applied"], status["attempted"], status["error"]) == (first, first, None)

    second = repo.commit(MORE, "add db")
    assert sync(sandbox, repo).code == 0
    assert sandbox.name("db") in netns_names()
    status = git_status(sandbox, repo)
    assert (status["applied"], status["attempted"], status["error"]) == (second, second, None)


def test_an_invalid_commit_changes_nothing_is_reported_and_the_next_good_one_applies(sandbox, repo):
    good = repo.commit(BASE)
    assert sync(sandbox, repo).code == 0
    def state():
        return {n for n in netns_names() if n.startswith(sandbox.prefix)}, set(sandbox.links(sandbox.host))

    before = state()
    bad = repo.commit(MORE.replace("172.25.0.0/24", "172.25.0.0/33"), "broken")
    result = sync(sandbox, repo)
    assert result.code == 1
    assert f"{bad[:12]}:specs/host.yaml:5:13: networks.front.subnet:" in result.stderr
    assert state() == before
    status = git_status(sandbox, repo, spec_text=BASE)  # the working tree holds the broken spec
    assert (status["applied"], status["attempted"]) == (good, bad)
    assert status["error"].startswith(f"invalid spec: {bad[:12]}:specs/host.yaml:5:13")

    fixed = repo.commit(MORE, "fixed")
    assert sync(sandbox, repo).code == 0
    assert sandbox.name("db") in netns_names()
    status = git_status(sandbox, repo)
    assert (status["applied"], status["attempted"], status["error"]) == (fixed, fixed, None)


def test_an_unchanged_commit_without_drift_does_nothing_and_drift_is_repaired(sandbox, repo):
    commit = repo.commit(BASE)
    assert sync(sandbox, repo).code == 0
    again = sync(sandbox, repo)
    assert again.json()["actions"] == [] and again.json()["git"]["applied"] == commit
    veth = next(name for name in sandbox.links(sandbox.host) if name.startswith("veth"))
    sandbox.host_sh(f"ip link del {veth}")
    repaired = sync(sandbox, repo)
    assert [a["kind"] for a in repaired.json()["actions"] if a["kind"] == "veth"] == ["veth"]
    assert veth in sandbox.links(sandbox.host)


def test_a_ref_selects_the_branch_and_a_missing_one_is_a_clear_error(sandbox, repo):
    repo.commit(BASE)
    porcelain.branch_create(str(repo.path), "staging")
    missing = sandbox.run("sync", str(repo.path), "--path", "specs/host.yaml", "--ref", "prod", "--once")
    assert missing.code == 1 and "has no branch or tag 'prod'" in missing.stderr
    assert sandbox.run("sync", str(repo.path), "--path", "specs/host.yaml", "--ref", "staging", "--once").code == 0
    absent_file = sandbox.run("sync", str(repo.path), "--path", "specs/nope.yaml", "--once")
    assert absent_file.code == 1 and "specs/nope.yaml does not exist" in absent_file.stderr


def test_the_sync_loop_fetches_new_commits_and_repairs_drift_on_kernel_events(sandbox, repo):
    repo.commit(BASE)
    command = [sys.executable, "-m", "reconciler", "--host-netns", sandbox.host, "--state-dir",
               str(sandbox.state_dir), "sync", str(repo.path), "--path", "specs/host.yaml", "--interval", "2"]
    loop = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=REPO)
    try:
        eventually(lambda: sandbox.name("web") in netns_names(), "the first commit applied")
        repo.commit(MORE, "add db")
        eventually(lambda: sandbox.name("db") in netns_names(), "the new commit fetched and applied")
        veth = next(name for name in sandbox.links(sandbox.host) if name.startswith("veth"))
        sandbox.host_sh(f"ip link del {veth}")
        eventually(lambda: veth in sandbox.links(sandbox.host), "the deleted veth repaired")
        loop.send_signal(signal.SIGTERM)
        assert loop.wait(timeout=10) == 0
    finally:
        if loop.poll() is None:
            loop.kill()
            loop.wait()


def test_status_pairs_an_error_with_the_commit_it_belongs_to(sandbox, repo):
    good = repo.commit(BASE)
    assert sync(sandbox, repo).code == 0
    missing = sync(sandbox, repo, "--ref", "prod")
    assert missing.code == 1
    status = git_status(sandbox, repo)
    # the ref's error came before any commit was read: not the (good) commit attempted before
    assert (status["attempted"], status["error_commit"]) == (good, None)
    assert "has no branch or tag 'prod'" in status["error"]
    text = sandbox.run("status", spec=repo.path / "specs" / "host.yaml").stdout
    assert "error before any commit was read: " in text
    bad = repo.commit(MORE.replace("172.25.0.0/24", "172.25.0.0/33"), "broken")
    assert sync(sandbox, repo).code == 1
    status = git_status(sandbox, repo, spec_text=BASE)
    assert (status["attempted"], status["error_commit"]) == (bad, bad)


def test_a_rewritten_branch_is_followed_with_a_warning(sandbox, repo):
    first = repo.commit(BASE, "one container")
    assert sync(sandbox, repo).code == 0
    # a force push: the branch moves to a commit on another line of history
    unrelated = Repository(repo.path.parent / "other-line", sandbox)
    other = unrelated.commit(MORE, "rewritten")
    porcelain.fetch(str(repo.path), str(unrelated.path))
    repo_refs = porcelain.open_repo(str(repo.path))
    with repo_refs:
        repo_refs.refs[b"HEAD"] = other.encode()
    result = sync(sandbox, repo)
    assert result.code == 0, result.stderr
    warnings = [json.loads(line) for line in result.stderr.splitlines() if line.startswith("{")]
    assert [(w["level"], w["applied"], w["commit"]) for w in warnings] == [("warning", first[:12], other[:12])]
    assert "history was rewritten" in warnings[0]["event"]
    assert result.json()["git"]["applied"] == other
    assert sandbox.name("db") in netns_names()
    assert sync(sandbox, repo).stderr == ""  # followed: no warning the next time


def test_the_sync_loop_names_a_new_commit_as_its_trigger(sandbox, repo, tmp_path):
    repo.commit(BASE)
    log_file = tmp_path / "sync.log"
    command = [sys.executable, "-m", "reconciler", "--host-netns", sandbox.host, "--state-dir",
               str(sandbox.state_dir), "sync", str(repo.path), "--path", "specs/host.yaml", "--interval", "1"]
    with open(log_file, "w") as out:
        loop = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, cwd=REPO)
    try:
        eventually(lambda: sandbox.name("web") in netns_names(), "the first commit applied")
        second = repo.commit(MORE, "add db")

        def pass_of_the_new_commit() -> list[dict]:
            lines = [json.loads(line) for line in log_file.read_text().splitlines() if line.startswith("{")]
            return [line for line in lines if line.get("event") == "pass" and line.get("commit") == second[:12]]

        eventually(pass_of_the_new_commit, "a pass for the new commit")
        assert pass_of_the_new_commit()[0]["trigger"] == "git"
        loop.send_signal(signal.SIGTERM)
        assert loop.wait(timeout=10) == 0
    finally:
        if loop.poll() is None:
            loop.kill()
            loop.wait()
