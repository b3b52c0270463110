"""The one exception tree of netreconcile; the CLI maps it to exit code 1.

    NetreconcileError              anything netreconcile reports to the user
    +-- SpecError                  the spec is invalid: the user fixes the spec
    |                              (carries every Problem, each with its location)
    +-- ConflictError              the machine holds objects netreconcile does not own
    |                              where the spec wants its own: the user renames or
    |                              removes one of them
    +-- PrerequisiteError          the machine cannot run netreconcile (not root, no
    |                              /proc, missing tool): the operator fixes the machine
    +-- UsageError                 the command line is wrong: the user fixes the command
    +-- LockError                  another netreconcile holds the host namespace too long
    +-- GuardError                 the plan deletes most or all containers: --force
    +-- SourceError                the spec file cannot be read, or sync cannot get the
    |                              spec from git (repository, ref or path missing, fetch
    |                              failed): the user fixes the source
    +-- KernelError                a netlink, sysctl or namespace operation failed
        +-- ApplyError             ... while applying a plan action (names the action
        |                          and the spec location that required it)
        +-- VerifyError            the apply finished but the kernel still differs
                                   from the spec (lists what remains)

Lower layers raise these, never bare OSError; pyroute2-free code paths translate
errno values at the boundary (the kernel writers, reconciler.kernel).
"""

from __future__ import annotations

import errno as errno_codes
from dataclasses import dataclass

from reconciler.spec.types import Location


class NetreconcileError(Exception):
    """Base of every error netreconcile reports."""


@dataclass(frozen=True, order=True)
class Problem:
    """One thing wrong with a spec, at a place in it."""

    location: Location
    path: str  # dotted path in the spec, e.g. "networks.bridge.subnet"
    message: str

    def __str__(self) -> str:
        prefix = f"{self.path}: " if self.path else ""
        return f"{self.location}: {prefix}{self.message}"


class SpecError(NetreconcileError):
    """The spec is invalid; `problems` lists every problem found, sorted by location."""

    def __init__(self, problems: list[Problem]):
        self.problems = sorted(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


class ConflictError(NetreconcileError):
    """An object netreconcile must create already exists and is not netreconcile's."""


class PrerequisiteError(NetreconcileError):
    """The machine lacks something netreconcile needs (privileges, a tool, a file system)."""


class UsageError(NetreconcileError):
    """A command-line value is invalid (e.g. a --host-netns name that could escape /run/netns)."""


class LockError(NetreconcileError):
    """Another netreconcile kept the host namespace's lock past --lock-timeout."""


class GuardError(NetreconcileError):
    """The plan would delete most (or all) managed containers; --force allows it."""


class SourceError(NetreconcileError):
    """The spec cannot be had from its source: a file, or a git repository, ref or path (sync)."""


PRIVILEGES_NEEDED = "netreconcile needs root (CAP_SYS_ADMIN and CAP_NET_ADMIN) to read and change network namespaces"
PERMISSION_ERRNOS = (errno_codes.EPERM, errno_codes.EACCES)


def privileges_advice(errno: int | None) -> str:
    """What to do about a failed operation: for a permission error, what netreconcile needs."""
    if errno not in PERMISSION_ERRNOS:
        return ""
    return (f"{PRIVILEGES_NEEDED}: run it as root (sudo); in a container or a user namespace, "
            "root must have these capabilities over the host's network namespaces and /run/netns")


class KernelError(NetreconcileError):
    """A kernel operation failed; a permission error (EPERM, EACCES from unshare, setns,
    mount or netlink) also says what netreconcile needs. `restored`: an apply that failed
    was rolled back to exactly the state it found."""

    restored = False

    def __init__(self, message: str, errno: int | None = None):
        self.errno = errno
        advice = privileges_advice(errno)
        if advice and advice not in message:  # a wrapped error carries it already
            message = f"{message}\n{advice}"
        super().__init__(message)


class ApplyError(KernelError):
    """A plan action failed while being applied."""


class VerifyError(KernelError):
    """After apply, observing the kernel again still shows differences from the spec."""
