"""The codec's requests for the overlay: a VXLAN link, static forwarding database (FDB)
entries and neighbour entries, read by pyroute2 as an independent oracle; and, in
throwaway namespaces, the kernel accepting them: two hosts joined by a veth underlay,
each with a bridge, a VXLAN port and a container, whose containers reach each other
through static entries alone (no learning, no multicast)."""

from __future__ import annotations

import json
import socket

import pytest
from pyroute2.netlink.rtnl.ifinfmsg import ifinfmsg
from pyroute2.netlink.rtnl.ndmsg import ndmsg

from reconciler.kernel import netlink as nl

from tests.conftest import eventually, sh
from tests.lan_tools import join_by_underlay
from tests.test_netlink import SEQ, assert_header, attr_names, index_of, oracle, send, socket_in

ACK = nl.NLM_F_REQUEST | nl.NLM_F_ACK


def test_new_vxlan_is_a_static_vtep_on_port_4789():
    decoded = oracle(ifinfmsg, nl.new_vxlan(SEQ, "vx-mesh", 4242, "198.51.100.1", "02:00:00:00:00:01", 1450, 7))
    assert_header(decoded, nl.RTM_NEWLINK, ACK | nl.NLM_F_CREATE | nl.NLM_F_EXCL)
    assert attr_names(decoded) == ["IFLA_IFNAME", "IFLA_ADDRESS", "IFLA_MTU", "IFLA_MASTER", "IFLA_LINKINFO"]
    assert (decoded.get_attr("IFLA_IFNAME"), decoded.get_attr("IFLA_MTU"), decoded.get_attr("IFLA_MASTER")) == (
        "vx-mesh", 1450, 7)
    info = decoded.get_attr("IFLA_LINKINFO")
    assert info.get_attr("IFLA_INFO_KIND") == "vxlan"
    data = info.get_attr("IFLA_INFO_DATA")
    assert (data.get_attr("IFLA_VXLAN_ID"), data.get_attr("IFLA_VXLAN_LOCAL"), data.get_attr("IFLA_VXLAN_LEARNING"),
            data.get_attr("IFLA_VXLAN_PROXY"), data.get_attr("IFLA_VXLAN_PORT")) == (4242, "198.51.100.1", 0, 1, 4789)


@pytest.mark.parametrize("mac, flags", [
    ("02:42:0a:c8:00:05", ACK | nl.NLM_F_CREATE | nl.NLM_F_REPLACE),
    (nl.ZERO_MAC, ACK | nl.NLM_F_CREATE | nl.NLM_F_APPEND),  # one per remote: appended, never replaced
])
def test_new_fdb_entry_sends_a_mac_to_a_vtep(mac, flags):
    decoded = oracle(ndmsg, nl.new_fdb(SEQ, 9, mac, "198.51.100.2"))
    assert_header(decoded, nl.RTM_NEWNEIGH, flags)
    assert (decoded["family"], decoded["ifindex"], decoded["state"], decoded["flags"]) == (
        socket.AF_BRIDGE, 9, nl.NUD_PERMANENT, nl.NTF_SELF)
    assert attr_names(decoded) == ["NDA_LLADDR", "NDA_DST"]
    assert (decoded.get_attr("NDA_LLADDR"), decoded.get_attr("NDA_DST")) == (mac, "198.51.100.2")


def test_del_fdb_entry_names_its_remote():
    decoded = oracle(ndmsg, nl.del_fdb(SEQ, 9, nl.ZERO_MAC, "198.51.100.3"))
    assert_header(decoded, nl.RTM_DELNEIGH, ACK)
    assert (decoded["family"], decoded.get_attr("NDA_LLADDR"), decoded.get_attr("NDA_DST")) == (
        socket.AF_BRIDGE, nl.ZERO_MAC, "198.51.100.3")


def test_new_and_del_neighbour_entry():
    decoded = oracle(ndmsg, nl.new_neigh(SEQ, 9, "10.200.0.5", "02:42:0a:c8:00:05"))
    assert_header(decoded, nl.RTM_NEWNEIGH, ACK | nl.NLM_F_CREATE | nl.NLM_F_REPLACE)
    assert (decoded["family"], decoded["ifindex"], decoded["state"], decoded["flags"]) == (
        socket.AF_INET, 9, nl.NUD_PERMANENT, 0)
    assert (decoded.get_attr("NDA_DST"), decoded.get_attr("NDA_LLADDR")) == ("10.200.0.5", "02:42:0a:c8:00:05")
    deleted = oracle(ndmsg, nl.del_neigh(SEQ, 9, "10.200.0.5"))
    assert_header(deleted, nl.RTM_DELNEIGH, ACK)
    assert attr_names(deleted) == ["NDA_DST"]


def test_decode_neigh_reads_back_what_the_builders_write():
    fdb = nl.decode_neigh(nl.new_fdb(SEQ, 9, "02:42:0a:c8:00:05", "198.51.100.2")[16:])
    assert fdb == nl.Neigh(socket.AF_BRIDGE, 9, "198.51.100.2", "02:42:0a:c8:00:05", nl.NUD_PERMANENT, nl.NTF_SELF)
    neigh = nl.decode_neigh(nl.new_neigh(SEQ, 4, "10.200.0.5", "02:42:0a:c8:00:05")[16:])
    assert neigh == nl.Neigh(socket.AF_INET, 4, "10.200.0.5", "02:42:0a:c8:00:05", nl.NUD_PERMANENT, 0)


# --- the kernel (throwaway namespaces) ------------------------------------------------------------

def _overlay_host(host: str, container: str, local: str, container_ip: str, container_mac: str) -> None:
    """A bridge with a VXLAN port, built by the codec, and a container on the bridge (set up by `ip`)."""
    with socket_in(host) as (sock, _):
        send(sock, lambda seq: nl.new_bridge(seq, "br-mesh", "02:00:00:00:aa:01", 1450))
        bridge = index_of(sock, "br-mesh")
        send(sock, lambda seq: nl.new_vxlan(seq, "vx-mesh", 4242, local, "02:00:00:00:aa:02", 1450, bridge),
             lambda seq: nl.set_link(seq, ifname="br-mesh", up=True),
             lambda seq: nl.set_link(seq, ifname="vx-mesh", up=True))
    sh(f"ip netns add {container}")
    sh(f"ip -n {host} link add vc0 mtu 1450 master br-mesh type veth peer name eth0 netns {container}")
    sh(f"ip -n {host} link set vc0 up")
    sh(f"ip -n {container} link set eth0 address {container_mac} mtu 1450 up")
    sh(f"ip -n {container} addr add {container_ip}/24 dev eth0")


def _static_forwarding(host: str, remote_vtep: str, remote_ip: str, remote_mac: str) -> None:
    with socket_in(host) as (sock, _):
        vxlan = index_of(sock, "vx-mesh")
        send(sock, lambda seq: nl.new_fdb(seq, vxlan, remote_mac, remote_vtep),
             lambda seq: nl.new_fdb(seq, vxlan, nl.ZERO_MAC, remote_vtep),
             lambda seq: nl.new_neigh(seq, vxlan, remote_ip, remote_mac))


def _dump(host: str, family: int) -> list[nl.Neigh]:
    with socket_in(host) as (sock, _):
        vxlan = index_of(sock, "vx-mesh")
        entries = [nl.decode_neigh(payload) for kind, payload in sock.dump(lambda seq: nl.dump_neighs(seq, family))
                   if kind == nl.RTM_NEWNEIGH]
    return [entry for entry in entries if entry.index == vxlan]


@pytest.mark.kernel
def test_kernel_containers_on_two_hosts_reach_each_other_through_static_vxlan_entries(sandbox):
    host_a, host_b = sandbox.name("ha"), sandbox.name("hb")
    join_by_underlay(host_a, host_b)
    _overlay_host(host_a, sandbox.name("ca"), "198.51.100.1", "10.200.0.5", "02:42:0a:c8:00:05")
    _overlay_host(host_b, sandbox.name("cb"), "198.51.100.2", "10.200.0.6", "02:42:0a:c8:00:06")
    _static_forwarding(host_a, "198.51.100.2", "10.200.0.6", "02:42:0a:c8:00:06")
    _static_forwarding(host_b, "198.51.100.1", "10.200.0.5", "02:42:0a:c8:00:05")

    vxlan = json.loads(sh(f"ip -n {host_a} -j -d link show vx-mesh"))[0]["linkinfo"]["info_data"]
    assert (vxlan["id"], vxlan["local"], vxlan["port"], vxlan["learning"], vxlan["proxy"]) == (
        4242, "198.51.100.1", 4789, False, True)
    fdb = {(entry.mac, entry.address) for entry in _dump(host_a, socket.AF_BRIDGE) if entry.address}
    assert fdb == {("02:42:0a:c8:00:06", "198.51.100.2"), (nl.ZERO_MAC, "198.51.100.2")}
    neighbours = {(entry.address, entry.mac, entry.state) for entry in _dump(host_a, socket.AF_INET)}
    assert neighbours == {("10.200.0.6", "02:42:0a:c8:00:06", nl.NUD_PERMANENT)}
    # both ways, by address: ARP is answered by the local VXLAN device from its neighbour
    # entries (proxy), frames go unicast to the remote VTEP of the destination MAC
    for here, there in (("ca", "10.200.0.6"), ("cb", "10.200.0.5")):
        eventually(lambda: " 0% packet loss" in sandbox.in_ns(here, f"ping -c 1 -W 1 {there}", check=False),
                   f"{here} pings {there} over the overlay")

    with socket_in(host_a) as (sock, _):
        vx = index_of(sock, "vx-mesh")
        send(sock, lambda seq: nl.del_fdb(seq, vx, nl.ZERO_MAC, "198.51.100.2"),
             lambda seq: nl.del_neigh(seq, vx, "10.200.0.6"))
    assert {(e.mac, e.address) for e in _dump(host_a, socket.AF_BRIDGE) if e.address} == {
        ("02:42:0a:c8:00:06", "198.51.100.2")}
    assert _dump(host_a, socket.AF_INET) == []
