"""What the one-shot commands print (issue 18, "output that reads well"): no log lines
among a command's own output unless -v, and destroy speaks of removing, not of drift
from a spec. Kernel tests in a sandbox."""

from __future__ import annotations

import json
import os
import pty
import subprocess
import sys

import pytest

from tests.conftest import netns_names

pytestmark = pytest.mark.kernel

SPEC = """\
version: 1
networks:
  front:
    bridge: "@br"
    subnet: 203.0.113.0/24
containers:
  "@web":
    networks: [front]
"""


def log_lines(stderr: str) -> list[dict]:
    return [json.loads(line) for line in stderr.splitlines() if line.startswith("{")]


def test_one_shot_commands_log_warnings_and_errors_only_unless_verbose(sandbox):
    spec = sandbox.write_spec(SPEC)
    quiet = sandbox.run("apply", spec=spec)
    assert quiet.code == 0 and quiet.stderr == ""
    assert quiet.stdout.splitlines()[-1].startswith("Apply complete: ")
    verbose = sandbox.run("-v", "apply", spec=spec)
    assert verbose.code == 0
    events = log_lines(verbose.stderr)
    assert [e["event"] for e in events] == ["reconcile"] and events[0]["outcome"] == "noop"
    assert "No changes. The kernel matches the spec." in verbose.stdout


def test_destroy_speaks_of_removing(sandbox):
    spec = sandbox.write_spec(SPEC)
    sandbox.apply(spec)
    destroyed = sandbox.run("destroy", spec=spec)
    assert destroyed.code == 0, destroyed.stderr
    lines = destroyed.stdout.splitlines()
    assert f"- netns {sandbox.name('web')}: removed by destroy" in lines
    assert not any("not in the spec" in line for line in lines)
    assert "Destroy: " in destroyed.stdout and lines[-1].startswith("Destroy complete: ")
    assert lines[-1].endswith(" removed; verified.")
    again = sandbox.run("destroy", spec=spec)
    assert again.code == 0
    assert again.stdout.strip() == "Nothing to remove: netreconcile manages nothing in this host namespace."


def on_a_terminal(sandbox, *args: str, spec) -> str:
    """What the command prints with a terminal as its stdout (a pseudo-terminal)."""
    main, secondary = pty.openpty()
    command = [sys.executable, "-m", "reconciler", "--host-netns", sandbox.host, "--state-dir",
               str(sandbox.state_dir), *args, str(spec)]
    try:
        process = subprocess.Popen(command, stdout=secondary, stderr=subprocess.PIPE, env={**os.environ,
                                   "COLUMNS": "200", "TERM": "dumb"})
        os.close(secondary)
        chunks = []
        while True:
            try:
                chunk = os.read(main, 65536)
            except OSError:  # the other side closed
                break
            if not chunk:
                break
            chunks.append(chunk)
        assert process.wait(timeout=600) == 0, process.stderr.read()
    finally:
        os.close(main)
    return b"".join(chunks).decode(errors="replace")


def test_a_long_apply_on_a_terminal_shows_the_summary_not_every_line(sandbox):
    many = SPEC + "".join(f'  "@c{n}":\n    networks: [front]\n' for n in range(8))
    spec = sandbox.write_spec(many)
    shown = on_a_terminal(sandbox, "apply", spec=spec)
    assert "Plan: " in shown and "(`netreconcile plan`, or -v, lists them)" in shown
    assert "+ netns" not in shown and "Apply complete:" in shown
    destroyed = on_a_terminal(sandbox, "-v", "destroy", spec=spec)
    assert f"- netns {sandbox.name('c0')}: removed by destroy" in destroyed


def test_a_failed_apply_logs_at_error_level_without_verbose(sandbox):
    spec = sandbox.write_spec(SPEC)
    command = [sys.executable, "-m", "reconciler", "--host-netns", sandbox.host, "--state-dir",
               str(sandbox.state_dir), "apply", str(spec)]
    failed = subprocess.run(command, capture_output=True, text=True, timeout=300,
                            env={**os.environ, "NETRECONCILE_FAIL_AFTER": "3"})  # fault injection
    assert failed.returncode == 1
    events = log_lines(failed.stderr)
    assert [(e["event"], e["level"], e["outcome"]) for e in events] == [("reconcile", "error", "error")]


def test_plan_and_apply_agree_on_counts_when_the_host_namespace_is_made_in_between(sandbox):
    """plan reads an empty stand-in for a --host-netns that apply will create: its counts
    must be apply's (once 26 to create against 25 created and 1 updated)."""
    assert sandbox.host not in netns_names()
    spec = sandbox.write_spec(SPEC)
    planned = sandbox.run("plan", "-o", "json", spec=spec).json()["summary"]
    assert sandbox.host not in netns_names()  # plan made nothing
    applied = sandbox.apply(spec)["summary"]
    assert planned == applied and planned["update"] >= 1
