"""Running the `nft` binary inside a namespace: list, check and load rulesets.

A child process inherits the network namespace of the thread that starts it, so
each command runs while the calling thread has entered the namespace. Only the
writer (reconciler/kernel/settings.py) calls `load_ruleset`; observing and checking change
nothing.
"""

from __future__ import annotations

import os
import shutil
import subprocess

from reconciler.errors import KernelError, PrerequisiteError
from reconciler.kernel.nlsocket import entered

PACKAGE = "nftables"
_SEARCH = ("/usr/sbin/nft", "/sbin/nft", "/usr/bin/nft", "/usr/local/sbin/nft")
_ABSENT_TABLE = "No such file or directory"
TIMEOUT = 60.0


def binary() -> str | None:
    found = shutil.which("nft")
    if found:
        return found
    return next((path for path in _SEARCH if os.access(path, os.X_OK)), None)


def require() -> str:
    path = binary()
    if path is None:
        raise PrerequisiteError(
            f"the nft command is not installed; networks need it for their firewall table "
            f"(install the {PACKAGE} package, e.g. apt-get install -y {PACKAGE})"
        )
    return path


def _run(netns_fd: int, args: list[str], script: str | None = None) -> subprocess.CompletedProcess:
    command = [require(), *args]
    with entered(netns_fd):
        try:
            return subprocess.run(command, input=script, capture_output=True, text=True, timeout=TIMEOUT,
                                  check=False)
        except (OSError, subprocess.TimeoutExpired) as error:
            raise KernelError(f"running {' '.join(command)}: {error}") from error


def list_table(netns_fd: int, family: str, table: str) -> str | None:
    """The table as `nft list table` prints it, or None when there is no such table."""
    result = _run(netns_fd, ["list", "table", family, table])
    if result.returncode == 0:
        return result.stdout
    if _ABSENT_TABLE in result.stderr:
        return None
    raise KernelError(f"nft list table {family} {table} failed: {_first_error(result.stderr)}")


def check_ruleset(netns_fd: int, script: str) -> str | None:
    """None if the kernel would accept `script` (nft -c: nothing is changed), else nft's error."""
    result = _run(netns_fd, ["-c", "-f", "-"], script)
    return None if result.returncode == 0 else result.stderr.strip() or f"exit status {result.returncode}"


def load_ruleset(netns_fd: int, script: str) -> None:
    """Apply `script` as one transaction (nft -f): all of it or, on error, none of it."""
    result = _run(netns_fd, ["-f", "-"], script)
    if result.returncode != 0:
        raise KernelError(f"nft -f failed: {result.stderr.strip() or f'exit status {result.returncode}'}")


def _first_error(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.strip()]
    return lines[0] if lines else "no message"
