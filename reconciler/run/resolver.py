"""The embedded DNS server run by a command: alone (`netreconcile dns SPEC`), or on a
thread of `watch` and `sync` (BackgroundResolver), reconfigured after each of their passes.

`netreconcile dns` reads the spec and the live state (for the addresses the containers have), builds the
name tables with name discovery's scope, serves 127.0.0.11:53 in every namespace that
uses the resolver, re-reads the spec on SIGHUP and stops on SIGTERM or SIGINT.
"""

from __future__ import annotations

import os
import signal
import sys
import threading

from reconciler.dns.config import ResolverConfig, resolver_config
from reconciler.dns.metrics import ResolverMetrics
from reconciler.dns.server import Server
from reconciler.errors import KernelError, NetreconcileError
from reconciler.kernel.lock import dns_serving
from reconciler.kernel.nlsocket import current_netns_fd
from reconciler.kernel.observe import observe
from reconciler.kernel.session import NETNS_DIR, KernelSession, netns_path
from reconciler.kernel.statedir import StateDir
from reconciler.render import resolvconf
from reconciler.run import logs
from reconciler.run.engine import read_host_files
from reconciler.spec.types import Spec
from reconciler.state.discovery import names_in_scope
from reconciler.state.ipam import assign_addresses, assign_interfaces
from reconciler.state.model import State
from reconciler.state.subnets import needs_choice, with_chosen_subnets

log = logs.get_logger()


def resolver_tables(spec: Spec, live: State, host_resolv_conf: str) -> ResolverConfig:
    """What to serve for `spec`, with the addresses the desired state gives (those of
    the live state where it has them) and the host's resolv.conf text."""
    spec = with_chosen_subnets(spec, live)
    interfaces = assign_interfaces(spec, live)
    addresses = assign_addresses(spec, live, interfaces)
    addresses6 = assign_addresses(spec, live, interfaces, family=6)
    scope = names_in_scope(spec, addresses, addresses6)
    return resolver_config(spec, resolvconf.parse(host_resolv_conf), scope)


def observed_tables(spec: Spec, session: KernelSession) -> ResolverConfig:
    """resolver_tables for `spec` and the state `session` observes now (`netreconcile dns`,
    which converges nothing; a watch pass has its observation in its Outcome)."""
    return resolver_tables(spec, observe(session, host_networks=needs_choice(spec)), read_host_files(spec).resolv_conf)


def _configure(server: Server, config: ResolverConfig) -> None:
    problems = server.configure(config)
    for name, problem in sorted(problems.items()):
        log.warning("dns: cannot serve a namespace", netns=name, problem=problem)
    log.info("dns serving", namespaces=len(server.served), listen=f"{resolvconf.INTERNAL_NAMESERVER}:53")


class BackgroundResolver:
    """The embedded DNS server on its own thread (its own selector loop), for watch and
    sync. `update` hands it the tables of a pass; the loop thread takes them up at once,
    so that only that thread touches the server's sockets. The dns lock is held while the
    server serves (until `close`, or until the server fails), so that apply and status know
    whether DNS is served."""

    def __init__(self, host_netns: str | None, state_dir: StateDir, metrics: ResolverMetrics | None = None):
        self._held = dns_serving(state_dir)
        self._held.__enter__()
        self._release_once = threading.Lock()
        try:
            self._host_fd = _host_netns_fd(host_netns)
        except BaseException:
            self._release()
            raise
        self.server = Server(self._host_fd, NETNS_DIR, metrics)
        self._pending: ResolverConfig | None = None
        self._thread = threading.Thread(target=self._serve, name="dns", daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        try:
            self.server.serve(self._take_pending)
        except BaseException as error:  # noqa: BLE001 - whatever stops it, nothing answers any more
            log.error("dns: the server stopped; containers asking 127.0.0.11 get no answer",
                      error=f"{type(error).__name__}: {error}")
            self._release()  # so that apply and status warn

    def _release(self) -> None:
        with self._release_once:
            if self._held is not None:
                self._held.__exit__(None, None, None)
                self._held = None

    def update(self, config: ResolverConfig) -> None:
        self._pending = config
        self.server.request_reload()

    def _take_pending(self) -> None:
        config, self._pending = self._pending, None
        if config is not None:
            _configure(self.server, config)

    def close(self) -> None:
        self.server.stop()
        self._thread.join()
        self.server.close()
        os.close(self._host_fd)
        self._release()
        log.info("dns stopped")


def run_resolver(context, spec_path: str, metrics: ResolverMetrics | None = None) -> int:
    """Serve until SIGTERM or SIGINT; `context` is the CLI's (host namespace, session)."""
    spec = context.load(spec_path)  # an invalid spec is refused before anything is served
    host_fd = _host_netns_fd(context.host_netns)
    server = Server(host_fd, NETNS_DIR, metrics)

    def load(spec: Spec) -> None:
        with context.session() as session:
            config = observed_tables(spec, session)
        if not config.namespaces:
            log.warning("dns: no container uses the embedded DNS server (host.dns_resolver: true, on a network "
                        "with discovery)")
        _configure(server, config)

    def reload() -> None:
        try:
            load(context.load(spec_path))
        except NetreconcileError as error:  # keep serving what was served
            log.error("dns: the spec was not reloaded", error=str(error).replace("\n", "; "))

    previous = {number: signal.getsignal(number) for number in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)}
    try:
        with dns_serving(context.state_dir):
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
