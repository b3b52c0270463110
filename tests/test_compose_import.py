"""`netreconcile import`: the Compose files of tests/data/compose/ become the expected
spec documents, every spec produced validates with the real loader, and what the spec
cannot say is one stderr line per key with its Compose location."""

from __future__ import annotations

import io
import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ruamel.yaml import YAML

from reconciler.compose.importer import ComposeImportError, import_compose
from reconciler.compose.translate import bridge_name_for, normalize_project_name
from reconciler.errors import SourceError, SpecError
from reconciler.spec.loader import load_spec, load_spec_text
from reconciler.state.model import State
from reconciler.state.subnets import with_chosen_subnets

REPO = Path(__file__).resolve().parent.parent
DATA = REPO / "tests" / "data" / "compose"
CASES = sorted(path.name for path in DATA.iterdir() if (path / "compose.yaml").is_file())
# the environment each case is imported with (the mail suite: the environment beats its .env)
ENVIRONMENT = {"mailsuite": {"HTTP_PORT": "8081", "SUBMISSION_PORT": "1587"}}


def _yaml(text: str):
    return YAML(typ="safe").load(text)


def _import(case: str):
    return import_compose(str(DATA / case / "compose.yaml"), environment=ENVIRONMENT.get(case, {}))


def test_there_are_at_least_five_realistic_compose_files():
    assert len(CASES) >= 5


def _expected(case: str, name: str) -> Path:
    return DATA / case / name


@pytest.mark.parametrize("case", CASES)
def test_each_compose_file_imports_to_its_expected_spec_and_notes(case):
    result = _import(case)
    assert result.spec == _yaml(_expected(case, "expected.yaml").read_text())
    prefix = f"{DATA / case}/"
    notes = [str(note).replace(prefix, "") for note in result.notes]
    assert notes == _expected(case, "expected-notes.txt").read_text().splitlines()


@pytest.mark.parametrize("case", CASES)
def test_each_imported_spec_validates_with_the_real_loader(case, tmp_path):
    result = _import(case)
    spec = load_spec_text(result.text, f"{case}.yaml")
    assert spec.containers
    assert _yaml(result.text) == result.spec  # the text is what the spec says


def test_the_mail_suite_takes_addresses_and_ports_from_env_and_environment():
    spec = _import("mailsuite").spec
    network = spec["networks"]["mailsuite_mail-network"]
    assert network["subnet"] == "172.22.7.0/24"  # IPV4_NETWORK from .env (exported)
    assert spec["containers"]["unbound"]["networks"]["mailsuite_mail-network"]["ipv4_address"] == "172.22.7.254"
    assert spec["containers"]["postfix"]["hostname"] == "mail.example.org"  # from .env, required by :?
    # SMTP_PORT from .env, SUBMISSION_PORT from the environment; HTTPS_BIND unset, HTTP_BIND empty: every address
    assert spec["containers"]["postfix"]["ports"] == ["2525:25", "1587:587"]
    assert spec["containers"]["nginx"]["ports"] == ["8443:8443", "8081:8081"]  # HTTP_PORT: the environment wins


def test_a_missing_required_variable_stops_the_import_at_its_key(tmp_path):
    compose = tmp_path / "suite" / "compose.yaml"
    compose.parent.mkdir()
    compose.write_text((DATA / "mailsuite" / "compose.yaml").read_text())  # without its .env
    with pytest.raises(ComposeImportError) as error:
        import_compose(str(compose), environment={})
    assert str(error.value) == (f"{compose}:13:15: services.postfix.hostname: required variable MAILCOW_HOSTNAME "
                                "is missing a value: set MAILCOW_HOSTNAME in .env")


def test_an_env_file_beside_the_compose_file_is_never_read_through_a_symbolic_link(tmp_path):
    """The operator named the Compose file, not its .env: a link there is refused, naming
    it, while the file it points to named with --env-file is read."""
    compose = tmp_path / "suite" / "compose.yaml"
    compose.parent.mkdir()
    compose.write_text((DATA / "mailsuite" / "compose.yaml").read_text())
    elsewhere = tmp_path / "elsewhere.env"
    elsewhere.write_text((DATA / "mailsuite" / ".env").read_text())
    (compose.parent / ".env").symlink_to(elsewhere)
    with pytest.raises(SourceError) as error:
        import_compose(str(compose), environment={})
    assert str(error.value) == (f"{compose.parent / '.env'}: the .env beside the Compose file is a symbolic link, "
                                "and netreconcile follows no link to a file it was not named: put the file itself "
                                "there, or name it with --env-file")
    named = import_compose(str(compose), env_file=str(compose.parent / ".env"), environment={})
    assert named.spec["containers"]["postfix"]["hostname"] == "mail.example.org"
    (compose.parent / ".env").unlink()
    (compose.parent / ".env").write_text(elsewhere.read_text())
    assert import_compose(str(compose), environment={}).spec == named.spec


def _import_text(tmp_path: Path, text: str, directory: str = "proj", environment=None):
    compose = tmp_path / directory / "compose.yaml"
    compose.parent.mkdir(exist_ok=True)
    compose.write_text(text)
    result = import_compose(str(compose), environment=environment or {})
    load_spec_text(result.text, "out.yaml")
    return result.spec, [str(note).replace(f"{compose}:", "") for note in result.notes]


def test_default_network_is_named_after_the_project_and_written_without_subnet(tmp_path):
    spec, _ = _import_text(tmp_path, """
services:
  a: {networks: [front]}
  b: {}
networks:
  front:
    ipam: {config: [{subnet: 172.17.0.0/24}]}
""", directory="My Project.v2")
    # names longer than a kernel interface name get a bridge named as Docker's br-<id>
    assert spec["networks"] == {
        "myprojectv2_front": {"bridge": bridge_name_for("myprojectv2_front"), "subnet": "172.17.0.0/24"},
        "myprojectv2_default": {"bridge": bridge_name_for("myprojectv2_default")}}  # chosen at plan time
    assert bridge_name_for("myprojectv2_front") == "br-e25850b71c2a" and bridge_name_for("short_net") is None
    assert spec["containers"]["b"] == {"networks": ["myprojectv2_default"]}


def test_project_names_normalise_as_compose_does():
    assert normalize_project_name("My Project.v2") == "myprojectv2"
    assert normalize_project_name("__x-Y_z") == "x-y_z"
    assert normalize_project_name("...") == ""


def test_name_at_the_top_and_compose_project_name_choose_the_project(tmp_path):
    text = "name: Shop\nservices:\n  web: {}\n"
    assert list(_import_text(tmp_path, text)[0]["networks"]) == ["shop_default"]
    assert list(_import_text(tmp_path, text, environment={"COMPOSE_PROJECT_NAME": "other"})[0]["networks"]) == \
        ["other_default"]


def test_bridge_networks_without_subnet_are_written_without_one_for_plan_to_choose(tmp_path):
    spec, _ = _import_text(tmp_path, """
services:
  a: {networks: [one, two, three]}
  legacy: {network_mode: bridge}
networks:
  one: {}
  two: {ipam: {config: [{subnet: 172.17.0.0/23}]}}
  three: {}
""")
    subnets = {name: network.get("subnet") for name, network in spec["networks"].items()}
    assert subnets == {"proj_one": None, "proj_two": "172.17.0.0/23", "proj_three": None, "bridge": None}
    chosen = with_chosen_subnets(load_spec_text(json.dumps(spec), "out.yaml"), State())
    assert {network.name: str(network.subnet) for network in chosen.networks} == {
        "proj_one": "172.17.2.0/24", "proj_two": "172.17.0.0/23", "proj_three": "172.17.3.0/24",
        "bridge": "172.18.0.0/16"}


def test_networks_that_need_a_subnet_get_one_skipping_every_subnet_of_the_file_whatever_its_order(tmp_path):
    spec, _ = _import_text(tmp_path, """
services:
  a: {networks: {one: {}, two: {}, three: {}}}
  b: {networks: {one: {ipv4_address: 172.17.2.9}}}
networks:
  one: {}
  two: {ipam: {config: [{subnet: 172.17.0.0/23}]}}
  three: {}
""")
    subnets = {name: network.get("subnet") for name, network in spec["networks"].items()}
    assert subnets == {"proj_one": "172.17.2.0/24", "proj_two": "172.17.0.0/23", "proj_three": None}


def test_a_network_whose_containers_do_not_fit_a_24_gets_a_larger_subnet(tmp_path):
    services = "  s0: {networks: {big: {ipv4_address: 172.17.0.2}}}\n"  # a static address: a subnet is written
    services += "".join(f"  s{index}: {{networks: [big]}}\n" for index in range(1, 300))
    spec, _ = _import_text(tmp_path, f"services:\n{services}  t: {{}}\nnetworks:\n  big: {{}}\n")
    assert spec["networks"] == {"proj_big": {"subnet": "172.17.0.0/23"}, "proj_default": {}}


def test_what_the_loader_refuses_is_left_out_at_its_compose_line(tmp_path):
    spec, notes = _import_text(tmp_path, """
services:
  a:
    ports: ["8080:80", "9090:90"]
  b:
    ports: ["8080:80"]
    links: [c]
  c:
    networks:
      back: {ipv4_address: 10.99.0.5}
networks:
  back:
    ipam: {config: [{subnet: 172.30.1.0/24}]}
""")
    assert spec["containers"]["a"]["ports"] == ["8080:80", "9090:90"]
    assert "ports" not in spec["containers"]["b"]
    assert spec["containers"]["c"] == {"networks": ["proj_back"]}
    assert "links" not in spec["containers"]["b"]  # c shares no network with b
    assert notes == [
        "6:13: services.b.ports[0]: host port 8080/tcp is already published by services.a.ports[0] (4:13); left out",
        "7:13: services.b.links[0]: link target 'c' does not share a network with 'b'; left out",
        "10:14: services.c.networks.back.ipv4_address: 10.99.0.5 is outside the subnet 172.30.1.0/24; left out",
    ]


def test_a_container_left_with_no_network_is_left_out_and_so_are_references_to_it(tmp_path):
    spec, notes = _import_text(tmp_path, """
services:
  app:
    networks: [lan]
  sidecar:
    network_mode: service:app
  web: {}
networks:
  lan: {driver: overlay}
""")
    assert set(spec["containers"]) == {"web"}
    assert notes == [
        "3:3: services.app: container has no networks; left out",
        "4:16: services.app.networks[0]: network 'lan' cannot be made by netreconcile; this attachment is left out",
        "6:5: services.sidecar.network_mode: 'app' is not a container of this spec; the container is left out",
        "9:9: networks.lan.driver: driver 'overlay': netreconcile has no such driver; the network and its "
        "attachments are left out",
    ]


def test_every_port_form(tmp_path):
    spec, notes = _import_text(tmp_path, """
services:
  web:
    ports:
      - "80"
      - 81
      - "3000-3005"
      - "127.0.0.1::82"
      - ":83:83"
      - "8084:84/udp"
      - "[::1]:8085:85"
      - "8086-8087:86-87"
      - "8088:88/sctp"
      - {target: 89, published: 8089, protocol: udp, host_ip: 127.0.0.1}
      - {target: 90}
      - {published: 8091}
""")
    assert spec["containers"]["web"]["ports"] == ["83:83", "8084:84/udp", "8086-8087:86-87",
                                                  "127.0.0.1:8089:89/udp"]
    assert [note.split(": ", 2)[1] for note in notes] == [
        "services.web.ports[0]", "services.web.ports[1]", "services.web.ports[2]", "services.web.ports[3]",
        "services.web.ports[6]", "services.web.ports[8]", "services.web.ports[10]", "services.web.ports[11]"]
    assert "no host port: Docker picks a random one" in notes[0]
    assert "::1" in notes[4] and notes[4].endswith("left out")


def test_network_and_attachment_settings_map_one_to_one(tmp_path):
    spec, notes = _import_text(tmp_path, """
services:
  web:
    container_name: shop-web
    hostname: web
    domainname: shop.example
    mac_address: "02:42:ac:11:00:42"
    networks:
      front:
        ipv4_address: 172.31.9.10
        ipv6_address: "fd42:db8:9::10"
        aliases: [www]
        interface_name: lan0
        gw_priority: "5"
        priority: 100
        link_local_ips: [169.254.1.1]
    dns: 198.51.100.53
    dns_search: [shop.example]
    dns_opt: [ndots:1]
    extra_hosts: {registry: 198.51.100.9}
  db:
    networks: {front: null}
    links: ["web:frontend", web]
networks:
  front:
    enable_ipv6: true
    driver_opts:
      com.docker.network.bridge.enable_icc: "false"
      com.docker.network.bridge.gateway_mode_ipv6: routed
      com.docker.network.driver.mtu: 1450
    ipam:
      config:
        - {subnet: 172.31.9.0/24, gateway: 172.31.9.254, aux_addresses: {nas: 172.31.9.2}}
        - {subnet: "fd42:db8:9::/64", aux_addresses: {nas6: "fd42:db8:9::2"}}
""")
    assert spec["networks"]["proj_front"] == {
        "subnet": "172.31.9.0/24", "gateway": "172.31.9.254", "enable_ipv6": True, "subnet6": "fd42:db8:9::/64",
        "icc": False, "masquerade6": False, "mtu": 1450,
        "aux_addresses": {"nas": "172.31.9.2", "nas6": "fd42:db8:9::2"}}
    assert spec["containers"]["shop-web"] == {
        "networks": {"proj_front": {"ipv4_address": "172.31.9.10", "ipv6_address": "fd42:db8:9::10",
                                    "aliases": ["web", "www"], "interface_name": "lan0", "gw_priority": 5}},
        "hostname": "web", "domainname": "shop.example", "mac_address": "02:42:ac:11:00:42",
        "dns": ["198.51.100.53"], "dns_search": ["shop.example"], "dns_opt": ["ndots:1"],
        "extra_hosts": {"registry": "198.51.100.9"}}
    assert spec["containers"]["db"] == {"networks": ["proj_front"], "links": ["shop-web:frontend", "shop-web:web"]}
    assert [note.split(": ", 2)[1] for note in notes] == ["services.web.networks.front.priority",
                                                         "services.web.networks.front.link_local_ips"]


def test_network_modes(tmp_path):
    spec, notes = _import_text(tmp_path, """
services:
  app: {container_name: the-app}
  a: {network_mode: "service:app"}
  b: {network_mode: "container:the-app"}
  c: {network_mode: host}
  d: {network_mode: none}
  e: {network_mode: "container:elsewhere"}
  f: {network_mode: bridge}
""")
    modes = {name: container.get("network_mode") for name, container in spec["containers"].items()}
    assert modes == {"the-app": None, "a": "container:the-app", "b": "container:the-app", "c": "host", "d": "none",
                     "e": "none", "f": None}
    assert spec["containers"]["f"] == {"networks": ["bridge"]}
    assert spec["networks"]["bridge"] == {}  # Docker's default bridge: its subnet is chosen at plan time
    assert notes == ["8:7: services.e.network_mode: 'container:elsewhere': not a service or container of this file, "
                     "nor host, none or bridge; the container gets network_mode: none"]


def test_extra_hosts_in_both_forms_and_with_several_addresses(tmp_path):
    spec, _ = _import_text(tmp_path, """
services:
  a: {extra_hosts: ["one:198.51.100.1", "two=198.51.100.2", "six=2001:db8::6"]}
  b: {extra_hosts: {one: 198.51.100.1, many: [198.51.100.3, 198.51.100.4]}}
""")
    assert spec["containers"]["a"]["extra_hosts"] == ["one:198.51.100.1", "two=198.51.100.2", "six=2001:db8::6"]
    assert spec["containers"]["b"]["extra_hosts"] == ["one=198.51.100.1", "many=198.51.100.3", "many=198.51.100.4"]


@pytest.mark.parametrize("text, message", [
    ("- a\n- b\n", "not a Compose file: the top level is not a mapping"),
    ("# nothing\n", "not a Compose file: it is empty"),
    ("version: '3'\n", "not a Compose file: it has no services"),
    ("services: {}\n", "not a Compose file: it has no services"),
    ("services:\n  a: {}\n  a: {}\n", "invalid YAML"),
    ("services:\n  a: [\n", "invalid YAML"),
])
def test_what_is_not_a_compose_file_is_a_clear_error(tmp_path, text, message):
    compose = tmp_path / "compose.yaml"
    compose.write_text(text)
    with pytest.raises(SourceError, match=message) as error:
        import_compose(str(compose), environment={})
    assert str(error.value).startswith(str(compose))


def test_overlapping_subnets_stop_the_import_at_their_compose_line(tmp_path):
    compose = tmp_path / "p" / "compose.yaml"
    compose.parent.mkdir()
    compose.write_text("services:\n  a: {networks: [x, y]}\nnetworks:\n"
                       "  x: {ipam: {config: [{subnet: 10.1.0.0/16}]}}\n"
                       "  y: {ipam: {config: [{subnet: 10.1.2.0/24}]}}\n")
    with pytest.raises(ComposeImportError) as error:
        import_compose(str(compose), environment={})
    assert str(error.value).splitlines()[0] == (f"{compose}:5:24: networks.y.ipam.config[0].subnet: 10.1.2.0/24 "
                                                "overlaps 10.1.0.0/16 of network 'p_x'")


def test_yaml_anchors_and_merge_keys_of_compose_files_are_read(tmp_path):
    spec, notes = _import_text(tmp_path, """
x-net: &net
  networks: [front]
services:
  a:
    <<: *net
  b:
    <<: *net
networks:
  front: {}
""")
    assert spec["containers"] == {"a": {"networks": ["proj_front"]}, "b": {"networks": ["proj_front"]}}
    assert notes == ["2:1: x-net: an extension field, ignored"]


def test_the_loader_recognises_a_compose_file_and_points_to_import():
    with pytest.raises(SpecError) as error:
        load_spec(DATA / "webapp" / "compose.yaml")
    assert [str(problem) for problem in error.value.problems] == [
        f"{DATA / 'webapp' / 'compose.yaml'}:5:1: this is a Compose file (top-level services:, no containers:), not "
        f"a netreconcile spec: translate it with `netreconcile import {DATA / 'webapp' / 'compose.yaml'} -o spec.yaml`"]


# --- the command --------------------------------------------------------------------------------

def run(*args: str, cwd: Path = REPO, env: dict | None = None) -> subprocess.CompletedProcess:
    environment = {**os.environ, "PYTHONPATH": str(REPO), **(env or {})}
    return subprocess.run([sys.executable, "-m", "reconciler", *args], capture_output=True, text=True, cwd=cwd,
                          env=environment, timeout=120)


def test_import_prints_the_spec_and_lists_what_it_cannot_say_on_stderr():
    result = run("import", "tests/data/compose/webapp/compose.yaml")
    assert result.returncode == 0, result.stderr
    assert _yaml(result.stdout) == _yaml((DATA / "webapp" / "expected.yaml").read_text())
    assert result.stderr.splitlines() == [f"tests/data/compose/webapp/{line}" for line in
                                          (DATA / "webapp" / "expected-notes.txt").read_text().splitlines()]
    assert "tests/data/compose/webapp/compose.yaml:8:5: services.web.image: not a networking key, ignored" \
        in result.stderr.splitlines()


def test_import_writes_o_atomically_with_mode_0644_and_never_through_a_link(tmp_path):
    out = tmp_path / "spec.yaml"
    result = run("import", str(DATA / "static-ips" / "compose.yaml"), "-o", str(out))
    assert result.returncode == 0 and result.stdout == ""
    assert stat.S_IMODE(out.stat().st_mode) == 0o644
    assert run("validate", str(out)).returncode == 0
    assert [path.name for path in tmp_path.iterdir()] == ["spec.yaml"]  # no temporary file left

    target = tmp_path / "target.yaml"
    target.write_text("mine\n")
    link = tmp_path / "link.yaml"
    link.symlink_to(target)
    refused = run("import", str(DATA / "static-ips" / "compose.yaml"), "-o", str(link))
    assert refused.returncode == 1
    assert f"error: {link} is a symbolic link" in refused.stderr
    assert target.read_text() == "mine\n" and link.is_symlink()


def test_import_takes_env_file_and_the_environment(tmp_path):
    env_file = tmp_path / "prod.env"
    env_file.write_text("MAILCOW_HOSTNAME=mx.example.org\nIPV4_NETWORK=172.23.9\n")
    result = run("import", str(DATA / "mailsuite" / "compose.yaml"), "--env-file", str(env_file),
                 env={"HTTPS_PORT": "4443"})
    assert result.returncode == 0, result.stderr
    spec = _yaml(result.stdout)
    assert spec["networks"]["mailsuite_mail-network"]["subnet"] == "172.23.9.0/24"
    assert spec["containers"]["postfix"]["hostname"] == "mx.example.org"
    assert spec["containers"]["nginx"]["ports"][0] == "4443:4443"


def test_import_of_something_else_fails_with_one_line(tmp_path):
    (tmp_path / "compose.yaml").write_text("just text\n")
    result = run("import", str(tmp_path / "compose.yaml"))
    assert result.returncode == 1 and result.stdout == ""
    assert result.stderr == f"error: {tmp_path / 'compose.yaml'}:1:1: not a Compose file: the top level is not a " \
                            "mapping\n"
    missing = run("import", str(tmp_path / "absent.yaml"))
    assert missing.returncode == 1 and "cannot read" in missing.stderr


def test_a_bridge_name_that_cannot_be_one_is_noted_and_the_bridge_named_as_docker_would(tmp_path):
    spec, notes = _import_text(tmp_path, """
services:
  a: {networks: [backend]}
networks:
  backend:
    driver_opts: {com.docker.network.bridge.name: a-bridge-name-too-long}
""", directory="webshop-prod")
    assert spec["networks"]["webshop-prod_backend"]["bridge"] == bridge_name_for("webshop-prod_backend")
    assert notes == ["6:19: networks.backend.driver_opts.com.docker.network.bridge.name: 'a-bridge-name-too-long' "
                     "cannot be a bridge name: at most 15 characters; ignored"]


# --- whatever the Compose file, the spec validates (or the import stops with an error) -------------

_NETWORK_NAMES = st.sampled_from(["front", "back", "default", "bridge", "lan"])
_ADDRESSES = st.sampled_from(["172.30.1.5", "172.30.2.5", "10.0.0.1", "fd42:1::5", "bad", "172.30.1.0", ""])
_PORTS = st.sampled_from(["80", "8080:80", "127.0.0.1:81:80", "[::1]:82:80", ":83:83", "x", 80, "1-2:3",
                          {"target": 80, "published": 8080}, {"target": 80}, "9000-9001:9000-9001"])
_ATTACHMENTS = st.fixed_dictionaries({}, optional={
    "ipv4_address": _ADDRESSES, "ipv6_address": _ADDRESSES,
    "aliases": st.lists(st.sampled_from(["x", "bad_alias", "web"]), max_size=2),
    "mac_address": st.sampled_from(["02:42:ac:11:00:02", "zz", "01:00:00:00:00:00"]),
    "interface_name": st.sampled_from(["eth0", "eth1", "lo", "x" * 20]), "gw_priority": st.sampled_from([1, "2", "x"])})
_SERVICES = st.fixed_dictionaries({}, optional={
    "networks": st.one_of(st.lists(_NETWORK_NAMES, max_size=3),
                          st.dictionaries(_NETWORK_NAMES, st.one_of(st.none(), _ATTACHMENTS), max_size=3)),
    "network_mode": st.sampled_from(["host", "none", "bridge", "service:a", "service:zz", "container:web", "weird"]),
    "ports": st.lists(_PORTS, max_size=3),
    "links": st.lists(st.sampled_from(["a", "b:al", "zz", "web:x"]), max_size=2),
    "hostname": st.sampled_from(["h", "bad host", ""]), "container_name": st.sampled_from(["web", "c1", "bad name"]),
    "dns": st.sampled_from(["198.51.100.1", ["x"], 5]),
    "extra_hosts": st.sampled_from([["a:198.51.100.4"], {"b": "bad"}, {"c": ["198.51.100.4"]}, "x"]),
    "mac_address": st.just("02:42:ac:11:00:05"), "image": st.just("x")})
_NETWORKS = st.fixed_dictionaries({}, optional={
    "driver": st.sampled_from(["bridge", "macvlan", "overlay"]),
    "internal": st.sampled_from([True, "false", "x"]), "enable_ipv6": st.booleans(),
    "driver_opts": st.dictionaries(
        st.sampled_from(["com.docker.network.bridge.name", "com.docker.network.driver.mtu",
                         "com.docker.network.bridge.enable_icc", "parent", "other"]),
        st.sampled_from(["x", "1400", "true", "toolongbridgename1", "10"]), max_size=2),
    "ipam": st.fixed_dictionaries({}, optional={"config": st.lists(st.fixed_dictionaries({}, optional={
        "subnet": st.sampled_from(["172.30.1.0/24", "172.30.2.0/24", "172.30.0.0/16", "fd42:1::/64", "10.0.0.0/33"]),
        "gateway": _ADDRESSES,
        "aux_addresses": st.dictionaries(st.sampled_from(["p", "q"]), _ADDRESSES, max_size=2)}), max_size=2)})})
_COMPOSE_FILES = st.fixed_dictionaries(
    {"services": st.dictionaries(st.sampled_from(["a", "b", "c", "web", "db"]), st.one_of(_SERVICES, st.none()),
                                 min_size=1, max_size=4)},
    optional={"networks": st.dictionaries(_NETWORK_NAMES, st.one_of(_NETWORKS, st.none()), max_size=3)})


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(document=_COMPOSE_FILES)
def test_the_spec_produced_always_validates(tmp_path, document):
    compose = tmp_path / "compose.yaml"
    stream = io.StringIO()
    YAML(typ="safe").dump(document, stream)
    compose.write_text(stream.getvalue())
    try:
        result = import_compose(str(compose), environment={})
    except ComposeImportError as error:  # only a value nothing can stand in for: a subnet
        assert "subnet" in str(error).splitlines()[0], error
        return
    load_spec_text(result.text, "imported.yaml")


def test_a_macvlan_network_without_a_parent_is_an_internal_bridge_network(tmp_path):
    """Docker makes a dummy parent for it and forces it internal; this kernel has no
    dummy links, so the import keeps what Docker keeps: a network closed to the outside."""
    compose = tmp_path / "compose.yaml"
    compose.write_text("services:\n  a:\n    networks: [front]\nnetworks:\n  front:\n    driver: macvlan\n")
    result = import_compose(str(compose), environment={})
    network = next(iter(_yaml(result.text)["networks"].values()))
    assert network.get("driver", "bridge") == "bridge" and network["internal"] is True
    assert any("macvlan without driver_opts.parent" in str(note) for note in result.notes)


def test_a_macvlan_network_whose_parent_cannot_be_one_is_an_internal_bridge_network(tmp_path):
    spec, notes = _import_text(tmp_path, "services:\n  a:\n    networks: [lan]\nnetworks:\n  lan:\n"
                                         "    driver: macvlan\n    driver_opts: {parent: toolongbridgename1}\n")
    assert spec["networks"] == {"proj_lan": {"internal": True}}  # its subnet chosen at plan time
    assert notes == ["7:19: networks.lan.driver_opts.parent: 'toolongbridgename1' cannot be a macvlan parent (at "
                     "most 15 characters); imported as an internal bridge network"]


def test_a_bridge_name_two_networks_give_is_the_first_ones(tmp_path):
    """The second gets Docker's br-<id> name when its own name is too long to be one."""
    spec, notes = _import_text(tmp_path, "services:\n  a: {}\nnetworks:\n"
                                         "  front: {driver_opts: {com.docker.network.bridge.name: x}}\n"
                                         "  a-rather-long-name: {driver_opts: {com.docker.network.bridge.name: x}}\n")
    assert (spec["networks"]["proj_front"], spec["networks"]["proj_a-rather-long-name"]) == (
        {"bridge": "x"}, {"bridge": bridge_name_for("proj_a-rather-long-name")})
    assert notes == ["5:38: networks.a-rather-long-name.driver_opts.com.docker.network.bridge.name: bridge name 'x' "
                     "is already that of network 'proj_front'; ignored"]
