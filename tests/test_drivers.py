"""The driver axis: the registry maps the spec's `driver:` to a driver, the loader accepts
the registered names, the desired state asks the network's driver for its objects, and the
bridge driver's marks and requests (pure: bytes from the codec)."""

from __future__ import annotations

import dataclasses
from ipaddress import IPv4Address, IPv4Network

import pytest

from reconciler import drivers
from reconciler.drivers.bridge import BRIDGE, BridgeDriver, bridge_alias, veth_alias
from reconciler.errors import SpecError
from reconciler.kernel import netlink as nl
from reconciler.spec import schema_check
from reconciler.spec.loader import load_spec_text
from reconciler.spec.types import NetworkSpec
from reconciler.state.desired import build_desired
from reconciler.state.model import HOST_NS, Bridge, State, Veth

SPEC = """\
version: 1
networks:
  front:
    driver: {driver}
    subnet: 10.1.0.0/24
containers:
  web:
    networks: [front]
"""


@dataclasses.dataclass(frozen=True)
class MarkedBridge(Bridge):
    """A bridge object the fake driver makes: tells its objects from the bridge driver's."""


class FakeDriver(BridgeDriver):
    name = "fake"

    def network_objects(self, network: NetworkSpec):
        return [MarkedBridge(network.bridge, network.name, "02:00:00:00:00:01", network.mtu)]


@pytest.fixture
def fake_driver(monkeypatch):
    monkeypatch.setitem(drivers.DRIVERS, "fake", FakeDriver())
    schema_check.schema.cache_clear()
    schema_check._validator.cache_clear()
    yield
    schema_check.schema.cache_clear()
    schema_check._validator.cache_clear()


def test_the_registry_maps_bridge_to_the_bridge_driver():
    assert drivers.names() == ("bridge", "macvlan", "overlay")
    assert drivers.driver_for("bridge") is BRIDGE
    assert drivers.driver_of_kind("veth") is BRIDGE and drivers.driver_of_kind("bridge") is BRIDGE


def test_the_loader_accepts_the_registered_drivers(fake_driver):
    spec = load_spec_text(SPEC.format(driver="fake"), "spec.yaml")
    assert spec.network("front").driver == "fake"
    with pytest.raises(SpecError) as error:
        load_spec_text(SPEC.format(driver="ipvlan"), "spec.yaml")
    assert ("networks.front.driver: must be one of 'bridge', 'macvlan', 'overlay', 'fake', got 'ipvlan'"
            in str(error.value))


def test_the_desired_state_asks_the_networks_driver(fake_driver):
    spec = load_spec_text(SPEC.format(driver="fake"), "spec.yaml")
    desired = build_desired(spec, State())
    assert [type(o) for o in desired.objects.values() if isinstance(o, Bridge)] == [MarkedBridge]
    bridge_spec = load_spec_text(SPEC.format(driver="bridge"), "spec.yaml")
    assert [type(o) for o in build_desired(bridge_spec, State()).objects.values() if isinstance(o, Bridge)] == [Bridge]


def test_every_registered_driver_implements_the_whole_protocol():
    wanted = {name for name in vars(drivers.NetworkDriver) if not name.startswith("_")} | {"name", "link_kinds"}
    for driver in drivers.DRIVERS.values():
        assert {name for name in wanted if not hasattr(driver, name)} == set(), driver.name


def test_the_bridge_driver_recognises_its_marks_only():
    assert drivers.parse_mark(bridge_alias("front")) == (BRIDGE, ("bridge", "front"))
    assert drivers.parse_mark(veth_alias("web", "front")) == (BRIDGE, ("veth", "web", "front"))
    for alias in ("", "netreconcile:bridge", "netreconcile:veth:web", "other:bridge:front", "netreconcile:x:y"):
        assert drivers.parse_mark(alias) is None, alias
    assert drivers.driver_of_link_kind("veth") is BRIDGE and drivers.driver_of_link_kind("dummy") is None


def _counter():
    count = iter(range(1, 1000))
    return lambda: next(count)


BRIDGE_OBJ = Bridge("br-front", "front", "02:42:0a:01:00:01", 1400)
VETH = Veth("vethabc1234", "web", "front", "web", "eth0", "br-front", "02:42:0a:01:00:02", 1400, 1400, hairpin=True)
EVERYTHING = lambda *names: True  # noqa: E731 - a create changes every field


def test_bridge_requests_are_the_codecs_bytes():
    seq = _counter()
    assert BRIDGE.create_requests(BRIDGE_OBJ, seq, 0, -1) == [nl.new_bridge(1, "br-front", BRIDGE_OBJ.mac, 1400)]
    assert BRIDGE.mark_requests(BRIDGE_OBJ, seq) == [
        nl.set_link(2, ifname="br-front", alias="netreconcile:bridge:front", up=True)]
    assert BRIDGE.delete_requests(BRIDGE_OBJ, seq) == [nl.del_link(3, ifname="br-front")]
    only_mtu = lambda *names: "mtu" in names  # noqa: E731
    assert BRIDGE.update_requests(BRIDGE_OBJ, seq, only_mtu, 0) == [nl.set_link(4, ifname="br-front", mtu=1400)]


def test_veth_requests_are_the_codecs_bytes():
    seq = _counter()
    assert BRIDGE.master_of(VETH, EVERYTHING) == "br-front"
    assert BRIDGE.peer_netns(VETH) == "web" and BRIDGE.peer_netns(BRIDGE_OBJ) is None
    assert BRIDGE.create_requests(VETH, seq, 7, 9) == [
        nl.new_veth(1, "vethabc1234", 7, 1400, "eth0", VETH.mac, 1400, 9)]
    assert BRIDGE.mark_requests(VETH, seq) == [
        nl.set_link(2, ifname="vethabc1234", alias="netreconcile:veth:web:front", up=True, hairpin=True)]
    assert BRIDGE.peer_requests(VETH, seq, EVERYTHING, creating=True) == [nl.set_link(3, ifname="eth0", up=True)]
    new_bridge = lambda *names: "bridge" in names  # noqa: E731
    assert BRIDGE.update_requests(VETH, seq, new_bridge, 8) == [
        nl.set_link(4, ifname="vethabc1234", master=8), nl.set_link(5, ifname="vethabc1234", hairpin=True)]
    assert BRIDGE.peer_requests(VETH, seq, new_bridge, creating=False) == []
    assert BRIDGE.host_link(VETH) == ("vethabc1234", "veth") and BRIDGE.host_link(BRIDGE_OBJ) == ("br-front", "bridge")


def test_a_veth_host_end_always_has_ipv6_off_and_its_peer_as_the_network_wants():
    host_off = (HOST_NS, "/proc/sys/net/ipv6/conf/vethabc1234/disable_ipv6", "1")
    assert BRIDGE.settings(VETH, EVERYTHING, creating=True) == [host_off]  # the peer's namespace has IPv6 off
    with_ipv6 = dataclasses.replace(VETH, ipv6=True, netns_ipv6=True)
    assert BRIDGE.settings(with_ipv6, EVERYTHING, creating=True) == [host_off]  # the peer has it from its namespace
    # an IPv4-only network's peer in a namespace that has IPv6 (for another network) is switched off
    ipv4_only_peer = dataclasses.replace(VETH, ipv6=False, netns_ipv6=True)
    assert BRIDGE.settings(ipv4_only_peer, EVERYTHING, creating=True) == [
        host_off, ("web", "/proc/sys/net/ipv6/conf/eth0/disable_ipv6", "1")]
    # turned on later: the peer was made without the quiet IPv6 defaults of a namespace with IPv6
    assert BRIDGE.settings(with_ipv6, lambda *names: "ipv6" in names, creating=False) == [
        ("web", "/proc/sys/net/ipv6/conf/eth0/addr_gen_mode", "1"),
        ("web", "/proc/sys/net/ipv6/conf/eth0/dad_transmits", "0"),
        ("web", "/proc/sys/net/ipv6/conf/eth0/router_solicitations", "0"),
        ("web", "/proc/sys/net/ipv6/conf/eth0/disable_ipv6", "0")]
    assert BRIDGE.settings(VETH, lambda *names: "host_ipv6" in names, creating=False) == [host_off]


def test_a_bridge_has_ipv6_exactly_when_its_network_has_it():
    assert BRIDGE.settings(BRIDGE_OBJ, EVERYTHING, creating=True) == [
        (HOST_NS, "/proc/sys/net/ipv6/conf/br-front/disable_ipv6", "1")]
    assert BRIDGE.settings(dataclasses.replace(BRIDGE_OBJ, ipv6=True), EVERYTHING, creating=True) == [
        (HOST_NS, "/proc/sys/net/ipv6/conf/br-front/disable_ipv6", "0")]
    assert BRIDGE.settings(BRIDGE_OBJ, lambda *names: "mtu" in names, creating=False) == []


def test_the_bridge_driver_makes_the_network_and_attachment_objects():
    network = NetworkSpec("front", "br-front", IPv4Network("10.1.0.0/24"), IPv4Address("10.1.0.1"), mtu=1400)
    objects = BRIDGE.network_objects(network)
    assert [o.key for o in objects] == [("bridge", "br-front"), ("address", HOST_NS, "br-front", "10.1.0.1/24")]
    assert objects[0].mac == "02:42:0a:01:00:01"
