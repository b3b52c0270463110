#!/usr/bin/env python3
"""Benchmark the embedded DNS server: queries/s for in-scope names, and its memory.

Makes N throwaway namespaces (lo up, nothing else), starts one resolver process serving
all of them (reconciler.dns.server.Server, the loop `netreconcile dns` runs) with a
table of T in-scope names shared by every namespace, then
- reads the resolver's RSS (VmRSS) before and after opening the N namespaces' sockets
  (target: under 100 MB with 1000 namespaces);
- from inside one namespace, sends A queries for in-scope names over UDP to
  127.0.0.11:53 for D seconds, keeping W queries outstanding, and counts the replies
  (target: at least 5000 queries/s on a 2-core machine). Client and resolver share the
  machine, as they would.

SAFETY: namespaces are named bdXXXX-*, deleted at the end, also on failure. Nothing in
the root namespace is touched. Needs root.

Usage: python benchmarks/bench_dns.py [--namespaces 1000] [--names 1000] [--seconds 5]
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import time
import uuid
from ipaddress import IPv4Address
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

TARGET_QPS = 5000
TARGET_RSS_MB = 100


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def serve(namespaces: list[str], names: int, cache: bool) -> None:
    """The resolver process: open every namespace, report, serve until stdin closes."""
    import threading

    from reconciler.dns import server as server_module

    if not cache:  # every query encoded anew: the cost of a reply not seen before
        server_module.MAX_CACHED_REPLIES = 0

    from reconciler.dns.config import NameTable, NamespaceConfig, ResolverConfig
    from reconciler.dns.server import Server
    from reconciler.kernel.nlsocket import current_netns_fd

    table = NameTable.of((f"c{i}", (IPv4Address("10.88.0.0") + 2 + i,)) for i in range(names))
    config = ResolverConfig.of({name: NamespaceConfig(table) for name in namespaces})
    server = Server(current_netns_fd(), "/run/netns")
    print(json.dumps({"before": rss_mb(os.getpid())}), flush=True)
    started = time.perf_counter()
    problems = server.configure(config)
    opened = time.perf_counter() - started
    print(json.dumps({"after": rss_mb(os.getpid()), "open_s": opened, "problems": len(problems)}), flush=True)
    threading.Thread(target=lambda: (sys.stdin.read(), server.stop()), daemon=True).start()
    server.serve()
    server.close()


def client(seconds: float, window: int, names: int) -> None:
    """In a namespace: UDP queries to 127.0.0.11, `window` outstanding, for `seconds`."""
    import dns.message

    queries = [dns.message.make_query(f"c{i % names}", "A") for i in range(4096)]
    wires = []
    for index, query in enumerate(queries):
        query.id = index
        wires.append(query.to_wire())
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.connect(("127.0.0.11", 53))
    sock.settimeout(1.0)
    sent = answered = 0
    for _ in range(window):
        sock.send(wires[sent % len(wires)])
        sent += 1
    started = time.perf_counter()
    deadline = started + seconds
    while time.perf_counter() < deadline:
        try:
            reply = sock.recv(4096)
        except socket.timeout:  # a lost datagram: put one back in flight
            sock.send(wires[sent % len(wires)])
            sent += 1
            continue
        answered += 1 if reply[3] & 0x0F == 0 else 0  # rcode NOERROR
        sock.send(wires[sent % len(wires)])
        sent += 1
    elapsed = time.perf_counter() - started
    print(json.dumps({"answered": answered, "seconds": elapsed, "qps": answered / elapsed}))


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--namespaces", type=int, default=1000)
    parser.add_argument("--names", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--window", type=int, default=32)
    parser.add_argument("--no-cache", action="store_true", help="Encode every reply anew (no reply cache).")
    parser.add_argument("--role", choices=["main", "serve", "client"], default="main")
    parser.add_argument("rest", nargs="*")
    args = parser.parse_args()
    if args.role == "serve":
        serve(args.rest, args.names, not args.no_cache)
        return 0
    if args.role == "client":
        client(args.seconds, args.window, args.names)
        return 0
    prefix = f"bd{uuid.uuid4().hex[:4]}"
    namespaces = [f"{prefix}-n{i}" for i in range(args.namespaces)]
    resolver = None
    try:
        for name in namespaces:
            subprocess.run(["ip", "netns", "add", name], check=True)
            subprocess.run(["ip", "-n", name, "link", "set", "lo", "up"], check=True)
        resolver = subprocess.Popen([sys.executable, __file__, "--role", "serve", "--names", str(args.names),
                                     *(["--no-cache"] if args.no_cache else []), *namespaces],
                                    stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        before = json.loads(resolver.stdout.readline())["before"]
        opened = json.loads(resolver.stdout.readline())
        result = subprocess.run(["ip", "netns", "exec", namespaces[0], sys.executable, __file__, "--role", "client",
                                 "--seconds", str(args.seconds), "--window", str(args.window),
                                 "--names", str(args.names)], capture_output=True, text=True, check=True)
        rate = json.loads(result.stdout)
        after_queries = rss_mb(resolver.pid)
        print(f"namespaces served: {args.namespaces} ({opened['problems']} failed), names in scope: {args.names}")
        print(f"sockets opened in {opened['open_s']:.2f} s")
        print(f"resolver RSS: {before:.1f} MB before, {opened['after']:.1f} MB serving, "
              f"{after_queries:.1f} MB after the queries (target < {TARGET_RSS_MB} MB)")
        cache = "reply cache off" if args.no_cache else "reply cache on"
        print(f"in-scope A queries over UDP, {cache}: {rate['qps']:.0f}/s ({rate['answered']} in {rate['seconds']:.1f} s, "
              f"{args.window} outstanding; target >= {TARGET_QPS}/s)")
        return 0 if rate["qps"] >= TARGET_QPS and after_queries < TARGET_RSS_MB else 1
    finally:
        if resolver is not None:
            resolver.stdin.close()
            resolver.wait(timeout=60)
        for name in namespaces:
            subprocess.run(["ip", "netns", "del", name], capture_output=True)


if __name__ == "__main__":
    sys.exit(main())
