"""`python -m tests.dns_scope_stand_in ARGS`: the netreconcile CLI with a stand-in scope.

Name discovery (reconciler.state.discovery.names_in_scope) is built on another branch;
until it is merged, the resolver's kernel tests run the CLI through this module, whose
scope is the plainest reading of Docker's: on every shared network not named `bridge`,
a container's name, hostname and aliases at its address there. Delete this module, and
run `python -m reconciler` in its place, once discovery is merged.
"""

from __future__ import annotations

from reconciler.run import resolver


def names_in_scope(spec, addresses, addresses6):
    records: dict[str, dict[str, list]] = {}
    for container in spec.containers:
        if container.mode not in ("bridge", "none"):
            continue
        for attachment in container.networks:
            if attachment.network == "bridge":
                continue
            key = (container.name, attachment.network)
            found = [addresses[key]] + ([addresses6[key]] if key in addresses6 else [])
            for name in dict.fromkeys((container.name, container.hostname or container.name, *attachment.aliases)):
                records.setdefault(attachment.network, {}).setdefault(name, []).extend(found)
    return {
        container.name: tuple((name, tuple(found)) for a in spec.joined(container).networks
                              for name, found in records.get(a.network, {}).items())
        for container in spec.containers
    }


if __name__ == "__main__":
    resolver.scope_function = lambda: names_in_scope
    from reconciler.cli import main

    main(prog_name="netreconcile")
