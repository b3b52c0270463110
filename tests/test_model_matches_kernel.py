"""The in-memory kernel model of the property tests, checked against the kernel.

tests/test_planner.py proves convergence and ordering by applying plans to
`KernelModel` (tests/strategies.py). That proof is only as good as the model, so
here the same generated plans go through the real writer into a throwaway host
namespace, and what observe reads back must be what the model predicts: a side
effect the model forgets (or invents) fails this test instead of hiding a planner
bug in the property tests.

Nothing generated is filtered out: in the throwaway host namespace network_mode host
containers name that namespace, and nft loads the firewall table inside it.
"""

from __future__ import annotations

import dataclasses
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reconciler.state.desired import build_desired
from reconciler.kernel.namespaces import ensure_host_netns
from reconciler.kernel.writer import KernelWriter
from reconciler.state.model import State, Sysctl
from reconciler.kernel.observe import observe
from reconciler.state.planner import plan
from reconciler.kernel.session import KernelSession
from reconciler.spec.types import Spec
from reconciler.kernel.statedir import StateDir
from tests.conftest import Sandbox
from tests.strategies import KernelModel, specs

pytestmark = pytest.mark.kernel

# Few examples (each one builds and tears down namespaces), always the same ones and
# no example database, so that a failure in CI shows again on every run.
SETTINGS = settings(max_examples=25, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.too_slow])


@st.composite
def edits_of(draw, spec: Spec) -> Spec:
    """`spec` as an operator edits it: network settings changed, a bridge renamed, static
    addresses given, moved or taken away, gateway priorities changed, containers removed.
    Two independent specs share little, and these in-place changes (an address replaced
    under a route, a veth moved to another bridge) are where the kernel's side effects are."""
    networks = tuple(dataclasses.replace(
        network, bridge=draw(st.sampled_from([network.bridge, f"{network.bridge}2"])),
        mtu=draw(st.sampled_from([1500, 1400])), icc=draw(st.booleans()), masquerade=draw(st.booleans()),
        internal=draw(st.booleans())) for network in spec.networks)
    joined = {container.shares for container in spec.containers}
    containers = []
    for position, container in enumerate(spec.containers):
        if container.name not in joined and draw(st.integers(0, 3)) == 0:
            continue
        containers.append(dataclasses.replace(container, networks=tuple(dataclasses.replace(
            attachment, gw_priority=draw(st.integers(-1, 1)), ipv4_address=draw(st.sampled_from([
                attachment.ipv4_address, None, spec.network(attachment.network).subnet.network_address + 200 + position,
            ]))) for attachment in container.networks)))
    return dataclasses.replace(spec, networks=networks, containers=tuple(containers))


def transitions():
    """Strategy: (spec before, spec after), the after one either any spec or an edit of the first."""
    return specs().flatmap(lambda before: st.tuples(st.just(before), st.one_of(specs(), edits_of(before))))


@SETTINGS
@given(transitions())
def test_the_kernel_does_what_the_model_predicts(transition):
    """Apply spec A (before) from nothing, then plan and apply B (after) on what A left; after each
    apply the observed state is the model's prediction, and the desired state."""
    before_spec, after_spec = transition
    with tempfile.TemporaryDirectory() as tmp:
        box = Sandbox(Path(tmp))
        try:
            ensure_host_netns(box.host)
            etc_netns = box.tmp / "etc-netns"
            etc_netns.mkdir()
            with KernelSession(box.host, StateDir(box.state_dir, box.host), str(etc_netns)) as session:
                live_after_a = apply_and_compare(session, with_prefix(before_spec, box.prefix), observe(session))
                apply_and_compare(session, with_prefix(after_spec, box.prefix), live_after_a)
        finally:
            box.cleanup()  # the host namespace takes its bridges and veths along


def apply_and_compare(session: KernelSession, spec: Spec, live: State) -> State:
    """Plan `spec` on `live`, apply it for real and return what observe then reads,
    after checking it against the model and the desired state."""
    desired = build_desired(spec, live)
    current = plan(desired, live)
    assert not current.conflicts, current.conflicts  # fresh names: nothing can be in the way
    predicted = KernelModel(live).apply(current)
    KernelWriter(session).apply(current)
    observed = observe(session)
    assert_same_objects(predicted, without_new_defaults(observed, live, predicted), "model prediction", "kernel")
    assert_same_objects(desired, without_unmentioned_sysctls(observed, desired), "desired state", "kernel")
    return observed


def without_new_defaults(observed: State, live: State, predicted: State) -> State:
    """`observed` without the sysctls that came with interfaces the plan created and that
    the model does not know of: they start at the namespace's defaults, which the model
    cannot know (the planner leaves sysctls the spec does not mention alone)."""
    known = live.objects.keys() | predicted.objects.keys()
    return State({k: o for k, o in observed.objects.items() if not isinstance(o, Sysctl) or k in known})


def without_unmentioned_sysctls(state: State, desired: State) -> State:
    """`state` without the sysctls the spec does not mention: apply leaves them as they are."""
    return State({k: o for k, o in state.objects.items() if not isinstance(o, Sysctl) or k in desired.objects})


def assert_same_objects(expected: State, actual: State, expected_name: str, actual_name: str) -> None:
    """Equal objects (what the state lists as not netreconcile's is not compared), or a
    message listing only the differences."""
    want, have = expected.objects, actual.objects
    differences = [f"only in the {expected_name}: {want[k]}" for k in want.keys() - have.keys()]
    differences += [f"only in the {actual_name}: {have[k]}" for k in have.keys() - want.keys()]
    differences += [f"{k}: {expected_name} {want[k]} != {actual_name} {have[k]}"
                    for k in want.keys() & have.keys() if want[k] != have[k]]
    assert not differences, "\n".join(sorted(differences))


def with_prefix(spec: Spec, prefix: str) -> Spec:
    """`spec` with every container named `prefix`-name: container namespaces live in the
    global /run/netns, where other tests (and the host) have theirs. Networks, bridges and
    veths live in the throwaway host namespace and keep their names."""

    def renamed(container):
        mode, _, target = container.network_mode.partition(":")
        return dataclasses.replace(container, name=f"{prefix}-{container.name}",
                                   network_mode=f"container:{prefix}-{target}" if mode == "container" else mode)

    return dataclasses.replace(spec, containers=tuple(renamed(c) for c in spec.containers))
