"""The command-line contract that needs no kernel: exit codes and messages."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import click

from tests.conftest import netns_names

SPECS = Path(__file__).resolve().parent.parent / "specs"


def netreconcile(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "reconciler", *args], capture_output=True, text=True, timeout=60)


def test_validate_reports_a_valid_spec():
    result = netreconcile("validate", str(SPECS / "quickstart.yaml"))
    assert result.returncode == 0
    assert "valid (1 network(s), 3 container(s))" in result.stdout


def test_validate_lists_every_problem_with_its_location_and_exits_1(tmp_path):
    spec = tmp_path / "bad.yaml"
    spec.write_text("version: 1\nnetworks:\n  n:\n    subnet: 10.0.0.0/33\n    mtuu: 1500\n")
    result = netreconcile("validate", str(spec))
    assert result.returncode == 1
    lines = result.stderr.splitlines()
    assert f"{spec}:4:13: networks.n.subnet: '10.0.0.0/33' is not an IPv4 network" in lines[0]
    assert lines[1].startswith(f"{spec}:5:5: networks.n.mtuu: unknown key 'mtuu'")
    assert "did you mean 'mtu'?" in lines[1]
    assert lines[-1] == "error: the spec is invalid (2 problem(s)); nothing was changed"


def test_a_missing_spec_file_is_one_line_without_a_location_and_changes_nothing(tmp_path):
    missing = tmp_path / "nope.yaml"
    state = tmp_path / "state"
    host = f"nr-never-{uuid.uuid4().hex[:6]}"
    for command in ("validate", "plan", "status", "apply", "destroy", "watch"):
        # --host-netns: should the spec ever be read, nothing of the machine's own network is touched
        result = netreconcile("--host-netns", host, "--state-dir", str(state), command, str(missing))
        assert (result.returncode, result.stderr) == (1, f"error: cannot read {missing}: No such file or directory\n")
        assert not state.exists(), f"{command} made the state directory for a spec it could not read"
        assert host not in netns_names(), f"{command} made the host namespace for a spec it could not read"


def test_a_tab_in_the_indentation_is_named_as_a_tab_at_its_location(tmp_path):
    spec = tmp_path / "tab.yaml"
    spec.write_text("version: 1\nnetworks:\n  n:\n    subnet: 10.1.0.0/24\n\tmtu: 1400\n")
    result = netreconcile("validate", str(spec))
    assert result.returncode == 1
    assert result.stderr.splitlines()[0] == (
        f"{spec}:5:1: invalid YAML: a tab character; YAML indentation uses spaces, not tabs")


def test_a_host_netns_name_that_could_escape_run_netns_is_refused():
    result = netreconcile("--host-netns", "../../etc", "plan", str(SPECS / "quickstart.yaml"))
    assert result.returncode == 1
    assert "is not a valid namespace name" in result.stderr


def test_usage_errors_exit_1_because_2_means_changes_pending():
    assert netreconcile("--no-such-option").returncode == 1
    assert netreconcile("plan").returncode == 1
    assert netreconcile("--help").returncode == 0


def test_a_system_error_nobody_translated_is_a_one_line_error_not_a_traceback(tmp_path):
    import subprocess
    import sys

    spec = tmp_path / "spec.yaml"
    spec.write_text("version: 1\n")
    state = tmp_path / "state-is-a-file"
    state.write_text("")
    result = subprocess.run([sys.executable, "-m", "reconciler", "--state-dir", str(state), "--host-netns",
                             "nr-never-made", "status", str(spec)], capture_output=True, text=True)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr and result.stderr.startswith("error: ")


def test_every_command_help_has_an_example_and_every_option_a_description():
    from click.testing import CliRunner

    from reconciler.cli import main

    assert len(main.commands) >= 11
    for name, command in main.commands.items():
        result = CliRunner().invoke(main, [name, "--help"])
        assert result.exit_code == 0 and "Example:" in result.output, name
        assert all(option.help for option in command.params if isinstance(option, click.Option)), name


def test_shell_completion_completes_commands_and_options():
    """Click's own completion, as README's "Shell completion" sets it up."""
    def complete(words: str) -> list[str]:
        env = {**os.environ, "_NETRECONCILE_COMPLETE": "bash_complete", "COMP_WORDS": words,
               "COMP_CWORD": str(len(words.split()) - 1)}
        result = subprocess.run([sys.executable, "-c", "from reconciler.cli import main; main(prog_name='netreconcile')"],
                                env=env, capture_output=True, text=True, timeout=60)
        return [line.split(",", 1)[1] for line in result.stdout.splitlines()]

    assert complete("netreconcile ap") == ["apply"]
    assert {"--output", "--force", "--host-netns"} <= set(complete("netreconcile apply --"))
