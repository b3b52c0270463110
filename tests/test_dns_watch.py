"""Watch and sync serve the embedded DNS server; apply and status warn when nothing does (kernel tests).

`watch` runs with a spec that has host.dns_resolver; queries go from inside a container
to 127.0.0.11 (tests/dns_tools.py through test_dns_resolver.ask). Whether a process serves
DNS is read by `status` and `apply` from a lock only serving processes hold.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest

from tests.conftest import REPO, eventually
from tests.test_dns_resolver import Resolver, ask
from tests.test_sync import Repository
from tests.test_watch import watching

pytestmark = pytest.mark.kernel

SPEC = """\
version: 1
host:
  dns_resolver: true
  resolv_conf: {resolv}
networks:
  front: {{bridge: "@fr", subnet: 172.31.73.0/24}}
containers:
  "@a": {{networks: [front]}}
  "@b":
    networks:
      front: {{ipv4_address: 172.31.73.20}}
"""
ADDED = '  "@c":\n    networks:\n      front: {ipv4_address: 172.31.73.30}\n'
WARNING = "the containers' DNS points at 127.0.0.11 and nothing answers there"


@pytest.fixture
def watch(sandbox):
    with watching(sandbox, SPEC) as runner:
        yield runner


def answers(sandbox, name: str, transport: str = "udp") -> list[str]:
    return ask(sandbox, "a", sandbox.name(name), transport).get("answers", [])


def status_warnings(sandbox, spec) -> list[str]:
    result = sandbox.run("status", "-o", "json", spec=spec)
    assert result.code == 0, result.stderr
    return result.json().get("warnings", [])


@pytest.mark.parametrize("transport", ["udp", "tcp"])
def test_watch_serves_the_names_in_scope_and_a_container_a_pass_adds(watch, transport):
    box = watch.sandbox
    watch.start()
    watch.reacts(lambda: answers(box, "b", transport) == ["172.31.73.20"], "b's address by DNS from a")
    temporary = watch.spec.with_name(".spec.yaml.swp")
    temporary.write_text(watch.spec.read_text() + ADDED.replace("@", f"{box.prefix}-"))
    os.replace(temporary, watch.spec)
    watch.reacts(lambda: answers(box, "c", transport) == ["172.31.73.30"], "the added container by DNS from a")
    assert watch.metric("netreconcile_dns_queries_total") >= 2  # served with watch's metrics
    assert watch.stop() == 0


def test_status_warns_only_while_nothing_serves_dns(watch):
    box = watch.sandbox
    box.apply(watch.spec)
    assert [w for w in status_warnings(box, watch.spec) if WARNING in w]
    text = box.run("status", spec=watch.spec)
    assert f"warning: host.dns_resolver: {WARNING}" in text.stderr

    watch.start()
    watch.reacts(lambda: answers(box, "b") == ["172.31.73.20"], "watch serves DNS")
    assert status_warnings(box, watch.spec) == []
    assert WARNING not in box.run("status", spec=watch.spec).stderr

    assert watch.stop() == 0
    assert ask(box, "a", box.name("b")) == {}  # nothing answers any more
    assert [w for w in status_warnings(box, watch.spec) if WARNING in w]


def test_apply_warns_unless_netreconcile_dns_serves(sandbox):
    resolv = sandbox.tmp / "resolv.conf"
    resolv.write_text("nameserver 198.51.100.53\n")
    spec = sandbox.write_spec(SPEC.format(resolv=resolv))
    applied = sandbox.apply(spec)
    assert [w for w in applied["warnings"] if WARNING in w]
    resolver = Resolver(sandbox, spec)
    try:
        eventually(lambda: answers(sandbox, "b") == ["172.31.73.20"], "netreconcile dns answers", timeout=60,
                   context=resolver.log)
        again = sandbox.run("apply", spec=spec)
        assert again.code == 0, again.stderr
        assert WARNING not in again.stderr
        assert status_warnings(sandbox, spec) == []
    finally:
        assert resolver.stop() == 0
    assert [w for w in status_warnings(sandbox, spec) if WARNING in w]


def test_a_spec_without_dns_resolver_serves_nothing_and_warns_of_nothing(watch):
    box = watch.sandbox
    watch.spec = box.write_spec(SPEC.format(resolv=watch.resolv).replace("dns_resolver: true", "dns_resolver: false"))
    watch.start()
    watch.settle()
    assert "dns serving" not in watch.log.read_text()
    assert ask(box, "a", box.name("b")) == {}
    assert status_warnings(box, watch.spec) == []
    assert watch.stop() == 0


def test_sync_serves_dns_for_each_commit_and_stops_with_sigterm(sandbox, tmp_path):
    resolv = sandbox.tmp / "resolv.conf"
    resolv.write_text("nameserver 198.51.100.53\n")
    repo = Repository(tmp_path / "network-repo", sandbox)
    repo.commit(SPEC.format(resolv=resolv))
    log = sandbox.tmp / "sync.log"
    command = [sys.executable, "-m", "reconciler", "--host-netns", sandbox.host, "--state-dir",
               str(sandbox.state_dir), "sync", str(repo.path), "--path", "specs/host.yaml", "--interval", "2"]
    with open(log, "w") as output:
        loop = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT, cwd=REPO)
    try:
        eventually(lambda: answers(sandbox, "b") == ["172.31.73.20"], "b by DNS from a", 60, log.read_text)
        repo.commit(SPEC.format(resolv=resolv) + ADDED, "add c")
        eventually(lambda: answers(sandbox, "c") == ["172.31.73.30"], "c by DNS from a", 60, log.read_text)
        loop.send_signal(signal.SIGTERM)
        assert loop.wait(timeout=30) == 0
    finally:
        if loop.poll() is None:
            loop.kill()
            loop.wait()
    assert ask(sandbox, "a", sandbox.name("b")) == {}
    assert [w for w in status_warnings(sandbox, repo.path / "specs" / "host.yaml") if WARNING in w]
