"""Watch mode as a subprocess against throwaway namespaces.

The resync period is an hour, so every repair here comes from an event trigger. The
tests wait for conditions, never for time: up to REACTION seconds for a repair (the
2 s target itself is measured by benchmarks/bench_watch.py, not asserted here: shared
machines are noisy), and for "nothing happened" they ask for a pass (SIGHUP) and wait
for it, which orders everything the watch noticed before it.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import urllib.request
from collections import Counter
from pathlib import Path
from typing import Iterator

import pytest

from tests.conftest import REPO, eventually, netns_names, sh

pytestmark = pytest.mark.kernel

REACTION = 30.0  # generous: namespaces of earlier tests may still be torn down by the kernel, under its rtnl lock

SPEC = """\
version: 1
host:
  resolv_conf: {resolv}
networks:
  front:
    bridge: "@br"
    subnet: 172.26.0.0/24
containers:
  "@web":
    networks: [front]
  "@db":
    networks: [front]
"""
EXTRA = '  "@cache":\n    networks: [front]\n'


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Watch:
    def __init__(self, sandbox, spec: str = SPEC, extra: tuple[str, ...] = ()):
        """`spec`: the spec's text, with {resolv} where the host's resolv.conf goes; `extra`: more options."""
        self.sandbox = sandbox
        self.extra = extra
        self.resolv = sandbox.tmp / "host-resolv.conf"
        self.resolv.write_text("nameserver 198.51.100.53\n")
        self.spec = sandbox.write_spec(spec.format(resolv=self.resolv))
        self.log = sandbox.tmp / "watch.log"
        self.port = free_port()
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        command = [sys.executable, "-m", "reconciler", "--host-netns", self.sandbox.host, "--state-dir",
                   str(self.sandbox.state_dir), "watch", str(self.spec), "--resync", "3600", "--debounce", "50",
                   "--metrics-port", str(self.port), "-v", *self.extra]
        with open(self.log, "w") as log:
            self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, cwd=REPO)
        eventually(lambda: self.passes(), "the first pass", timeout=30)

    def lines(self) -> list[dict]:
        found = []
        for line in self.log.read_text().splitlines():
            try:
                found.append(json.loads(line))
            except ValueError:
                pass
        return found

    def reacts(self, check, what: str):
        """Wait for watch to bring about `check` (the log's tail tells why when it does not)."""
        return eventually(check, what, REACTION, self.tail)

    def tail(self) -> str:
        return self.log.read_text()[-2500:] if self.log.exists() else ""

    def passes(self) -> list[dict]:
        return [line for line in self.lines() if line.get("event") == "pass"]

    def metric(self, name: str) -> float:
        text = urllib.request.urlopen(f"http://127.0.0.1:{self.port}/metrics", timeout=5).read().decode()
        return sum(float(value) for value in re.findall(rf"^{name}(?:{{[^}}]*}})? (\S+)$", text, re.M))

    def barrier(self) -> dict:
        """Ask for a pass (SIGHUP) and wait for it: whatever the watch noticed before the
        signal has been handled by then. Returns the pass's log line."""
        def answered() -> list[dict]:
            return [line for line in self.passes() if "sighup" in line["trigger"].split(",")]

        asked = len(answered())
        self.process.send_signal(signal.SIGHUP)
        return self.reacts(lambda: answered()[asked:], "a pass for SIGHUP")[0]

    def settle(self) -> None:
        """Wait until the watch is idle: the start pass and whatever its own changes woke are done."""
        self.barrier()

    def stop(self) -> int:
        if self.process is None or self.process.poll() is not None:
            return self.process.returncode if self.process else 0
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=30)


@contextlib.contextmanager
def watching(sandbox, spec: str = SPEC) -> Iterator[Watch]:
    """A Watch (not started yet), killed at the end if still running."""
    runner = Watch(sandbox, spec)
    try:
        yield runner
    finally:
        if runner.process is not None and runner.process.poll() is None:
            runner.process.kill()
            runner.process.wait()


@pytest.fixture
def watch(sandbox):
    with watching(sandbox) as runner:
        yield runner


def veths(sandbox) -> set[str]:
    return {name for name in sandbox.links(sandbox.host) if name.startswith("veth")}


def test_hand_changes_to_links_files_and_the_firewall_are_repaired_by_events(watch):
    box = watch.sandbox
    watch.start()
    watch.settle()
    before = veths(box)
    assert len(before) == 2
    box.host_sh(f"ip link del {sorted(before)[0]}")
    watch.reacts(lambda: veths(box) == before and "1 received" in box.in_ns("web", "ping -c1 -W1 172.26.0.3", False),
               "the deleted veth is back and web reaches db")

    hosts = Path("/etc/netns") / box.name("web") / "hosts"
    original = hosts.read_text()
    hosts.write_text(original + "203.0.113.9\tintruder\n")
    watch.reacts(lambda: hosts.read_text() == original, "the hand-edited hosts file is restored")

    box.host_sh("nft delete table inet netreconcile")
    watch.reacts(lambda: "table inet netreconcile" in box.host_sh("nft list tables"), "the firewall table is back")

    # every change was noticed through its own kind of event. A repair may have happened in a
    # pass that an earlier event started (if that pass observed after the change); the pass for
    # the change's own event then follows it, and may be logged after the repair is seen here.
    def triggers() -> str:
        return ",".join(line["trigger"] for line in watch.passes())

    for source in ("netlink", "files", "nftables"):
        watch.reacts(lambda: source in triggers(), f"a pass woken by {source}")
    assert "resync" not in triggers()
    assert watch.metric("netreconcile_drift_corrections_total") >= 3
    assert watch.stop() == 0


def test_an_ipv6_address_deleted_by_hand_is_repaired_by_its_own_event(watch):
    box = watch.sandbox
    dual_stack = SPEC.replace("    subnet: 172.26.0.0/24\n",
                              "    subnet: 172.26.0.0/24\n    enable_ipv6: true\n    subnet6: fd42:26::/64\n")
    watch.spec = box.write_spec(dual_stack.format(resolv=watch.resolv), "dual-stack.yaml")
    watch.start()
    watch.settle()
    web = box.name("web")

    def web_ipv6() -> str:
        return sh(f"ip -n {web} -6 -o addr show dev eth0 scope global")

    assert "fd42:26::2/64" in web_ipv6()
    passes = len(watch.passes())
    # no link, no IPv4 change: only web's IPv6 address (and prefix route) events tell of it at once
    sh(f"ip -n {web} -6 addr del fd42:26::2/64 dev eth0")
    watch.reacts(lambda: "fd42:26::2/64" in web_ipv6(), "the deleted IPv6 address is back")
    # a pass another event started (other tests' files under /etc/netns, say) may have made
    # the repair; the pass for web's own event then follows it
    watch.reacts(lambda: any(f"netlink:{web}" in line["trigger"].split(",") for line in watch.passes()[passes:]),
                 "a pass woken by web's own netlink event")
    assert watch.stop() == 0


def test_spec_edits_apply_also_when_saved_by_rename_and_invalid_ones_change_nothing(watch):
    box = watch.sandbox
    watch.start()
    watch.settle()
    spec_text = watch.spec.read_text()

    temporary = watch.spec.with_name(".spec.yaml.swp")
    temporary.write_text(spec_text + EXTRA.replace("@", f"{box.prefix}-"))
    os.replace(temporary, watch.spec)  # how editors save
    watch.reacts(lambda: box.name("cache") in netns_names(), "the added container's namespace")
    watch.reacts(lambda: box.addresses(box.name("cache")).get("eth0") == ["172.26.0.4/24"], "its address")

    watch.settle()

    def state():
        links = {name: (link["ifindex"], link.get("master")) for name, link in box.links(box.host).items()}
        return {n for n in netns_names() if n.startswith(box.prefix)}, links, box.host_sh("nft -a list ruleset")

    before = state()
    watch.spec.write_text(watch.spec.read_text().replace("172.26.0.0/24", "172.26.0.0/33"))
    watch.reacts(lambda: any("invalid spec" in line.get("event", "") for line in watch.lines()),
               "the invalid spec is reported")
    warning = next(line for line in watch.lines() if "invalid spec" in line.get("event", ""))
    assert any(":7:13: networks.front.subnet:" in problem for problem in warning["problems"])
    assert watch.barrier()["outcome"] == "noop"  # the last valid spec stays in force
    assert state() == before

    watch.spec.write_text(spec_text)  # fixed, and without cache
    watch.reacts(lambda: box.name("cache") not in netns_names(), "convergence resumes")
    assert watch.stop() == 0


def test_an_object_changed_back_again_and_again_is_reported_as_a_fight(watch):
    box = watch.sandbox
    watch.start()
    watch.settle()
    veth = sorted(veths(box))[0]
    for _ in range(3):
        box.host_sh(f"ip link del {veth}")
        watch.reacts(lambda: veth in veths(box), "the veth is back")
    fights = watch.reacts(lambda: [line for line in watch.lines() if line.get("event") == "another tool keeps changing "
                                 "this back"], "a warning about the fight")
    assert fights[0]["kind"] == "veth" and fights[0]["object"].startswith(veth)
    # logged right after the warning: wait for it too rather than read the output between the two
    watch.reacts(lambda: [line for line in watch.lines() if line.get("event") == "backing off"], "backing off")
    assert watch.stop() == 0


def test_sighup_asks_for_a_pass(watch):
    watch.start()
    watch.settle()
    before = sum("sighup" in line["trigger"] for line in watch.passes())
    watch.process.send_signal(signal.SIGHUP)
    watch.reacts(lambda: sum("sighup" in line["trigger"] for line in watch.passes()) > before, "a pass for SIGHUP")
    assert watch.process.poll() is None  # asked for a pass, not stopped
    assert watch.stop() == 0


def test_a_host_resolv_conf_change_reaches_every_container(watch):
    box = watch.sandbox
    watch.start()
    watch.settle()
    replacement = watch.resolv.with_name("resolv.new")
    replacement.write_text("nameserver 198.51.100.54\nsearch corp.example\n")
    os.replace(replacement, watch.resolv)

    def updated():
        return all("nameserver 198.51.100.54" in (Path("/etc/netns") / box.name(c) / "resolv.conf").read_text()
                   for c in ("web", "db"))

    watch.reacts(updated, "both containers' resolv.conf")
    change = watch.reacts(lambda: [line for line in watch.passes() if "resolv.conf" in line["trigger"].split(",")],
                          "the resolv.conf pass's log line")[0]
    # the kernel did not change: the kept state is planned against, no namespace read
    assert change["observed"] == "incremental" and change["namespaces_read"] == 0, watch.tail()
    assert change["actions"] == {"file": 2}, change
    assert watch.stop() == 0


def test_the_log_lines_and_the_metric_name_passes_alike(watch):
    watch.start()
    watch.settle()
    watch.barrier()
    text = urllib.request.urlopen(f"http://127.0.0.1:{watch.port}/metrics", timeout=5).read().decode()
    counted = {outcome: float(value) for outcome, value in
               re.findall(r'^netreconcile_passes_total\{outcome="([^"]+)"\} (\S+)$', text, re.M)}
    logged = Counter(line["outcome"] for line in watch.passes())
    assert logged["applied"] >= 1 and logged["noop"] >= 1
    assert {outcome: float(count) for outcome, count in logged.items()} == \
        {outcome: value for outcome, value in counted.items() if value}


def test_nothing_changing_means_no_passes_and_sigterm_exits_cleanly(watch):
    watch.start()
    watch.settle()
    passes = len(watch.passes())
    counted = watch.metric("netreconcile_passes_total")
    assert watch.barrier()["outcome"] == "noop"
    watch.barrier()
    # between two asked-for passes, nothing: reading the state (and idling) wakes nothing
    assert len(watch.passes()) == passes + 2
    assert watch.metric("netreconcile_passes_total") == counted + 2
    watch.process.send_signal(signal.SIGTERM)
    assert watch.process.wait(timeout=REACTION) == 0
    assert any(line.get("event") == "watch stopped" for line in watch.lines())
    assert len(sh(f"ip -n {watch.sandbox.host} -o link show").splitlines()) > 1  # the network stays as it was


class Flapper:
    """Another tool that keeps deleting netreconcile's firewall table, from a thread."""

    def __init__(self, sandbox):
        self.sandbox = sandbox
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self.stopped.is_set():
            self.sandbox.host_sh("nft delete table inet netreconcile", check=False)
            self.stopped.wait(0.3)

    def __enter__(self) -> Flapper:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stopped.set()
        self.thread.join()


HELD_LONG = 16.0  # the table's hold when the veths go; a global backoff would keep every repair waiting as long
SOONER = 12.0  # clearly shorter, yet generous for a repair that takes well under a second


def test_an_object_fought_over_is_held_alone_while_other_drift_is_repaired_at_once(watch):
    box = watch.sandbox
    watch.spec.write_text(watch.spec.read_text() + EXTRA.replace("@", f"{box.prefix}-"))
    watch.start()
    watch.settle()
    links = veths(box)
    assert len(links) == 3

    def held_long() -> list[dict]:
        return [line for line in watch.lines() if line.get("event") == "backing off"
                and line.get("wait_s", 0) >= HELD_LONG]

    with Flapper(box):
        # each repair of the table that the other tool undoes doubles its hold: 2, 4, 8, 16 s
        eventually(held_long, f"a hold of {HELD_LONG:g} s on the firewall table", 90, watch.tail)
        assert held_long()[0]["kind"] == "firewall"
        eventually(lambda: "inet netreconcile" not in box.host_sh("nft list tables"), "the table deleted again", 30)
        repaired_from = len(watch.lines())
        for link in sorted(links):
            box.host_sh(f"ip link del {link}")
        eventually(lambda: veths(box) == links, "the veths are back while the table is held", SOONER, watch.tail)
        assert "inet netreconcile" not in box.host_sh("nft list tables")  # held: not fought over meanwhile
        assert not [line for line in watch.lines()[repaired_from:] if line.get("event") == "pass"
                    and "firewall" in line.get("actions", {})], watch.tail()
    repairs = watch.reacts(lambda: [line for line in watch.lines()[repaired_from:] if line.get("event") == "pass"
                                    and "veth" in line.get("actions", {})], "the repair's log line")
    assert repairs[0]["drift"] is True and repairs[0].get("held") == {"firewall": 1}, watch.tail()
    # the other tool gave up: the table is repaired when its hold ends
    eventually(lambda: "table inet netreconcile" in box.host_sh("nft list tables"), "the table back after its hold",
               90, watch.tail)
    assert watch.stop() == 0


def test_destroy_refuses_while_a_watch_keeps_the_host_converged(watch):
    box = watch.sandbox
    watch.start()
    watch.settle()
    links = veths(box)
    refused = box.run("destroy", spec=watch.spec)
    assert refused.code == 1
    assert f"pid {watch.process.pid}" in refused.stderr and f"kill -TERM {watch.process.pid}" in refused.stderr
    assert veths(box) == links and box.name("web") in netns_names()
    assert watch.stop() == 0
    destroyed = box.run("destroy", spec=watch.spec)
    assert destroyed.code == 0, destroyed.stderr
    assert veths(box) == set() and box.name("web") not in netns_names()


def test_a_watch_whose_host_namespace_disappears_says_so_once_and_waits(watch):
    box = watch.sandbox
    watch.start()
    watch.settle()

    def gone() -> list[dict]:
        return [line for line in watch.lines() if line.get("event", "").startswith("the host namespace is gone")]

    sh(f"ip netns del {box.host}")
    watch.reacts(gone, "one error saying the host namespace is gone")
    watch.barrier()
    watch.barrier()
    assert len(gone()) == 1 and f"ip netns add {box.host}" in gone()[0]["detail"]
    assert not any(line.get("outcome") == "error" for line in watch.passes())
    assert box.host not in netns_names()  # not made again behind the back of whoever deleted it
    sh(f"ip netns add {box.host}")
    watch.reacts(lambda: len(veths(box)) == 2 and "inet netreconcile" in box.host_sh("nft list tables")
                 and "1 received" in box.in_ns("web", "ping -c1 -W1 172.26.0.3", False),
                 "converged again in the new host namespace")
    assert watch.stop() == 0


def test_a_container_added_while_watching_is_resolvable_by_name_from_the_others(watch):
    box = watch.sandbox
    watch.start()
    watch.settle()

    def from_web(name: str) -> str:
        found = sh(f"ip netns exec {box.name('web')} getent ahostsv4 {name} || true").split()
        return found[0] if found else ""

    assert from_web(box.name("db")) == "172.26.0.3"
    temporary = watch.spec.with_name(".spec.yaml.swp")
    temporary.write_text(watch.spec.read_text() + EXTRA.replace("@", f"{box.prefix}-"))
    os.replace(temporary, watch.spec)  # how editors save
    watch.reacts(lambda: from_web(box.name("cache")) == "172.26.0.4", "the added container's name from web")
