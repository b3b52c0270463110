"""`netreconcile dns SPEC`: the embedded DNS server alone, for the containers of a spec.

It reads the spec and the live state (for the addresses the containers have), builds the
name tables with name discovery's scope, serves 127.0.0.11:53 in every namespace that
uses the resolver, re-reads the spec on SIGHUP and stops on SIGTERM or SIGINT.
"""

from __future__ import annotations

import os
import signal
import sys

from reconciler.dns.config import ResolverConfig, resolver_config
from reconciler.dns.metrics import ResolverMetrics
from reconciler.dns.server import Server
from reconciler.errors import KernelError, NetreconcileError
from reconciler.kernel.nlsocket import current_netns_fd
from reconciler.kernel.observe import observe
from reconciler.kernel.session import NETNS_DIR, netns_path
from reconciler.render import resolvconf
from reconciler.run import logs
from reconciler.run.engine import read_host_files
from reconciler.spec.loader import load_spec
from reconciler.spec.types import Spec
from reconciler.state.discovery import names_in_scope
from reconciler.state.ipam import assign_addresses, assign_interfaces
from reconciler.state.model import State

log = logs.get_logger()


def resolver_tables(spec: Spec, live: State, host_resolv_conf: str) -> ResolverConfig:
    """What to serve for `spec`, with the addresses the desired state gives (those of
    the live state where it has them) and the host's resolv.conf text."""
    interfaces = assign_interfaces(spec, live)
    addresses = assign_addresses(spec, live, interfaces)
    addresses6 = assign_addresses(spec, live, interfaces, family=6)
    scope = names_in_scope(spec, addresses, addresses6)
    return resolver_config(spec, resolvconf.parse(host_resolv_conf), scope)


def run_resolver(context, spec_path: str, metrics: ResolverMetrics | None = None) -> int:
    """Serve until SIGTERM or SIGINT; `context` is the CLI's (host namespace, session)."""
    spec = load_spec(spec_path)  # an invalid spec is refused before anything is served
    host_fd = _host_netns_fd(context.host_netns)
    server = Server(host_fd, NETNS_DIR, metrics)

    def load(spec: Spec) -> None:
        with context.session() as session:
            config = resolver_tables(spec, observe(session), read_host_files(spec).resolv_conf)
        if not config.namespaces:
            log.warning("dns: no container uses the embedded DNS server (host.dns_resolver: true, on a network "
                        "with discovery)")
        problems = server.configure(config)
        for name, problem in sorted(problems.items()):
            log.warning("dns: cannot serve a namespace", netns=name, problem=problem)
        log.info("dns serving", namespaces=len(server.served), listen=f"{resolvconf.INTERNAL_NAMESERVER}:53")

    def reload() -> None:
        try:
            load(load_spec(spec_path))
        except NetreconcileError as error:  # keep serving what was served
            log.error("dns: the spec was not reloaded", error=str(error).replace("\n", "; "))

    previous = {number: signal.getsignal(number) for number in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)}
    try:
        load(spec)
        signal.signal(signal.SIGTERM, lambda *_: server.stop())
        signal.signal(signal.SIGINT, lambda *_: server.stop())
        signal.signal(signal.SIGHUP, lambda *_: server.request_reload())
        server.serve(reload)
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
        server.close()
        os.close(host_fd)
    log.info("dns stopped")
    sys.stdout.flush()
    return 0


def _host_netns_fd(host_netns: str | None) -> int:
    if not host_netns:
        return current_netns_fd()
    try:
        return os.open(netns_path(host_netns), os.O_RDONLY | os.O_CLOEXEC)
    except OSError as error:
        raise KernelError(f"cannot open host namespace {host_netns}: {error.strerror} (apply the spec first)",
                          error.errno) from error
