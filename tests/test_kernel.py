"""Kernel integration tests: the CLI against throwaway namespaces, with real traffic."""

from __future__ import annotations

import subprocess

import pytest

from tests.conftest import eventually, netns_names, sh

pytestmark = pytest.mark.kernel

THREE = """\
version: 1
networks:
  front:
    bridge: "@br"
    subnet: 172.31.0.0/24
containers:
  "@web":
    networks: [front]
  "@db":
    networks:
      front: {ipv4_address: 172.31.0.10}
  "@cache":
    networks: [front]
"""


def ping(sandbox, source: str, address: str) -> bool:
    """Whether `source` reaches `address`, waited for: a veth made a moment ago forwards
    once the kernel's link watch has seen its carrier, which it may put off by up to a
    second after the last change (longer on a loaded machine)."""
    return eventually(lambda: "1 received" in sandbox.in_ns(source, f"ping -c1 -W2 {address}", check=False),
                      f"{source} reaches {address}")


def test_three_containers_converge_talk_and_reapply_is_a_no_op(sandbox):
    spec = sandbox.write_spec(THREE)
    first = sandbox.apply(spec)
    kinds = sorted({a["kind"] for a in first["actions"]})
    assert kinds == ["address", "bridge", "file", "firewall", "netns", "route", "sysctl", "veth"]
    assert all(a["source"].startswith(f"{spec}:") for a in first["actions"])
    assert {(a["op"], a["kind"]) for a in first["actions"] if a["op"] != "create"} == {("update", "sysctl")}

    assert sandbox.addresses(sandbox.name("web"))["eth0"] == ["172.31.0.2/24"]
    assert sandbox.addresses(sandbox.name("db"))["eth0"] == ["172.31.0.10/24"]
    assert sandbox.addresses(sandbox.name("cache"))["eth0"] == ["172.31.0.3/24"]
    links = sandbox.links(sandbox.name("web"))
    assert links["eth0"]["address"] == "02:42:ac:1f:00:02"
    assert "UP" in links["lo"]["flags"]
    assert "default via 172.31.0.1 dev eth0" in sandbox.in_ns("web", "ip route")
    bridge = sandbox.links(sandbox.host)[sandbox.name("br")]
    assert bridge["address"] == "02:42:ac:1f:00:01" and bridge["mtu"] == 1500
    assert sandbox.host_sh("cat /proc/sys/net/ipv4/ip_forward").strip() == "1"

    assert ping(sandbox, "web", "172.31.0.10")
    assert ping(sandbox, "db", "172.31.0.3")
    assert ping(sandbox, "cache", "172.31.0.1")

    assert sandbox.apply(spec)["actions"] == []
    detailed = sandbox.run("plan", "--detailed-exitcode", spec=spec)
    assert detailed.code == 0, detailed.stderr


def test_ipv6_is_off_inside_containers_and_on_host_veths(sandbox):
    spec = sandbox.write_spec(THREE)
    sandbox.apply(spec)
    assert sandbox.in_ns("web", "cat /proc/sys/net/ipv6/conf/eth0/disable_ipv6").strip() == "1"
    veths = [name for name, link in sandbox.links(sandbox.host).items() if name.startswith("veth")]
    assert len(veths) == 3
    for veth in veths:
        assert sandbox.host_sh(f"cat /proc/sys/net/ipv6/conf/{veth}/disable_ipv6").strip() == "1"


def test_hand_deleted_veth_and_address_are_restored(sandbox):
    spec = sandbox.write_spec(THREE)
    sandbox.apply(spec)
    web_veth = next(name for name, link in sandbox.links(sandbox.host).items()
                    if link.get("ifalias", "").endswith(f"{sandbox.name('web')}:front"))
    sandbox.host_sh(f"ip link del {web_veth}")
    sandbox.in_ns("db", "ip addr del 172.31.0.10/24 dev eth0")

    drift = sandbox.run("status", "--detailed-exitcode", "-o", "json", spec=spec)
    assert drift.code == 2
    pending = {(a["op"], a["kind"]) for a in drift.json()["actions"]}
    assert ("create", "veth") in pending and ("create", "address") in pending

    repaired = sandbox.apply(spec)["actions"]
    assert {a["kind"] for a in repaired} == {"veth", "address", "route"}
    assert sandbox.addresses(sandbox.name("web"))["eth0"] == ["172.31.0.2/24"]
    assert sandbox.addresses(sandbox.name("db"))["eth0"] == ["172.31.0.10/24"]
    assert ping(sandbox, "web", "172.31.0.10")
    assert sandbox.apply(spec)["actions"] == []


def test_changed_static_address_changes_only_that_address(sandbox):
    spec = sandbox.write_spec(THREE)
    sandbox.apply(spec)
    before_host = {name: link["ifindex"] for name, link in sandbox.links(sandbox.host).items()}
    before_web = sandbox.addresses(sandbox.name("web"))
    before_db_index = sandbox.links(sandbox.name("db"))["eth0"]["ifindex"]

    changed = sandbox.write_spec(THREE.replace("172.31.0.10", "172.31.0.20"))
    actions = sandbox.apply(changed)["actions"]
    touched = {(a["op"], a["kind"]) for a in actions}
    assert touched == {("delete", "address"), ("create", "address"), ("update", "veth"), ("create", "route"),
                       ("update", "file")}
    assert all(sandbox.name("db") in a["description"] for a in actions if a["kind"] != "file")
    # db's own files, and the discovery section of every container on front, which names db's address
    assert {a["name"] for a in actions if a["kind"] == "file"} == {
        f"{sandbox.name(c)}/hosts" for c in ("web", "db", "cache")}

    assert sandbox.addresses(sandbox.name("db"))["eth0"] == ["172.31.0.20/24"]
    assert sandbox.links(sandbox.name("db"))["eth0"]["ifindex"] == before_db_index
    assert {name: link["ifindex"] for name, link in sandbox.links(sandbox.host).items()} == before_host
    assert sandbox.addresses(sandbox.name("web")) == before_web
    assert ping(sandbox, "web", "172.31.0.20")


def test_changed_mtu_is_set_in_place(sandbox):
    spec = sandbox.write_spec(THREE)
    sandbox.apply(spec)
    before = sandbox.links(sandbox.host)
    sandbox.apply(sandbox.write_spec(THREE.replace("subnet: 172.31.0.0/24", "subnet: 172.31.0.0/24\n    mtu: 1400")))
    after = sandbox.links(sandbox.host)
    assert {n: l["ifindex"] for n, l in after.items()} == {n: l["ifindex"] for n, l in before.items()}
    assert after[sandbox.name("br")]["mtu"] == 1400
    assert sandbox.links(sandbox.name("web"))["eth0"]["mtu"] == 1400


def test_removed_container_loses_namespace_and_veth_and_addresses_stay_put(sandbox):
    spec = sandbox.write_spec(THREE)
    sandbox.apply(spec)
    without_web = THREE.replace('  "@web":\n    networks: [front]\n', "")
    actions = sandbox.apply(sandbox.write_spec(without_web))["actions"]
    assert [(a["op"], a["kind"], a["name"]) for a in actions if a["kind"] != "file"] == [
        ("delete", "netns", sandbox.name("web"))]
    # web leaves the others' discovery sections; its own files go with its namespace
    assert {(a["op"], a["name"]) for a in actions if a["kind"] == "file"} == {
        ("update", f"{sandbox.name(c)}/hosts") for c in ("db", "cache")}
    assert sandbox.name("web") not in netns_names()
    veths = [n for n, l in sandbox.links(sandbox.host).items() if l.get("ifalias", "").startswith("netreconcile:veth")]
    assert len(veths) == 2
    # cache keeps its address although the lower one it could take is now free
    assert sandbox.addresses(sandbox.name("cache"))["eth0"] == ["172.31.0.3/24"]


def test_unmanaged_interfaces_survive_apply_and_destroy(sandbox):
    spec = sandbox.write_spec(THREE)
    sandbox.apply(spec)  # creates the host namespace
    sandbox.host_sh("ip link add keep0 type veth peer name keep1")
    sandbox.host_sh("ip link add keepbr type bridge")
    sandbox.apply(spec)
    destroyed = sandbox.run("destroy", "-o", "json", spec=spec)
    assert destroyed.code == 0, destroyed.stderr
    remaining = set(sandbox.links(sandbox.host))
    assert {"keep0", "keep1", "keepbr", "lo"} == remaining
    assert not {n for n in netns_names() if n.startswith(sandbox.prefix) and n != sandbox.host}
    assert sandbox.run("destroy", "-o", "json", spec=spec).json()["actions"] == []


def test_removing_a_container_whose_namespace_a_process_still_holds_cuts_its_veth(sandbox):
    spec = sandbox.write_spec(THREE)
    sandbox.apply(spec)
    holder = subprocess.Popen(["ip", "netns", "exec", sandbox.name("web"), "sleep", "600"])
    try:
        without_web = THREE.replace('  "@web":\n    networks: [front]\n', "")
        sandbox.apply(sandbox.write_spec(without_web))  # fails if it waits for the kernel in vain
        marked = [n for n, l in sandbox.links(sandbox.host).items()
                  if l.get("ifalias", "").startswith(f"netreconcile:veth:{sandbox.name('web')}:")]
        assert marked == []
        assert sandbox.run("plan", "--detailed-exitcode", spec=sandbox.write_spec(without_web)).code == 0
    finally:
        holder.kill()
        holder.wait()


def test_name_taken_by_an_unmanaged_interface_is_a_conflict_that_changes_nothing(sandbox):
    spec = sandbox.write_spec(THREE)
    sandbox.run("plan", spec=spec)
    sh(f"ip netns add {sandbox.host}")
    sandbox.host_sh(f"ip link add {sandbox.name('br')} type veth peer name other0")
    before = sandbox.links(sandbox.host)
    result = sandbox.run("apply", spec=spec)
    assert result.code == 1
    assert f"interface {sandbox.name('br')} exists and is not managed by netreconcile" in result.stderr
    assert f"{spec}:3:3:" in result.stderr
    assert set(sandbox.links(sandbox.host)) == set(before)
    assert not {n for n in netns_names() if n.startswith(sandbox.prefix) and n != sandbox.host}


def test_invalid_spec_changes_nothing_not_even_the_host_namespace(sandbox):
    spec = sandbox.write_spec(THREE.replace("172.31.0.0/24", "172.31.0.0/33"))
    result = sandbox.run("apply", spec=spec)
    assert result.code == 1
    assert f"{spec}:5:13: networks.front.subnet:" in result.stderr
    assert not {n for n in netns_names() if n.startswith(sandbox.prefix)}


def test_plan_changes_nothing_and_reports_pending_changes(sandbox):
    spec = sandbox.write_spec(THREE)
    sh(f"ip netns add {sandbox.host}")
    result = sandbox.run("plan", "--detailed-exitcode", "-o", "json", spec=spec)
    assert result.code == 2
    assert len(result.json()["actions"]) == 25
    assert set(sandbox.links(sandbox.host)) == {"lo"}
    assert not {n for n in netns_names() if n.startswith(sandbox.prefix) and n != sandbox.host}
    text = sandbox.run("plan", spec=spec)
    assert f"+ netns {sandbox.name('web')}: missing" in text.stdout
    assert "Plan: 24 to create, 1 to update, 0 to delete." in text.stdout
    assert sandbox.host_sh("nft list tables") == ""  # the firewall was checked (nft -c), not loaded


def test_two_networks_give_eth0_and_eth1_and_one_default_route(sandbox):
    spec = sandbox.write_spec(THREE + """\
  "@both":
    networks: [front, back]
""".replace("containers:", "containers:") , "two.yaml")
    spec.write_text(spec.read_text().replace("containers:", """  back:
    bridge: "@bk"
    subnet: 172.30.0.0/24
containers:""".replace("@", f"{sandbox.prefix}-")))
    sandbox.apply(spec)
    addresses = sandbox.addresses(sandbox.name("both"))
    assert addresses["eth0"] == ["172.31.0.4/24"] and addresses["eth1"] == ["172.30.0.2/24"]
    routes = sandbox.in_ns("both", "ip route show default")
    assert routes.strip().startswith("default via 172.31.0.1 dev eth0")
    assert ping(sandbox, "both", "172.30.0.1") and ping(sandbox, "both", "172.31.0.2")
    assert sandbox.apply(spec)["actions"] == []


def test_a_stranger_namespace_reusing_a_deleted_name_is_not_taken_over(sandbox):
    spec = sandbox.write_spec(THREE)
    sandbox.apply(spec)
    sh(f"ip netns del {sandbox.name('web')}")  # deleted by hand
    without_web = sandbox.write_spec(THREE.replace('  "@web":\n    networks: [front]\n', ""), "without.yaml")
    sandbox.apply(without_web)  # the record forgets the vanished namespace
    sh(f"ip netns add {sandbox.name('web')}")  # someone else's now
    result = sandbox.run("apply", spec=spec)
    assert result.code == 1
    assert f"network namespace {sandbox.name('web')} exists and is not managed by netreconcile" in result.stderr
    destroyed = sandbox.run("destroy", "-o", "json", spec=spec).json()["actions"]
    assert sandbox.name("web") not in {a["name"] for a in destroyed}
    assert sandbox.name("web") in netns_names()


def test_links_set_down_by_hand_are_brought_up_again_in_place(sandbox):
    spec = sandbox.write_spec(THREE)
    sandbox.apply(spec)
    bridge_index = sandbox.links(sandbox.host)[sandbox.name("br")]["ifindex"]
    sandbox.host_sh(f"ip link set {sandbox.name('br')} down")
    sandbox.in_ns("web", "ip link set lo down")
    actions = sandbox.apply(spec)["actions"]
    assert {(a["op"], a["kind"], a["name"]) for a in actions} == {
        ("update", "bridge", sandbox.name("br")), ("update", "netns", sandbox.name("web"))}
    assert "UP" in sandbox.links(sandbox.host)[sandbox.name("br")]["flags"]
    assert sandbox.links(sandbox.host)[sandbox.name("br")]["ifindex"] == bridge_index
    assert "UP" in sandbox.links(sandbox.name("web"))["lo"]["flags"]
    assert ping(sandbox, "web", "172.31.0.10")


def test_sysctls_changed_by_hand_are_drift_that_apply_sets_back(sandbox):
    """A no-op apply reads the sysctls it owns, in the host and inside the containers:
    forwarding switched off and IPv6 switched on at a container's eth0 are both found."""
    spec = sandbox.write_spec(THREE)
    sandbox.apply(spec)
    sandbox.host_sh("sh -c 'echo 0 > /proc/sys/net/ipv4/ip_forward'")
    sandbox.in_ns("web", "sh -c 'echo 0 > /proc/sys/net/ipv6/conf/eth0/disable_ipv6'")

    repaired = sandbox.apply(spec)["actions"]
    assert sorted((a["op"], a["kind"], [c["field"] for c in a["changes"]]) for a in repaired) == [
        ("update", "sysctl", ["value"]), ("update", "veth", ["ipv6"])], repaired
    assert sandbox.host_sh("cat /proc/sys/net/ipv4/ip_forward").strip() == "1"
    assert sandbox.in_ns("web", "cat /proc/sys/net/ipv6/conf/eth0/disable_ipv6").strip() == "1"
    assert sandbox.apply(spec)["actions"] == []


def test_link_attributes_changed_by_hand_are_found_by_a_no_op_apply(sandbox):
    """The link dumps leave the statistics out (RTEXT_FILTER_SKIP_STATS), not what is
    compared: an MTU and a MAC changed by hand inside a container and the bridge's MTU
    are found and set back in place."""
    spec = sandbox.write_spec(THREE)
    sandbox.apply(spec)
    eth0 = sandbox.links(sandbox.name("web"))["eth0"]
    sandbox.in_ns("web", "ip link set eth0 mtu 1300 address 02:42:ac:1f:00:99")
    sandbox.host_sh(f"ip link set {sandbox.name('br')} mtu 1280")

    repaired = sandbox.apply(spec)["actions"]
    assert sorted((a["op"], a["kind"], sorted(c["field"] for c in a["changes"])) for a in repaired) == [
        ("update", "bridge", ["mtu"]), ("update", "veth", ["mac", "peer_mtu"])], repaired
    after = sandbox.links(sandbox.name("web"))["eth0"]
    assert (after["ifindex"], after["mtu"], after["address"]) == (eth0["ifindex"], eth0["mtu"], eth0["address"])
    assert sandbox.links(sandbox.host)[sandbox.name("br")]["mtu"] == 1500
    assert sandbox.apply(spec)["actions"] == []
