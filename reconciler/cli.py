"""The command line: parse options, run the engine, print, map errors to exit codes.

Exit codes: 0 success or in sync, 1 error, 2 changes pending (only with
--detailed-exitcode). Human output goes to stdout, logs (structlog) to stderr,
`-o json` prints exactly one JSON document on stdout.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import sys
import time

import click

from reconciler import __version__
from reconciler.errors import (
    PRIVILEGES_NEEDED, ConflictError, NetreconcileError, PrerequisiteError, SourceError, SpecError, UsageError,
    privileges_advice,
)
from reconciler.kernel.session import ETC_NETNS_DIR, KernelSession, netns_path
from reconciler.kernel.statedir import StateDir, state_root
from reconciler.render.plantext import STYLES, action_line, outcome_line, plan_document, summary_line
from reconciler.run import logs
from reconciler.run.engine import converge, cycle_collector_paused, plan_for
from reconciler.spec.loader import load_spec
from reconciler.spec.nodes import NodeChoice
from reconciler.spec.types import Spec
from reconciler.spec.values import NAME_MAX, name_issue
from reconciler.state.desired import used_not_owned
from reconciler.state.plan import Plan

EXIT_OK, EXIT_ERROR, EXIT_CHANGES = 0, 1, 2
NEEDED_CAPABILITIES = {"CAP_SYS_ADMIN": 21, "CAP_NET_ADMIN": 12}  # bits in /proc/self/status CapEff
ALL_CAPABILITIES = (1 << 64) - 1
PROGRESS_THRESHOLD = 50

log = logs.get_logger()


class Context:
    def __init__(self, host_netns: str | None, state_dir: str | None, etc_netns: str | None = None,
                 verbose: bool = False, node: str | None = None):
        if host_netns is not None and name_issue(host_netns):
            raise UsageError(f"--host-netns {host_netns!r} is not a valid namespace name "
                             f"(1-{NAME_MAX} of [A-Za-z0-9_.-], starting with a letter or digit)")
        self.host_netns = host_netns
        self.state_dir = StateDir(state_dir or state_root(), host_netns)
        self.etc_netns = etc_netns or os.environ.get("NETRECONCILE_ETC_NETNS", ETC_NETNS_DIR)
        self.verbose = verbose  # the global -v
        self.node = node  # --node; None: the machine's hostname

    def node_choice(self) -> NodeChoice:
        """The node this host applies a multi-host spec as: --node, else the machine's hostname."""
        import socket

        return NodeChoice(self.node) if self.node is not None else NodeChoice(socket.gethostname(), given=False)

    @cycle_collector_paused
    def load(self, spec_path: str) -> Spec:
        return load_spec(spec_path, self.node_choice())

    def session(self) -> KernelSession:
        return KernelSession(self.host_netns, self.state_dir, self.etc_netns)

    def read_only_session(self) -> KernelSession:
        """A session for plan and status. A --host-netns that does not exist yet is what
        apply creates: an empty namespace, so an unnamed empty one stands in for it."""
        if self.host_netns and not os.path.exists(netns_path(self.host_netns)):
            from reconciler.kernel.namespaces import empty_netns_fd

            stand_in = empty_netns_fd()
            try:
                return KernelSession(self.host_netns, self.state_dir, self.etc_netns, host_fd=stand_in)
            except BaseException:
                os.close(stand_in)
                raise
        return self.session()


class _Group(click.Group):
    """Click exits 2 on a usage error, but 2 means "changes pending" here: map it to 1."""

    def main(self, *args, **kwargs):
        kwargs["standalone_mode"] = False
        try:
            code = super().main(*args, **kwargs)
        except click.UsageError as error:
            error.show()
            code = EXIT_ERROR
        except click.Abort:
            click.echo("Aborted!", err=True)
            code = EXIT_ERROR
        sys.exit(code or 0)


def _global_options(command):
    """--host-netns, --state-dir, --etc-netns and --node are accepted before or after the subcommand."""

    @click.option("--host-netns", "host_netns_local", metavar="NAME", default=None,
                  help="Use network namespace NAME as the host (created if absent).")
    @click.option("--etc-netns", "etc_netns_local", metavar="DIR", default=None,
                  help="Where container files go (default $NETRECONCILE_ETC_NETNS or /etc/netns).")
    @click.option("--node", "node_local", metavar="NAME", default=None,
                  help="The node of a multi-host spec this host is (default: the machine's hostname).")
    @click.option("--state-dir", "state_dir_local", metavar="DIR", default=None,
                  help="State directory (default $NETRECONCILE_STATE_DIR or /var/lib/netreconcile).")
    @click.pass_context
    @functools.wraps(command)
    def wrapper(ctx, host_netns_local, state_dir_local, etc_netns_local, node_local, **kwargs):
        parent = ctx.obj or {}
        started = time.monotonic()
        try:
            context = Context(host_netns_local or parent.get("host_netns"), state_dir_local or parent.get("state_dir"),
                              etc_netns_local or parent.get("etc_netns"), verbose=parent.get("verbose", False),
                              node=node_local or parent.get("node"))
            code = command(context, **kwargs)
        except SpecError as error:
            for problem in error.problems:
                click.echo(str(problem), err=True)
            click.echo(f"error: the spec is invalid ({len(error.problems)} problem(s)); nothing was changed", err=True)
            code = EXIT_ERROR
        except NetreconcileError as error:
            click.echo(f"error: {error}", err=True)
            code = EXIT_ERROR
        except OSError as error:  # the last boundary: a system error no layer translated
            where = f" ({error.filename})" if error.filename else ""
            advice = privileges_advice(error.errno)
            click.echo(f"error: {error.strerror or error}{where}" + (f"\n{advice}" if advice else ""), err=True)
            code = EXIT_ERROR
        log.debug("command finished", command=ctx.info_name, exit_code=code,
                  duration_ms=round((time.monotonic() - started) * 1000, 1))
        ctx.exit(code)

    return wrapper


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--host-netns", metavar="NAME", default=None,
              help="Use network namespace NAME as the host (created if absent) instead of the current one.")
@click.option("--state-dir", metavar="DIR", default=None, help="State directory.")
@click.option("--etc-netns", metavar="DIR", default=None, help="Directory of container files (default /etc/netns).")
@click.option("-v", "--verbose", is_flag=True,
              help="Log informational messages too (one-shot commands log warnings and errors only).")
@click.option("--node", metavar="NAME", default=None,
              help="The node of a multi-host spec this host is: it builds that node's containers "
                   "(default: the machine's hostname).")
@click.version_option(version=__version__, prog_name="netreconcile")
@click.pass_context
def main(ctx, host_netns, state_dir, etc_netns, verbose, node):
    """netreconcile: declarative Docker-style container networking."""
    # stderr, so that a command's output stays clean; watch, sync and dns log their passes
    logs.configure(logging.INFO if verbose else logging.WARNING)
    ctx.obj = {"host_netns": host_netns, "state_dir": state_dir, "etc_netns": etc_netns, "verbose": verbose,
               "node": node}


SPEC = click.argument("spec_path", metavar="SPEC", type=click.Path(dir_okay=False))
OUTPUT = click.option("-o", "--output", type=click.Choice(["text", "json"]), default="text", help="Output format.")
DETAILED = click.option("--detailed-exitcode", is_flag=True, help="Exit 2 when there are changes pending.")
FORCE = click.option("--force", is_flag=True,
                     help="Apply even if the plan deletes all managed containers or more than half of them.")
NO_ROLLBACK = click.option("--no-rollback", is_flag=True,
                           help="When an action fails, keep the partial changes (for debugging) instead of undoing them.")
LOCK_TIMEOUT = click.option("--lock-timeout", type=click.FloatRange(min=0), default=60.0, show_default=True,
                            metavar="SECONDS", help="How long to wait for another netreconcile on this host namespace.")


@main.command()
@SPEC
@_global_options
def validate(context: Context, spec_path: str) -> int:
    """Check SPEC and report every problem with its location.

    \b
    Example:
      netreconcile validate specs/quickstart.yaml
    """
    from reconciler.state.subnets import chosen_size

    spec = load_spec(spec_path, None if context.node is None else NodeChoice(context.node))
    click.echo(f"{spec_path}: valid ({len(spec.networks)} network(s), {len(spec.containers)} container(s))")
    for network in spec.networks:
        if network.subnet is None:  # the host's networks, which it avoids, are read by plan
            size = chosen_size(network, sum(a.network == network.name for c in spec.containers for a in c.networks))
            click.echo(f"network {network.name}: no subnet: plan chooses one (the first free /{size} of Docker's "
                       "default pools that overlaps no network of the host or the spec), and keeps it")
    return EXIT_OK


@main.command("plan")
@SPEC
@OUTPUT
@DETAILED
@_global_options
def plan_command(context: Context, spec_path: str, output: str, detailed_exitcode: bool) -> int:
    """Show what apply would change; changes nothing.

    \b
    Example:
      netreconcile --host-netns nr-demo plan specs/quickstart.yaml
      netreconcile plan -o json --detailed-exitcode spec.yaml   # exit 2: changes pending
    """
    spec = context.load(spec_path)
    plan = _read_only_plan(context, spec)
    _print_plan(plan, output)
    return _exit_code(plan, detailed_exitcode)


@main.command("import")
@click.argument("compose_path", metavar="COMPOSE_FILE", type=click.Path(dir_okay=False))
@click.option("-o", "--output", "output_path", metavar="SPEC", default=None,
              help="Write the spec to SPEC (atomically; never through a link) instead of stdout.")
@click.option("--env-file", metavar="FILE", default=None,
              help="Variables for interpolation (default: the .env beside COMPOSE_FILE); the environment wins.")
def import_command(compose_path: str, output_path: str | None, env_file: str | None) -> int:
    """Translate the networking of a Compose file into a spec; what the spec cannot say is
    listed on stderr, one line per key.

    Example: netreconcile import compose.yaml -o spec.yaml
    """
    from reconciler.compose.importer import import_compose
    from reconciler.kernel.specfile import write_spec_file

    try:
        result = import_compose(compose_path, env_file)
        for note in result.notes:
            click.echo(str(note), err=True)
        if output_path is None:
            click.echo(result.text, nl=False)
        else:
            write_spec_file(output_path, result.text)
    except NetreconcileError as error:
        click.echo(f"error: {error}", err=True)
        return EXIT_ERROR
    return EXIT_OK


@main.command()
@SPEC
@OUTPUT
@DETAILED
@_global_options
def status(context: Context, spec_path: str, output: str, detailed_exitcode: bool) -> int:
    """Report drift between the kernel and SPEC; changes nothing.

    \b
    Example:
      netreconcile --host-netns nr-demo status --detailed-exitcode specs/quickstart.yaml
    """
    from reconciler.run.sources import git_status

    spec = context.load(spec_path)
    plan = _read_only_plan(context, spec)
    git = git_status(context.state_dir)
    warnings = _dns_warnings(context, spec)
    used = used_not_owned(spec)
    if output == "json":
        document = plan_document(plan, in_sync=not plan.actions, conflicts=list(plan.conflicts),
                                 used_not_owned=[{"interface": name, "use": use} for name, use in used.items()])
        if spec.node is not None:
            document["node"] = spec.node  # which node of a multi-host spec this host is
        if git is not None:
            document["git"] = git
        if warnings:
            document["warnings"] = warnings
        echo_json(document)
        return _exit_code(plan, detailed_exitcode)
    _print_warnings(warnings)
    if spec.node is not None:
        click.echo(f"Node: {spec.node}")
    if plan.actions or plan.conflicts:
        _print_plan(plan, output, verb="Drift")
    else:
        click.echo("In sync: the kernel matches the spec.")
    for name, use in used.items():  # never created, changed beyond their use, or deleted
        click.echo(f"{name} ({use}): used, not owned")
    if git is not None:
        error = ""
        if git["error"]:
            where = f"at commit {git['error_commit']}" if git["error_commit"] else "before any commit was read"
            error = f"; error {where}: {git['error']}"
        click.echo(f"Git: {git['repository']} {git['path']}: applied {git['applied'] or 'nothing yet'}, "
                   f"attempted {git['attempted'] or 'nothing yet'}{error}")
    return _exit_code(plan, detailed_exitcode)


@main.command()
@SPEC
@click.option("-o", "--output", type=click.Choice(["dot", "mermaid", "svg"]), default="dot", show_default=True,
              help="Graphviz DOT, Mermaid, or SVG drawn by Graphviz's dot.")
@click.option("--live", is_flag=True,
              help="Read the kernel (changes nothing) and mark what apply would create, delete or update.")
@_global_options
def graph(context: Context, spec_path: str, output: str, live: bool) -> int:
    """Draw SPEC's topology: networks, containers, addresses, ports, links, shared namespaces.

    \b
    Example:
      netreconcile graph -o svg specs/quickstart.yaml > quickstart.svg
      netreconcile --host-netns nr-demo graph --live -o mermaid specs/quickstart.yaml
    """
    from reconciler.render import graph as drawing
    from reconciler.state.desired import build_desired
    from reconciler.state.model import State
    from reconciler.state.subnets import with_chosen_subnets

    spec = context.load(spec_path)
    if live:
        from reconciler.run.engine import plan_and_states

        _require_root()
        with context.read_only_session() as session:
            current, observed, desired = plan_and_states(spec, session)
        topology = drawing.topology(with_chosen_subnets(spec, observed), desired, current)
    else:  # addresses and chosen subnets as a first apply gives them: the kernel is not read
        spec = with_chosen_subnets(spec, State())
        topology = drawing.topology(spec, build_desired(spec, State()))
    if output == "mermaid":
        click.echo(drawing.to_mermaid(topology), nl=False)
    elif output == "svg":
        from reconciler.graphviz import dot_to_svg

        click.echo(dot_to_svg(drawing.to_dot(topology)), nl=False)
    else:
        click.echo(drawing.to_dot(topology), nl=False)
    return EXIT_OK


@main.command()
@SPEC
@OUTPUT
@_global_options
def show(context: Context, spec_path: str, output: str) -> int:
    """List what the kernel holds for SPEC, per network and container, with where each came from in SPEC.

    \b
    Example:
      netreconcile --host-netns nr-demo show specs/quickstart.yaml
      netreconcile --host-netns nr-demo show -o json specs/quickstart.yaml | jq '.containers[].interfaces'
    """
    from reconciler.kernel.session import NETNS_DIR
    from reconciler.render import inventory
    from reconciler.run.engine import plan_and_states
    from reconciler.state.subnets import with_chosen_subnets

    spec = context.load(spec_path)
    _require_root()
    with context.read_only_session() as session:
        _, live, desired = plan_and_states(spec, session)
    document = inventory.inventory(with_chosen_subnets(spec, live), live, desired, context.host_netns or "", NETNS_DIR,
                                   context.etc_netns)
    if output == "json":
        click.echo(json.dumps(document, indent=2))
        return EXIT_OK
    from rich.console import Console
    from rich.table import Column, Table
    from rich.text import Text

    console = Console(highlight=False, markup=False, emoji=False)
    for title, columns, rows in (("Networks", inventory.NETWORK_COLUMNS, inventory.network_rows(document)),
                                 ("Containers", inventory.CONTAINER_COLUMNS, inventory.container_rows(document)),
                                 ("Ports and files", inventory.DETAIL_COLUMNS, inventory.detail_rows(document))):
        if rows:  # cells fold rather than lose text to an ellipsis on a narrow terminal or a pipe
            table = Table(*(Column(name, overflow="fold") for name in columns), title=title, title_justify="left")
            for row in rows:  # spec text: never read as markup
                table.add_row(*(Text(cell) for cell in row))
            console.print(table)
    return EXIT_OK


@main.command()
@SPEC
@OUTPUT
@click.option("--timeout", type=click.FloatRange(min=0.1), default=1.0, show_default=True, metavar="SECONDS",
              help="How long to wait for answers; a probe that should fail waits this long once for all.")
@_global_options
def check(context: Context, spec_path: str, output: str, timeout: float) -> int:
    """Probe every container's networking from inside its namespace: its gateway, the names it
    should resolve, its published ports, the neighbours it should (and should not) reach.
    Changes nothing; exits 1 if a probe fails.

    \b
    Example:
      netreconcile --host-netns nr-demo check specs/quickstart.yaml
      netreconcile --host-netns nr-demo check -o json specs/quickstart.yaml | jq '.results[] | select(.result == "failed")'
    """
    from reconciler.kernel.observe import observe
    from reconciler.kernel.probing import run_probes
    from reconciler.render.probetable import probe_document
    from reconciler.state.probes import plan_probes

    spec = context.load(spec_path)
    _require_root()
    with context.read_only_session() as session:
        live = observe(session)
    results = run_probes(plan_probes(spec, live), context.host_netns, context.etc_netns, timeout)
    document = probe_document(results)
    if output == "json":
        click.echo(json.dumps(document, indent=2))
    else:
        from rich.console import Console
        from rich.table import Column, Table
        from rich.text import Text

        table = Table(*(Column(name, overflow="fold") for name in ("container", "probe", "result", "detail")))
        for row in document["results"]:
            table.add_row(Text(row["container"]), Text(row["probe"]),
                          Text(row["result"], style="red" if row["result"] == "failed" else ""), Text(row["detail"]))
        console = Console(highlight=False, markup=False, emoji=False)
        console.print(table)
        console.print(document["summary"])
    return EXIT_ERROR if document["failed"] else EXIT_OK


@main.command()
@SPEC
@OUTPUT
@FORCE
@NO_ROLLBACK
@LOCK_TIMEOUT
@_global_options
def apply(context: Context, spec_path: str, output: str, force: bool, no_rollback: bool, lock_timeout: float) -> int:
    """Converge the kernel on SPEC, then verify; undo everything if that fails.

    \b
    Example:
      netreconcile --host-netns nr-demo apply specs/quickstart.yaml
      netreconcile -v apply -o json spec.yaml
    """
    spec = context.load(spec_path)
    return _converge(context, spec, output, "apply", force=force, lock_timeout=lock_timeout,
                     rollback=not no_rollback)


@main.command()
@SPEC
@OUTPUT
@LOCK_TIMEOUT
@_global_options
def destroy(context: Context, spec_path: str, output: str, lock_timeout: float) -> int:
    """Remove everything netreconcile manages in the host namespace of SPEC.

    \b
    Example:
      netreconcile --host-netns nr-demo destroy specs/quickstart.yaml
    """
    from reconciler.kernel.lock import no_keeper

    load_spec(spec_path)
    _require_root()
    with no_keeper(context.state_dir):  # a running watch or sync would undo it at once: refuse
        if context.host_netns and not os.path.exists(netns_path(context.host_netns)):
            _print_plan(Plan(), output)
            return EXIT_OK
        return _converge(context, None, output, "destroy", lock_timeout=lock_timeout)


@main.command()
@SPEC
@click.option("--resync", type=click.FloatRange(min=1), default=60.0, show_default=True, metavar="SECONDS",
              help="Run a full pass at least this often, events or not.")
@click.option("--debounce", type=click.IntRange(min=0), default=100, show_default=True, metavar="MS",
              help="Quiet time after the last event before a pass starts.")
@click.option("--metrics-port", type=click.IntRange(min=1, max=65535), default=None, metavar="PORT",
              help="Serve Prometheus metrics on this port.")
@click.option("--metrics-address", default="127.0.0.1", show_default=True, metavar="ADDRESS",
              help="Address the metrics are served on (0.0.0.0: every address).")
@click.option("--verbose", "-v", is_flag=True, help="Also log passes that find nothing to do.")
@click.option("--check-interval", type=click.FloatRange(min=1), default=None, metavar="SECONDS",
              help="Also run check's health probes this often: one log line per round, and Prometheus gauges "
                   "(netreconcile_check_*) with --metrics-port.")
@FORCE
@LOCK_TIMEOUT
@_global_options
def watch(context: Context, spec_path: str, resync: float, debounce: int, metrics_port: int | None,
          metrics_address: str, verbose: bool, check_interval: float | None, force: bool, lock_timeout: float) -> int:
    """Apply SPEC, then keep the kernel converged: on spec, resolv.conf, kernel and firewall changes.

    \b
    Example:
      netreconcile --host-netns nr-demo watch specs/quickstart.yaml --metrics-port 9108 --check-interval 30
    """
    from reconciler.run.sources import FileSource

    source = FileSource(spec_path, context.node_choice())
    spec = source.load()  # an unreadable or invalid spec is refused before anything is made or served
    _require_root()
    return _watch(context, source, resync, debounce, metrics_port, metrics_address, verbose, force, lock_timeout,
                  spec=spec, check_interval=check_interval)


def _watch(context: Context, source, resync: float, debounce: int, metrics_port: int | None, metrics_address: str,
           verbose: bool, force: bool, lock_timeout: float, spec=None, check_interval: float | None = None) -> int:
    from reconciler.run.watch import Watcher

    logs.configure(logging.DEBUG if verbose else logging.INFO, stream=sys.stdout)
    metrics = None
    if metrics_port is not None:
        from reconciler.run.metrics import WatchMetrics

        metrics = WatchMetrics()
        _serve_metrics(metrics.registry, metrics_port, metrics_address)

    def prepare_host() -> None:
        if context.host_netns:
            from reconciler.kernel.namespaces import ensure_host_netns

            ensure_host_netns(context.host_netns)

    from reconciler.kernel.lock import host_lock, keeper_lock

    def lock():
        return host_lock(context.state_dir, lock_timeout, on_wait=lambda message: log.warning(message))

    def start_resolver():
        from reconciler.dns.metrics import ResolverMetrics
        from reconciler.run.resolver import BackgroundResolver

        # its metrics are served with watch's
        return BackgroundResolver(context.host_netns, context.state_dir,
                                  ResolverMetrics(metrics.registry) if metrics is not None else None)

    watcher = Watcher(source, context.session, prepare_host, context.host_netns, context.etc_netns,
                      resync=resync, debounce=debounce / 1000, metrics=metrics, lock=lock, force=force, spec=spec,
                      start_resolver=start_resolver)
    checks = None
    if check_interval is not None:
        from reconciler.run.checks import CheckLoop, CheckMetrics

        checks = CheckLoop(check_interval, lambda: watcher.spec, context.session, lock, context.host_netns,
                           context.etc_netns, CheckMetrics(metrics.registry) if metrics is not None else None)
    # for its whole life, so that destroy refuses to run while this would undo it
    with keeper_lock(context.state_dir, lock_timeout, on_wait=lambda message: log.warning(message)):
        if checks is not None:
            checks.start()
        try:
            return watcher.run()
        finally:
            if checks is not None:
                checks.stop()


@main.command("dns")
@SPEC
@click.option("--metrics-port", type=click.IntRange(min=1, max=65535), default=None, metavar="PORT",
              help="Serve Prometheus metrics on this port.")
@click.option("--metrics-address", default="127.0.0.1", show_default=True, metavar="ADDRESS",
              help="Address the metrics are served on (0.0.0.0: every address).")
@_global_options
def dns_command(context: Context, spec_path: str, metrics_port: int | None, metrics_address: str) -> int:
    """Serve DNS at 127.0.0.11 in every container of SPEC that uses the resolver (host.dns_resolver),
    until SIGTERM; SIGHUP re-reads SPEC.

    \b
    Example:
      netreconcile --host-netns nr-demo dns specs/dns-resolver.yaml
    """
    from reconciler.dns.metrics import ResolverMetrics
    from reconciler.run.resolver import run_resolver

    _require_root()
    logs.configure(stream=sys.stdout)
    metrics = ResolverMetrics()
    if metrics_port is not None:
        _serve_metrics(metrics.registry, metrics_port, metrics_address)
    return run_resolver(context, spec_path, metrics)


def _serve_metrics(registry, port: int, address: str) -> None:
    from prometheus_client import start_http_server

    try:
        start_http_server(port, addr=address, registry=registry)
    except OSError as error:
        raise PrerequisiteError(f"cannot serve metrics on {address}:{port}: {error.strerror or error}") from error


@main.command()
@click.argument("repository", metavar="REPO")
@click.option("--path", "spec_path", required=True, metavar="FILE", help="The spec's path inside the repository.")
@click.option("--ref", default=None, metavar="BRANCH", help="Branch or tag to follow (default: the repository's HEAD).")
@click.option("--interval", type=click.FloatRange(min=1), default=60.0, show_default=True, metavar="SECONDS",
              help="How often to fetch (and re-check drift) when not --once.")
@click.option("--once", is_flag=True, help="Sync once and exit: 1 when the commit could not be applied.")
@click.option("--debounce", type=click.IntRange(min=0), default=100, show_default=True, metavar="MS",
              help="Quiet time after the last kernel event before a repair pass (not --once).")
@click.option("--metrics-port", type=click.IntRange(min=1, max=65535), default=None, metavar="PORT",
              help="Serve Prometheus metrics on this port (not --once).")
@click.option("--metrics-address", default="127.0.0.1", show_default=True, metavar="ADDRESS",
              help="Address the metrics are served on (0.0.0.0: every address).")
@click.option("--verbose", "-v", is_flag=True, help="Also log passes that find nothing to do.")
@OUTPUT
@FORCE
@LOCK_TIMEOUT
@_global_options
def sync(context: Context, repository: str, spec_path: str, ref: str | None, interval: float, once: bool,
         debounce: int, metrics_port: int | None, metrics_address: str, verbose: bool, output: str, force: bool,
         lock_timeout: float) -> int:
    """Converge on the spec at FILE in git repository REPO (path or URL), at the head of --ref.

    \b
    Example:
      netreconcile sync https://git.example.com/net/hosts.git --path specs/host-a.yaml --once
      netreconcile sync /srv/git/hosts.git --path specs/host-a.yaml --ref main --interval 60
    """
    from reconciler.run.sources import GitSource, git_status

    _require_root()
    source = GitSource(repository, spec_path, ref, context.state_dir, context.node_choice())
    if not once:
        return _watch(context, source, interval, debounce, metrics_port, metrics_address, verbose, force,
                      lock_timeout)
    def recorded() -> dict:
        source.converged()
        return {"git": git_status(context.state_dir)}

    try:
        spec = source.load()
        code = _converge(context, spec, output, "sync", on_done=recorded, force=force, lock_timeout=lock_timeout)
    except NetreconcileError as error:
        if not isinstance(error, (SpecError, SourceError)):  # those are recorded by the source already
            source.failed(error)
        raise
    if output == "text" and source.revision is not None:
        click.echo(f"At commit {source.revision.commit} ({source.revision.ref}).")
    return code


def _exit_code(plan: Plan, detailed_exitcode: bool) -> int:
    if plan.conflicts:
        return EXIT_ERROR
    return EXIT_CHANGES if detailed_exitcode and plan.actions else EXIT_OK


def _require_root() -> None:
    """Refuse early, before anything is made, without the capabilities that creating and
    entering namespaces takes (root in a default Docker container lacks both)."""
    missing = [name for name, bit in NEEDED_CAPABILITIES.items() if not _effective_capabilities() >> bit & 1]
    if missing:
        raise PrerequisiteError(f"{PRIVILEGES_NEEDED}, and this process lacks {' and '.join(missing)}: run it as "
                                "root (sudo); in a container, give it these capabilities")


def _effective_capabilities() -> int:
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("CapEff:"):
                    return int(line.split()[1], 16)
    except OSError:
        pass
    return ALL_CAPABILITIES if os.geteuid() == 0 else 0  # no /proc to ask: root is taken to have them


def _read_only_plan(context: Context, spec) -> Plan:
    _require_root()
    with context.read_only_session() as session:
        return plan_for(spec, session)


def _converge(context: Context, spec, output: str, command: str, on_done=None, force: bool = False,
              lock_timeout: float = 60.0, rollback: bool = True) -> int:
    """Converge and print the outcome; `on_done()` runs after success and returns more
    fields for the JSON document."""
    _require_root()
    started = time.monotonic()
    progress = None
    shown: list[Plan] = []

    def on_plan(plan: Plan) -> None:
        nonlocal progress
        shown.append(plan)
        if output == "text":
            verb = "Destroy" if command == "destroy" else "Plan"
            long_on_terminal = sys.stdout.isatty() and len(plan.actions) >= PROGRESS_THRESHOLD
            # on a terminal, a long plan is a summary to watch the bar under, not 2000 lines
            _print_plan(plan, output, verb=verb, list_actions=context.verbose or not long_on_terminal)
            if long_on_terminal:
                from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

                progress = Progress(TextColumn("applying", markup=False), BarColumn(), MofNCompleteColumn(),
                                    TimeElapsedColumn())
                progress.start()
                progress.add_task("apply", total=len(plan.actions))

    def on_progress(count: int) -> None:
        if progress is not None:
            progress.advance(progress.task_ids[0], count)

    from reconciler.kernel.lock import host_lock
    from reconciler.kernel.namespaces import host_netns_for_apply

    outcome_name = "error"
    try:
        # the host namespace is made under the lock: a failure before the plan is shown
        # removes it again, and must not remove one another netreconcile is working in
        with host_lock(context.state_dir, lock_timeout,
                       on_wait=lambda message: click.echo(message, err=True)) as held, \
                host_netns_for_apply(context.host_netns, changing=lambda: bool(shown)), context.session() as session:
            try:
                outcome = converge(spec, session, on_progress=on_progress, on_plan=on_plan, force=force,
                                   rollback=rollback)
            finally:
                if progress is not None:
                    progress.stop()
            if command == "destroy":  # verified: nothing is managed there any more
                held.retire()
        outcome_name = "applied" if outcome.plan.actions else "noop"  # as watch's passes and their metric
    except ConflictError as error:
        raise ConflictError(f"{error}\nnothing was changed") from None
    finally:
        counts = shown[0].counts() if shown else {}
        (log.error if outcome_name == "error" else log.info)(  # a failure is an error whatever -v says
            "reconcile", command=command, host_netns=context.host_netns or "", outcome=outcome_name,
            duration_ms=round((time.monotonic() - started) * 1000, 1), **counts)
    extra = on_done() if on_done is not None else {}
    warnings = _dns_warnings(context, spec)
    if warnings:
        if output == "json":
            extra["warnings"] = warnings
        else:
            _print_warnings(warnings)
    if output == "json":
        echo_json({**plan_document(outcome.plan, applied=outcome.applied), **extra})
    elif outcome.plan.actions:
        click.echo(outcome_line(outcome.plan, destroying=command == "destroy"))
    return EXIT_OK


def _dns_warnings(context: Context, spec) -> list[str]:
    """Containers that ask the embedded DNS server while no process serves it: their
    name lookups all time out."""
    from reconciler.kernel.lock import dns_served
    from reconciler.render.resolvconf import INTERNAL_NAMESERVER
    from reconciler.state.desired import uses_resolver

    if spec is None or not any(uses_resolver(spec, container) for container in spec.local_containers):
        return []
    if dns_served(context.state_dir):
        return []
    return [f"host.dns_resolver: the containers' DNS points at {INTERNAL_NAMESERVER} and nothing answers there: "
            "run `netreconcile watch` or `netreconcile sync` (they serve it), or `netreconcile dns SPEC`, "
            "for this host namespace"]


JSON_CHUNKS_PER_WRITE = 8192


def echo_json(document: dict) -> None:
    """`document` on stdout as json.dumps(document, indent=2) and a newline, written in
    pieces: a plan of 35,000 actions (5000 containers from scratch) is 8 MB of JSON, and
    json.dumps with an indent joins it from a list of a million small strings (40 MB)."""
    chunks: list[str] = []
    for chunk in json.JSONEncoder(indent=2).iterencode(document):
        chunks.append(chunk)
        if len(chunks) >= JSON_CHUNKS_PER_WRITE:
            click.echo("".join(chunks), nl=False)
            chunks.clear()
    click.echo("".join(chunks))


def _print_warnings(warnings: list[str]) -> None:
    for warning in warnings:
        click.echo(f"warning: {warning}", err=True)


def _print_plan(plan: Plan, output: str, verb: str = "Plan", list_actions: bool = True) -> None:
    if output == "json":
        echo_json(plan_document(plan, conflicts=list(plan.conflicts)))
        return
    from rich.console import Console  # imported only for text output: it is slow to import
    from rich.text import Text

    # Lines carry spec text (paths, names): never read it as markup ("[bold]") or emoji codes (":100:").
    console = Console(highlight=False, soft_wrap=True, markup=False, emoji=False)
    for conflict in plan.conflicts:
        console.print(Text.assemble(("conflict:", "red"), f" {conflict}"))
    if plan.guard:
        console.print(f"warning: {plan.guard}; apply refuses this without --force", style="yellow")
    if not list_actions:
        console.print(f"{summary_line(plan, verb)} (`netreconcile plan`, or -v, lists them)")
        return
    for action in plan.actions:
        console.print(action_line(action), style=STYLES[action.op])
    console.print(summary_line(plan, verb))
