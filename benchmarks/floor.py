#!/usr/bin/env python3
"""The floor of bench_core.py: the kernel requests an apply from scratch makes, hand-packed
with netreconcile's codec and sent from one process, and nothing else.

In the host namespace HOST: a bridge BRIDGE with the gateway address, up (above 1000
containers one bridge BRIDGE0, BRIDGE1, ... per 1000 with its own /22, as bench_core.py
lays them out); per container
PREFIX<i> (i < N) a namespace made in-process, a veth pair whose peer `eth0` is created
inside it with its MAC, the host end on the bridge and up, and inside: lo and eth0 up,
the address, the default route. No files, no firewall, no sysctls, no observation, no
plan, no verification. Prints the seconds the kernel work took (after the imports), so
that bench_core.py can compare an apply with it plus the interpreter's start.

SAFETY: every request goes to HOST or to the namespaces it makes (named PREFIX<i>); the
caller deletes them. Usage (root): python benchmarks/floor.py HOST BRIDGE PREFIX N
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from reconciler.drivers.bridge import mac_for  # noqa: E402
from reconciler.kernel import netlink as nl  # noqa: E402
from reconciler.kernel.namespaces import create_netns, prepare_netns_dir, write_ipv6_defaults  # noqa: E402
from reconciler.kernel.nlsocket import NetlinkSocket  # noqa: E402
from reconciler.kernel.session import netns_path  # noqa: E402

from bench_core import PER_NETWORK, network_count, network_subnets  # noqa: E402

LOOPBACK_IFINDEX = 1


def sent(sock: NetlinkSocket, requests: list[bytes], what: str) -> None:
    failures = sock.execute(requests)
    if failures:
        raise SystemExit(f"floor: {what}: {len(failures)} request(s) failed, e.g. errno {next(iter(failures.values()))}")


def build(host: str, bridge: str, prefix: str, count: int) -> None:
    prepare_netns_dir()
    host_fd = os.open(netns_path(host), os.O_RDONLY | os.O_CLOEXEC)
    host_sock = NetlinkSocket.open_in(host_fd)
    subnets = [subnet for subnet, _ in network_subnets(network_count(count))]
    bridges = [bridge] if len(subnets) == 1 else [f"{bridge}{k}" for k in range(len(subnets))]
    sent(host_sock, [nl.new_bridge(host_sock.next_seq(), name, mac_for(subnet.network_address + 1), 1500)
                     for name, subnet in zip(bridges, subnets)], "bridges")
    bridge_indexes = host_sock.link_indexes(bridges)
    sent(host_sock, [request for name, subnet in zip(bridges, subnets) for request in (
        nl.new_addr(host_sock.next_seq(), bridge_indexes[name], f"{subnet.network_address + 1}/{subnet.prefixlen}"),
        nl.set_link(host_sock.next_seq(), index=bridge_indexes[name], up=True))], "bridge addresses")
    containers = []
    for number in range(count):
        fd, sock = create_netns(f"{prefix}{number}", ipv6=False, defaults=False)
        subnet = subnets[number // PER_NETWORK]
        containers.append((fd, sock, subnet.network_address + 2 + number % PER_NETWORK,
                           subnet.network_address + 1, subnet.prefixlen))
    write_ipv6_defaults([(fd, False) for fd, *_ in containers])  # IPv6 off, as apply writes it
    host_ends = [f"vf{prefix[-4:]}{number}"[:15] for number in range(count)]
    sent(host_sock, [nl.new_veth(host_sock.next_seq(), host_end, bridge_indexes[bridges[number // PER_NETWORK]], 1500,
                                 "eth0", mac_for(address), 1500, fd)
                     for number, (host_end, (fd, _, address, _, _)) in enumerate(zip(host_ends, containers))], "veths")
    indexes = host_sock.link_indexes(host_ends)
    sent(host_sock, [nl.set_link(host_sock.next_seq(), index=indexes[name], up=True) for name in host_ends],
         "host ends up")
    for fd, sock, address, gateway, prefixlen in containers:
        peer = sock.link_indexes(["eth0"])["eth0"]
        sent(sock, [nl.set_link(sock.next_seq(), index=LOOPBACK_IFINDEX, up=True),
                    nl.set_link(sock.next_seq(), index=peer, up=True),
                    nl.new_addr(sock.next_seq(), peer, f"{address}/{prefixlen}")], "container side")
        sent(sock, [nl.replace_route(sock.next_seq(), "default", str(gateway), peer)], "default route")
        sock.close()
        os.close(fd)
    host_sock.close()
    os.close(host_fd)


def main() -> None:
    host, bridge, prefix, count = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    started = time.perf_counter()
    build(host, bridge, prefix, count)
    print(f"{time.perf_counter() - started:.4f}")


if __name__ == "__main__":
    main()
