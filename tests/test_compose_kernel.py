"""Imported Compose files applied in a sandbox: the addresses, names and published ports
the Compose file says are what the containers get (kernel tests).

Container names carry the sandbox's prefix (each service gets `container_name:
<prefix>-<name>`), so the import also gives every container its service name as an alias,
as Compose does: the names the Compose file uses are the ones looked up.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from ruamel.yaml import YAML

from tests.conftest import REPO, netns_names, sh
from tests.test_firewall import World

pytestmark = pytest.mark.kernel

DATA = REPO / "tests" / "data" / "compose"


@pytest.fixture
def world(sandbox):
    servers = World(sandbox)
    try:
        yield servers
    finally:
        servers.stop()


def imported(sandbox, case: str, environment: dict[str, str] | None = None) -> Path:
    """The spec imported from the case's Compose file, its containers named with the sandbox prefix."""
    directory = sandbox.tmp / case
    shutil.copytree(DATA / case, directory)
    yaml = YAML()
    compose = yaml.load((directory / "compose.yaml").read_text())
    for service, settings in compose["services"].items():
        settings["container_name"] = sandbox.name(settings.get("container_name", service))
    with open(directory / "compose.yaml", "w") as out:
        yaml.dump(compose, out)
    spec = directory / "spec.yaml"
    result = subprocess.run([sys.executable, "-m", "reconciler", "import", str(directory / "compose.yaml"), "-o",
                             str(spec)], capture_output=True, text=True, cwd=REPO, env=environment, timeout=120)
    assert result.returncode == 0, result.stderr
    if sandbox.host not in netns_names():
        sh(f"ip netns add {sandbox.host}")
        sh(f"ip -n {sandbox.host} link set lo up")  # as on any real host: 127.0.0.1 answers
    sandbox.apply(spec)
    return spec


def getent(sandbox, container: str, name: str) -> str | None:
    """The first address `getent hosts NAME` gives in the container, or None."""
    result = subprocess.run(["ip", "netns", "exec", sandbox.name(container), "getent", "hosts", name],
                            capture_output=True, text=True, timeout=30)
    return result.stdout.split()[0] if result.returncode == 0 else None


def address_of(sandbox, container: str, interface: str = "eth0") -> str:
    return sandbox.addresses(sandbox.name(container))[interface][0].split("/")[0]


def test_the_web_app_gets_its_default_network_names_and_ports(sandbox, world):
    imported(sandbox, "webapp")
    web, db, cache = (address_of(sandbox, name) for name in ("web", "db", "cache"))
    for address in (web, db, cache):  # Compose's default network, made explicit with the first free /24
        assert address.startswith("172.17.0.")
    assert len({web, db, cache}) == 3
    assert getent(sandbox, "web", "db") == db  # by service name, on the shared network
    assert getent(sandbox, "web", "database") == db  # the link's alias
    assert getent(sandbox, "db", "cache") == cache
    assert getent(sandbox, "web", "metrics.internal") == "198.51.100.20"  # extra_hosts
    assert getent(sandbox, "cache", "cache.shop.example") == cache  # hostname and domainname
    world.serve(sandbox.name("web"), "tcp", 8000)
    world.serve(sandbox.name("web"), "tcp", 9090)
    assert world.ask(sandbox.host, "127.0.0.1", 8080) is not None  # "8080:8000"
    assert world.ask(sandbox.host, "127.0.0.1", 9090) is not None  # "127.0.0.1:9090:9090"
    assert world.ask(sandbox.host, "127.0.0.1", 8000) is None  # "8000": a random host port, left out


def test_static_addresses_on_two_networks(sandbox, world):
    imported(sandbox, "static-ips")
    proxy = sandbox.name("edge-proxy")
    assert sandbox.addresses(proxy)["front0"] == ["172.30.10.10/24"]  # interface_name and ipv4_address
    back = next(name for name, addresses in sandbox.addresses(proxy).items() if addresses == ["172.30.20.10/24"])
    assert sandbox.links(proxy)[back]["address"] == "02:42:ac:1e:14:0a"
    assert sandbox.links(proxy)["front0"]["mtu"] == 1400  # com.docker.network.driver.mtu
    assert "edge-front" in sandbox.links(sandbox.host)  # com.docker.network.bridge.name
    assert address_of(sandbox, "api") == "172.30.20.20"
    assert address_of(sandbox, "worker") == "172.30.20.2"
    assert "via 172.30.10.1" in sandbox.in_ns("edge-proxy", "ip route show default")  # gw_priority: front
    assert sandbox.in_ns("api", "ip route show default").strip() == ""  # only on the internal back end
    assert getent(sandbox, "api", "proxy") == "172.30.20.10"  # the service name, on the network they share
    assert getent(sandbox, "worker", "api.internal") == "172.30.20.20"
    assert getent(sandbox, "edge-proxy", "www") == "172.30.10.10"
    assert "nameserver 198.51.100.53" in Path(f"/etc/netns/{sandbox.name('api')}/resolv.conf").read_text()
    world.serve(proxy, "tcp", 8080)
    assert world.ask(sandbox.host, "127.0.0.1", 80) is not None  # "80:8080"


def test_the_mail_suite_takes_its_addresses_and_ports_from_env_and_environment(sandbox, world):
    import os

    imported(sandbox, "mailsuite", environment={**os.environ, "HTTP_PORT": "8081"})
    assert address_of(sandbox, "unbound") == "172.22.7.254"  # ${IPV4_NETWORK:-172.22.1}.254, .env's network
    assert address_of(sandbox, "postfix") == "172.22.7.253"
    assert getent(sandbox, "nginx", "unbound") == "172.22.7.254"
    assert getent(sandbox, "nginx", "mail.example.org") == "172.22.7.253"
    world.serve(sandbox.name("nginx"), "tcp", 8081)
    assert world.ask(sandbox.host, "127.0.0.1", 8081) is not None  # "${HTTP_BIND:-}:${HTTP_PORT:-80}:..."


def test_apply_of_a_compose_file_fails_with_a_hint_to_import_and_changes_nothing(sandbox):
    compose = DATA / "webapp" / "compose.yaml"
    result = sandbox.run("apply", spec=compose)
    assert result.code == 1
    assert result.stderr.splitlines()[0] == (
        f"{compose}:5:1: this is a Compose file (top-level services:, no containers:), not a netreconcile spec: "
        f"translate it with `netreconcile import {compose} -o spec.yaml`")
    assert sandbox.host not in netns_names()


def test_sidecars_share_the_namespace_of_their_service(sandbox, world):
    imported(sandbox, "sidecar")
    app = sandbox.addresses(sandbox.name("app"))
    assert app["eth0"][0].startswith("172.18.0.")  # the default network, after bridge took 172.17.0.0/16
    # network_mode: service:app and service:proxy: the same namespace, under their own names
    assert sandbox.addresses(sandbox.name("proxy")) == app == sandbox.addresses(sandbox.name("debug"))
    assert address_of(sandbox, "legacy").startswith("172.17.")  # network_mode: bridge, Docker's default bridge
    assert sandbox.addresses(sandbox.name("batch")) == {"lo": ["127.0.0.1/8"]}  # network_mode: none
    world.serve(sandbox.name("proxy"), "tcp", 8443)  # a sidecar serves the port its service publishes
    assert world.ask(sandbox.host, "127.0.0.1", 8443) is not None
