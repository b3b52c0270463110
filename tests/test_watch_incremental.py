"""Watch mode's incremental passes: a pass for kernel or file events reads again only
the scopes they name, plans against the kept state and the last desired state, and a
resync warns about what the kept state missed. Pure parts first, then kernel tests
(watch as a subprocess on throwaway namespaces, like tests/test_watch.py)."""

from __future__ import annotations

import dataclasses
import errno
import queue
import socket
import struct
from pathlib import Path
from types import SimpleNamespace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reconciler.kernel import netlink as nl
from reconciler.kernel.observe_cache import EVERYTHING, CachingReaders, Scopes, _Kept, touched_by
from reconciler.run.incremental import drift_scopes, kept_state_scopes, missed_changes
from reconciler.run.scheduler import KERNEL_DEBOUNCE, PassScheduler
from reconciler.run.triggers import EventSources
from reconciler.state.desired import build_desired
from reconciler.state.model import Address, File, Firewall, Netns, State, Sysctl, Veth
from reconciler.state.plan import CREATE, DELETE, Action, Plan
from reconciler.state.planner import plan
from reconciler.state.scopes import HOST_SCOPE, ScopedState, plan_in_scopes, scope_of
from tests.conftest import sh
from tests.strategies import mutations, specs
from tests.test_watch import EXTRA, SPEC, veths, watching

# --- pure -----------------------------------------------------------------------------


def test_kernel_and_file_events_name_their_scopes_and_everything_else_asks_for_a_full_observation():
    assert drift_scopes(("netlink:host",)) == Scopes()
    assert drift_scopes(("files:web", "netlink:db", "netlink:host", "nftables")) == Scopes(
        frozenset({"db"}), frozenset({"web"}), firewall=True)
    for reason in ("start", "spec", "resolv.conf", "hosts", "sighup", "git", "resync", "retry", "hold ended",
                   "changed during the pass", "host netns", "overflow:netlink:web", "netlink:", "files:"):
        assert drift_scopes(("netlink:host", reason)) is None, reason


def test_a_changed_host_file_plans_against_the_kept_state_and_a_changed_spec_does_not():
    assert kept_state_scopes(("resolv.conf", "files:web", "netlink:host")) == Scopes(files=frozenset({"web"}))
    assert kept_state_scopes(("hosts",)) == Scopes()
    for reason in ("start", "spec", "sighup", "git", "resync", "retry"):
        assert kept_state_scopes(("resolv.conf", reason)) is None, reason


def veth(container: str) -> Veth:
    return Veth(f"veth-{container}", container, "front", container, "eth0", "br", "02:00:00:00:00:01", 1500, 1500)


def test_an_apply_is_read_back_where_its_actions_were():
    plan = Plan((Action(CREATE, veth("web"), "missing"), Action(CREATE, Address("web", "eth0", "10.0.0.2/24"), ""),
                 Action(CREATE, File("db", "hosts", "x"), ""), Action(DELETE, Sysctl("", "net.ipv4.ip_forward", "0"), "")))
    assert touched_by(plan) == Scopes(frozenset({"web"}), frozenset({"db"}), host=True)  # the sysctl
    assert touched_by(Plan(plan.actions[:3])) == Scopes(frozenset({"web"}), frozenset({"db"}))
    assert touched_by(Plan((Action(CREATE, Firewall("", "table"), ""),))) == Scopes(firewall=True)
    assert touched_by(Plan((Action(CREATE, Netns("web"), ""),))) == EVERYTHING


def test_a_resync_names_what_the_kept_state_missed():
    kept = State.of([Netns("web"), Address("web", "eth0", "10.0.0.2/24"), Sysctl("", "net.ipv4.ip_forward", "1")])
    live = State.of([Netns("web"), Sysctl("", "net.ipv4.ip_forward", "0"), Address("web", "eth0", "10.0.0.3/24")])
    missed = missed_changes(kept, live)
    assert len(missed) == 3
    assert any("10.0.0.2/24" in line and line.endswith("gone") for line in missed)
    assert any("10.0.0.3/24" in line and line.endswith("appeared") for line in missed)
    assert any("ip_forward" in line and "'1' -> '0'" in line for line in missed)
    assert missed_changes(kept, kept) == []


def test_kernel_events_wait_a_short_debounce_and_file_events_the_configured_one():
    scheduler = PassScheduler(debounce=0.1, resync=60.0, started=0.0)
    scheduler.trigger("netlink:host", 1.0)
    scheduler.trigger("nftables", 1.0)
    assert scheduler.due(1.0 + KERNEL_DEBOUNCE) == ("netlink:host", "nftables")
    scheduler.started_pass(1.0 + KERNEL_DEBOUNCE)
    scheduler.trigger("netlink:web", 2.0)
    scheduler.trigger("files:web", 2.0)  # an editor's burst may go on: the whole debounce
    assert scheduler.due(2.0 + KERNEL_DEBOUNCE) == ()
    assert scheduler.wait_time(2.0) == pytest.approx(0.1)
    assert scheduler.due(2.1) == ("files:web", "netlink:web")
    unbounced = PassScheduler(debounce=0.0, resync=60.0, started=0.0)
    unbounced.trigger("netlink:host", 1.0)
    assert unbounced.due(1.0) == ("netlink:host",)  # never longer than the configured debounce


@settings(max_examples=300, deadline=None)
@given(specs(), specs(), st.data())
def test_a_plan_over_the_changed_scopes_and_the_host_is_the_whole_plan(spec, other, data):
    """Live: as desired in every scope but the changed ones (and the host's), where objects
    went, drifted or were left by another spec."""
    desired = build_desired(spec, State())
    scoped, stray = ScopedState.of(desired), ScopedState.of(build_desired(other, State()))
    scopes = sorted((set(scoped.parts) | set(stray.parts)) - {HOST_SCOPE}, key=repr)
    changed = set(data.draw(st.lists(st.sampled_from(scopes), unique=True))) if scopes else set()
    planned = changed | {HOST_SCOPE}
    drifted = data.draw(mutations(State({**stray.objects_in(planned), **scoped.objects_in(planned)})))
    live = {key: obj for key, obj in desired.objects.items() if scope_of(obj) not in planned}
    live.update(drifted.objects)
    live_state = State(live)
    assert plan_in_scopes(scoped, ScopedState.of(live_state), changed) == plan(desired, live_state)


def nonempty(mapping: dict) -> dict:
    return {key: value for key, value in mapping.items() if value}


@settings(max_examples=200, deadline=None)
@given(specs(), specs(), st.data())
def test_updating_scopes_in_place_is_rebuilding_them_and_the_way_back_is_the_state_before(spec, other, data):
    """A pass reads some scopes again and finds other objects there (another spec's,
    drifted): the kept state updated in place is the one built from scratch, and the
    way back taken before the update is the state as it was."""
    start, elsewhere = build_desired(spec, State()), build_desired(other, State())
    scoped = ScopedState.of(State(dict(start.objects)))
    objects = scoped.state.objects
    scopes = sorted(set(scoped.parts) | set(ScopedState.of(elsewhere).parts), key=repr)
    changed = set(data.draw(st.lists(st.sampled_from(scopes), unique=True))) if scopes else set()
    kept = {key: obj for key, obj in start.objects.items() if scope_of(obj) not in changed}
    found = data.draw(mutations(State({key: obj for key, obj in elsewhere.objects.items()
                                       if scope_of(obj) in changed and key not in kept})))
    back = scoped.way_back()
    scoped.update([obj for obj in start.objects.values() if scope_of(obj) in changed], list(found.objects.values()),
                  foreign_files=frozenset({("web", "in the way")}))
    rebuilt = ScopedState.of(State({**kept, **found.objects}))
    assert scoped.state.objects is objects  # in place: no copy of the whole state
    assert scoped.state == rebuilt.state and scoped.state.foreign_files == {("web", "in the way")}
    assert nonempty(scoped.parts) == nonempty(rebuilt.parts)
    assert nonempty(scoped.claimed_by) == nonempty(rebuilt.claimed_by)
    assert back() == start and back().foreign_files == frozenset()


def test_an_apply_can_go_back_to_the_kept_state_the_read_back_updates_in_place():
    readers = CachingReaders()
    web, db = Address("web", "eth0", "10.0.0.2/24"), Address("db", "eth0", "10.0.0.3/24")
    readers.live = ScopedState.of(State.of([web, Netns("web")]))
    observed = readers.live.state
    state_before = readers.way_back(observed)
    readers.live.update([web], [db])
    assert readers.live.state == State.of([Netns("web"), db])
    assert state_before() == State.of([web, Netns("web")])
    other = State.of([web])  # not the kept state: never changed, given back as it is
    assert readers.way_back(other)() is other


def payload_of(request: bytes) -> bytes:
    return next(nl.messages(request))[3]


def event(kind: int, request: bytes) -> bytes:
    """`request` (a request builder's) as the kernel's event of type `kind` would carry it."""
    return nl.message(kind, 0, 0, payload_of(request))


def test_host_link_events_name_their_links_and_any_other_host_event_names_none():
    sources = EventSources(lambda reason: None)
    link = nl.message(nl.RTM_NEWLINK, 0, 1, nl.ifinfomsg(7)) + nl.message(nl.RTM_DELLINK, 0, 2, nl.ifinfomsg(9))
    sources._note_host_links([link], overflowed=False)
    assert sources.take_host_links() == {7: nl.RTM_NEWLINK, 9: nl.RTM_DELLINK}
    assert sources.take_host_links() == {}  # taken: the next pass's are new ones
    # what observe never reads: the kernel's link-local address and its route, of a new interface
    fe80_route = bytes([socket.AF_INET6, 64, 0, 0, nl.RT_TABLE_MAIN, nl.RTPROT_KERNEL, 0, nl.RTN_UNICAST, 0, 0, 0, 0])
    fe80 = struct.pack("=BBBBI", socket.AF_INET6, 64, 0, nl.RT_SCOPE_LINK, 7) + nl.attr(
        nl.IFA_ADDRESS, socket.inet_pton(socket.AF_INET6, "fe80::1"))
    kernels = [nl.message(nl.RTM_NEWADDR, 0, 0, fe80), nl.message(nl.RTM_NEWROUTE, 0, 0, fe80_route)]
    sources._note_host_links([link, *kernels], overflowed=False)
    assert sources.take_host_links() == {7: nl.RTM_NEWLINK, 9: nl.RTM_DELLINK}
    sources._note_host_links([link, event(nl.RTM_NEWADDR, nl.new_addr(3, 7, "10.0.0.1/24"))], overflowed=False)
    assert sources.take_host_links() is None and sources.host_change == "a host event of type 20"  # an address
    sources._note_host_links([link], overflowed=True)
    assert sources.take_host_links() is None  # events were lost
    many = b"".join(nl.message(nl.RTM_NEWLINK, 0, i, nl.ifinfomsg(i)) for i in range(1, 1000))
    sources._note_host_links([many], overflowed=False)
    assert sources.take_host_links() == dict.fromkeys(range(1, 1000), nl.RTM_NEWLINK)  # the reader weighs them


def test_events_come_from_sockets_past_descriptor_1023():
    """A socket per container namespace: a thousand containers take a thousand descriptors."""
    got = queue.Queue()
    sources = EventSources(got.put)
    pairs = [socket.socketpair() for _ in range(1100)]
    for mine, _ in pairs:
        mine.setblocking(False)  # as the event sockets are
    try:
        sources.start()
        sources.watch_sockets({f"netlink:c{i}": lambda mine=mine: mine for i, (mine, _) in enumerate(pairs)})
        assert pairs[-1][0].fileno() > 1023
        pairs[-1][1].send(b"event")
        assert got.get(timeout=30) == "netlink:c1099"
    finally:
        sources.stop()
        for _, theirs in pairs:
            theirs.close()


def filled_readers() -> CachingReaders:
    """Readers as a full observation leaves them: web's veth has host index 7, the host
    has four more links."""
    readers = CachingReaders()
    readers._kept = _Kept((set(), {}, {}), veth_containers={7: "web"},
                          host_names={1: "lo", 2: "br", 3: "eth0", 4: "eth1", 7: "veth-web"},
                          files={name: ([], []) for name in ("web", "db", "cache", "queue", "api")})
    readers.live = ScopedState.of(State())
    return readers


def test_a_pass_reads_the_containers_its_events_name_and_the_host_only_for_other_host_links():
    readers = filled_readers()
    readers.read_again(Scopes(files=frozenset({"db"})), {7: nl.RTM_DELLINK})  # web's veth's host end, gone
    assert readers._next == Scopes(frozenset({"web"}), frozenset({"db"})) and not readers.reads_all
    readers.read_again(Scopes(), {7: nl.RTM_NEWLINK})  # changed (its carrier came up): only it is read
    assert readers._next == Scopes(veths=frozenset({"web"})) and not readers.host_read
    readers.reading_back(Plan((Action(CREATE, Address("db", "eth0", "10.0.0.3/24"), ""),)))
    assert readers._next == Scopes(frozenset({"db"}))  # what the apply touched, not the host ends again
    readers.read_again(Scopes(), {8: nl.RTM_NEWLINK})  # a link that is no known veth's
    assert readers._next == Scopes(host=True) and "[8]" in readers.host_read
    readers.read_again(Scopes(), {8: nl.RTM_DELLINK})  # made and gone since the host was read
    assert readers._next == Scopes() and not readers.host_read
    readers._kept.host_names[8] = "eth2"
    readers.read_again(Scopes(), {8: nl.RTM_DELLINK})  # gone, and it was there
    assert readers._next == Scopes(host=True)
    readers.read_again(Scopes(), host_changed="a host event of type 20")  # an address, a route, lost events
    assert readers._next == Scopes(host=True)
    readers._kept.files = {f"c{i}": ([], []) for i in range(1000)}  # a thousand containers kept
    half = frozenset(f"c{i}" for i in range(500))
    readers.read_again(Scopes(netns=half, files=half))  # as cheap as half a full read: read again
    assert readers._next == Scopes(half, half) and not readers.reads_all
    readers.read_again(Scopes(netns=frozenset(f"c{i}" for i in range(900))))  # nearly all: read everything
    assert readers.reads_all and readers._next == EVERYTHING
    readers.forget()
    readers.read_again(Scopes(netns=frozenset({"web"})))
    assert readers.reads_all  # nothing kept


def test_a_burst_of_host_link_events_reads_the_veths_it_names_unless_it_names_most_of_the_host():
    readers = filled_readers()
    kept = readers._kept
    for index in range(100, 1100):  # a thousand containers, a veth each
        kept.host_names[index], kept.veth_containers[index] = f"veth{index}", f"c{index}"
    burst = dict.fromkeys(range(100, 400), nl.RTM_NEWLINK)  # carriers coming up after the start
    readers.read_again(Scopes(), burst)
    assert readers._next == Scopes(veths=frozenset(f"c{i}" for i in range(100, 400))), readers.host_read
    assert not readers.host_read and not readers.reads_all
    readers.read_again(Scopes(), dict.fromkeys(range(100, 700), nl.RTM_NEWLINK))  # more than half: still cheaper
    assert not readers._next.host and len(readers._next.veths) == 600
    readers.read_again(Scopes(), dict.fromkeys(range(100, 1100), nl.RTM_NEWLINK))  # nearly all the host's links
    assert readers._next.host and "1000 of the host's 1005 links" in readers.host_read
    readers.read_again(Scopes(), {**burst, 9: nl.RTM_NEWLINK})  # and one the kept state does not know
    assert readers._next.host and "[9]" in readers.host_read


def test_a_scope_read_again_but_found_as_kept_is_not_planned():
    """A carrier coming up sends a host link event, but no field of the veth observed
    changed: that container is as the last converged pass left it."""
    readers = filled_readers()
    kept = veth("web")
    readers._kept.netns = {"web": ([], {})}
    readers.live = ScopedState.of(State.of([kept, Netns("web")]))
    found = {"web": [kept]}
    readers._veths_of = lambda session, peers_of, pending: found
    session = SimpleNamespace(state=SimpleNamespace(pending_links=dict))
    readers.read_again(Scopes(veths=frozenset({"web"})))
    readers.observe(session)
    assert readers._planned == set() and readers.live.state == State.of([kept, Netns("web")])
    found["web"] = [dataclasses.replace(kept, hairpin=True)]
    readers.read_again(Scopes(veths=frozenset({"web"})))
    readers.observe(session)
    assert readers._planned == {("container", "web")} and readers.live.state.objects[kept.key].hairpin


# --- kernel ---------------------------------------------------------------------------

FIVE = SPEC + "".join(EXTRA.replace("cache", name) for name in ("cache", "queue", "api"))


def drift_passes(watch, since: int) -> list[dict]:
    return [line for line in watch.passes()[since:] if line["outcome"] == "applied" and line["drift"]]


@pytest.mark.kernel
def test_drift_is_repaired_reading_only_the_scopes_its_events_name(sandbox):
    """Five containers: a full observation reads five namespaces, a repair here at most
    two (the one changed, before planning and again after the apply)."""
    with watching(sandbox, FIVE) as watch:
        box = watch.sandbox
        watch.start()
        watch.settle()
        assert watch.barrier()["observed"] == "full"  # SIGHUP asks for a full observation
        links = veths(box)
        assert len(links) == 5

        since = len(watch.passes())
        box.host_sh(f"ip link del {sorted(links)[0]}")
        watch.reacts(lambda: veths(box) == links and "1 received" in box.in_ns("web", "ping -c1 -W1 172.26.0.3", False),
                     "the deleted veth is back and web reaches db")
        repair = watch.reacts(lambda: drift_passes(watch, since), "the repair's log line")[0]
        assert repair["observed"] == "incremental" and repair["namespaces_read"] <= 2, watch.tail()
        assert "veth" in repair["actions"]

        watch.settle()
        since = len(watch.passes())
        host_end = sorted(veths(box))[0]
        box.host_sh(f"bridge link set dev {host_end} hairpin on")  # the host end alone: only it is read again
        watch.reacts(lambda: "hairpin off" in box.host_sh(f"bridge -d link show dev {host_end}"),
                     "its hairpin mode is repaired")
        repair = watch.reacts(lambda: drift_passes(watch, since), "the repair's log line")[0]
        assert repair["trigger"] == "netlink:host" and "host_read" not in repair, watch.tail()
        assert repair["namespaces_read"] <= 1, watch.tail()  # only the read-back after the apply

        watch.settle()
        since = len(watch.passes())
        web = box.name("web")
        sh(f"ip -n {web} addr del 172.26.0.2/24 dev eth0")
        watch.reacts(lambda: box.addresses(web).get("eth0") == ["172.26.0.2/24"], "web's address is back")
        repair = watch.reacts(lambda: drift_passes(watch, since), "the repair's log line")[0]
        assert repair["observed"] == "incremental" and repair["namespaces_read"] <= 2, watch.tail()
        assert f"netlink:{web}" in repair["trigger"].split(","), repair

        watch.settle()
        since = len(watch.passes())
        hosts = Path("/etc/netns") / box.name("db") / "hosts"
        original = hosts.read_text()
        hosts.write_text(original + "203.0.113.9\tintruder\n")
        watch.reacts(lambda: hosts.read_text() == original, "the hand-edited hosts file is restored")
        repair = watch.reacts(lambda: drift_passes(watch, since), "the repair's log line")[0]
        assert repair["observed"] == "incremental" and repair["namespaces_read"] == 0, watch.tail()

        since = len(watch.passes())
        box.write_spec(FIVE.replace(EXTRA.replace("cache", "api"), "").format(resolv=watch.resolv))
        watch.reacts(lambda: len(veths(box)) == 4, "the container left out of the spec is removed")
        change = watch.reacts(lambda: [line for line in watch.passes()[since:] if "spec" in line["trigger"]],
                              "the spec's pass")[0]
        assert change["observed"] == "full" and change["drift"] is False
        assert watch.stop() == 0


@pytest.mark.kernel
def test_a_resync_warns_about_a_change_no_event_told_of_and_repairs_it(sandbox):
    """Forwarding switched off in the host namespace: a sysctl write sends no link,
    address or route event, so only the resync's full observation finds it."""
    with watching(sandbox) as watch:
        watch.extra = ("--resync", "2")
        box = watch.sandbox
        watch.start()
        watch.settle()

        def missed() -> list[dict]:
            return [line for line in watch.lines() if line.get("event") == "the resync found changes no event told of"]

        # a repair from events keeps what it read: the next resync finds the kernel as kept
        links = veths(box)
        since = len(watch.passes())
        box.host_sh(f"ip link del {sorted(links)[0]}")
        watch.reacts(lambda: [line for line in drift_passes(watch, since) if line["observed"] == "incremental"],
                     "an incremental repair")
        repaired = len(watch.passes())
        watch.reacts(lambda: [line for line in watch.passes()[repaired:] if line["trigger"] == "resync"],
                     "a resync after the repair")
        assert veths(box) == links and not missed(), watch.tail()

        assert box.host_sh("sysctl -n net.ipv4.ip_forward").strip() == "1"
        box.host_sh("sysctl -qw net.ipv4.ip_forward=0")

        warning = watch.reacts(missed, "the resync's warning")[0]
        assert warning["level"] == "warning"
        assert any("net.ipv4.ip_forward" in line and "'1' -> '0'" in line for line in warning["objects"]), warning
        watch.reacts(lambda: box.host_sh("sysctl -n net.ipv4.ip_forward").strip() == "1", "forwarding is on again")
        assert watch.stop() == 0


class _HostAskedByIndex:
    """The host socket of a session, for _veths_of: every link asked for is gone."""

    def __init__(self):
        self.seq, self.asked = 0, []

    def next_seq(self) -> int:
        self.seq += 1
        return self.seq

    def query(self, requests: list[bytes]) -> dict[int, int]:
        self.asked += [struct.unpack_from("=i", request, 20)[0] for request in requests]  # ifinfomsg's index
        return {int.from_bytes(request[8:12], "little"): errno.ENODEV for request in requests}


def test_a_pass_finds_its_containers_veths_without_walking_every_veth(monkeypatch):
    readers = filled_readers()
    kept = readers._kept
    for index in range(100, 5100):  # five thousand containers, a veth each
        kept.veth_containers[index] = f"c{index}"
    kept.veth_containers[8] = "web"  # a second veth
    kept.veth_containers[9] = "c9"
    kept.veth_containers[9] = "web"  # moved over

    class Unwalked(type(kept.veth_containers)):
        pass
    kept.veth_containers = Unwalked(kept.veth_containers)

    def walked(*args):
        raise AssertionError("walked every veth")
    for method in ("items", "keys", "values", "__iter__"):
        monkeypatch.setattr(Unwalked, method, walked)
    host = _HostAskedByIndex()
    assert readers._veths_of(SimpleNamespace(host=host), {"web": {}}, {}) == {"web": []}
    assert sorted(host.asked) == [7, 8, 9]
    assert 7 not in kept.veth_containers and not kept.veth_containers.indexes_of("web")  # gone: forgotten
    assert kept.veth_containers.indexes_of("c100") == {100} and not kept.veth_containers.indexes_of("c9")
