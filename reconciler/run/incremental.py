"""Watch mode's drift-only passes: which passes may read only what their events name,
and what a resync finds the kept state missed.

A pass whose triggers are all events of the kernel or of container files (the spec,
the host files and the git commit did not change) is a drift-only pass: it plans
against the desired state of the last converged pass (reconciler.run.engine.Target)
and reads again only the scopes its events name (reconciler.kernel.observe_cache):
"netlink:NAME" the netlink part of container NAME, "files:NAME" its files, "nftables"
the firewall; "netlink:host" the containers whose veths' host ends its link events name,
or the host's links, addresses and routes when they name anything else
(reconciler.kernel.observe_cache). A change of the host files the desired state is built
from (resolv.conf, the host's /etc/hosts) changes no kernel object either: such a pass
builds the desired state again but plans against the kept state, reading no namespace
(the containers' files are kept fresh by their own events). Every other trigger (the
start, the spec, SIGHUP, a retry, the periodic resync, an overflowed event socket, a hold
that ended) asks for a full observation, which fills the kept state again.
"""

from __future__ import annotations

from reconciler.kernel.observe_cache import Scopes
from reconciler.state.model import State

HOST_EVENTS = "netlink:host"
NETNS_EVENTS = "netlink:"
FILE_EVENTS = "files:"
FIREWALL_EVENTS = "nftables"
# triggers for the host files the desired state is built from: it is built again
HOST_FILE_CHANGES = frozenset({"resolv.conf", "hosts"})


def drift_scopes(reasons: tuple[str, ...]) -> Scopes | None:
    """The scopes the triggers `reasons` name, None when one of them asks for a full
    observation."""
    netns, files, firewall = set(), set(), False
    for reason in reasons:
        if reason == HOST_EVENTS:
            continue
        if reason == FIREWALL_EVENTS:
            firewall = True
        elif reason.startswith(NETNS_EVENTS) and len(reason) > len(NETNS_EVENTS):
            netns.add(reason[len(NETNS_EVENTS):])
        elif reason.startswith(FILE_EVENTS) and len(reason) > len(FILE_EVENTS):
            files.add(reason[len(FILE_EVENTS):])
        else:
            return None
    return Scopes(frozenset(netns), frozenset(files), firewall)


def kept_state_scopes(reasons: tuple[str, ...]) -> Scopes | None:
    """The scopes to read again when the pass for `reasons` may plan against the kept
    state (its triggers are drift or changed host files), None when it observes everything."""
    return drift_scopes(tuple(reason for reason in reasons if reason not in HOST_FILE_CHANGES))


def missed_changes(kept: State, observed: State) -> list[str]:
    """What a full observation found that the kept state lacked or had otherwise: changes
    no event told of. One line per object, e.g. "address 10.0.0.2/24 on web:eth0: deleted"."""
    missed = []
    for key in sorted(kept.objects.keys() | observed.objects.keys(), key=repr):
        was, now = kept.objects.get(key), observed.objects.get(key)
        if was == now:
            continue
        if now is None:
            missed.append(f"{was.kind} {was.name}: gone")
        elif was is None:
            missed.append(f"{now.kind} {now.name}: appeared")
        else:
            changed = ", ".join(f"{name} {old!r} -> {new!r}" for name, old, new in was.differences(now))
            missed.append(f"{now.kind} {now.name}: {changed or 'changed'}")
    return missed
