"""The planner, pure: property tests against an in-memory kernel, and golden cases."""

from __future__ import annotations

import ast
import dataclasses
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path
from typing import ClassVar

from hypothesis import given, settings
from hypothesis import strategies as st

from reconciler.drivers.bridge import veth_name
from reconciler.spec.types import Attachment, ContainerSpec, Location, NetworkSpec, Spec
from reconciler.state.desired import build_desired
from reconciler.state import planner as planner_module
from reconciler.state.model import (
    HOST_NS, Address, Firewall, KernelObject, Leftover, Netns, Route, State, Sysctl, Veth,
)
from reconciler.state.plan import BREAK, CREATE, DELETE, Plan
from reconciler.state.planner import dependencies, plan
from tests.strategies import KernelModel, ModelError, live_states, specs

SETTINGS = settings(max_examples=200, deadline=None)


@SETTINGS
@given(specs())
def test_planning_the_desired_state_against_itself_is_empty(spec):
    desired = build_desired(spec, State())
    assert plan(desired, desired).actions == ()


@SETTINGS
@given(specs(), live_states())
def test_applying_a_plan_converges(spec, live):
    desired = build_desired(spec, live)
    result = KernelModel(live).apply(plan(desired, live))
    # sysctls the spec does not mention are left as they are, never reset
    unmentioned = {k for k, o in result.objects.items() if isinstance(o, Sysctl) and k not in desired.objects}
    assert State({k: o for k, o in result.objects.items() if k not in unmentioned}) == desired
    assert plan(desired, result).actions == ()


@SETTINGS
@given(specs(), live_states())
def test_every_action_comes_after_what_it_depends_on(spec, live):
    desired = build_desired(spec, live)
    actions = plan(desired, live).actions
    position = {(a.op != DELETE, a.key): i for i, a in enumerate(actions)}
    for index, action in enumerate(actions):
        if action.op == DELETE:
            # whatever depends on a deleted object is deleted (or vanishes) before it
            for other in live.objects.values():
                if action.key in dependencies(other, live) and (False, other.key) in position:
                    assert position[(False, other.key)] < index
        else:
            for needed in dependencies(action.obj, desired):
                if (True, needed) in position:
                    assert position[(True, needed)] < index


@SETTINGS
@given(specs(), live_states())
def test_nothing_waits_for_the_break_that_could_go_before_it(spec, live):
    """Make before break: after the first deletion that cannot be undone comes only the
    break itself and what cannot run before it (the model refuses it, or the break
    would undo it)."""
    check_nothing_waits_for_the_break(build_desired(spec, live), live)


def check_nothing_waits_for_the_break(desired: State, live: State) -> int:
    """The property above for one pair of states; how many actions after the break were
    tried before it (so that a fixed case can show the check ran)."""
    actions = plan(desired, live).actions
    first = next((i for i, a in enumerate(actions) if a.step >= BREAK), len(actions))
    assert not any(a.irreversible for a in actions[:first])
    tried = 0
    for index in range(first, len(actions)):
        action = actions[index]
        if action.op == DELETE:
            assert action.step == BREAK, action
            continue
        moved = actions[:first] + (action,) + actions[first:index] + actions[index + 1:]
        tried += 1
        try:
            result = KernelModel(live).apply(Plan(moved))
        except ModelError:
            continue
        assert plan(desired, result).actions != (), f"{action} could run before the break"
    return tried


@SETTINGS
@given(specs(), specs())
def test_a_failure_before_the_break_is_undone_without_losing_anything(before_spec, after_spec):
    """Cut the plan anywhere before the break: planning back restores the state before,
    and never has to make again a namespace or veth that existed (a new one would be
    empty under the processes that ran in the old one)."""
    live = build_desired(before_spec, State())
    model = KernelModel(live)
    for action in plan(build_desired(after_spec, live), live).actions:
        if action.step >= BREAK:
            break
        partial = model.apply(Plan((action,)))
        undo = plan(live, partial)
        assert not [a for a in undo.actions if a.op == CREATE and a.kind in ("netns", "veth") and a.key in live.objects]
        restored = KernelModel(partial).apply(undo)
        set_since = {k for k, o in restored.objects.items() if isinstance(o, Sysctl) and k not in live.objects}
        assert State({k: o for k, o in restored.objects.items() if k not in set_since}) == live


@SETTINGS
@given(specs(), live_states())
def test_plans_do_not_depend_on_the_order_objects_were_found_in(spec, live):
    desired = build_desired(spec, live)
    reversed_live = State(dict(reversed(live.objects.items())))
    reversed_desired = State(dict(reversed(desired.objects.items())))
    assert plan(reversed_desired, reversed_live) == plan(desired, live)


@SETTINGS
@given(specs(), live_states())
def test_destroy_removes_every_owned_object_but_sysctls(spec, live):
    result = KernelModel(live).apply(plan(State(), live))
    assert all(isinstance(obj, Sysctl) for obj in result.objects.values())


# --- golden cases ----------------------------------------------------------------

LOC = Location("spec.yaml", 3, 3)
NET = NetworkSpec("bridge", "docker0", IPv4Network("172.17.0.0/16"), IPv4Address("172.17.0.1"), location=LOC)


def spec_of(*containers: ContainerSpec) -> Spec:
    return Spec("spec.yaml", networks=(NET,), containers=containers)


def container(name: str, address: str | None = None) -> ContainerSpec:
    attachment = Attachment("bridge", IPv4Address(address) if address else None, location=Location("spec.yaml", 9, 7))
    return ContainerSpec(name, (attachment,), location=Location("spec.yaml", 8, 3))


def ops(actions):
    return [(a.op, a.kind, a.obj.name) for a in actions]


def test_from_scratch_creates_in_dependency_order():
    desired = build_desired(spec_of(container("web")), State())
    actions = plan(desired, State()).actions
    assert [a.kind for a in actions] == ["bridge", "netns", "veth", "address", "address", "route", "file", "file", "file", "firewall",
                                         "sysctl"]
    assert all(a.op == CREATE and a.reason == "missing" for a in actions)
    veth = next(a for a in actions if a.kind == "veth")
    assert veth.source == "spec.yaml:9:7"
    assert veth.obj.mac == "02:42:ac:11:00:02"
    assert veth.obj.host_ifname == veth_name("web", "bridge") and len(veth.obj.host_ifname) == 11


def test_dynamic_addresses_are_sticky_when_an_earlier_container_goes():
    live = build_desired(spec_of(container("a"), container("b")), State())
    b_address = next(o for o in live.objects.values() if isinstance(o, Address) and o.netns == "b")
    assert b_address.cidr == "172.17.0.3/16"
    desired = build_desired(spec_of(container("b")), live)
    assert ("address", "b", "eth0", "172.17.0.3/16") in desired.objects
    assert all(a.obj.netns != "b" for a in plan(desired, live).actions if hasattr(a.obj, "netns"))


def test_changed_static_address_touches_only_that_container():
    live = build_desired(spec_of(container("a", "172.17.0.10"), container("b")), State())
    desired = build_desired(spec_of(container("a", "172.17.0.20"), container("b")), live)
    actions = plan(desired, live).actions
    assert ops(actions) == [
        ("delete", "address", "172.17.0.10/16 on a:eth0"),
        ("update", "veth", f"{veth_name('a', 'bridge')} (a:eth0 on bridge)"),
        ("create", "address", "172.17.0.20/16 on a:eth0"),
        ("create", "route", "default via 172.17.0.1 dev eth0 in a"),
        ("update", "file", "a/hosts"),
    ]
    assert actions[4].reason == "content differs at line 2: '172.17.0.10\\ta' -> '172.17.0.20\\ta'"
    assert actions[1].changes == (("mac", "02:42:ac:11:00:0a", "02:42:ac:11:00:14"),)


def test_removed_container_is_one_namespace_delete():
    live = build_desired(spec_of(container("a"), container("b")), State())
    desired = build_desired(spec_of(container("a")), live)
    assert ops(plan(desired, live).actions) == [("delete", "netns", "b")]


def test_changed_mtu_is_an_update_in_place():
    live = build_desired(spec_of(container("a")), State())
    spec = dataclasses.replace(spec_of(container("a")), networks=(dataclasses.replace(NET, mtu=1400),))
    actions = plan(build_desired(spec, live), live).actions
    assert [(a.op, a.kind) for a in actions] == [("update", "bridge"), ("update", "veth")]
    assert actions[1].changes == (("mtu", 1500, 1400), ("peer_mtu", 1500, 1400))


def test_foreign_interface_in_the_way_is_a_conflict_not_an_action():
    desired = build_desired(spec_of(container("a")), State())
    live = State.of([], foreign_links={"docker0"}, foreign_netns={"a"})
    conflicts = plan(desired, live).conflicts
    assert conflicts == (
        "spec.yaml:3:3: interface docker0 exists and is not managed by netreconcile",
        "spec.yaml:8:3: network namespace a exists and is not managed by netreconcile",
    )


def test_a_namespace_netreconcile_manages_for_another_host_namespace_is_named_as_such():
    desired = build_desired(spec_of(container("a"), container("b")), State())
    live = dataclasses.replace(State.of([], foreign_netns={"a", "b"}), foreign_netns_hosts={"a": "h1", "b": ""})
    assert plan(desired, live).conflicts == (
        "spec.yaml:8:3: network namespace a is managed by netreconcile for host namespace h1, not for this one",
        "spec.yaml:8:3: network namespace b is managed by netreconcile for the root network namespace "
        "(no --host-netns), not for this one",
    )


def test_sysctls_are_never_deleted():
    live = State.of([Sysctl(HOST_NS, "net.ipv4.ip_forward", "1")])
    assert plan(State(), live).actions == ()


def test_veth_moved_to_another_slot_is_replaced_with_its_address():
    web = container("web")
    live = build_desired(spec_of(web), State())
    veth = next(o for o in live.objects.values() if isinstance(o, Veth))
    moved = State({**live.objects, veth.key: dataclasses.replace(veth, peer_ifname="eth1")})
    moved = State({k: (dataclasses.replace(o, ifname="eth1") if isinstance(o, (Address, Route)) and o.netns == "web"
                       else o) for k, o in moved.objects.items()})
    actions = plan(live, moved).actions
    assert ("delete", "veth") in [(a.op, a.kind) for a in actions]
    assert KernelModel(moved).apply(plan(live, moved)) == live


def test_a_leftover_temporary_file_is_deleted_saying_what_it_is():
    desired = build_desired(spec_of(container("a")), State())
    live = State({**desired.objects, **State.of([Leftover("a", ".hosts.netreconcile-12345")]).objects})
    actions = plan(desired, live).actions
    assert [(a.op, a.kind, a.obj.name, a.reason) for a in actions] == [
        (DELETE, "leftover", "a/.hosts.netreconcile-12345", "a temporary file left by a write that was cut short")]


def test_a_leftover_goes_with_its_container():
    live = State.of([Netns("a"), Leftover("a", ".hosts.netreconcile-1")])
    assert [(a.op, a.kind) for a in plan(State(), live).actions] == [(DELETE, "netns")]


def test_a_link_in_the_way_of_a_containers_files_is_a_conflict_at_the_container():
    desired = build_desired(spec_of(container("a")), State())
    live = State.of([], foreign_files={("a", "/etc/netns/a is a symbolic link"), ("other", "/etc/netns/other/hosts")})
    assert plan(desired, live).conflicts == ("spec.yaml:8:3: /etc/netns/a is a symbolic link: remove it",)


def test_a_replaced_container_is_deleted_after_its_successor_is_made():
    live = build_desired(spec_of(container("old", "172.17.0.10")), State())
    desired = build_desired(spec_of(container("new", "172.17.0.10")), live)
    actions = plan(desired, live).actions
    assert ops(actions)[0] == ("delete", "address", "172.17.0.10/16 on old:eth0")
    assert actions[0].reason == "its address goes to another interface, and the two must not hold it at once"
    assert ops(actions)[-1] == ("delete", "netns", "old")
    assert [a.irreversible for a in actions].count(True) == 1
    assert {a.obj.netns for a in actions[1:-1] if hasattr(a.obj, "netns")} <= {"new", ""}
    assert KernelModel(live).apply(plan(desired, live)) == desired


def test_an_interface_name_freed_by_a_network_left_is_taken_after_the_break():
    front = dataclasses.replace(NET, name="front", bridge="br-front")
    back = NetworkSpec("back", "br-back", IPv4Network("10.9.0.0/24"), IPv4Address("10.9.0.1"), location=LOC)

    def on(network):
        return ContainerSpec("web", (Attachment(network, location=LOC),), location=LOC)

    live = build_desired(Spec("spec.yaml", networks=(front, back), containers=(on("front"),)), State())
    desired = build_desired(Spec("spec.yaml", networks=(front, back), containers=(on("back"),)), live)
    actions = plan(desired, live).actions
    steps = [(a.op, a.kind, a.after_break) for a in actions if a.kind in ("veth", "address", "route")]
    assert steps == [
        ("delete", "veth", False),  # eth0 on front, in the break
        ("create", "veth", True),  # eth0 on back: the name is free only now
        ("create", "address", True),
        ("create", "route", True),
    ]
    assert KernelModel(live).apply(plan(desired, live)) == desired


def test_a_network_replaced_under_the_same_bridge_name_is_made_again_after_the_break():
    live = build_desired(spec_of(container("web")), State())
    renamed = dataclasses.replace(NET, name="renamed")
    spec = Spec("spec.yaml", networks=(renamed,), containers=(
        ContainerSpec("web", (Attachment("renamed", location=LOC),), location=LOC),))
    desired = build_desired(spec, live)
    actions = plan(desired, live).actions
    broken = [(a.op, a.kind) for a in actions if a.step == BREAK]
    assert broken == [("delete", "veth"), ("delete", "bridge")]
    assert [a.kind for a in actions if a.after_break] == ["bridge", "veth", "address", "address", "route"]
    assert KernelModel(live).apply(plan(desired, live)) == desired
    assert check_nothing_waits_for_the_break(desired, live) == 5  # each one tried before the break


# --- the planner knows no kind: it reads what each kind declares ---------------------------------


@dataclasses.dataclass(frozen=True)
class Tap(KernelObject):
    """A kind the planner has never heard of, declared like the model's kinds."""

    kind: ClassVar[str] = "tap"
    rank: ClassVar[int] = 3
    in_break: ClassVar[bool] = True
    replace_on: ClassVar[tuple[str, ...]] = ("owner",)
    ifname: str
    owner: str

    @property
    def key(self) -> tuple:
        return ("tap", self.ifname)

    @property
    def name(self) -> str:
        return self.ifname

    def holds(self):
        return {("link", HOST_NS, self.ifname)}

    def takes_along(self):
        return {("interface", HOST_NS, self.ifname)}

    def needs(self):
        return {("firewall", HOST_NS)}


def test_a_new_kind_is_planned_from_its_declarations_alone():
    tap_address = Address(HOST_NS, "tap0", "198.51.100.1/24")
    live = State.of([Tap("tap0", "a"), tap_address])
    deleted = plan(State(), live, destroying=True)
    # its address goes with it (takes_along / goes_with): no action of its own; deleted in the break
    assert [(a.op, a.kind, a.step) for a in deleted.actions] == [("delete", "tap", BREAK)]
    replaced = plan(State.of([Tap("tap0", "b"), tap_address]), live)
    # replaced (replace_on), its address made again; the new one takes the name the old one frees
    assert sorted((a.op, a.kind) for a in replaced.actions) == [("create", "address"), ("create", "tap"),
                                                                 ("delete", "tap")]
    assert [a.op for a in replaced.actions if a.kind == "tap"] == ["delete", "create"]
    assert next(a for a in replaced.actions if a.op == "create" and a.kind == "tap").after_break
    firewall = Firewall(HOST_NS, "")
    assert dependencies(Tap("tap0", "a"), State.of([firewall])) == {firewall.key}


def test_the_planner_has_no_isinstance_per_kind():
    source = (Path(planner_module.__file__)).read_text()
    calls = [node.func.id for node in ast.walk(ast.parse(source))
             if isinstance(node, ast.Call) and isinstance(node.func, ast.Name)]
    assert "isinstance" not in calls and "getattr" not in calls


LINE_TEXT = st.text(alphabet="ab\n\r\u2028", max_size=12)


@given(old=LINE_TEXT, new=LINE_TEXT, common=LINE_TEXT)
def test_the_first_differing_line_is_the_one_splitlines_finds(old, new, common):
    """The common-prefix search names the line a line-by-line walk names, whatever breaks lines."""
    old, new = common + old, common + new
    if old != new:
        assert planner_module._describe_content(old, new) == planner_module._describe_content_by_lines(old, new)


def test_a_difference_near_the_end_of_a_long_file_names_its_line():
    old = "".join(f"10.0.{n // 256}.{n % 256}\tc{n}\n" for n in range(2000))
    new = old.replace("\tc1999\n", "\tc1999 x\n")
    assert planner_module._describe_content(old, new) == "content differs at line 2000: '10.0.7.207\\tc1999' -> '10.0.7.207\\tc1999 x'"
    assert planner_module._describe_content(old, old + "end\n") == "content differs at line 2001: '' -> 'end'"
