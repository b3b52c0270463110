"""Fixtures for kernel tests: a throwaway host namespace and a CLI runner.

Every kernel test runs netreconcile with --host-netns on a namespace made for it,
with container names carrying a unique prefix, and removes every namespace with
that prefix afterwards, also when the test fails. The root namespace is never used.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


def pytest_collection_modifyitems(config, items):
    if os.geteuid() == 0:
        return
    skip = pytest.mark.skip(reason="kernel tests need root (they create throwaway network namespaces)")
    for item in items:
        if "kernel" in item.keywords:
            item.add_marker(skip)


def sh(command: str, check: bool = True) -> str:
    result = subprocess.run(command, shell=True, capture_output=True, text=True)
    if check and result.returncode != 0:
        raise AssertionError(f"{command!r} failed: {result.stderr}")
    return result.stdout


def eventually(check, what: str, timeout: float = 15.0, context=lambda: ""):
    """Poll `check` until it returns something true (returned); fail after `timeout`
    seconds naming `what`, with `context()` (e.g. the tail of a log)."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        assert time.monotonic() < deadline, f"not within {timeout} s: {what}\n{context()}"
        time.sleep(0.05)


def netns_names() -> set[str]:
    return set(os.listdir("/run/netns")) if os.path.isdir("/run/netns") else set()


@dataclass
class Run:
    code: int
    stdout: str
    stderr: str

    def json(self) -> dict:
        return json.loads(self.stdout)


class Sandbox:
    """A throwaway host namespace, a state directory and a unique name prefix."""

    def __init__(self, tmp_path: Path):
        tag = uuid.uuid4().hex[:6]
        self.prefix = f"t{tag}"
        self.host = f"{self.prefix}-host"
        self.state_dir = tmp_path / "state"
        self.tmp = tmp_path

    def name(self, short: str) -> str:
        return f"{self.prefix}-{short}"

    def write_spec(self, text: str, filename: str = "spec.yaml") -> Path:
        path = self.tmp / filename
        path.write_text(text.replace("@", f"{self.prefix}-"))
        return path

    def run(self, *args: str, spec: Path | None = None) -> Run:
        command = [sys.executable, "-m", "reconciler", "--host-netns", self.host, "--state-dir", str(self.state_dir),
                   *args]
        if spec is not None:
            command.append(str(spec))
        result = subprocess.run(command, capture_output=True, text=True, timeout=600)
        return Run(result.returncode, result.stdout, result.stderr)

    def apply(self, spec: Path) -> dict:
        result = self.run("apply", "-o", "json", spec=spec)
        assert result.code == 0, result.stderr
        return result.json()

    def host_sh(self, command: str, check: bool = True) -> str:
        return sh(f"ip netns exec {self.host} {command}", check)

    def in_ns(self, short: str, command: str, check: bool = True) -> str:
        return sh(f"ip netns exec {self.name(short)} {command}", check)

    def links(self, netns: str) -> dict[str, dict]:
        return {link["ifname"]: link for link in json.loads(sh(f"ip -n {netns} -j -d link show"))}

    def addresses(self, netns: str) -> dict[str, list[str]]:
        found = {}
        for link in json.loads(sh(f"ip -n {netns} -j -4 addr show")):
            found[link["ifname"]] = [f"{a['local']}/{a['prefixlen']}" for a in link.get("addr_info", [])]
        return found

    def cleanup(self) -> None:
        for name in sorted(netns_names()):
            if name.startswith(self.prefix):
                subprocess.run(["ip", "netns", "del", name], capture_output=True)
        etc = Path("/etc/netns")
        if etc.is_dir():
            for directory in etc.iterdir():
                if directory.name.startswith(self.prefix):
                    shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture
def sandbox(tmp_path):
    box = Sandbox(tmp_path)
    try:
        yield box
    finally:
        box.cleanup()
