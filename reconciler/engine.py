"""One reconcile pass: observe, decide, act, verify. The CLI and tests drive it.

The engine is the only place that strings the layers together; each step stays
a separate function so that `plan` and `status` stop after deciding.
"""

from __future__ import annotations

import dataclasses
import os
import socket
from dataclasses import dataclass
from typing import Callable

from reconciler import firewall, nft, resolvconf
from reconciler.desired import HostFiles, build_desired
from reconciler.errors import (
    ConflictError, GuardError, KernelError, NetreconcileError, PrerequisiteError, UsageError, VerifyError,
)
from reconciler.model import State
from reconciler.observe import MISSING, observe
from reconciler.planner import DELETE, Action, Plan, hold_back, mass_deletion, plan
from reconciler.session import KernelSession
from reconciler.spec import Spec

EMPTY_SPEC_STATE = State()
HOST_HOSTS_FILE = "/etc/hosts"
FAIL_AFTER_VARIABLE = "NETRECONCILE_FAIL_AFTER"


@dataclass(frozen=True)
class Outcome:
    plan: Plan  # what was applied
    applied: int
    held: tuple[Action, ...] = ()  # what waits: actions on held objects and what needs them


def read_host_files(spec: Spec) -> HostFiles:
    """The host's resolv.conf as Docker picks it: systemd-resolved's upstream file when
    the configured one only points at the 127.0.0.53 stub. A missing file reads as empty.
    For network_mode host containers also the host's /etc/hosts and hostname."""
    text = _read_or_empty(spec.host.resolv_conf)
    path = resolvconf.source_path(text, spec.host.resolv_conf, os.path.exists(resolvconf.SYSTEMD_RESOLV_CONF))
    if path != spec.host.resolv_conf:
        text = _read_or_empty(path)
    if not any(container.mode == "host" for container in spec.containers):
        return HostFiles(text, path)
    return HostFiles(text, path, hosts=_read_or_empty(HOST_HOSTS_FILE), hostname=socket.gethostname())


def _read_or_empty(path: str) -> str:
    try:
        with open(path, encoding="utf-8", errors="surrogateescape") as handle:
            return handle.read()
    except FileNotFoundError:
        return ""
    except OSError as error:
        raise PrerequisiteError(f"cannot read {path}: {error.strerror}") from error


def plan_for(spec: Spec | None, session: KernelSession) -> Plan:
    """The plan that would converge the kernel on `spec` (None: remove everything owned)."""
    return _observe_and_plan(spec, session)[0]


def _observe_and_plan(spec: Spec | None, session: KernelSession) -> tuple[Plan, State]:
    if spec is None:
        live = observe(session, inside_containers=False)
        return plan(EMPTY_SPEC_STATE, live), live
    live = observe(session)
    desired = build_desired(spec, live, read_host_files(spec))
    result = plan(desired, live)
    check_firewall(result, session)
    guard = mass_deletion(desired, live)
    return (dataclasses.replace(result, guard=guard) if guard else result), live


def check_firewall(current: Plan, session: KernelSession) -> None:
    """Ask the kernel (nft -c, which changes nothing) whether it accepts the table the
    plan would load, so that neither plan nor apply finds out halfway."""
    for action in current.actions:
        if action.kind == "firewall" and action.op != DELETE:
            nft.require()
            error = nft.check_ruleset(session.host_fd, firewall.replace_script(action.obj.ruleset))
            if error:
                raise PrerequisiteError(f"the kernel rejects the firewall table (nft -c): {error}")


def converge(
    spec: Spec | None, session: KernelSession, on_progress: Callable[[int], None] | None = None,
    on_plan: Callable[[Plan], None] | None = None, force: bool = False, rollback: bool = True,
    held: frozenset[tuple] = frozenset(),
) -> Outcome:
    """Plan, apply and verify; raises ConflictError or GuardError before changing anything.

    The actions on `held` objects (watch mode: another tool fights over them), and those
    needing them, wait: they are left out of the apply and of the verification.
    When an action or the verification fails, the changes are undone (`rollback`, for
    a spec: destroy has nothing to go back to) by converging on the state observed
    before, and the error says so."""
    current, before = _observe_and_plan(spec, session)
    if current.conflicts:
        raise ConflictError("\n".join(current.conflicts))
    if current.guard and not force:
        raise GuardError(f"refusing to apply: {current.guard}. If the spec is meant to say that, "
                         "run again with --force")
    current, waiting = hold_back(current, held)
    if on_plan is not None:
        on_plan(current)
    if not current.actions:
        return Outcome(current, 0, waiting)
    from reconciler.kernel import KernelWriter  # the writer is loaded only when there is work

    try:
        applied = KernelWriter(session, on_progress, fail_after=fail_after_from_environment()).apply(current)
        remaining, _ = hold_back(plan_for(spec, session), held)
        if remaining.actions:
            details = "\n".join(f"  {a.op} {a.kind} {a.obj.name}: {a.reason}" for a in remaining.actions)
            raise VerifyError(f"the kernel still differs from the spec after apply:\n{details}")
    except KernelError as error:
        if not rollback or spec is None:
            raise
        raise type(error)(f"{error}\n{_roll_back(before, session)}", error.errno) from error
    return Outcome(current, applied, waiting)


def fail_after_from_environment() -> int | None:
    """NETRECONCILE_FAIL_AFTER=N: fail right after the Nth action (fault injection for drills)."""
    value = os.environ.get(FAIL_AFTER_VARIABLE)
    if not value:
        return None
    try:
        return int(value)
    except ValueError:
        raise UsageError(f"{FAIL_AFTER_VARIABLE}={value!r} is not a number of actions") from None


def _roll_back(before: State, session: KernelSession) -> str:
    """Converge on the state observed before the apply; a sentence saying how it went."""
    from reconciler.kernel import KernelWriter

    target = State.of(o for o in before.objects.values() if MISSING not in _identity(o))
    try:
        undo = plan(target, observe(session))
        KernelWriter(session).apply(undo)
        left = plan(target, observe(session))
    except (NetreconcileError, OSError) as error:
        return f"rolling back failed too ({error}); run apply again to converge"
    if left.actions:
        return f"rolled back {len(undo.actions)} change(s), but {len(left.actions)} difference(s) remain"
    return f"rolled back: the host is as it was before ({len(undo.actions)} change(s) undone)"


def _identity(obj) -> tuple:
    """The fields of a live object that say where it is; MISSING in one of them marks a
    half-made object that cannot be made again as it was."""
    return (getattr(obj, "netns", ""), getattr(obj, "peer_ifname", ""), getattr(obj, "target", ""),
            getattr(obj, "ifname", ""))
