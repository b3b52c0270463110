"""Messages a user can act on: spec text printed literally, and missing privileges named."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.conftest import Run, netns_names

pytestmark = pytest.mark.kernel

ONE = "version: 1\nnetworks:\n  front: {bridge: '@br', subnet: 172.30.9.0/24}\ncontainers:\n  '@c0': {networks: [front]}\n"
# root as in a default Docker container: without the capabilities namespaces take
WITHOUT_NAMESPACE_CAPABILITIES = ("setpriv", "--inh-caps=-sys_admin,-net_admin", "--bounding-set=-sys_admin,-net_admin")
# root of a user namespace: its capabilities do not reach the host's namespaces or /run/netns
IN_A_USER_NAMESPACE = ("unshare", "--user", "--map-root-user")
NEEDS = "netreconcile needs root (CAP_SYS_ADMIN and CAP_NET_ADMIN) to read and change network namespaces"

PADDING = "".join(f"# line {n}\n" for n in range(5, 100))
# the container's key sits at line 100, column 3: its location reads "<file>:100:3"
AT_LINE_100 = ("version: 1\nnetworks:\n  front: {bridge: '@br', subnet: 172.30.9.0/24}\ncontainers:\n" + PADDING
               + "  '@c0': {networks: [front]}\n")


def test_spec_text_is_printed_literally_never_as_markup_or_emoji(sandbox):
    spec = sandbox.write_spec(AT_LINE_100, "[bold]spec100.yaml")
    subprocess.run(["ip", "netns", "add", sandbox.host], check=True)
    subprocess.run(["ip", "netns", "add", sandbox.name("c0")], check=True)  # not netreconcile's: a conflict
    location = f"{spec}:100:3"

    plan = sandbox.run("plan", spec=spec)

    assert plan.code == 1
    assert f"conflict: {location}: network namespace {sandbox.name('c0')} exists and is not managed" in plan.stdout
    assert f"+ netns {sandbox.name('c0')}: missing  ({location})" in plan.stdout
    assert "\N{HUNDRED POINTS SYMBOL}" not in plan.stdout


def run_as(sandbox, wrapper: tuple[str, ...], *args: str) -> Run:
    command = [*wrapper, sys.executable, "-m", "reconciler", "--host-netns", sandbox.host, "--state-dir",
               str(sandbox.state_dir), *args]
    result = subprocess.run(command, capture_output=True, text=True, timeout=120)
    return Run(result.returncode, result.stdout, result.stderr)


@pytest.mark.parametrize("command", ["plan", "status", "apply"])
def test_root_without_the_namespace_capabilities_is_told_what_netreconcile_needs(sandbox, command):
    spec = sandbox.write_spec(ONE)

    result = run_as(sandbox, WITHOUT_NAMESPACE_CAPABILITIES, command, str(spec))

    assert result.code == 1
    assert result.stderr.startswith(f"error: {NEEDS}, and this process lacks CAP_SYS_ADMIN and CAP_NET_ADMIN")
    assert "Traceback" not in result.stderr
    assert not {name for name in netns_names() if name.startswith(sandbox.prefix)}


@pytest.mark.parametrize("command", ["plan", "apply"])
def test_a_permission_error_from_the_kernel_says_what_netreconcile_needs(sandbox, command):
    spec = sandbox.write_spec(ONE)

    result = run_as(sandbox, IN_A_USER_NAMESPACE, command, str(spec))

    assert result.code == 1
    assert ": Operation not permitted\n" + NEEDS in result.stderr
    assert "Traceback" not in result.stderr
    assert not {name for name in netns_names() if name.startswith(sandbox.prefix)}
