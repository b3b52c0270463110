"""Container files in /etc/netns/<name>/: seen through `ip netns exec`, kept current."""

from __future__ import annotations

from pathlib import Path

import pytest

from reconciler.render.hostsfile import DISCOVERY_BEGIN
from tests.conftest import netns_names, sh

pytestmark = pytest.mark.kernel

SPEC = """\
version: 1
host:
  resolv_conf: {resolv}
networks:
  front:
    bridge: "@br"
    subnet: 172.31.0.0/24
containers:
  "@web":
    hostname: web
    domainname: example.com
    networks: [front]
    links: ["@db:database"]
    extra_hosts: ["registry.local:172.31.0.99", "host.docker.internal:host-gateway"]
  "@db":
    networks:
      front: {{ipv4_address: 172.31.0.10, aliases: [primary]}}
  "@tool":
    networks: [front]
    dns: [198.51.100.53]
    dns_search: [corp.example]
    dns_opt: ["ndots:2"]
"""

# two loopback servers: all dropped, and never the systemd-resolved stub case (one 127.0.0.53)
HOST_RESOLV = "# the host's own\nnameserver 127.0.0.1\nnameserver ::1\nsearch lan.example\noptions edns0\n"


@pytest.fixture
def files_spec(sandbox):
    resolv = sandbox.tmp / "host-resolv.conf"
    resolv.write_text(HOST_RESOLV)
    resolv.chmod(0o644)  # whatever the umask: a file not every user may read is refused
    return sandbox.write_spec(SPEC.format(resolv=resolv)), resolv


def etc(sandbox, short: str, filename: str) -> Path:
    return Path("/etc/netns") / sandbox.name(short) / filename


# `getent hosts` asks for IPv6 first and then falls through to DNS, which times out in a
# sandbox; ahostsv4 is answered from /etc/hosts alone.
def test_files_are_seen_inside_the_namespace(sandbox, files_spec):
    spec, resolv = files_spec
    sandbox.apply(spec)
    assert sandbox.in_ns("web", "getent ahostsv4 database").split()[0] == "172.31.0.10"
    assert sandbox.in_ns("web", "getent ahostsv4 primary").split()[0] == "172.31.0.10"
    assert sandbox.in_ns("web", "getent ahostsv4 registry.local").split()[0] == "172.31.0.99"
    assert sandbox.in_ns("web", "getent ahostsv4 host.docker.internal").split()[0] == "172.31.0.1"
    assert sandbox.in_ns("web", "cat /etc/hostname") == "web\n"
    hosts = sandbox.in_ns("web", "cat /etc/hosts")
    assert hosts.startswith("127.0.0.1\tlocalhost\n")
    assert "172.31.0.2\tweb.example.com web\n" + DISCOVERY_BEGIN in hosts  # Docker's lines, then discovery
    web_resolv = sandbox.in_ns("web", "cat /etc/resolv.conf")
    assert "nameserver 8.8.8.8\nnameserver 8.8.4.4\nsearch lan.example\noptions edns0\n" in web_resolv
    assert "127.0.0.1" not in web_resolv.split("# Based on")[0]
    tool_resolv = sandbox.in_ns("tool", "cat /etc/resolv.conf")
    assert "nameserver 198.51.100.53\nsearch corp.example\noptions ndots:2\n" in tool_resolv


def test_second_apply_writes_nothing_and_hand_edits_are_restored(sandbox, files_spec):
    spec, _ = files_spec
    sandbox.apply(spec)
    hosts = etc(sandbox, "web", "hosts")
    before = hosts.stat().st_mtime_ns
    assert sandbox.apply(spec)["actions"] == []
    assert hosts.stat().st_mtime_ns == before

    original = hosts.read_text()
    hosts.write_text(original + "10.9.9.9\tsneaky\n")
    drift = sandbox.run("status", "--detailed-exitcode", "-o", "json", spec=spec)
    assert drift.code == 2
    assert [(a["op"], a["kind"], a["name"]) for a in drift.json()["actions"]] == [
        ("update", "file", f"{sandbox.name('web')}/hosts")]
    sandbox.apply(spec)
    assert hosts.read_text() == original


def test_a_hand_edit_inside_the_discovery_section_every_member_shares_is_found_and_restored(sandbox, files_spec):
    # the section is held once for all the members (reconciler.state.model.Text): an edit
    # of one file's copy must still tell that file apart from the others
    spec, _ = files_spec
    sandbox.apply(spec)
    tool_hosts, db_hosts = etc(sandbox, "tool", "hosts"), etc(sandbox, "db", "hosts")
    original_tool, original_db = tool_hosts.read_text(), db_hosts.read_text()
    section = original_tool[original_tool.index(DISCOVERY_BEGIN):]
    assert section == original_db[original_db.index(DISCOVERY_BEGIN):]
    tool_hosts.write_text(original_tool.replace("172.31.0.10\t", "172.31.0.66\t"))
    db_hosts.write_text("# mine\n" + original_db)
    drift = sandbox.run("status", "--detailed-exitcode", "-o", "json", spec=spec)
    assert drift.code == 2
    assert sorted((a["op"], a["name"]) for a in drift.json()["actions"]) == [
        ("update", f"{sandbox.name('db')}/hosts"), ("update", f"{sandbox.name('tool')}/hosts")]
    sandbox.apply(spec)
    assert (tool_hosts.read_text(), db_hosts.read_text()) == (original_tool, original_db)
    assert sandbox.apply(spec)["actions"] == []


def test_linked_address_change_rewrites_the_linking_hosts_file(sandbox, files_spec):
    spec, _ = files_spec
    sandbox.apply(spec)
    moved = sandbox.write_spec(spec.read_text().replace("172.31.0.10", "172.31.0.20").replace(
        f"{sandbox.prefix}-", "@"), "moved.yaml")
    actions = sandbox.apply(moved)["actions"]
    file_updates = [a for a in actions if a["kind"] == "file"]
    # web's link line and every container's discovery section name db's address
    assert {a["name"] for a in file_updates} == {f"{sandbox.name(c)}/hosts" for c in ("web", "db", "tool")}
    web_update = next(a for a in file_updates if a["name"].startswith(sandbox.name("web")))
    assert "172.31.0.20" in web_update["reason"]
    assert sandbox.in_ns("web", "getent ahostsv4 database").split()[0] == "172.31.0.20"


def test_host_resolv_conf_change_regenerates_on_next_apply(sandbox, files_spec):
    spec, resolv = files_spec
    sandbox.apply(spec)
    resolv.write_text("nameserver 203.0.113.7\n")
    actions = sandbox.apply(spec)["actions"]
    assert {(a["kind"], a["name"].split("/")[1]) for a in actions} == {("file", "resolv.conf")}
    assert "nameserver 203.0.113.7\n" in sandbox.in_ns("web", "cat /etc/resolv.conf")
    assert "nameserver 198.51.100.53\n" in sandbox.in_ns("tool", "cat /etc/resolv.conf")


def test_a_resolv_conf_not_every_user_may_read_is_refused(sandbox):
    secret = sandbox.tmp / "secret.conf"
    secret.write_text("nameserver 198.51.100.53\nsecret-token hunter2-do-not-copy\n")
    secret.chmod(0o600)
    spec = sandbox.write_spec(SPEC.format(resolv=secret))
    for command in ("plan", "apply"):
        result = sandbox.run(command, "-o", "json", spec=spec)
        assert result.code == 1, result.stdout
        assert f"{spec}:3:16: host.resolv_conf: {secret} is not readable by every user (mode 0600)" in result.stderr
        assert "hunter2" not in result.stdout + result.stderr
    assert not any(name.startswith(sandbox.name("")) and name != sandbox.host for name in netns_names())
    assert not etc(sandbox, "web", "resolv.conf").parent.exists()


def test_lines_that_are_not_directives_reach_no_container_file_nor_plan(sandbox, files_spec):
    spec, resolv = files_spec
    sandbox.apply(spec)
    resolv.write_text("nameserver 198.51.100.53\nroot:x:0:0:root:/root:/bin/bash\n  indented junk\n"
                      "sortlist 198.51.100.0/255.255.255.0\n")
    plan = sandbox.run("plan", "-o", "json", spec=spec)
    assert plan.code == 0, plan.stderr
    assert "sortlist 198.51.100.0/255.255.255.0" in plan.stdout  # the plan shows the new content ...
    assert "root:x" not in plan.stdout and "junk" not in plan.stdout  # ... without the junk
    sandbox.apply(spec)
    web_resolv = etc(sandbox, "web", "resolv.conf").read_text()
    assert "nameserver 198.51.100.53\nsortlist 198.51.100.0/255.255.255.0\n" in web_resolv
    assert "root:x" not in web_resolv and "junk" not in web_resolv


def test_removed_container_and_destroy_remove_the_files(sandbox, files_spec):
    spec, _ = files_spec
    sandbox.apply(spec)
    assert etc(sandbox, "tool", "resolv.conf").exists()
    fewer = sandbox.write_spec(spec.read_text().split('  "' + sandbox.name("tool"))[0].replace(
        f"{sandbox.prefix}-", "@"), "fewer.yaml")
    sandbox.apply(fewer)
    assert not etc(sandbox, "tool", "resolv.conf").parent.exists()
    assert sandbox.run("destroy", spec=fewer).code == 0
    assert not etc(sandbox, "web", "hosts").parent.exists()
    assert not etc(sandbox, "db", "hosts").parent.exists()
    assert sh(f"ls /etc/netns | grep {sandbox.prefix} || true").strip() == ""


def test_etc_netns_option_puts_the_files_elsewhere(sandbox, files_spec):
    spec, _ = files_spec
    elsewhere = sandbox.tmp / "etc-netns"
    result = sandbox.run("--etc-netns", str(elsewhere), "apply", "-o", "json", spec=spec)
    assert result.code == 0, result.stderr
    assert "172.31.0.2\tweb.example.com web\n" in (elsewhere / sandbox.name("web") / "hosts").read_text()
    assert not etc(sandbox, "web", "hosts").parent.exists()
    assert sandbox.run("--etc-netns", str(elsewhere), "destroy", spec=spec).code == 0
    assert not (elsewhere / sandbox.name("web")).exists()
