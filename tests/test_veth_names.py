"""Host-side veth names at scale: 'veth' + 7 hex characters of a hash is 28 bits, so
among thousands of attachments two can get the same name (at 5000 about one spec in
twenty). Each attachment still gets a veth of its own: a later one (in spec order) takes
the next salted hash, and keeps it while its veth exists."""

from __future__ import annotations

import dataclasses

import pytest

from reconciler.drivers.bridge import veth_name
from reconciler.spec.loader import load_spec_text
from reconciler.state.desired import build_desired
from reconciler.state.model import State, Veth
from reconciler.state.planner import plan
from tests.conftest import sh



def colliding_pair(prefix: str = "", network: str = "lan") -> tuple[str, str]:
    """Two container names PREFIXc<i> whose usual veth names on `network` are the same:
    the first collision in order (a birthday search, some 20000 hashes on average)."""
    seen: dict[str, str] = {}
    number = 0
    while True:
        name = f"{prefix}c{number}"
        earlier = seen.setdefault(veth_name(name, network), name)
        if earlier != name:
            return earlier, name
        number += 1


FIRST, SECOND = colliding_pair()

SPEC = """\
version: 1
networks:
  lan: {{subnet: 10.88.0.0/24}}
containers:
{containers}
"""


def spec_of(*names: str):
    text = SPEC.format(containers="\n".join(f"  {name}: {{networks: [lan]}}" for name in names))
    return load_spec_text(text, "spec.yaml")


def host_ends(desired: State) -> dict[str, str]:
    return {veth.container: veth.host_ifname for veth in desired.of_kind(Veth)}


def test_the_two_names_collide():
    assert veth_name(FIRST, "lan") == veth_name(SECOND, "lan")


def test_two_attachments_whose_hash_names_collide_get_a_veth_each():
    desired = build_desired(spec_of(FIRST, SECOND), State())
    ends = host_ends(desired)
    assert ends[FIRST] == veth_name(FIRST, "lan")  # the first in spec order keeps the usual name
    assert ends[SECOND] != ends[FIRST] and ends[SECOND].startswith("veth") and len(ends[SECOND]) == 11
    assert plan(desired, desired).actions == ()


def test_a_salted_name_is_kept_while_its_veth_exists():
    """When the first container goes, the second keeps its veth (renaming it would make it
    again under the container's processes) instead of taking the freed usual name."""
    live = build_desired(spec_of(FIRST, SECOND), State())
    salted = host_ends(live)[SECOND]
    without_first = State.of(o for o in live.objects.values() if getattr(o, "netns", None) != FIRST
                             and getattr(o, "container", None) != FIRST)
    desired = build_desired(spec_of(SECOND), without_first)
    assert host_ends(desired)[SECOND] == salted
    assert not [a for a in plan(desired, without_first).actions if a.kind == "veth"]


def test_a_veth_renamed_by_hand_is_not_taken_as_the_attachments():
    live = build_desired(spec_of(FIRST), State())
    (veth,) = live.of_kind(Veth)
    renamed = State.of(dataclasses.replace(o, host_ifname="vethbyhand") if o is veth else o
                       for o in live.objects.values())
    assert host_ends(build_desired(spec_of(FIRST), renamed))[FIRST] == veth_name(FIRST, "lan")


@pytest.mark.kernel
def test_containers_whose_veth_names_collide_are_applied_and_reach_each_other(sandbox):
    first, second = colliding_pair(sandbox.name(""))  # container names are namespace names: the sandbox's
    text = SPEC.format(containers="\n".join(f"  {name}: {{networks: {{lan: {{ipv4_address: 10.88.0.{10 + i}}}}}}}"
                                            for i, name in enumerate((first, second))))
    spec = sandbox.write_spec(text)
    sandbox.apply(spec)
    ends = {link["ifname"] for link in sandbox.links(sandbox.host).values()
            if link.get("linkinfo", {}).get("info_kind") == "veth"}
    assert len(ends) == 2 and veth_name(first, "lan") in ends
    assert sandbox.run("apply", "-o", "json", spec=spec).json()["actions"] == []
    assert "1 received" in sh(f"ip netns exec {first} ping -c1 -W2 10.88.0.11", check=False)
