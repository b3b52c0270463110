"""Tests of reconciler.spec (loader and its stages): YAML spec -> Spec, or a SpecError naming every problem."""

from __future__ import annotations

import copy
import io
import textwrap
from dataclasses import fields
from ipaddress import IPv4Address, IPv4Network

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator
from ruamel.yaml import YAML

from reconciler.errors import SourceError, SpecError
from reconciler.spec import loader, schema_check, yamlread
from reconciler.spec.loader import NOT_SUPPORTED_YET, load_spec, load_spec_text
from reconciler.spec.types import HostSpec, Location, NetworkSpec, Spec

FILE = "spec.yaml"

VALID = """\
version: 1
host:
  ip_forward: true
networks:
  bridge:
    bridge: docker0
    subnet: 172.17.0.0/16
    gateway: 172.17.0.254
    mtu: 1450
    icc: true
    masquerade: true
    internal: false
    aux_addresses:
      router: 172.17.0.2
  back:
    subnet: 10.10.0.0/24
    aux_addresses: [10.10.0.200, 10.10.0.201]
containers:
  web:
    mac_address: 02:42:AC:11:00:AA
    networks:
      bridge: {ipv4_address: 172.17.0.10, aliases: []}
      back:
  db:
    network_mode: bridge
    networks: [back, bridge]
  cache:
    networks:
      back:
        mac_address: 02:00:00:00:00:01
"""


def problems(text: str) -> list[str]:
    """The problems `text` is rejected with, as `file:line:col: path: message` strings."""
    with pytest.raises(SpecError) as caught:
        load_spec_text(textwrap.dedent(text), FILE)
    return [str(problem) for problem in caught.value.problems]


# --- a valid spec ------------------------------------------------------------------------


def test_valid_spec_loads_with_values() -> None:
    spec = load_spec_text(VALID, FILE)

    assert spec.path == FILE and spec.version == 1
    assert spec.host == HostSpec(ip_forward=True)
    bridge, back = spec.networks
    assert (bridge.name, bridge.bridge, bridge.subnet, bridge.gateway, bridge.mtu) == (
        "bridge", "docker0", IPv4Network("172.17.0.0/16"), IPv4Address("172.17.0.254"), 1450,
    )
    assert bridge.aux_addresses == (IPv4Address("172.17.0.2"),)
    assert (back.bridge, back.gateway, back.mtu, back.driver) == ("back", IPv4Address("10.10.0.1"), 1500, "bridge")
    assert back.aux_addresses == (IPv4Address("10.10.0.200"), IPv4Address("10.10.0.201"))
    assert [c.name for c in spec.containers] == ["web", "db", "cache"]


def test_valid_spec_attachments_and_macs() -> None:
    web, db, cache = load_spec_text(VALID, FILE).containers

    assert [(a.network, a.ipv4_address, a.mac_address) for a in web.networks] == [
        ("bridge", IPv4Address("172.17.0.10"), "02:42:ac:11:00:aa"),  # container-level MAC: first network
        ("back", None, None),
    ]
    assert [(a.network, a.ipv4_address, a.mac_address) for a in db.networks] == [("back", None, None), ("bridge", None, None)]
    assert cache.networks[0].mac_address == "02:00:00:00:00:01"
    assert db.network_mode == "bridge" and db.ports == () and web.networks[0].aliases == ()


def test_valid_spec_locations() -> None:
    spec = load_spec_text(VALID, FILE)
    web, db, _ = spec.containers

    assert [str(n.location) for n in spec.networks] == ["spec.yaml:5:3", "spec.yaml:15:3"]
    assert str(spec.host.location) == "spec.yaml:2:1"
    assert [str(c.location) for c in spec.containers] == ["spec.yaml:19:3", "spec.yaml:24:3", "spec.yaml:27:3"]
    assert [a.location for a in web.networks] == [Location(FILE, 22, 7), Location(FILE, 23, 7)]
    assert [a.location for a in db.networks] == [Location(FILE, 26, 16), Location(FILE, 26, 22)]


def test_minimal_spec_gets_defaults() -> None:
    spec = load_spec_text("version: 1\nnetworks:\n  br0: {subnet: 192.168.7.0/24}\n", FILE)

    assert spec.host == HostSpec()
    assert spec.networks == (
        NetworkSpec(name="br0", bridge="br0", subnet=IPv4Network("192.168.7.0/24"), gateway=IPv4Address("192.168.7.1")),
    )
    assert spec.containers == ()


def test_empty_sections_are_allowed() -> None:
    assert load_spec_text("version: 1\nhost:\nnetworks:\ncontainers:\n", FILE) == Spec(path=FILE)


def test_load_spec_reads_a_file(tmp_path) -> None:
    path = tmp_path / "spec.yaml"
    path.write_text(VALID)

    spec = load_spec(path)

    assert spec.path == str(path) and spec.networks[0].location == Location(str(path), 5, 3)


# --- identity and DNS: hostname, links, /etc/hosts and resolv.conf settings ------------------

IDENTITY = """\
version: 1
host:
  resolv_conf: /run/systemd/resolve/resolv.conf
networks:
  front:
    subnet: 10.1.0.0/24
  back:
    subnet: 10.2.0.0/24
containers:
  web:
    hostname: www.example.com
    domainname: example.com
    networks:
      front: {aliases: [www, web-1]}
      back:
    links: [db, 'cache:kv', 'cache:memo']
    dns: [192.0.2.53, '2001:db8::53']
    dns_search: [example.com, corp.example]
    dns_opt: ['ndots:2', rotate]
    extra_hosts: ['registry.local:10.1.0.99', 'gw=host-gateway', 'v6:0:0:0:0:0:0:0:1', 'v6b=[2001:db8::0:1]']
  db:
    networks: [back]
    extra_hosts: {mirror: 10.2.0.50, host.docker.internal: host-gateway}
  cache:
    networks: [front, back]
"""


def test_identity_and_dns_fields_load_with_values() -> None:
    spec = load_spec_text(IDENTITY, FILE)
    web, db, _ = spec.containers

    assert spec.host.resolv_conf == "/run/systemd/resolve/resolv.conf"
    assert (web.hostname, web.domainname) == ("www.example.com", "example.com")
    assert [a.aliases for a in web.networks] == [("www", "web-1"), ()]
    assert web.links == ("db:db", "cache:kv", "cache:memo")
    assert web.dns == ("192.0.2.53", "2001:db8::53")
    assert web.dns_search == ("example.com", "corp.example")
    assert web.dns_opt == ("ndots:2", "rotate")
    assert web.extra_hosts == ("registry.local:10.1.0.99", "gw:host-gateway", "v6:::1", "v6b:2001:db8::1")
    assert db.extra_hosts == ("mirror:10.2.0.50", "host.docker.internal:host-gateway")


def test_identity_defaults() -> None:
    spec = load_spec_text(IDENTITY, FILE)
    _, db, cache = spec.containers

    assert (db.hostname, db.domainname, db.links, db.dns, db.dns_search, db.dns_opt) == ("db", None, (), (), (), ())
    assert (cache.hostname, cache.extra_hosts) == ("cache", ())
    assert load_spec_text(VALID, FILE).host.resolv_conf == "/etc/resolv.conf"


def test_dns_values_that_mean_something_are_kept() -> None:
    """'.' alone in dns_search means no search domain (Docker); an IPv6 zone is an interface name or index."""
    spec = load_spec_text(NET + "  web:\n    networks: [front]\n    dns: ['fe80::1%eth0', 'fe80::1%2']\n"
                          "    dns_search: ['.']\n", FILE)
    (web,) = spec.containers
    assert (web.dns, web.dns_search) == (("fe80::1%eth0", "fe80::1%2"), (".",))


def test_container_name_is_the_hostname_even_when_not_a_hostname() -> None:
    """Docker resolves names such as 'my_db' too; only a hostname that is set is checked."""
    (container,) = load_spec_text(NET + "  my_db:\n    networks: [front]\n", FILE).containers
    assert container.hostname == "my_db"


def test_all_link_problems_are_reported() -> None:
    text = NET + "  web:\n    networks: [front]\n    links: [web, 'dbb:bad_alias', 'db:x', 'db:x']\n"
    assert problems(text) == [
        "spec.yaml:8:13: containers.web.links.0: a container cannot link to itself",
        "spec.yaml:8:18: containers.web.links.1: hostname 'bad_alias': "
        "label 'bad_alias' may hold only letters, digits and '-', not at either end",
        "spec.yaml:8:18: containers.web.links.1: link target 'dbb' is not a container of this spec",
        "spec.yaml:8:35: containers.web.links.2: link target 'db' is not a container of this spec",
        "spec.yaml:8:43: containers.web.links.3: link alias 'x' is listed twice",
    ]


def test_link_to_an_invalid_container_reports_that_container_only() -> None:
    text = NET + "  web:\n    networks: [front]\n    links: [db]\n  db: 5\n"
    assert problems(text) == ["spec.yaml:9:7: containers.db: expected a mapping, got 5"]


DESIGN_EXAMPLE = """\
version: 1
host:
  ip_forward: true
  resolv_conf: /etc/resolv.conf
networks:
  bridge:
    bridge: docker0          # kernel bridge name
    subnet: 172.17.0.0/16
    gateway: 172.17.0.1
    mtu: 1500
    icc: true
    masquerade: true
    internal: false
containers:
  web:
    hostname: web
    domainname: example.com
    networks:
      bridge: {ipv4_address: 172.17.0.10, aliases: [www]}
    links: ["db:database"]
    dns: [192.0.2.53]
    dns_search: [example.com]
    dns_opt: ["ndots:2"]
    extra_hosts: ["registry.local:172.17.0.99"]
    ports: ["8080:80", "127.0.0.1:5353:53/udp"]
  db:
    networks: [bridge]
  sidecar:
    network_mode: "container:web"
"""  # every section of the spec at once, as the README's spec reference shows it


def test_design_example_loads_whole() -> None:
    spec = load_spec_text(DESIGN_EXAMPLE, FILE)
    web, db, sidecar = spec.containers
    assert (sidecar.mode, sidecar.shares, spec.joined(sidecar)) == ("container", "web", web)
    assert [str(port) for port in web.ports] == ["8080:80/tcp", "127.0.0.1:5353:53/udp"]


def test_design_example_without_ports_and_container_mode_loads() -> None:
    text = DESIGN_EXAMPLE.replace('    ports: ["8080:80", "127.0.0.1:5353:53/udp"]\n', "")
    text = text.replace('  sidecar:\n    network_mode: "container:web"\n', "")
    spec = load_spec_text(text, FILE)
    web, db = spec.containers

    assert spec.host == HostSpec(ip_forward=True, resolv_conf="/etc/resolv.conf")
    assert web.ports == ()
    assert (web.hostname, web.domainname, web.links) == ("web", "example.com", ("db:database",))
    assert web.networks[0].aliases == ("www",) and web.networks[0].ipv4_address == IPv4Address("172.17.0.10")
    assert (web.dns, web.dns_search, web.dns_opt) == (("192.0.2.53",), ("example.com",), ("ndots:2",))
    assert web.extra_hosts == ("registry.local:172.17.0.99",)
    assert (db.hostname, db.links, db.extra_hosts) == ("db", (), ())


# --- one problem per bad spec --------------------------------------------------------------

NET = """\
version: 1
networks:
  front:
    subnet: 10.1.0.0/24
containers:
"""  # containers start at line 6


def _front(**fields: str) -> str:
    """A spec whose network 'front' (line 3) has `fields` after its subnet (line 4)."""
    lines = "".join(f"    {key}: {value}\n" for key, value in fields.items())
    return NET.replace("containers:\n", lines)


BAD_SPECS = [
    ("missing version", "networks: {}\n", "spec.yaml:1:1: missing required key 'version'"),
    ("wrong version", "version: 2\n", "spec.yaml:1:10: version: must be 1, got 2"),
    ("version not an integer", "version: true\n", "spec.yaml:1:10: version: expected an integer, got true"),
    ("root not a mapping", "- version\n", "spec.yaml:1:1: expected a mapping, got a list"),
    ("unknown top key", "version: 1\nnetwrks: {}\n", "spec.yaml:2:1: netwrks: unknown key 'netwrks'; did you mean 'networks'?"),
    (
        "unknown key without a close match",
        "version: 1\nzzz: 1\n",
        "spec.yaml:2:1: zzz: unknown key 'zzz'; expected one of: containers, host, networks, nodes, version",
    ),
    ("host not boolean", "version: 1\nhost:\n  ip_forward: 'yes'\n", "spec.yaml:3:15: host.ip_forward: expected a boolean (true or false), got 'yes'"),
    (
        "resolv_conf not absolute",
        "version: 1\nhost:\n  resolv_conf: etc/resolv.conf\n",
        "spec.yaml:3:16: host.resolv_conf: 'etc/resolv.conf' is not an absolute path",
    ),
    (
        "resolv_conf with a NUL",
        'version: 1\nhost:\n  resolv_conf: "/etc/resolv\\0.conf"\n',
        "spec.yaml:3:16: host.resolv_conf: '/etc/resolv\\x00.conf' contains a NUL character",
    ),
    ("networks not a mapping", "version: 1\nnetworks: [a]\n", "spec.yaml:2:1: networks: expected a mapping or null, got a list"),
    ("subnet prefix too long", _front().replace("10.1.0.0/24", "172.17.0.0/33"), "spec.yaml:4:13: networks.front.subnet: '172.17.0.0/33' is not an IPv4 network"),
    ("subnet garbage", _front().replace("10.1.0.0/24", "ten"), "spec.yaml:4:13: networks.front.subnet: 'ten' is not an IPv4 network"),
    ("subnet IPv6", _front().replace("10.1.0.0/24", "fd00::/64"), "spec.yaml:4:13: networks.front.subnet: 'fd00::/64' is not an IPv4 network"),
    (
        "subnet host bits",
        _front().replace("10.1.0.0/24", "10.1.0.1/24"),
        "spec.yaml:4:13: networks.front.subnet: '10.1.0.1/24' is not an IPv4 network: host bits must be zero (did you mean '10.1.0.0/24'?)",
    ),
    (
        "subnet too small",
        _front().replace("10.1.0.0/24", "10.1.0.0/31"),
        "spec.yaml:4:13: networks.front.subnet: '10.1.0.0/31' is too small: the prefix length must be at most 30",
    ),
    ("subnet not a string", _front().replace("10.1.0.0/24", "10"), "spec.yaml:4:13: networks.front.subnet: expected a string, got 10"),
    ("missing subnet of a LAN", "version: 1\nnetworks:\n  front: {driver: macvlan, parent: eth1}\n",
     "spec.yaml:3:3: networks.front: 'subnet' is required: driver macvlan puts the network on a LAN, whose subnet "
     "cannot be guessed"),
    ("gateway outside", _front(gateway="10.2.0.1"), "spec.yaml:5:14: networks.front.gateway: 10.2.0.1 is outside the subnet 10.1.0.0/24"),
    ("gateway network address", _front(gateway="10.1.0.0"), "spec.yaml:5:14: networks.front.gateway: 10.1.0.0 is the network address of 10.1.0.0/24"),
    ("gateway broadcast", _front(gateway="10.1.0.255"), "spec.yaml:5:14: networks.front.gateway: 10.1.0.255 is the broadcast address of 10.1.0.0/24"),
    ("gateway not an address", _front(gateway="10.1.0.1.1"), "spec.yaml:5:14: networks.front.gateway: '10.1.0.1.1' is not an IPv4 address"),
    ("discovery not boolean", _front(discovery="'no'"), "spec.yaml:5:16: networks.front.discovery: expected a boolean (true or false), got 'no'"),
    ("mtu too large", _front(mtu="70000"), "spec.yaml:5:10: networks.front.mtu: must be between 68 and 65535, got 70000"),
    ("mtu not a number", _front(mtu="big"), "spec.yaml:5:10: networks.front.mtu: expected an integer, got 'big'"),
    ("driver", _front(driver="ipvlan"), "spec.yaml:5:13: networks.front.driver: must be one of 'bridge', 'macvlan', 'overlay', got 'ipvlan'"),
    ("unknown network key", _front(subent="x"), "spec.yaml:5:5: networks.front.subent: unknown key 'subent'; did you mean 'subnet'?"),
    ("aux outside subnet", _front(aux_addresses="{r: 10.9.0.1}"), "spec.yaml:5:24: networks.front.aux_addresses.r: 10.9.0.1 is outside the subnet 10.1.0.0/24"),
    ("aux not an address", _front(aux_addresses="[10.1.0.3, x]"), "spec.yaml:5:31: networks.front.aux_addresses.1: 'x' is not an IPv4 address"),
    ("aux wrong type", _front(aux_addresses="7"), "spec.yaml:5:20: networks.front.aux_addresses: expected a mapping or a list, got 7"),
    (
        "bridge named like every interface",
        _front(bridge="default"),
        "spec.yaml:5:13: networks.front.bridge: 'default' is not a valid bridge name: 'default' names every "
        "interface in the kernel's per-interface settings (/proc/sys/net/*/conf/default)",
    ),
    (
        "bridge name too long",
        _front(bridge="averyveryverylongname"),
        "spec.yaml:5:13: networks.front.bridge: 'averyveryverylongname' is not a valid bridge name: at most 15 characters",
    ),
    (
        "bridge name veth",
        _front(bridge="veth1234"),
        "spec.yaml:5:13: networks.front.bridge: 'veth1234' is not a valid bridge name: "
        "names starting with 'veth' are reserved for netreconcile's veth pairs",
    ),
    (
        "bridge name with slash",
        _front(bridge="br/0"),
        "spec.yaml:5:13: networks.front.bridge: 'br/0' is not a valid bridge name: "
        "use letters, digits, '_', '.' or '-', starting with a letter or digit",
    ),
    (
        "network name too long for a bridge",
        "version: 1\nnetworks:\n  frontend-network:\n    subnet: 10.1.0.0/24\n",
        "spec.yaml:3:3: networks.frontend-network: the network name 'frontend-network' cannot be the bridge name "
        "(at most 15 characters); set 'bridge:' to a valid interface name",
    ),
    (
        "invalid network name",
        "version: 1\nnetworks:\n  ../x:\n    subnet: 10.1.0.0/24\n",
        "spec.yaml:3:3: networks.../x: '../x' is not a valid network name: "
        "use 1 to 63 letters, digits, '_', '.' or '-', starting with a letter or digit",
    ),
    (
        "overlapping subnets",
        NET.replace("containers:\n", "  back:\n    subnet: 10.1.0.128/25\n"),
        "spec.yaml:6:13: networks.back.subnet: 10.1.0.128/25 overlaps 10.1.0.0/24 of network 'front'",
    ),
    (
        "same explicit bridge",
        NET.replace("containers:\n", "  back:\n    subnet: 10.2.0.0/24\n    bridge: front\n"),
        "spec.yaml:7:13: networks.back.bridge: bridge name 'front' is already used by network 'front'",
    ),
    (
        "same defaulted bridge",
        "version: 1\nnetworks:\n  a:\n    subnet: 10.1.0.0/24\n    bridge: b\n  b:\n    subnet: 10.2.0.0/24\n",
        "spec.yaml:6:3: networks.b: bridge name 'b' is already used by network 'a'",
    ),
    (
        "invalid container name",
        NET + "  'web server':\n    networks: [front]\n",
        "spec.yaml:6:3: containers.web server: 'web server' is not a valid container name: "
        "use 1 to 63 letters, digits, '_', '.' or '-', starting with a letter or digit",
    ),
    (
        "container name too long",
        NET + f"  {'c' * 64}:\n    networks: [front]\n",
        f"spec.yaml:6:3: containers.{'c' * 64}: '{'c' * 64}' is not a valid container name: "
        "use 1 to 63 letters, digits, '_', '.' or '-', starting with a letter or digit",
    ),
    ("container has no networks", NET + "  web: {}\n", "spec.yaml:6:3: containers.web: container has no networks"),
    ("container networks empty", NET + "  web:\n    networks: []\n", "spec.yaml:6:3: containers.web: container has no networks"),
    (
        "container networks wrong type",
        NET + "  web:\n    networks: front\n",
        "spec.yaml:7:15: containers.web.networks: expected a list or a mapping, got 'front'",
    ),
    (
        "unknown network",
        NET + "  web:\n    networks: [frnt]\n",
        "spec.yaml:7:16: containers.web.networks.0: unknown network 'frnt'; did you mean 'front'?",
    ),
    ("network listed twice", NET + "  web:\n    networks: [front, front]\n", "spec.yaml:7:23: containers.web.networks.1: network 'front' is listed twice"),
    (
        "unknown container key",
        NET + "  web:\n    networks: [front]\n    mac_adress: 02:00:00:00:00:01\n",
        "spec.yaml:8:5: containers.web.mac_adress: unknown key 'mac_adress'; did you mean 'mac_address'?",
    ),
    (
        "unknown attachment key",
        NET + "  web:\n    networks:\n      front: {ipv4address: 10.1.0.5}\n",
        "spec.yaml:8:15: containers.web.networks.front.ipv4address: unknown key 'ipv4address'; did you mean 'ipv4_address'?",
    ),
    (
        "attachment wrong type",
        NET + "  web:\n    networks:\n      front: 5\n",
        "spec.yaml:8:14: containers.web.networks.front: expected a mapping or null, got 5",
    ),
    (
        "ipv4 not an address",
        NET + "  web:\n    networks:\n      front: {ipv4_address: 10.1.0.300}\n",
        "spec.yaml:8:29: containers.web.networks.front.ipv4_address: '10.1.0.300' is not an IPv4 address",
    ),
    (
        "ipv4 outside subnet",
        NET + "  web:\n    networks:\n      front: {ipv4_address: 10.2.0.3}\n",
        "spec.yaml:8:29: containers.web.networks.front.ipv4_address: 10.2.0.3 is outside the subnet 10.1.0.0/24",
    ),
    (
        "ipv4 is the gateway",
        NET + "  web:\n    networks:\n      front: {ipv4_address: 10.1.0.1}\n",
        "spec.yaml:8:29: containers.web.networks.front.ipv4_address: 10.1.0.1 is the gateway of network 'front'",
    ),
    (
        "ipv4 is the network address",
        NET + "  web:\n    networks:\n      front: {ipv4_address: 10.1.0.0}\n",
        "spec.yaml:8:29: containers.web.networks.front.ipv4_address: 10.1.0.0 is the network address of 10.1.0.0/24",
    ),
    (
        "ipv4 is the broadcast address",
        NET + "  web:\n    networks:\n      front: {ipv4_address: 10.1.0.255}\n",
        "spec.yaml:8:29: containers.web.networks.front.ipv4_address: 10.1.0.255 is the broadcast address of 10.1.0.0/24",
    ),
    (
        "ipv4 is an aux address",
        _front(aux_addresses="[10.1.0.9]") + "containers:\n  web:\n    networks:\n      front: {ipv4_address: 10.1.0.9}\n",
        "spec.yaml:9:29: containers.web.networks.front.ipv4_address: 10.1.0.9 is reserved in aux_addresses of network 'front'",
    ),
    (
        "ipv4 used twice",
        NET + "  web:\n    networks: {front: {ipv4_address: 10.1.0.5}}\n  db:\n    networks: {front: {ipv4_address: 10.1.0.5}}\n",
        "spec.yaml:9:38: containers.db.networks.front.ipv4_address: 10.1.0.5 is already used by container 'web'",
    ),
    (
        "mac not a mac",
        NET + "  web:\n    networks: [front]\n    mac_address: 02:42:ac:11:00\n",
        "spec.yaml:8:18: containers.web.mac_address: '02:42:ac:11:00' is not a MAC address (expected xx:xx:xx:xx:xx:xx)",
    ),
    (
        "mac multicast",
        NET + "  web:\n    networks:\n      front: {mac_address: 03:00:00:00:00:01}\n",
        "spec.yaml:8:28: containers.web.networks.front.mac_address: 03:00:00:00:00:01 is a multicast MAC address; use a unicast one",
    ),
    (
        "mac used twice",
        NET + "  web:\n    networks: [front]\n    mac_address: 02:00:00:00:00:01\n  db:\n    networks:\n      front: {mac_address: 02:00:00:00:00:01}\n",
        "spec.yaml:11:28: containers.db.networks.front.mac_address: 02:00:00:00:00:01 is already used by container 'web'",
    ),
    (
        "network mode unknown",
        NET + "  web:\n    network_mode: bridged\n    networks: [front]\n",
        "spec.yaml:7:19: containers.web.network_mode: 'bridged' is not a network mode: use bridge, none, host, "
        "container:<name>",
    ),
    (
        "container mode target unknown",
        NET + "  web:\n    networks: [front]\n  side:\n    network_mode: container:wbe\n",
        "spec.yaml:9:19: containers.side.network_mode: 'wbe' is not a container of this spec; did you mean 'web'?",
    ),
    (
        "container mode with dns",
        NET + "  web:\n    networks: [front]\n  side:\n    network_mode: container:web\n    dns: [198.51.100.53]\n",
        "spec.yaml:10:5: containers.side.dns: 'dns' cannot be used with network_mode container:web: the container "
        "uses the network, hostname and files of the one it joins",
    ),
    (
        "none mode with networks",
        NET + "  web:\n    network_mode: none\n    networks: [front]\n",
        "spec.yaml:8:5: containers.web.networks: 'networks' cannot be used with network_mode none: "
        "the container has no network",
    ),
    (
        "host mode with ports",
        NET + "  web:\n    network_mode: host\n    ports: ['80:80']\n",
        "spec.yaml:8:5: containers.web.ports: 'ports' cannot be used with network_mode host: the container uses "
        "the host's network and hostname",
    ),
    (
        "container mode on itself",
        NET + "  web:\n    network_mode: container:web\n",
        "spec.yaml:7:19: containers.web.network_mode: a container cannot join its own network namespace",
    ),
    (
        "link to a container without networks",
        NET + "  web:\n    networks: [front]\n    links: [tool]\n  tool:\n    network_mode: none\n",
        "spec.yaml:8:13: containers.web.links.0: link target 'tool' has network_mode none: links need a network "
        "both containers are on",
    ),
    (
        "alias not a hostname",
        NET + "  web:\n    networks:\n      front: {aliases: [www, -www]}\n",
        "spec.yaml:8:30: containers.web.networks.front.aliases.1: hostname '-www': "
        "label '-www' may hold only letters, digits and '-', not at either end",
    ),
    (
        "pool too small",
        "version: 1\nnetworks:\n  tiny: {subnet: 10.0.0.0/30}\ncontainers:\n  a: {networks: [tiny]}\n  b: {networks: [tiny]}\n",
        "spec.yaml:3:3: networks.tiny: 2 containers are attached but the subnet 10.0.0.0/30 has only 1 free addresses",
    ),
    ("non-string key", "version: 1\n80: x\n", "spec.yaml:2:1: key 80 is not a string; quote it"),
    (
        "date value",
        _front(gateway="2024-01-01"),
        "spec.yaml:5:14: networks.front.gateway: unsupported YAML value of type date; quote it if it is a string",
    ),
] + [
    (
        f"port {name}",
        NET + f"  web:\n    networks: [front]\n    ports: [\"8080:80\", {item}]\n",
        f"spec.yaml:8:{column}: containers.web.ports.1: {message}",
    )
    for name, item, column, message in [
        ("without host port", "53", 24, "'53' gives no host port: write [HOST_IP:]HOST_PORT:CONTAINER_PORT[/tcp|udp] "
         "(netreconcile does not pick random host ports)"),
        ("with empty host port", '"127.0.0.1::53"', 24, "'127.0.0.1::53' gives no host port: write "
         "[HOST_IP:]HOST_PORT:CONTAINER_PORT[/tcp|udp] (netreconcile does not pick random host ports)"),
        ("twice", '"8080:81"', 24, "host port 8080/tcp is already published by containers.web.ports.0 "
         "(spec.yaml:8:13)"),
        ("on an address while published on all", '"127.0.0.1:8080:81"', 24,
         "host port 127.0.0.1:8080/tcp is already published by containers.web.ports.0 (spec.yaml:8:13)"),
        ("in an overlapping range", '"8070-8090:8070-8090"', 24,
         "host port 8070-8090/tcp is already published by containers.web.ports.0 (spec.yaml:8:13)"),
        ("protocol", '"53:53/sctp"', 24, "unknown protocol 'sctp' in '53:53/sctp': use tcp or udp"),
        ("out of range", '"0:53"', 24, "host port 0 in '0:53' is out of range (1-65535)"),
        ("container port out of range", '"53:65536"', 24, "container port 65536 in '53:65536' is out of range (1-65535)"),
        ("not a number", '"http:80"', 24, "'http' in 'http:80' is not a host port or port range (e.g. 8080 or 8000-8010)"),
        ("backwards range", '"90-80:90-80"', 24, "host port range '90-80' in '90-80:90-80' ends before it starts"),
        ("ranges of different lengths", '"1-3:1-2"', 24,
         "'1-3:1-2': the host range has 3 ports and the container range 2; they must be the same length"),
        ("host ip not an address", '"localhost:53:53"', 24, "'localhost' in 'localhost:53:53' is not an IP address"),
        ("on an IPv6 address with a zone", '"[fe80::1%eth0]:53:53"', 24,
         "'[fe80::1%eth0]' in '[fe80::1%eth0]:53:53' has a zone: publish on an address of the host, without '%'"),
        ("on 0.0.0.0 while published on all", '"0.0.0.0:8080:81"', 24,
         "host port 0.0.0.0:8080/tcp is already published by containers.web.ports.0 (spec.yaml:8:13)"),
        ("moved ranges over the budget", '"10000-14096:20000-24096"', 24,
         "ranges moved to other container ports may publish at most 4096 ports in one spec (each is one firewall "
         "map element), and this entry brings them to 4097; publish the range on the same ports "
         "('10000-14096:10000-14096'), which costs one rule whatever its size"),
    ]
] + [
    (
        "interface name all",
        NET + "  web:\n    networks:\n      front: {interface_name: all}\n",
        "spec.yaml:8:31: containers.web.networks.front.interface_name: 'all' is not a valid interface name: "
        "'all' names every interface in the kernel's per-interface settings (/proc/sys/net/*/conf/all)",
    ),
    (
        "interface name lo",
        NET + "  web:\n    networks:\n      front: {interface_name: lo}\n",
        "spec.yaml:8:31: containers.web.networks.front.interface_name: 'lo' is not a valid interface name: "
        "'lo' is the namespace's loopback interface",
    ),
    (
        "interface name too long",
        NET + "  web:\n    networks:\n      front: {interface_name: eth-0123456789ab}\n",
        "spec.yaml:8:31: containers.web.networks.front.interface_name: 'eth-0123456789ab' is not a valid "
        "interface name: at most 15 characters",
    ),
    (
        "gw_priority not an integer",
        NET + "  web:\n    networks:\n      front: {gw_priority: high}\n",
        "spec.yaml:8:28: containers.web.networks.front.gw_priority: expected an integer, got 'high'",
    ),
    (
        "interface name twice",
        "version: 1\nnetworks:\n  a: {subnet: 10.1.0.0/24}\n  b: {subnet: 10.2.0.0/24}\ncontainers:\n"
        "  web:\n    networks:\n      a: {interface_name: data}\n      b: {interface_name: data}\n",
        "spec.yaml:9:27: containers.web.networks.b.interface_name: interface 'data' is already the one on network 'a'",
    ),
    (
        "ports on an internal network only",
        _front(internal="true") + "containers:\n  web:\n    networks: [front]\n    ports: ['80:80']\n",
        "spec.yaml:9:5: containers.web.ports: container 'web' is only on internal networks: "
        "its ports cannot be published",
    ),
    (
        "same host port and protocol in two containers",
        NET + "  web:\n    networks: [front]\n    ports: ['53:53/udp', '53:53']\n"
        "  db:\n    networks: [front]\n    ports: ['198.51.100.7:54:54/udp', '198.51.100.7:53:53/udp']\n",
        "spec.yaml:11:39: containers.db.ports.1: host port 198.51.100.7:53/udp is already published by "
        "containers.web.ports.0 (spec.yaml:8:13)",
    ),
] + [
    (name, NET + "  web:\n    networks: [front]\n" + fields, expected)
    for name, fields, expected in [
        (
            "hostname invalid",
            "    hostname: web_1\n",
            "spec.yaml:8:15: containers.web.hostname: hostname 'web_1': "
            "label 'web_1' may hold only letters, digits and '-', not at either end",
        ),
        (
            "hostname empty label",
            "    hostname: web..example.com\n",
            "spec.yaml:8:15: containers.web.hostname: hostname 'web..example.com' has a label of 0 characters (1 to 63 allowed)",
        ),
        (
            "domainname invalid",
            "    domainname: example.com.\n",
            "spec.yaml:8:17: containers.web.domainname: hostname 'example.com.' has a label of 0 characters (1 to 63 allowed)",
        ),
        (
            "dns_opt with a space",
            "    dns_opt: [rotate, 'ndots: 2']\n",
            "spec.yaml:8:23: containers.web.dns_opt.1: 'ndots: 2' is not a resolver option: "
            "write one word of printable ASCII without whitespace or '#', such as 'ndots:2'",
        ),
        (
            "dns_opt empty",
            "    dns_opt: ['']\n",
            "spec.yaml:8:15: containers.web.dns_opt.0: '' is not a resolver option: "
            "write one word of printable ASCII without whitespace or '#', such as 'ndots:2'",
        ),
        (
            "dns_opt with a '#'",
            "    dns_opt: ['ndots:2#x']\n",
            "spec.yaml:8:15: containers.web.dns_opt.0: 'ndots:2#x' is not a resolver option: "
            "write one word of printable ASCII without whitespace or '#', such as 'ndots:2'",
        ),
        (
            "dns_opt with a tab",
            '    dns_opt: ["ndots:2\\tx"]\n',
            "spec.yaml:8:15: containers.web.dns_opt.0: 'ndots:2\\tx' is not a resolver option: "
            "write one word of printable ASCII without whitespace or '#', such as 'ndots:2'",
        ),
        (
            "dns_opt not ASCII",
            "    dns_opt: ['nd\u00f6ts:2']\n",
            "spec.yaml:8:15: containers.web.dns_opt.0: 'nd\u00f6ts:2' is not a resolver option: "
            "write one word of printable ASCII without whitespace or '#', such as 'ndots:2'",
        ),
        (
            "dns_search with a '#'",
            "    dns_search: ['example.com#x']\n",
            "spec.yaml:8:18: containers.web.dns_search.0: 'example.com#x' is not a valid DNS search domain: "
            "each dot-separated label must be letters, digits and '-', not starting or ending with '-'",
        ),
        (
            "dns_search with a control character",
            '    dns_search: ["example.com\\x1b"]\n',
            "spec.yaml:8:18: containers.web.dns_search.0: 'example.com\\x1b' is not a valid DNS search domain: "
            "each dot-separated label must be letters, digits and '-', not starting or ending with '-'",
        ),
        (
            "dns with a zone that is no interface name",
            '    dns: ["fe80::1%eth0\\nnameserver 203.0.113.6"]\n',
            "spec.yaml:8:11: containers.web.dns.0: 'fe80::1%eth0\\nnameserver 203.0.113.6': "
            "the zone after '%' must be an interface name or index",
        ),
        (
            "hostname with a '#'",
            "    hostname: 'web#1'\n",
            "spec.yaml:8:15: containers.web.hostname: hostname 'web#1': "
            "label 'web#1' may hold only letters, digits and '-', not at either end",
        ),
        (
            "hostname with a control character",
            '    hostname: "web\\x01"\n',
            "spec.yaml:8:15: containers.web.hostname: hostname 'web\\x01': "
            "label 'web\\x01' may hold only letters, digits and '-', not at either end",
        ),
        (
            "domainname with a newline",
            '    domainname: "example\\ncom"\n',
            "spec.yaml:8:17: containers.web.domainname: hostname 'example\\ncom': "
            "label 'example\\ncom' may hold only letters, digits and '-', not at either end",
        ),
        (
            "extra_hosts name with a '#'",
            "    extra_hosts: ['a#b:10.1.0.9']\n",
            "spec.yaml:8:19: containers.web.extra_hosts.0: hostname 'a#b': "
            "label 'a#b' may hold only letters, digits and '-', not at either end",
        ),
        (
            "extra_hosts name with a control character",
            '    extra_hosts: ["a\\x1bb=10.1.0.9"]\n',
            "spec.yaml:8:19: containers.web.extra_hosts.0: hostname 'a\\x1bb': "
            "label 'a\\x1bb' may hold only letters, digits and '-', not at either end",
        ),
        (
            "extra_hosts name not a host name",
            "    extra_hosts: ['my_host:10.1.0.9']\n",
            "spec.yaml:8:19: containers.web.extra_hosts.0: hostname 'my_host': "
            "label 'my_host' may hold only letters, digits and '-', not at either end",
        ),
        (
            "extra_hosts bad format",
            "    extra_hosts: [registry.local]\n",
            'spec.yaml:8:19: containers.web.extra_hosts.0: bad format for add-host: "registry.local"',
        ),
        (
            "extra_hosts bad address",
            "    extra_hosts: ['registry.local:10.1.0.300']\n",
            'spec.yaml:8:19: containers.web.extra_hosts.0: invalid IP address in add-host: "10.1.0.300"',
        ),
        (
            "extra_hosts mapping bad address",
            "    extra_hosts: {registry.local: nowhere}\n",
            'spec.yaml:8:35: containers.web.extra_hosts.registry.local: invalid IP address in add-host: "nowhere"',
        ),
        (
            "extra_hosts mapping name with '='",
            "    extra_hosts: {'a=b': 10.1.0.9}\n",
            "spec.yaml:8:26: containers.web.extra_hosts.a=b: hostname 'a=b': "
            "label 'a=b' may hold only letters, digits and '-', not at either end",
        ),
        (
            "link to itself",
            "    links: [web]\n",
            "spec.yaml:8:13: containers.web.links.0: a container cannot link to itself",
        ),
        (
            "link without a target",
            "    links: [':database']\n",
            "spec.yaml:8:13: containers.web.links.0: ':database' is not a link: write 'name' or 'name:alias'",
        ),
        (
            "link with an empty alias",
            "    links: ['db:']\n",
            "spec.yaml:8:13: containers.web.links.0: 'db:' is not a link: write 'name' or 'name:alias'",
        ),
    ]
] + [
    (
        name,
        NET.replace("containers:\n", "  back:\n    subnet: 10.2.0.0/24\ncontainers:\n")
        + "  db:\n    networks: [back]\n  web:\n    networks: [front]\n" + fields + "  web2:\n    networks: [front]\n",
        expected,
    )  # web's fields start at line 12
    for name, fields, expected in [
        (
            "link target unknown",
            "    links: [dbb]\n",
            "spec.yaml:12:13: containers.web.links.0: link target 'dbb' is not a container of this spec; did you mean 'db'?",
        ),
        (
            "link target unknown without a close match",
            "    links: ['zzz:db']\n",
            "spec.yaml:12:13: containers.web.links.0: link target 'zzz' is not a container of this spec",
        ),
        (
            "link target on no shared network",
            "    links: ['db:database']\n",
            "spec.yaml:12:13: containers.web.links.0: link target 'db' does not share a network with 'web'",
        ),
        (
            "link alias twice",
            "    links: [web2, 'web2:web2']\n",
            "spec.yaml:12:19: containers.web.links.1: link alias 'web2' is listed twice",
        ),
        (
            "link alias not a hostname",
            "    links: ['web2:data_base']\n",
            "spec.yaml:12:13: containers.web.links.0: hostname 'data_base': "
            "label 'data_base' may hold only letters, digits and '-', not at either end",
        ),
    ]
]


@pytest.mark.parametrize(("text", "expected"), [case[1:] for case in BAD_SPECS], ids=[case[0] for case in BAD_SPECS])
def test_bad_spec_reports_exactly_one_problem(text: str, expected: str) -> None:
    assert problems(text) == [expected]


def test_a_cycle_of_container_modes_is_reported_on_each_member() -> None:
    assert problems(NET + "  a:\n    network_mode: container:b\n  b:\n    network_mode: container:a\n") == [
        "spec.yaml:7:19: containers.a.network_mode: network_mode container:b leads back to 'a' (a cycle): "
        "one of them needs a network namespace of its own",
        "spec.yaml:9:19: containers.b.network_mode: network_mode container:a leads back to 'b' (a cycle): "
        "one of them needs a network namespace of its own",
    ]


def test_all_problems_are_reported_at_once_in_order() -> None:
    text = """\
        version: 1
        networks:
          front:
            subnet: 10.1.0.0/33
            mtu: 1
        containers:
          web:
            networks: [frnt]
            ports: ["80"]
          db: {}
        """

    assert problems(text) == [
        "spec.yaml:4:13: networks.front.subnet: '10.1.0.0/33' is not an IPv4 network",
        "spec.yaml:5:10: networks.front.mtu: must be between 68 and 65535, got 1",
        "spec.yaml:8:16: containers.web.networks.0: unknown network 'frnt'; did you mean 'front'?",
        "spec.yaml:9:13: containers.web.ports.0: '80' gives no host port: write [HOST_IP:]HOST_PORT:CONTAINER_PORT[/tcp|udp] "
        "(netreconcile does not pick random host ports)",
        "spec.yaml:10:3: containers.db: container has no networks",
    ]


def test_problem_fields() -> None:
    with pytest.raises(SpecError) as caught:
        load_spec_text(_front(subnt="10.1.0.0/24"), FILE)

    (problem,) = caught.value.problems
    assert problem.location == Location(FILE, 5, 5)
    assert problem.path == "networks.front.subnt"
    assert "did you mean 'subnet'?" in problem.message
    assert str(caught.value) == str(problem)


# --- YAML-level problems ---------------------------------------------------------------------


def test_duplicate_key() -> None:
    assert problems("version: 1\nnetworks: {}\nnetworks: {}\n") == [
        'spec.yaml:3:1: invalid YAML: found duplicate key "networks" with value "{}" (original value: "{}") '
        "(while constructing a mapping at line 1, column 1)"
    ]


def test_yaml_syntax_error() -> None:
    assert problems("version: 1\nnetworks: [a, b\n") == [
        "spec.yaml:3:1: invalid YAML: did not find expected ',' or ']' "
        "(while parsing a flow sequence at line 2, column 11)"
    ]


TAB = "invalid YAML: a tab character; YAML indentation uses spaces, not tabs"


@pytest.mark.parametrize("pure", [False, True], ids=["libyaml", "pure-python"])
@pytest.mark.parametrize(
    ("text", "where"),
    [
        pytest.param("version: 1\nhost:\n\tip_forward: true\n", "3:1", id="first-key-of-a-mapping"),
        pytest.param("version: 1\nnetworks:\n  n:\n    subnet: 10.1.0.0/24\n\tmtu: 1400\n", "5:1",
                     id="after-a-plain-scalar"),
        pytest.param("version: 1\nhost:\n  \tip_forward: true\n", "3:3", id="after-spaces"),
    ],
)
def test_a_tab_in_the_indentation_is_named_as_a_tab(monkeypatch, pure, text, where) -> None:
    if pure:
        monkeypatch.setattr(yamlread, "CParser", None)
    assert problems(text) == [f"spec.yaml:{where}: {TAB}"]


def test_unacceptable_character() -> None:
    (problem,) = problems("version: 1\nhost: \x00\n")
    assert problem.startswith("spec.yaml:2:7: invalid YAML: unacceptable character #x0000")


def test_impossible_date() -> None:
    (problem,) = problems("version: 1\nhost: 2023-02-30\n")
    assert problem.startswith("spec.yaml:1:1: invalid YAML: ")


@pytest.mark.parametrize("text", ["", "\n\n", "# only a comment\n", "---\n", "~\n"])
def test_empty_spec(text: str) -> None:
    assert problems(text) == ["spec.yaml:1:1: the spec is empty"]


def test_several_documents() -> None:
    (problem,) = problems("version: 1\n---\nversion: 1\n")
    assert problem.startswith("spec.yaml:2:1: invalid YAML: but found another document")


def test_aliases_are_refused() -> None:
    text = "version: 1\nnetworks:\n  a: &net {subnet: 10.0.0.0/24}\n  b: *net\n"
    assert problems(text) == ["spec.yaml:4:6: YAML aliases (*net) are not supported; write the value out"]


def test_alias_bomb_is_refused_quickly() -> None:
    lines = ["version: 1", "a0: &a0 [x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [*a{i - 1}, *a{i - 1}, *a{i - 1}, *a{i - 1}, *a{i - 1}]" for i in range(1, 20)]
    (problem,) = problems("\n".join(lines) + "\n")
    assert problem.startswith("spec.yaml:3:10: YAML aliases (*a0) are not supported")


def test_anchor_without_alias_is_harmless() -> None:
    spec = load_spec_text("version: 1\nnetworks:\n  a: &net {subnet: 10.0.0.0/24}\n", FILE)
    assert spec.networks[0].subnet == IPv4Network("10.0.0.0/24")


def test_deep_nesting_is_refused() -> None:
    (problem,) = problems("version: 1\nnetworks: " + "[" * 5000 + "]" * 5000 + "\n")
    assert problem == f"spec.yaml:2:{11 + yamlread.MAX_NESTING - 1}: the spec nests deeper than {yamlread.MAX_NESTING} levels"


@pytest.mark.parametrize("parser", ["libyaml", "pure"])
@pytest.mark.parametrize(
    ("opener", "closer", "column"),
    [
        ("[", "]", 11 + yamlread.MAX_NESTING - 1),  # at the first '[' too deep
        ("{a: ", "}", 11 + 4 * (yamlread.MAX_NESTING - 2) + 1),  # at the first key 'a' too deep
    ],
)
def test_very_deep_nesting_is_refused_without_overflow(
    monkeypatch, parser: str, opener: str, closer: str, column: int
) -> None:
    if parser == "pure":
        monkeypatch.setattr(yamlread, "CParser", None)
    text = "version: 1\nnetworks: " + opener * 100_000 + closer * 100_000 + "\n"
    assert problems(text) == [f"spec.yaml:2:{column}: the spec nests deeper than {yamlread.MAX_NESTING} levels"]


def test_oversized_text_is_refused() -> None:
    text = "version: 1\n" + "#" * yamlread.MAX_SPEC_SIZE
    assert problems(text) == ["spec.yaml:1:1: the spec is larger than 2 MiB"]


@pytest.mark.parametrize(
    ("mtu", "problem"),
    [
        ("1500", None),
        ("+1500", None),
        ("0x5DC", None),
        ("0o2734", None),
        ("1500.0", None),
        ("1.5e3", None),
        ("!!int 1500", None),
        ("!!float 1500", None),
        ("1_500", "expected an integer, got '1_500'"),
        ("0b10111011100", "expected an integer, got '0b10111011100'"),
        ("'1500'", "expected an integer, got '1500'"),
        ("!!str 1500", "expected an integer, got '1500'"),
        ("! 1500", "expected an integer, got '1500'"),
        ("~", "expected an integer, got null"),
        ("FALSE", "expected an integer, got false"),
        ("-.inf", "expected an integer, got -inf"),
        ("!!int 15O0", "'15O0' is not a valid !!int"),
        ("0x" + "F" * 5000, "integer of 5002 characters is too long; quote it if it is a string"),
        ("!!binary AAAA", "unsupported YAML value of type !!binary; quote it if it is a string"),
        ("!!set {a: }", "unsupported YAML value of type !!set"),
    ],
)
def test_scalars_are_read_by_the_yaml_1_2_core_schema(mtu: str, problem: str | None) -> None:
    text = _front(mtu=mtu)
    if problem is None:
        assert load_spec_text(text, FILE).networks[0].mtu == 1500
    else:
        assert problems(text) == [f"spec.yaml:5:10: networks.front.mtu: {problem}"]


def test_yaml_1_1_booleans_are_strings() -> None:
    assert problems("version: 1\nhost: {ip_forward: yes}\n") == [
        "spec.yaml:2:20: host.ip_forward: expected a boolean (true or false), got 'yes'"
    ]


def test_colons_in_flow_collections() -> None:
    """libyaml (YAML 1.1) refuses unquoted 02:42:... inside [] and {}; YAML 1.2 allows it."""
    text = NET + "  web:\n    networks: {front: {mac_address: 02:42:0a:01:00:05, aliases: [a:b]}}\n"
    assert problems(text) == [
        (
            "spec.yaml:7:66: containers.web.networks.front.aliases.0: hostname 'a:b': "
            "label 'a:b' may hold only letters, digits and '-', not at either end"
        )
    ]
    (web,) = load_spec_text(text.replace(", aliases: [a:b]", ""), FILE).containers
    assert web.networks[0].mac_address == "02:42:0a:01:00:05"


def _spy_on_parsers(monkeypatch) -> list[bool]:
    """The `pure` argument of every ruamel.yaml parser the loader creates, from now on."""
    created: list[bool] = []

    def spy(**kwargs):
        created.append(kwargs["pure"])
        return YAML(**kwargs)

    monkeypatch.setattr(yamlread, "YAML", spy)
    return created


def test_libyaml_reads_the_spec_when_installed(monkeypatch) -> None:
    pytest.importorskip("_ruamel_yaml")
    created = _spy_on_parsers(monkeypatch)
    load_spec_text(VALID, FILE)
    assert created == [False]


def test_without_libyaml_the_pure_python_parser_reads_the_same_spec(monkeypatch) -> None:
    expected = load_spec_text(VALID, FILE)
    created = _spy_on_parsers(monkeypatch)
    monkeypatch.setattr(yamlread, "CParser", None)

    assert load_spec_text(VALID, FILE) == expected  # locations included
    assert created == [True]


def test_without_libyaml_the_same_problems_are_reported(monkeypatch) -> None:
    monkeypatch.setattr(yamlread, "CParser", None)
    for name, text, expected in BAD_SPECS:
        assert problems(text) == [expected], name
    assert problems("version: 1\nnetworks: [a, b\n") == [
        (
            "spec.yaml:3:1: invalid YAML: expected ',' or ']', but got '<stream end>' "
            "(while parsing a flow sequence at line 2, column 11)"
        )
    ]


# --- reading files -----------------------------------------------------------------------------


def test_missing_file(tmp_path) -> None:
    """Not a spec problem at a location: there is no spec to point into."""
    path = tmp_path / "nope.yaml"
    with pytest.raises(SourceError) as caught:
        load_spec(path)
    assert str(caught.value) == f"cannot read {path}: No such file or directory"


def test_directory_instead_of_file(tmp_path) -> None:
    with pytest.raises(SourceError) as caught:
        load_spec(tmp_path)
    assert str(caught.value) == f"cannot read {tmp_path}: Is a directory"


def test_not_utf8(tmp_path) -> None:
    path = tmp_path / "spec.yaml"
    path.write_bytes(b"version: 1\nhost:\n  resolv_conf: \xff\n")
    with pytest.raises(SpecError) as caught:
        load_spec(path)
    assert str(caught.value) == f"{path}:3:16: the spec is not valid UTF-8 (byte offset 32)"


def test_oversized_file(tmp_path) -> None:
    path = tmp_path / "spec.yaml"
    path.write_bytes(b"version: 1\n" + b"#" * yamlread.MAX_SPEC_SIZE)
    with pytest.raises(SpecError) as caught:
        load_spec(path)
    assert str(caught.value) == f"{path}:0:0: the spec is larger than 2 MiB"


# --- the schema ----------------------------------------------------------------------------------


def test_schema_is_valid_draft_2020_12() -> None:
    schema = schema_check.schema()
    Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"


def test_schema_defaults_match_the_dataclasses() -> None:
    defs = schema_check.schema()["$defs"]
    network = defs["network"]["properties"]
    for name in ("driver", "mtu", "icc", "masquerade", "internal", "discovery"):
        assert network[name]["default"] == NetworkSpec.__dataclass_fields__[name].default, name
    host = schema_check.schema()["properties"]["host"]["properties"]
    assert {name: host[name].get("default") for name in host} == {
        f.name: f.default for f in fields(HostSpec) if not f.name.endswith("location")
    }


# NOT_SUPPORTED_YET is empty today: its check runs against entries of each shape instead
# (a wildcard, a field whose one value is accepted, a plain field, a list).
NOT_SUPPORTED_EXAMPLES = {"networks.*.internal": (False,), "host.resolv_conf": None, "containers.*.ports": None}


def _schema_node(pattern: str) -> dict:
    node = schema_check.schema()
    for part in pattern.split("."):
        node = _schema_child(node, part)
    return node


@pytest.mark.parametrize("pattern", [*NOT_SUPPORTED_YET, *NOT_SUPPORTED_EXAMPLES])
def test_not_supported_yet_names_fields_of_the_schema(pattern) -> None:
    assert _schema_node(pattern), pattern


def test_the_schema_walk_finds_no_field_the_schema_lacks() -> None:
    with pytest.raises(KeyError):
        _schema_node("networks.*.no_such_field")


def test_a_field_not_supported_yet_is_refused_at_its_key_unless_its_value_is_accepted(monkeypatch) -> None:
    monkeypatch.setattr(loader, "NOT_SUPPORTED_YET", NOT_SUPPORTED_EXAMPLES)
    spec = """\
        version: 1
        host: {resolv_conf: /etc/resolv.conf}
        networks:
          n: {subnet: 10.0.0.0/24, internal: %s}
          m: {subnet: 10.0.1.0/24}
        containers:
          c: {networks: [m], ports: ['8080:80']}
        """
    assert problems(spec % "true") == [
        "spec.yaml:2:8: host.resolv_conf: 'resolv_conf' is not supported yet by this version of netreconcile",
        "spec.yaml:4:28: networks.n.internal: 'internal: true' is not supported yet by this version of netreconcile",
        "spec.yaml:7:22: containers.c.ports: 'ports' is not supported yet by this version of netreconcile",
    ]
    assert len(problems(spec % "false")) == 2


def _schema_child(node: dict, part: str) -> dict:
    """The subschema for key `part` ('*': any name) below `node`, following $ref and anyOf."""
    node = _resolve(node)
    if "anyOf" in node:
        node = next(_resolve(branch) for branch in node["anyOf"] if _resolve(branch).get("type") == "object")
    return _resolve(node["additionalProperties"] if part == "*" else node["properties"][part])


def _resolve(node: dict) -> dict:
    ref = node.get("$ref")
    return schema_check.schema()["$defs"][ref.rsplit("/", 1)[1]] if ref else node


# --- robustness ------------------------------------------------------------------------------------

FUZZ = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _load_or_spec_error(text: str) -> None:
    try:
        assert isinstance(load_spec_text(text, FILE), Spec)
    except SpecError as e:
        assert e.problems and all(p.location.file == FILE for p in e.problems)


@FUZZ
@given(st.text())
def test_fuzz_arbitrary_text(text: str) -> None:
    _load_or_spec_error(text)


@FUZZ
@given(st.text(alphabet=" \n\t:-[]{},'\"&*!|>#?%@`.0123456789abcnrstuv/~", max_size=200))
def test_fuzz_yaml_punctuation(text: str) -> None:
    _load_or_spec_error(text)


_TEXT_EDITS = st.lists(
    st.tuples(st.integers(0, len(VALID)), st.integers(0, 8), st.text(max_size=6)), min_size=1, max_size=4
)


@FUZZ
@given(_TEXT_EDITS)
def test_fuzz_text_mutations_of_a_valid_spec(edits: list[tuple[int, int, str]]) -> None:
    text = VALID
    for position, deleted, inserted in edits:
        text = text[:position] + inserted + text[position + deleted :]
    _load_or_spec_error(text)


_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(),
    st.text(max_size=20),
    st.sampled_from(["10.10.0.7", "172.17.0.0/16", "02:42:ac:11:00:02", "bridge", "back", "veth0", "host"]),
)
_VALUES = st.recursive(
    _SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8,
)
_KEYS = st.text(max_size=12) | st.sampled_from(["subnet", "networks", "aliases", "ipv4_address"])
_VALUE_EDITS = st.lists(st.tuples(st.integers(0, 10**6), _KEYS, _VALUES), min_size=1, max_size=3)


@FUZZ
@given(_VALUE_EDITS)
def test_fuzz_structural_mutations_of_a_valid_spec(edits: list) -> None:
    """Set a key of a random mapping of VALID (an existing one, or a new one) to a random value."""
    yaml = YAML()
    data = yaml.load(VALID)
    for pick, key, value in edits:
        mappings = _mappings(data)
        target = mappings[pick % len(mappings)]
        keys = list(target)
        if keys and pick % 3:
            key = keys[pick % len(keys)]
        target[key] = value
    out = io.StringIO()
    yaml.dump(data, out)
    _load_or_spec_error(out.getvalue())


def test_quick_schema_check_passes_a_valid_spec() -> None:
    assert schema_check._fits(schema_check.schema(), yamlread.parse_yaml(VALID, FILE).data)


_EDGE_VALUES = st.sampled_from(
    [None, True, False, 0, 1, 1.0, 1.5, 67, 68, 65535, 65536, 2**70, float("nan"), float("inf"),
     "", "bridge", "10.0.0.1", [], ["a"], [1], {}, {"a": None}, {"a": "b"}]
).map(copy.deepcopy)  # a fresh list or dict each time


@FUZZ
@given(st.lists(st.tuples(st.integers(0, 10**6), _EDGE_VALUES), min_size=1, max_size=2))
def test_quick_schema_check_passes_nothing_that_jsonschema_rejects(edits: list) -> None:
    """Set an existing key of a random mapping of VALID to a value near the schema's limits."""
    data = yamlread.parse_yaml(VALID, FILE).data
    for pick, value in edits:
        mappings = [mapping for mapping in _mappings(data) if mapping]
        target = mappings[pick % len(mappings)]
        target[list(target)[pick % len(target)]] = value
    if schema_check._fits(schema_check.schema(), data):
        assert not list(Draft202012Validator(schema_check.schema()).iter_errors(data))


def _mappings(node) -> list:
    found = [node] if isinstance(node, dict) else []
    children = node.values() if isinstance(node, dict) else node if isinstance(node, list) else []
    for child in children:
        found += _mappings(child)
    return found


def test_overlaps_are_found_whichever_block_is_larger_and_in_spec_order():
    text = (
        "version: 1\nnetworks:\n"
        "  a: {bridge: ba, subnet: 10.1.2.0/24}\n"
        "  b: {bridge: bb, subnet: 10.9.0.0/16}\n"
        "  c: {bridge: bc, subnet: 10.1.3.0/24}\n"
        "  big: {bridge: bbig, subnet: 10.1.0.0/16}\n"
        "  small: {bridge: bsmall, subnet: 10.9.7.128/25}\n"
        "  same: {bridge: bsame, subnet: 10.9.0.0/16}\n"
        "containers: {}\n"
    )
    with pytest.raises(SpecError) as caught:
        load_spec_text(text, "o.yaml")
    assert [p.message for p in caught.value.problems] == [
        "10.1.0.0/16 overlaps 10.1.2.0/24 of network 'a'",
        "10.1.0.0/16 overlaps 10.1.3.0/24 of network 'c'",
        "10.9.7.128/25 overlaps 10.9.0.0/16 of network 'b'",
        "10.9.0.0/16 overlaps 10.9.0.0/16 of network 'b'",
        "10.9.0.0/16 overlaps 10.9.7.128/25 of network 'small'",
    ]


def _containers_on_one_network(count: int, options: str = "") -> str:
    return ("version: 1\nnetworks:\n  front: {subnet: 10.88.0.0/16" + options + "}\ncontainers:\n"
            + "".join(f"  c{n}: {{networks: [front]}}\n" for n in range(count)))


def test_a_bridge_network_holds_at_most_1023_containers_and_says_what_to_do():
    """The kernel's bridge refuses its 1024th port ("Exchange full"): found at validation,
    at the network's line, never halfway through an apply."""
    load_spec_text(_containers_on_one_network(1023), "spec.yaml")
    for count, options, why in ((1024, "", ""), (1023, ", uplink: eth9", ", and its uplink takes one")):
        with pytest.raises(SpecError) as error:
            load_spec_text(_containers_on_one_network(count, options), "spec.yaml")
        assert [str(problem) for problem in error.value.problems] == [
            f"spec.yaml:3:3: networks.front: {count} containers are attached but a Linux bridge holds at most 1023 "
            f"ports (the kernel's BR_MAX_PORTS: 1024 port numbers, 0 reserved){why}: spread the containers over "
            "several networks"]
    # macvlan children are no bridge ports
    load_spec_text(_containers_on_one_network(1100, ", driver: macvlan, parent: eth1"), "spec.yaml")
