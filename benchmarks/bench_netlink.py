#!/usr/bin/env python3
"""Encode and decode costs per netlink message: the hand-packed codec against pyroute2.

In ONE process, with every import done before any timing:

1. Encoding: N `set_link` requests (index, up, MTU) and N `new_addr` requests (an IPv4
   address), and N `new_veth` requests (peer created in another namespace), built by
   reconciler/netlink.py and by pyroute2's message classes (`ifinfmsg`, `ifaddrmsg`
   with `.encode()`, the cheapest way pyroute2 encodes).
2. Decoding: a real dump of the links and of the IPv4 addresses of a throwaway
   namespace holding `--veths` veth pairs (each host end with an address, on a
   bridge, with an alias), i.e. what one full-state read decodes. Each message is
   decoded by `netlink.decode_link`/`decode_addr`, and by pyroute2 (`ifinfmsg(data)`,
   `.decode()`, then reading the same fields with `get_attr`, as a caller must).

Each figure is the median of `--repeat` rounds, in microseconds per message.

SAFETY: the only namespace used is a throwaway one named bnlXXXXXX, made with
`ip netns add` and deleted at the end (also on failure, Ctrl-C and SIGTERM); every
`ip` command names it (`ip -n NS ...`, `ip -n NS -batch -`). The root network
namespace is never changed. PYTHONDONTWRITEBYTECODE is unset like the other
benchmarks do, although it does not matter here: all timing is in-process, after the
imports.

Needs root, `ip` (iproute2) and pyroute2 (the `test` extra). Usage:
    python3 benchmarks/bench_netlink.py [--veths 200] [--count 2000] [--repeat 7] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

# the codec under test and its transport; one place to change when the modules move
from reconciler.kernel import netlink as nl  # noqa: E402
from reconciler.kernel.nlsocket import NetlinkSocket  # noqa: E402

from pyroute2.netlink.rtnl.ifaddrmsg import ifaddrmsg  # noqa: E402
from pyroute2.netlink.rtnl.ifinfmsg import ifinfmsg  # noqa: E402

NETNS_DIR = Path("/run/netns")
ADDRESS_PREFIX = "198.51.100"  # a documentation range, only ever inside the throwaway namespace


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def ip_batch(netns: str, commands: list[str]) -> None:
    result = subprocess.run(["ip", "-n", netns, "-batch", "-"], input="".join(f"{c}\n" for c in commands),
                            text=True, capture_output=True)
    if result.returncode != 0:
        raise RuntimeError(f"ip -n {netns} -batch failed: {result.stderr.strip()}")


def populate(netns: str, veths: int) -> None:
    """A bridge and `veths` veth pairs, the host ends on it with an alias and an address."""
    commands = ["link add br0 type bridge", "link set br0 up"]
    for i in range(veths):
        commands += [
            f"link add vh{i} type veth peer name vc{i}",
            f"link set vh{i} master br0 alias netreconcile:bench:{i} up",
            f"link set vc{i} up",
            f"address add {ADDRESS_PREFIX}.{i % 250 + 1}/24 dev vh{i}",
        ]
    ip_batch(netns, commands)


def read_dumps(netns: str) -> tuple[list[bytes], list[bytes]]:
    """The RTM_NEWLINK and RTM_NEWADDR messages (header included) of the namespace."""
    fd = os.open(NETNS_DIR / netns, os.O_RDONLY | os.O_CLOEXEC)
    try:
        sock = NetlinkSocket.open_in(fd)
        try:
            links = [nl.message(kind, nl.NLM_F_MULTI, 1, payload) for kind, payload in sock.dump(nl.dump_links)
                     if kind == nl.RTM_NEWLINK]
            addrs = [nl.message(kind, nl.NLM_F_MULTI, 2, payload) for kind, payload in sock.dump(nl.dump_addrs)
                     if kind == nl.RTM_NEWADDR]
        finally:
            sock.close()
    finally:
        os.close(fd)
    return links, addrs


# --- pyroute2 doing the same jobs ---------------------------------------------------------

CREATE = nl.NLM_F_REQUEST | nl.NLM_F_ACK | nl.NLM_F_CREATE | nl.NLM_F_EXCL


def p2_encode(message_class, kind: int, flags: int, seq: int, fields: dict, attrs: list) -> bytes:
    """One request through pyroute2's message classes (`.encode()`)."""
    message = message_class()
    message["header"].update(type=kind, flags=flags, sequence_number=seq)
    message.update(fields)
    message["attrs"] = attrs
    message.encode()
    return bytes(message.data)


def p2_set_link(seq: int, index: int, mtu: int) -> bytes:
    return p2_encode(ifinfmsg, nl.RTM_NEWLINK, nl.NLM_F_REQUEST | nl.NLM_F_ACK, seq,
                     {"family": 0, "index": index, "flags": nl.IFF_UP, "change": nl.IFF_UP}, [("IFLA_MTU", mtu)])


def p2_new_addr(seq: int, index: int, address: str, prefix: int) -> bytes:
    return p2_encode(ifaddrmsg, nl.RTM_NEWADDR, CREATE, seq,
                     {"family": socket.AF_INET, "prefixlen": prefix, "flags": 0, "scope": 0, "index": index},
                     [("IFA_LOCAL", address), ("IFA_ADDRESS", address)])


def p2_new_veth(seq: int, i: int, master: int, netns_fd: int) -> bytes:
    peer = {"attrs": [("IFLA_IFNAME", "eth0"), ("IFLA_ADDRESS", f"02:42:0a:00:{i >> 8 & 255:02x}:{i & 255:02x}"),
                      ("IFLA_MTU", 1500), ("IFLA_NET_NS_FD", netns_fd)]}
    info = {"attrs": [("IFLA_INFO_KIND", "veth"), ("IFLA_INFO_DATA", {"attrs": [("VETH_INFO_PEER", peer)]})]}
    return p2_encode(ifinfmsg, nl.RTM_NEWLINK, CREATE, seq, {"family": 0},
                     [("IFLA_IFNAME", f"vh{i}"), ("IFLA_MTU", 1500), ("IFLA_MASTER", master), ("IFLA_LINKINFO", info)])


def p2_decode_link(data: bytes) -> tuple:
    """The fields netlink.decode_link returns, read through pyroute2."""
    message = ifinfmsg(data)
    message.decode()
    info = message.get_attr("IFLA_LINKINFO")
    slave = info.get_attr("IFLA_INFO_SLAVE_DATA") if info else None
    af_spec = message.get_attr("IFLA_AF_SPEC")
    inet6 = af_spec.get_attr("AF_INET6") if af_spec else None
    conf = inet6.get_attr("IFLA_INET6_CONF") if inet6 else None
    return (message["index"], message.get_attr("IFLA_IFNAME"), bool(message["flags"] & nl.IFF_UP),
            message.get_attr("IFLA_MTU"), message.get_attr("IFLA_ADDRESS"), message.get_attr("IFLA_MASTER"),
            info.get_attr("IFLA_INFO_KIND") if info else None, message.get_attr("IFLA_IFALIAS"),
            message.get_attr("IFLA_LINK"), bool(conf and conf["disable_ipv6"] == 0),
            bool(slave and slave.get_attr("IFLA_BRPORT_MODE")))


def p2_decode_addr(data: bytes) -> tuple:
    message = ifaddrmsg(data)
    message.decode()
    return message["index"], f"{message.get_attr('IFA_LOCAL') or message.get_attr('IFA_ADDRESS')}/" \
                             f"{message['prefixlen']}"


# --- timing ----------------------------------------------------------------------------------

def per_message_us(job, count: int, repeat: int) -> float:
    """Median over `repeat` rounds of one round's time, in microseconds per message."""
    rounds = []
    for _ in range(repeat):
        started = time.perf_counter()
        job()
        rounds.append(time.perf_counter() - started)
    return statistics.median(rounds) / count * 1e6


def measure(netns: str, count: int, repeat: int) -> list[dict]:
    links, addrs = read_dumps(netns)
    link_payloads = [data[16:] for data in links]
    addr_payloads = [data[16:] for data in addrs]
    for data, payload in zip(links, link_payloads):  # both decoders read the same values
        ours = nl.decode_link(payload)
        theirs = p2_decode_link(data)
        assert (ours.index, ours.ifname, ours.mtu, ours.alias or None) == (
            theirs[0], theirs[1], theirs[3], theirs[7]), (ours, theirs)
    fd = os.open(NETNS_DIR / netns, os.O_RDONLY | os.O_CLOEXEC)
    try:
        # both encoders build the same bytes (pyroute2 leaves out only the NLA_F_NESTED bits)
        assert p2_set_link(1, 2, 1500) == nl.set_link(1, index=2, up=True, mtu=1500)
        assert p2_new_addr(1, 2, "10.88.0.5", 16) == nl.new_addr(1, 2, "10.88.0.5/16")
        veth = nl.new_veth(1, "vh5", 3, 1500, "eth0", "02:42:0a:00:00:05", 1500, fd)
        assert len(p2_new_veth(1, 5, 3, fd)) == len(veth)
        rows = [
            ("encode set_link (index, up, mtu)", count,
             lambda: [nl.set_link(i, index=i + 1, up=True, mtu=1500) for i in range(count)],
             lambda: [p2_set_link(i, i + 1, 1500) for i in range(count)]),
            ("encode new_addr (IPv4)", count,
             lambda: [nl.new_addr(i, i + 1, f"10.88.{i >> 8 & 255}.{i & 255}/16") for i in range(count)],
             lambda: [p2_new_addr(i, i + 1, f"10.88.{i >> 8 & 255}.{i & 255}", 16) for i in range(count)]),
            ("encode new_veth (peer in another netns)", count,
             lambda: [nl.new_veth(i, f"vh{i}", 3, 1500, "eth0", f"02:42:0a:00:{i >> 8 & 255:02x}:{i & 255:02x}", 1500,
                                  fd) for i in range(count)],
             lambda: [p2_new_veth(i, i, 3, fd) for i in range(count)]),
            (f"decode RTM_NEWLINK (real dump, {len(links)} links)", len(links),
             lambda: [nl.decode_link(payload) for payload in link_payloads],
             lambda: [p2_decode_link(data) for data in links]),
            (f"decode RTM_NEWADDR (real dump, {len(addrs)} addresses)", len(addrs),
             lambda: [nl.decode_addr(payload) for payload in addr_payloads],
             lambda: [p2_decode_addr(data) for data in addrs]),
        ]
        results = []
        for name, n, ours, theirs in rows:
            ours_us = per_message_us(ours, n, repeat)
            theirs_us = per_message_us(theirs, n, repeat)
            results.append({"step": name, "messages": n, "hand_packed_us": round(ours_us, 2),
                            "pyroute2_us": round(theirs_us, 2), "ratio": round(theirs_us / ours_us, 1)})
            log(f"{name}: {ours_us:.2f} us vs {theirs_us:.2f} us")
    finally:
        os.close(fd)
    results.append({
        "step": f"full read of this namespace ({len(links)} links + {len(addrs)} addresses), decode only", "messages":
        len(links) + len(addrs),
        "hand_packed_us": round(results[3]["hand_packed_us"] * len(links) + results[4]["hand_packed_us"] * len(addrs)),
        "pyroute2_us": round(results[3]["pyroute2_us"] * len(links) + results[4]["pyroute2_us"] * len(addrs)),
        "ratio": None})
    results[-1]["ratio"] = round(results[-1]["pyroute2_us"] / results[-1]["hand_packed_us"], 1)
    return results


def print_table(results: list[dict]) -> None:
    print("| step | messages | hand-packed µs/msg | pyroute2 µs/msg | pyroute2 / hand-packed |")
    print("|---|---|---|---|---|")
    for row in results[:-1]:
        print(f"| {row['step']} | {row['messages']} | {row['hand_packed_us']} | {row['pyroute2_us']} | "
              f"{row['ratio']}x |")
    total = results[-1]
    print(f"| {total['step']} | {total['messages']} | {total['hand_packed_us'] / 1000:.1f} ms in all | "
          f"{total['pyroute2_us'] / 1000:.1f} ms in all | {total['ratio']}x |")


def delete_netns(netns: str) -> None:
    subprocess.run(["ip", "netns", "del", netns], capture_output=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--veths", type=int, default=200, help="veth pairs in the dumped namespace")
    parser.add_argument("--count", type=int, default=2000, help="requests encoded per round")
    parser.add_argument("--repeat", type=int, default=7, help="rounds per figure (the median is shown)")
    parser.add_argument("--json", type=Path)
    options = parser.parse_args()
    if os.geteuid() != 0:
        print("needs root (it creates a throwaway network namespace)", file=sys.stderr)
        return 2
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)  # as the other benchmarks; no child Python runs here
    netns = f"bnl{uuid.uuid4().hex[:6]}"
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # run the finally below
    try:
        subprocess.run(["ip", "netns", "add", netns], check=True, capture_output=True)
        log(f"namespace {netns}: {options.veths} veth pairs")
        populate(netns, options.veths)
        results = measure(netns, options.count, options.repeat)
    finally:
        delete_netns(netns)
        if (NETNS_DIR / netns).exists():
            log(f"warning: {NETNS_DIR / netns} is still there; remove it with `ip netns del {netns}`")
    print_table(results)
    if options.json:
        options.json.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
