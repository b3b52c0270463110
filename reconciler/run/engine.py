"""One reconcile pass: observe, decide, act, verify. The CLI and tests drive it.

The engine is the only place that strings the layers together; each step stays
a separate function so that `plan` and `status` stop after deciding.
"""

from __future__ import annotations

import dataclasses
import errno
import functools
import gc
import os
import socket
import stat
from dataclasses import dataclass, field
from typing import Callable

from reconciler import drivers
from reconciler.errors import (
    ConflictError, KernelError, NetreconcileError, PrerequisiteError, Problem, SpecError, UsageError,
    VerifyError,
)
from reconciler.kernel import file_record, nft
from reconciler.kernel.file_record import FileRecord
from reconciler.kernel.observe import READ_EVERYTHING, Readers, observe
from reconciler.kernel.observe_namespaces import netns_managed_elsewhere
from reconciler.kernel.session import KernelSession
from reconciler.render import firewall, resolvconf
from reconciler.spec.types import HostSpec, Spec
from reconciler.state.desired import NO_HOST_FILES, HostFiles, build_desired, uplinks
from reconciler.state.model import MISSING, Macvlan, State, Veth
from reconciler.state.plan import DELETE, Action, Plan
from reconciler.state.planner import hold_back, plan
from reconciler.state.subnets import needs_choice, with_chosen_subnets

EMPTY_SPEC_STATE = State()
HOST_HOSTS_FILE = "/etc/hosts"
FAIL_AFTER_VARIABLE = "NETRECONCILE_FAIL_AFTER"
LOSSES_SHOWN = 10


@dataclass(frozen=True)
class Outcome:
    plan: Plan  # what was applied
    applied: int
    held: tuple[Action, ...] = ()  # what waits: actions on held objects and what needs them
    # what the plan started from: the live state observed (the desired state's sticky
    # addresses come from it; watch's drift-only pass: the kept state, which the read-back
    # of an apply updates in place) and the host files read, for who derives more from the pass
    observed: State = field(default_factory=State)
    host_files: HostFiles = NO_HOST_FILES
    # what the plan aimed at, and the live state the pass ended with (read back after an
    # apply, else `observed`): what watch mode's next drift-only pass starts from
    desired: State = field(default_factory=State)
    after: State = field(default_factory=State)


@dataclass(frozen=True)
class Target:
    """A desired state already built, with the host files it was built from: a pass whose
    spec and host files did not change (watch mode's drift-only pass) plans against it
    again instead of building it (0.1 s at 1000 containers)."""

    desired: State
    host_files: HostFiles


def read_host_files(spec: Spec) -> HostFiles:
    """The host's resolv.conf as Docker picks it: systemd-resolved's upstream file when
    the configured one only points at the 127.0.0.53 stub. A missing file reads as empty.
    For network_mode host containers also the host's /etc/hosts and hostname.

    Their lines end up in container files that every user can read, so a file that not
    every user may read is refused, and so is a symlink as a path the spec names."""
    configured = spec.host.resolv_conf
    text = _read_resolv_conf(configured, spec.host)
    path = resolvconf.source_path(text, configured, os.path.exists(resolvconf.SYSTEMD_RESOLV_CONF))
    if path != configured:
        text = _read_resolv_conf(path, spec.host)
    if not any(container.mode == "host" for container in spec.local_containers):
        return HostFiles(text, path)
    hosts = _read_or_refuse(HOST_HOSTS_FILE, "the host's hosts file", follow_symlinks=True)
    return HostFiles(text, path, hosts=hosts, hostname=socket.gethostname())


def _read_resolv_conf(path: str, host: HostSpec) -> str:
    # The system's own files may be symlinks (systemd-resolved, resolvconf) and are
    # followed; any other path is taken as the spec writes it.
    follow = path in (resolvconf.DEFAULT_PATH, resolvconf.SYSTEMD_RESOLV_CONF)
    if path != host.resolv_conf or host.resolv_conf_location is None:
        return _read_or_refuse(path, "the host's resolv.conf", follow)
    try:
        return _read_shared_file(path, follow)
    except _Refused as refused:
        raise SpecError([Problem(host.resolv_conf_location, "host.resolv_conf", f"{path} {refused}")]) from None


def _read_or_refuse(path: str, what: str, follow_symlinks: bool) -> str:
    try:
        return _read_shared_file(path, follow_symlinks)
    except _Refused as refused:
        raise PrerequisiteError(f"{what} {path} {refused}") from None


class _Refused(Exception):
    """A host file netreconcile will not copy into container files; the text says why."""


def _read_shared_file(path: str, follow_symlinks: bool) -> str:
    """The text of a host file whose lines go into container files, "" when it is missing.

    Raises _Refused for a symlink (unless `follow_symlinks`), anything but a regular
    file, and a file not every user may read; PrerequisiteError when it cannot be read."""
    # O_NONBLOCK: opening a FIFO must not wait for a writer; it is refused below
    flags = os.O_RDONLY | os.O_CLOEXEC | os.O_NOCTTY | os.O_NONBLOCK | (0 if follow_symlinks else os.O_NOFOLLOW)
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        return ""
    except OSError as error:
        if error.errno == errno.ELOOP and not follow_symlinks and os.path.islink(path):
            raise _Refused("is a symbolic link: name the file itself") from None
        raise PrerequisiteError(f"cannot read {path}: {error.strerror}") from error
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise _Refused("is not a regular file")
        if not mode & stat.S_IROTH:
            raise _Refused(f"is not readable by every user (mode {stat.S_IMODE(mode):04o}), and its lines "
                           "would be copied into container files that every user can read")
    except BaseException:
        os.close(fd)
        raise
    with open(fd, encoding="utf-8", errors="surrogateescape") as handle:
        return handle.read()


def cycle_collector_paused(function):
    """Run `function` with Python's cycle collector off, as it was again afterwards. A pass
    allocates some hundred thousand objects (decoded links, files, the desired state) that
    hold no reference cycles, and the collector walking the growing heap again and again
    cost about 15 % of a no-op apply at 1000 containers; what a pass leaves in cycles is
    collected once the collector runs again (watch's next allocations)."""

    @functools.wraps(function)
    def paused(*args, **kwargs):
        was_enabled = gc.isenabled()
        gc.disable()
        try:
            return function(*args, **kwargs)
        finally:
            if was_enabled:
                gc.enable()
    return paused


def plan_for(spec: Spec | None, session: KernelSession) -> Plan:
    """The plan that would converge the kernel on `spec` (None: remove everything owned)."""
    return _observe_and_plan(spec, session)[0]


def plan_and_states(spec: Spec, session: KernelSession) -> tuple[Plan, State, State]:
    """The plan that would converge the kernel on `spec`, the live state it starts from
    and the desired state it aims at (its addresses read back from the kernel): what
    `graph --live` draws and `show` lists. The subnets chosen for `spec` are
    `with_chosen_subnets(spec, live)`."""
    result, live, desired, _ = _observe_and_plan(spec, session)
    return result, live, desired


@cycle_collector_paused
def _observe_and_plan(spec: Spec | None, session: KernelSession, readers: Readers = READ_EVERYTHING,
                      target: Target | None = None, record: FileRecord | None = None,
                      ) -> tuple[Plan, State, State, HostFiles]:
    """The plan, the live state it starts from, the desired state it aims at and the
    host files that desired state was built from (`target`: those two, reused). The
    container files as `record` has them (loaded here when not given and `readers` take
    one) are not read, unless the desired state wants other text (file_record.settle)."""
    if spec is None:
        live = readers.observe(session, inside_containers=False)
        return plan(EMPTY_SPEC_STATE, live, destroying=True), live, EMPTY_SPEC_STATE, NO_HOST_FILES
    if target is not None:
        live = readers.observe(session, uplinks=uplinks(spec))
        check_live_needs(spec, target.desired, live)  # a parent gone since is refused, not attempted
        result = readers.plan_over(target.desired, live)
        check_firewall(result, session)
        return result, live, target.desired, target.host_files
    if record is None and readers.uses_file_record:
        record = file_record.load(session)
    live = readers.observe(session, uplinks=uplinks(spec), host_networks=needs_choice(spec), file_record=record)
    spec = with_chosen_subnets(spec, live)
    host_files = read_host_files(spec)
    desired = build_desired(spec, live, host_files)
    if record is not None:
        live = file_record.settle(live, desired, record, session)
    check_live_needs(spec, desired, live)
    live = _with_hosts_of_foreign_netns(live, desired, session)
    result = plan(desired, live)
    check_firewall(result, session)
    return result, live, desired, host_files


def check_live_needs(spec: Spec, desired: State, live: State) -> None:
    """Refuse (SpecError, at the spec lines) a spec whose networks need what the live host
    lacks (a macvlan's parent), before anything is changed."""
    problems = [problem for network in spec.networks
                for problem in drivers.driver_for(network.driver).live_problems(network, desired, live)]
    if problems:
        raise SpecError(problems)


def _verify(desired: State, session: KernelSession, destroying: bool, held: frozenset[tuple],
            readers: Readers = READ_EVERYTHING, record: FileRecord | None = None) -> State:
    """Observe again: the kernel must now be the desired state (the held objects aside).
    The target is the one planned for, so the host files are not read again. Returns
    the state read back; `record` (one without entries: every file is read) notes the
    stat of each file read."""
    after = readers.observe(session, inside_containers=not destroying, expected=desired, file_record=record)
    remaining, _ = hold_back(plan(desired, after, destroying=True) if destroying else readers.plan_over(desired, after),
                             held)
    if remaining.actions:
        details = "\n".join(f"  {a.op} {a.kind} {a.obj.name}: {a.reason}" for a in remaining.actions)
        raise VerifyError(f"the kernel still differs from the spec after apply:\n{details}")
    return after


def _with_hosts_of_foreign_netns(live: State, desired: State, session: KernelSession) -> State:
    """`live`, knowing which of the foreign namespaces the spec wants are netreconcile's
    for another host namespace (looked up only for those: it opens each one)."""
    wanted = {obj.netns for obj in desired.objects.values() if obj.is_container}
    in_the_way = wanted & live.foreign_netns
    if not in_the_way:
        return live
    return dataclasses.replace(live, foreign_netns_hosts=netns_managed_elsewhere(session, in_the_way))


def check_firewall(current: Plan, session: KernelSession) -> None:
    """Ask the kernel (nft -c, which changes nothing) whether it accepts the table the
    plan would load, so that neither plan nor apply finds out halfway."""
    for action in current.actions:
        if action.kind == "firewall" and action.op != DELETE:
            nft.require()
            script = firewall.load_script(action.obj.ruleset, action.obj.elements, action.changes)
            error = nft.check_ruleset(session.host_fd, script)
            if error:
                raise PrerequisiteError(f"the kernel rejects the firewall table (nft -c): {error}")


@cycle_collector_paused
def converge(
    spec: Spec | None, session: KernelSession, on_progress: Callable[[int], None] | None = None,
    on_plan: Callable[[Plan], None] | None = None, force: bool = False, rollback: bool = True,
    held: frozenset[tuple] = frozenset(), readers: Readers = READ_EVERYTHING, target: Target | None = None,
) -> Outcome:
    """Plan, apply and verify; raises ConflictError or GuardError before changing anything.

    The actions on `held` objects (watch mode: another tool fights over them), and those
    needing them, wait: they are left out of the apply and of the verification.
    When an action or the verification fails, the changes are undone (`rollback`, for
    a spec: destroy has nothing to go back to) by converging on the state observed
    before, and the error says so. `readers` and `target`: see observe and Target;
    before reading back, `readers` learns what the plan touched."""
    record = file_record.load(session) if readers.uses_file_record and target is None and spec is not None else None
    current, before, desired, host_files = _observe_and_plan(spec, session, readers, target, record)
    if current.conflicts:
        raise ConflictError("\n".join(current.conflicts))
    current.raise_if_unsafe(force)
    current, waiting = hold_back(current, held)
    if on_plan is not None:
        on_plan(current)
    if not current.actions:
        _keep_file_record(session, spec, readers, record, desired, before)
        return Outcome(current, 0, waiting, before, host_files, desired, before)
    from reconciler.kernel.writer import KernelWriter  # the writer is loaded only when there is work

    writer = KernelWriter(session, on_progress, fail_after=fail_after_from_environment())
    state_before = readers.way_back(before)
    try:
        applied = writer.apply(current)
        readers.reading_back(current)
        read_back = file_record.FileRecord() if record is not None else None
        after = _verify(desired, session, spec is None, held, readers, read_back)
    except KernelError as error:
        if not rollback or spec is None:
            raise
        undone, restored = _roll_back(state_before(), session, writer.irreversible_done)
        failure = type(error)(f"{error}\n{undone}", error.errno)
        failure.restored = restored
        raise failure from error
    # what was read back equals the desired state: it was verified
    _keep_file_record(session, spec, readers, read_back, desired, after, previous=record)
    return Outcome(current, applied, waiting, before, host_files, desired, after)


def _keep_file_record(session: KernelSession, spec: Spec | None, readers: Readers, record: FileRecord | None,
                      desired: State, live: State, previous: FileRecord | None = None) -> None:
    """After a converged pass: the file record of the files `record` noted in `live`
    (file_record.write); after a destroy none."""
    if record is not None:
        file_record.write(session, record, desired, live, previous)
    elif spec is None and readers.uses_file_record:
        file_record.forget(session)


def fail_after_from_environment() -> int | None:
    """NETRECONCILE_FAIL_AFTER=N: fail right after the Nth action (fault injection for drills)."""
    value = os.environ.get(FAIL_AFTER_VARIABLE)
    if not value:
        return None
    try:
        return int(value)
    except ValueError:
        raise UsageError(f"{FAIL_AFTER_VARIABLE}={value!r} is not a number of actions") from None


def _roll_back(before: State, session: KernelSession, irreversible_done: list[Action]) -> tuple[str, bool]:
    """Converge on the state observed before the apply; sentences saying how it went and,
    when the apply got as far as the break, what no undoing can give back; and whether
    the host is exactly as it was."""
    from reconciler.kernel.writer import KernelWriter

    target = State.of(o for o in before.objects.values() if o.restorable and not any(v is MISSING for v in _identity(o)))
    uplinks = frozenset(before.used_interfaces)  # given back as they were: released, up or down
    try:
        undo = plan(target, observe(session, uplinks=uplinks, expected=target))
        KernelWriter(session).apply(undo)
        left = plan(target, observe(session, uplinks=uplinks, expected=target))
    except (NetreconcileError, OSError) as error:
        outcome = f"rolling back failed too ({error}); run apply again to converge"
    else:
        if left.actions:
            outcome = f"rolled back {len(undo.actions)} change(s), but {len(left.actions)} difference(s) remain"
        elif irreversible_done:
            outcome = (f"rolled back {len(undo.actions)} change(s), but not everything can be restored: "
                       "the apply had begun deletions that cannot be undone")
        else:
            return f"rolled back: the host is as it was before ({len(undo.actions)} change(s) undone)", True
    if not irreversible_done:
        return outcome, False
    lost = [_what_is_lost(action.obj) for action in irreversible_done]
    more = [f"and {len(lost) - LOSSES_SHOWN} more"] if len(lost) > LOSSES_SHOWN else []
    return "\n".join([outcome, *(f"  not undone: {line}" for line in lost[:LOSSES_SHOWN] + more)]), False


def _what_is_lost(obj) -> str:
    if isinstance(obj, (Veth, Macvlan)):
        ifname, what = ((obj.peer_ifname, f"host end {obj.host_ifname}") if isinstance(obj, Veth)
                        else (obj.ifname, f"a macvlan on {obj.parent}"))
        return (f"interface {ifname} of container {obj.container} ({what}) was deleted; one made again under its "
                "name is a new interface, and what ran through the old one was cut off")
    return (f"namespace {obj.netns} was deleted; one made again under its name is a new, empty namespace, "
            "and processes still running in the old one have lost their network")


def _identity(obj) -> tuple:
    """The fields of a live object that say where it is; MISSING in one of them marks a
    half-made object that cannot be made again as it was."""
    return (getattr(obj, "netns", ""), getattr(obj, "peer_ifname", ""), getattr(obj, "target", ""),
            getattr(obj, "ifname", ""))
