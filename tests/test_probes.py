"""What `check` probes and what each probe should find (reconciler.state.probes, pure),
the hosts-file lookup it does as glibc's files source would, and its document."""

from __future__ import annotations

from ipaddress import IPv4Address

from reconciler.kernel.probing import ProbeResult, _hosts_lookup, _name_result
from reconciler.render.probetable import probe_document
from reconciler.spec.loader import load_spec_text
from reconciler.state.model import State
from reconciler.state.probes import DnsProbe, GatewayProbe, NameProbe, PortProbe, ReachProbe, plan_probes

SPEC = """\
version: 1
host: {dns_resolver: true}
networks:
  front: {subnet: 203.0.113.0/24}
  back: {subnet: 198.51.100.0/24, icc: false}
  hidden: {subnet: 10.99.0.0/24, internal: true}
containers:
  web:
    networks:
      front: {ipv4_address: 203.0.113.10, aliases: [www]}
    ports: ["8080:80", "127.0.0.1:9000:90", "5353:53/udp"]
    extra_hosts: ["www:203.0.113.99"]
  api: {networks: [front]}
  db: {networks: [back]}
  cache: {networks: [back]}
  vault: {networks: [hidden]}
  sidecar: {network_mode: "container:web"}
  lonely: {network_mode: host}
"""


def probes_of(container: str) -> list:
    return [probe for probe in plan_probes(load_spec_text(SPEC, "spec.yaml"), State()) if probe.container == container]


def test_gateway_ports_and_reach_with_icc_and_isolation():
    web = probes_of("web")
    assert GatewayProbe("web", IPv4Address("203.0.113.1"), "front") in web
    ports = {(p.host_address, p.host_port, p.port) for p in web if isinstance(p, PortProbe)}
    assert ports == {(IPv4Address("127.0.0.1"), 8080, 80), (IPv4Address("127.0.0.1"), 9000, 90)}  # TCP only
    reach = {(p.target, p.network, p.should_answer) for p in web if isinstance(p, ReachProbe)}
    assert reach == {("api", "front", True), ("db", "back", False)}
    db_reach = {(p.target, p.network, p.should_answer, p.why) for p in probes_of("db") if isinstance(p, ReachProbe)}
    assert ("cache", "back", False, "icc: false") in db_reach


def test_names_follow_the_hosts_file_order_extra_hosts_first():
    names = {p.name: (p.expected, p.source) for p in probes_of("web") if isinstance(p, NameProbe)}
    assert names["www"] == ((IPv4Address("203.0.113.99"),), "extra_hosts")  # its line comes before discovery's
    assert names["api"][1] == "discovery"
    assert DnsProbe("web", "web", (IPv4Address("203.0.113.10"),)) in probes_of("web")


def test_internal_only_has_no_gateway_nor_isolation_probe_and_shared_and_host_get_little():
    vault = probes_of("vault")
    assert not [p for p in vault if isinstance(p, (GatewayProbe, ReachProbe))]
    assert {type(p) for p in probes_of("sidecar")} == {NameProbe}  # web's interfaces, its own files
    assert probes_of("lonely") == []


def test_hosts_lookup_is_the_first_ipv4_line_naming_it_case_insensitive(tmp_path):
    hosts = tmp_path / "hosts"
    hosts.write_text("127.0.0.1 localhost\n::1 web\n203.0.113.99 WWW # first\n203.0.113.10 www web\n# 1.2.3.4 api\n")
    lookup = _hosts_lookup(str(hosts))
    assert lookup["www"] == IPv4Address("203.0.113.99") and lookup["web"] == IPv4Address("203.0.113.10")
    assert "api" not in lookup
    wrong = _name_result(NameProbe("c", "www", (IPv4Address("203.0.113.10"),), "discovery"), str(hosts), lookup)
    assert wrong.result == "failed" and "resolves to 203.0.113.99" in wrong.detail
    missing = _name_result(NameProbe("c", "api", (IPv4Address("203.0.113.11"),), "discovery"), str(hosts), lookup)
    assert missing.result == "failed" and "not in" in missing.detail
    assert _name_result(NameProbe("c", "x", (), "link"), "/nonexistent/hosts",
                        _hosts_lookup("/nonexistent/hosts")).result == "failed"


def test_document_counts_only_failed_as_failures():
    document = probe_document([ProbeResult("a", "reach b on n", "blocked as expected", ""),
                               ProbeResult("a", "port", "no listener", ""), ProbeResult("a", "gateway", "ok", "")])
    assert document["failed"] == 0
    assert document["counts"] == {"blocked as expected": 1, "no listener": 1, "ok": 1}
    assert document["summary"] == "3 probe(s): 1 blocked as expected, 1 no listener, 1 ok"
    assert probe_document([ProbeResult("a", "gateway", "failed", "")])["failed"] == 1


def test_no_isolation_probe_from_a_container_whose_way_out_is_a_lan_router():
    spec = load_spec_text("""\
version: 1
networks:
  office: {uplink: eth2, subnet: 203.0.113.128/25, gateway: 203.0.113.129, gateway_on_host: false}
  back: {subnet: 198.51.100.0/24}
containers:
  printer: {networks: [office]}
  scanner: {networks: [office]}
  db: {networks: [back]}
""", "spec.yaml")
    probes = plan_probes(spec, State())
    printer = [p for p in probes if p.container == "printer"]
    assert GatewayProbe("printer", IPv4Address("203.0.113.129"), "office") in printer
    assert {(p.target, p.should_answer) for p in printer if isinstance(p, ReachProbe)} == {("scanner", True)}
    assert ("printer", False) in {(p.target, p.should_answer) for p in probes
                                  if isinstance(p, ReachProbe) and p.container == "db"}


def test_the_open_files_limit_is_raised_for_many_sockets():
    import resource

    from reconciler.kernel.probing import _allow_descriptors

    before = resource.getrlimit(resource.RLIMIT_NOFILE)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (512, before[1]))
        _allow_descriptors(2000)
        soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
        assert soft == resource.RLIM_INFINITY or soft >= min(2000, before[1])
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, before)


def test_names_are_one_result_per_container_naming_the_wrong_ones():
    from reconciler.kernel.probing import _names_summary

    right = [ProbeResult("c", f"name n{index}", "ok", "") for index in range(8)]
    wrong = ProbeResult("c", "name www", "failed", "resolves to 203.0.113.99 in hosts, expected 203.0.113.10")
    summary = _names_summary("c", right)
    assert (summary.probe, summary.result) == ("names", "ok")
    assert summary.detail == "all 8 as the spec says in its /etc/hosts: n0, n1, n2, n3, n4, n5 and 2 more"
    failed = _names_summary("c", [*right, wrong])
    assert failed.result == "failed"
    assert failed.detail == "1 of 9 wrong: www: resolves to 203.0.113.99 in hosts, expected 203.0.113.10"


def test_a_hosts_file_that_is_a_symbolic_link_is_not_read_through(tmp_path):
    """The path is built from a spec name: a link put at the file or its directory is
    never followed, the probe fails instead."""
    victim = tmp_path / "victim"
    victim.write_text("203.0.113.10 www\n")
    container = tmp_path / "etc-netns" / "c"
    container.mkdir(parents=True)
    (container / "hosts").symlink_to(victim)
    linked_dir = tmp_path / "etc-netns" / "d"
    linked_dir.symlink_to(container)
    for path in (container / "hosts", linked_dir / "hosts"):
        lookup = _hosts_lookup(str(path))
        assert isinstance(lookup, OSError)
        assert _name_result(NameProbe("c", "www", (IPv4Address("203.0.113.10"),), "discovery"), str(path),
                            lookup).result == "failed"
    (container / "hosts").unlink()
    (container / "hosts").write_text("203.0.113.10 www\n")
    assert _hosts_lookup(str(container / "hosts"))["www"] == IPv4Address("203.0.113.10")
