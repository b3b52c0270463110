"""Compose's networking keys to a netreconcile spec document (pure).

`translate` takes the Compose file as a `Document` (plain data with locations, already
interpolated) and returns the spec as plain data, the notes for everything the spec
cannot say (one per key, with its place in the Compose file), and where each spec value
came from, so that a problem the spec loader finds can be told at the Compose line.

Names are Compose's: a network is `<project>_<key>` (or its `name:`), and services
without `networks` join `<project>_default`; a container is named by `container_name`,
else by its service, and keeps the service name as an alias so that the others find it
under that name. A bridge network without a subnet is written without one (netreconcile
chooses it at plan time, avoiding the host's networks) unless something on it needs one
to be checked against; those and macvlan networks get one from Docker's default pools.
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter
from dataclasses import dataclass, field
from ipaddress import IPv4Network, ip_network
from typing import Any

from reconciler import drivers
from reconciler.compose.interpolate import Note, compose_path
from reconciler.compose.pools import (
    DEFAULT_BRIDGE_SIZE, DEFAULT_POOLS, NETWORK_SIZE, PoolError, choose_subnet, size_for,
)
from reconciler.drivers.macvlan import parent_issue
from reconciler.spec.document import Document, PathKey
from reconciler.spec.ports import PortError, parse_port
from reconciler.spec.types import Location
from reconciler.spec.values import ifname_issue

SpecPath = tuple[str | int, ...]
IGNORED = "not a networking key, ignored"
BRIDGE_NAME_MAX = 15
MACVLAN = "macvlan"
DOCKER_BRIDGE_NETWORK = "bridge"  # network_mode: bridge is Docker's default bridge, a network of this name

# driver_opts of the bridge driver -> (spec key, type)
BRIDGE_OPTIONS = {
    "com.docker.network.bridge.name": ("bridge", str),
    "com.docker.network.bridge.enable_icc": ("icc", bool),
    "com.docker.network.bridge.enable_ip_masquerade": ("masquerade", bool),
    "com.docker.network.driver.mtu": ("mtu", int),
}
# a service key -> why it is ignored, where more can be said than IGNORED
SERVICE_KEY_NOTES = {
    "expose": "exposed ports are metadata: every port of a container is reachable on its networks; ignored",
    "external_links": "links to containers outside this file, ignored",
    "sysctls": "netreconcile sets no sysctls inside containers, ignored",
    "scale": "netreconcile makes one container per service, ignored",
    "deploy": "netreconcile makes one container per service; deploy is ignored",
    "profiles": "every service is imported whatever the active profiles; ignored",
}
TOP_LEVEL_NOTES = {
    "version": "obsolete in Compose, ignored",
    "include": "included files are not imported; import each one",
}
_PROJECT_DROP = re.compile(r"[^a-z0-9_-]")


class ComposeError(ValueError):
    """The Compose file cannot be imported at all; the message names its location."""


@dataclass(frozen=True)
class Origin:
    """Where a spec value came from in the Compose file."""

    location: Location
    path: str  # compose_path


@dataclass
class Translation:
    spec: dict[str, Any]
    notes: list[Note] = field(default_factory=list)
    origins: dict[SpecPath, Origin] = field(default_factory=dict)
    project: str = ""


def normalize_project_name(name: str) -> str:
    """Compose's normalisation: lower case, only [a-z0-9_-], starting with a letter or digit."""
    return _PROJECT_DROP.sub("", name.lower()).lstrip("_-")


def bridge_name_for(network: str) -> str | None:
    """The kernel bridge for a network whose name cannot be one (longer than 15
    characters): `br-` and 12 hex digits of its name's hash, as Docker's `br-<id>`; None
    when the network name itself will do."""
    if ifname_issue(network) is None:
        return None
    return "br-" + hashlib.sha256(network.encode()).hexdigest()[:12]


def translate(doc: Document, project_dir: str, project_override: str | None = None) -> Translation:
    """The spec for the Compose file `doc` in directory named `project_dir`;
    `project_override` is COMPOSE_PROJECT_NAME when set. ComposeError when it cannot be."""
    return _Translator(doc).run(project_dir, project_override)


@dataclass
class _Network:
    key: str  # the Compose key
    name: str  # the spec's network name
    settings: dict[str, Any]
    path: PathKey  # in the Compose file (the top-level networks entry, or where first used)
    usable: bool = True  # False: netreconcile cannot make it; attachments are left out


class _Translator:
    def __init__(self, doc: Document):
        self.doc = doc
        self.result = Translation({"version": 1})
        self.networks: dict[str, _Network] = {}  # by Compose key
        self.container_names: dict[str, str] = {}  # service -> container name
        self.bridge_names: dict[str, str] = {}  # bridge name -> the network that has it

    # --- places and notes ---------------------------------------------------------------

    def note(self, path: PathKey, message: str) -> None:
        self.result.notes.append(Note(self.doc.key_location(path), compose_path(path), message))

    def origin(self, spec_path: SpecPath, path: PathKey) -> None:
        self.result.origins[spec_path] = Origin(self.doc.key_location(path), compose_path(path))

    def mapping(self, path: PathKey) -> dict[str, Any]:
        value = self.doc.get(path)
        return value if isinstance(value, dict) else {}

    # --- the whole file -------------------------------------------------------------------

    def run(self, project_dir: str, project_override: str | None) -> Translation:
        data = self.doc.data
        where = f"{self.doc.filename}:1:1"
        if data is None:
            raise ComposeError(f"{where}: not a Compose file: it is empty")
        if not isinstance(data, dict):
            raise ComposeError(f"{where}: not a Compose file: the top level is not a mapping")
        services = data.get("services")
        if not isinstance(services, dict) or not services:
            raise ComposeError(f"{where}: not a Compose file: it has no services")
        self.result.project = self._project(project_dir, project_override)
        for key in data:
            if key not in ("services", "networks", "name"):
                message = TOP_LEVEL_NOTES.get(key) or ("an extension field, ignored" if key.startswith("x-")
                                                       else "not a networking key, ignored")
                self.note((key,), message)
        self._declare_networks()
        for service in services:
            self.container_names[service] = self._container_name(service)
        containers = {}
        for service in services:
            container = self._container(service)
            if container is not None:
                containers[self.container_names[service]] = container
        self.result.spec["networks"] = self._networks(containers)
        self.result.spec["containers"] = containers
        return self.result

    def _project(self, project_dir: str, override: str | None) -> str:
        name_value = self.doc.get(("name",))
        raw = override or (name_value if isinstance(name_value, str) and name_value else project_dir)
        project = normalize_project_name(raw)
        if not project:
            raise ComposeError(f"{self.doc.filename}:1:1: project name {raw!r} has no letter or digit: set `name:` "
                               "at the top of the file")
        return project

    # --- networks ---------------------------------------------------------------------------

    def _declare_networks(self) -> None:
        for key, settings in self.mapping(("networks",)).items():
            path = ("networks", key)
            name = settings.get("name") if isinstance(settings, dict) else None
            spec_name = name if isinstance(name, str) and name else f"{self.result.project}_{key}"
            network = _Network(key, spec_name, settings if isinstance(settings, dict) else {}, path)
            network.usable = self._driver_usable(network)
            self.networks[key] = network

    def _driver_usable(self, network: _Network) -> bool:
        """Whether netreconcile has the network's driver; a note when it has not."""
        driver = network.settings.get("driver", "bridge")
        if driver == "bridge":
            return True
        path = (*network.path, "driver")
        if driver == "macvlan":
            if MACVLAN in drivers.names():
                return True
            self.note(path, "driver 'macvlan': this netreconcile has no macvlan driver yet; the network and its "
                            "attachments are left out")
            return False
        self.note(path, f"driver {driver!r}: netreconcile has no such driver; the network and its attachments "
                        "are left out")
        return False

    def _use_network(self, key: str, path: PathKey) -> _Network | None:
        """The network a service attaches to; `default` and `bridge` exist without being declared."""
        if key in self.networks:
            return self.networks[key]
        if key == "default":
            network = _Network(key, f"{self.result.project}_default", {}, path)
        elif key == DOCKER_BRIDGE_NETWORK:
            network = _Network(key, DOCKER_BRIDGE_NETWORK, {}, path)
        else:
            self.note(path, f"network {key!r} is not declared in the top-level networks; left out")
            return None
        self.networks[key] = network
        return network

    def _networks(self, containers: dict[str, dict[str, Any]]) -> dict[str, Any]:
        built: dict[str, dict[str, Any]] = {}
        attached = Counter(network for container in containers.values() for network in container.get("networks", ()))
        for network in self.networks.values():
            if network.usable:
                built[network.name] = self._network(network)
        taken = [ip_network(spec["subnet"], strict=False) for spec in built.values()
                 if "subnet" in spec and _is_ipv4_network(spec["subnet"])]
        addressed = {name for container in containers.values() if isinstance(container.get("networks"), dict)
                     for name, attachment in container["networks"].items()
                     if isinstance(attachment, dict) and "ipv4_address" in attachment}
        # Docker's default bridge exists before any network of a project: it chooses first
        for network in sorted(self.networks.values(), key=lambda net: net.name != DOCKER_BRIDGE_NETWORK):
            spec = built.get(network.name)
            if spec is None or "subnet" in spec or _chosen_at_plan_time(spec, network.name in addressed):
                continue
            largest = DEFAULT_BRIDGE_SIZE if network.name == DOCKER_BRIDGE_NETWORK else NETWORK_SIZE
            size = size_for(attached[network.name] + len(spec.get("aux_addresses", ())), largest)
            try:
                subnet = choose_subnet(DEFAULT_POOLS, taken, size)
            except PoolError as error:
                raise ComposeError(f"{self.doc.key_location(network.path)}: {compose_path(network.path)}: "
                                   f"no subnet left to choose: {error}") from None
            taken.append(subnet)
            spec["subnet"] = str(subnet)
            self.origin(("networks", network.name, "subnet"), network.path)
        return {name: _in_order(spec, NETWORK_KEY_ORDER) for name, spec in built.items()}

    def _network(self, network: _Network) -> dict[str, Any]:
        path, settings = network.path, network.settings
        spec_path = ("networks", network.name)
        self.origin(spec_path, path)
        spec: dict[str, Any] = {}
        options = settings.get("driver_opts") if isinstance(settings.get("driver_opts"), dict) else {}
        parent = options.get("parent")
        unusable = _unusable_parent(parent) if settings.get("driver") == MACVLAN and parent else None
        if unusable:
            self.note((*path, "driver_opts", "parent"), f"{parent!r} cannot be a macvlan parent ({unusable}); "
                                                         "imported as an internal bridge network")
            options = {option: value for option, value in options.items() if option != "parent"}
            spec["internal"] = True
            self.origin((*spec_path, "internal"), (*path, "driver_opts", "parent"))
            self._bridge_options(network, spec, options)
        elif settings.get("driver") == MACVLAN and parent:
            self._macvlan(network, spec, options)
        else:
            if settings.get("driver") == MACVLAN:  # Docker then makes a dummy parent and forces internal
                self.note((*path, "driver"), "macvlan without driver_opts.parent: Docker would make a dummy parent "
                                             "and an internal network; imported as an internal bridge network")
                spec["internal"] = True
                self.origin((*spec_path, "internal"), (*path, "driver"))
            self._bridge_options(network, spec, options)
        for key, value in settings.items():
            key_path = (*path, key)
            if key in ("driver", "driver_opts", "name", "ipam"):
                continue
            if key in ("internal", "enable_ipv6"):
                flag = _as_bool(value)
                if flag is None:
                    self.note(key_path, f"{value!r} is not a boolean; ignored")
                elif key == "internal" and flag:
                    spec["internal"] = True
                    self.origin((*spec_path, "internal"), key_path)
            elif key == "external":
                self.note(key_path, "an existing network in Compose; netreconcile makes it as written here")
            elif key == "enable_ipv4" and _as_bool(value) is False:
                self.note(key_path, "IPv6-only networks cannot be made by netreconcile; IPv4 is kept on")
            else:
                self.note(key_path, "not a setting netreconcile has, ignored")
        self._ipam(network, spec)
        return spec

    def _bridge_options(self, network: _Network, spec: dict[str, Any], options: dict[str, Any]) -> None:
        spec_path, path = ("networks", network.name), (*network.path, "driver_opts")
        for option, value in options.items():
            option_path = (*path, option)
            if option in BRIDGE_OPTIONS:
                key, kind = BRIDGE_OPTIONS[option]
                converted = _as_bool(value) if kind is bool else _as_int(value) if kind is int else value
                if converted is None or (kind is str and not isinstance(value, str)):
                    self.note(option_path, f"{value!r} is not a {kind.__name__}; ignored")
                    continue
                if key == "bridge" and ifname_issue(value):
                    self.note(option_path, f"{value!r} cannot be a bridge name: {ifname_issue(value)}; ignored")
                    continue
                if key == "bridge" and self.bridge_names.get(value, network.name) != network.name:
                    self.note(option_path, f"bridge name {value!r} is already that of network "
                                           f"{self.bridge_names[value]!r}; ignored")
                    continue
                spec[key] = converted
                self.origin((*spec_path, key), option_path)
            elif option == "com.docker.network.bridge.gateway_mode_ipv6" and value == "routed":
                spec["masquerade6"] = False
                self.origin((*spec_path, "masquerade6"), option_path)
            elif option == "com.docker.network.bridge.gateway_mode_ipv4" and value == "routed":
                spec["masquerade"] = False
                self.origin((*spec_path, "masquerade"), option_path)
            else:
                self.note(option_path, "a driver option netreconcile does not have, ignored")
        if "bridge" not in spec:
            bridge = bridge_name_for(network.name)
            if bridge is not None:
                spec["bridge"] = bridge
                self.origin((*spec_path, "bridge"), network.path)
        self.bridge_names.setdefault(spec.get("bridge", network.name), network.name)

    def _macvlan(self, network: _Network, spec: dict[str, Any], options: dict[str, Any]) -> None:
        """The one place where Compose's macvlan networks map to the spec (once this
        netreconcile has the macvlan driver): `driver: macvlan`, `parent` and `macvlan_mode`."""
        spec["driver"] = MACVLAN
        self.origin(("networks", network.name, "driver"), (*network.path, "driver"))
        for option, value in options.items():
            option_path = (*network.path, "driver_opts", option)
            if option in ("parent", "macvlan_mode"):
                spec[option] = value
                self.origin(("networks", network.name, option), option_path)
            else:
                self.note(option_path, "a driver option netreconcile does not have, ignored")

    def _ipam(self, network: _Network, spec: dict[str, Any]) -> None:
        path = (*network.path, "ipam")
        spec_path = ("networks", network.name)
        ipam = network.settings.get("ipam")
        if not isinstance(ipam, dict):
            if ipam is not None:
                self.note(path, "not a mapping, ignored")
            self._ipv6(network, spec, None)
            return
        for key in ipam:
            if key == "driver" and ipam[key] != "default":
                self.note((*path, key), f"IPAM driver {ipam[key]!r}: netreconcile has its own address management; "
                                        "ignored")
            elif key not in ("config", "driver"):
                self.note((*path, key), "not a setting netreconcile has, ignored")
        configs = ipam.get("config") if isinstance(ipam.get("config"), list) else []
        seen = {4: False, 6: False}
        aux: dict[str, Any] = {}
        for index, config in enumerate(configs):
            config_path = (*path, "config", index)
            if not isinstance(config, dict):
                self.note(config_path, "not a mapping, ignored")
                continue
            subnet = config.get("subnet")
            version = 6 if isinstance(subnet, str) and ":" in subnet else 4
            if not isinstance(subnet, str):
                self.note(config_path, "an entry without a subnet, ignored")
                continue
            if seen[version]:
                self.note(config_path, f"netreconcile has one IPv{version} subnet per network; this one is ignored")
                continue
            seen[version] = True
            keys = ("subnet", "gateway") if version == 4 else ("subnet6", "gateway6")
            for compose_key, spec_key in zip(("subnet", "gateway"), keys):
                if compose_key in config:
                    spec[spec_key] = str(config[compose_key])
                    self.origin((*spec_path, spec_key), (*config_path, compose_key))
            for key, value in config.items():
                if key == "aux_addresses" and isinstance(value, dict):
                    for host, address in value.items():
                        aux[str(host)] = str(address)
                        self.origin((*spec_path, "aux_addresses", str(host)), (*config_path, key, host))
                elif key not in ("subnet", "gateway"):
                    why = ("netreconcile hands out addresses from the whole subnet" if key == "ip_range"
                           else "not a setting netreconcile has")
                    self.note((*config_path, key), f"{why}; ignored")
        if aux:
            spec["aux_addresses"] = aux
        self._ipv6(network, spec, (*path, "config"))

    def _ipv6(self, network: _Network, spec: dict[str, Any], config_path: PathKey | None) -> None:
        enabled = _as_bool(network.settings.get("enable_ipv6")) is True
        has_subnet6 = "subnet6" in spec
        if enabled and has_subnet6:
            spec["enable_ipv6"] = True
            self.origin(("networks", network.name, "enable_ipv6"), (*network.path, "enable_ipv6"))
            return
        if enabled:
            self.note((*network.path, "enable_ipv6"), "netreconcile does not choose IPv6 subnets: write one in "
                                                      "ipam.config; IPv6 is left off")
        elif has_subnet6:
            self.note(config_path or network.path, "an IPv6 subnet without enable_ipv6: true; IPv6 is left off")
        for key in ("subnet6", "gateway6", "masquerade6"):
            spec.pop(key, None)
        if "aux_addresses" in spec:
            spec["aux_addresses"] = {k: v for k, v in spec["aux_addresses"].items() if ":" not in v}
            if not spec["aux_addresses"]:
                del spec["aux_addresses"]

    # --- services ----------------------------------------------------------------------------

    def _container_name(self, service: str) -> str:
        name = self.doc.get(("services", service, "container_name"))
        return name if isinstance(name, str) and name else service

    def _container(self, service: str) -> dict[str, Any] | None:
        path = ("services", service)
        settings = self.doc.get(path)
        name = self.container_names[service]
        spec_path = ("containers", name)
        self.origin(spec_path, path)
        if not isinstance(settings, dict):
            self.note(path, "not a mapping, left out")
            return None
        container: dict[str, Any] = {}
        mode = self._network_mode(service, container)
        if mode is None:
            self._attachments(service, container)
        for key, value in settings.items():
            key_path = (*path, key)
            if key in ("container_name", "network_mode", "networks"):
                continue
            handler = _SERVICE_HANDLERS.get(key)
            if handler is None:
                self.note(key_path, SERVICE_KEY_NOTES.get(key) or IGNORED)
                continue
            converted = handler(self, key_path, value)
            if converted is not None and converted != []:
                container[key] = converted
                self.origin((*spec_path, key), key_path)
                self._item_origins((*spec_path, key), key_path, value, converted)
        return container

    def _item_origins(self, spec_path: SpecPath, path: PathKey, value: Any, converted: Any) -> None:
        """Each entry's own Compose line, where entries map one to one (ports record theirs)."""
        if isinstance(value, dict) and isinstance(converted, dict):
            for key in converted:
                self.origin((*spec_path, key), (*path, key))
        elif isinstance(value, list) and isinstance(converted, list) and len(value) == len(converted):
            for index in range(len(converted)):
                if (*spec_path, index) not in self.result.origins:  # ports recorded theirs
                    self.origin((*spec_path, index), (*path, index))

    def _network_mode(self, service: str, container: dict[str, Any]) -> str | None:
        """Sets network_mode (or the `bridge` network) for a service that has one; None when
        the service uses networks."""
        path = ("services", service, "network_mode")
        mode = self.doc.get(path)
        if mode is None:
            return None
        spec_path = ("containers", self.container_names[service], "network_mode")
        kind, _, target = str(mode).partition(":")
        if mode in ("host", "none"):
            container["network_mode"] = mode
        elif kind == "service" and target in self.container_names:
            container["network_mode"] = f"container:{self.container_names[target]}"
        elif kind == "container" and target in self.container_names.values():
            container["network_mode"] = f"container:{target}"
        elif mode == DOCKER_BRIDGE_NETWORK:
            network = self._use_network(DOCKER_BRIDGE_NETWORK, path)
            container["networks"] = {network.name: None}
            self.origin(("containers", self.container_names[service], "networks"), path)
            return "bridge"
        else:
            self.note(path, f"{mode!r}: not a service or container of this file, nor host, none or bridge; "
                            "the container gets network_mode: none")
            container["network_mode"] = "none"
        self.origin(spec_path, path)
        if self.doc.get(("services", service, "networks")) is not None:
            self.note(("services", service, "networks"), "Compose refuses networks with network_mode; ignored")
        return container["network_mode"]

    def _attachments(self, service: str, container: dict[str, Any]) -> None:
        path = ("services", service, "networks")
        spec_path = ("containers", self.container_names[service], "networks")
        raw = self.doc.get(path)
        if raw is None:
            entries = [("default", {}, ("services", service))]
        elif isinstance(raw, list):
            entries = [(str(key), {}, (*path, index)) for index, key in enumerate(raw)]
        elif isinstance(raw, dict):
            entries = [(key, value if isinstance(value, dict) else {}, (*path, key)) for key, value in raw.items()]
        else:
            self.note(path, "neither a list nor a mapping; the container joins the default network")
            entries = [("default", {}, ("services", service))]
        attachments: dict[str, Any] = {}
        name = self.container_names[service]
        for key, options, entry_path in entries:
            network = self._use_network(key, entry_path)
            if network is None:
                continue
            if not network.usable:
                self.note(entry_path, f"network {key!r} cannot be made by netreconcile; this attachment is left out")
                continue
            attachment = self._attachment(options, entry_path, (*spec_path, network.name))
            if name != service:  # Compose names every container by its service on each network
                aliases = attachment.setdefault("aliases", [])
                if service not in aliases:
                    aliases.insert(0, service)
            attachments[network.name] = attachment or None
            self.origin((*spec_path, network.name), entry_path)
        container["networks"] = attachments
        self.origin(spec_path, path if raw is not None else ("services", service))

    def _attachment(self, options: dict[str, Any], path: PathKey, spec_path: SpecPath) -> dict[str, Any]:
        attachment: dict[str, Any] = {}
        for key, value in options.items():
            key_path = (*path, key)
            if key in ("ipv4_address", "ipv6_address", "mac_address", "interface_name") and value is not None:
                attachment[key] = str(value)
            elif key == "aliases" and isinstance(value, list):
                attachment[key] = [str(alias) for alias in value]
            elif key == "gw_priority" and _as_int(value) is not None:
                attachment[key] = _as_int(value)
            elif key == "priority":
                self.note(key_path, "the order in which Docker connects networks; netreconcile connects them "
                                    "all at once, ignored")
                continue
            elif key == "link_local_ips":
                self.note(key_path, "netreconcile gives no link-local addresses, ignored")
                continue
            else:
                self.note(key_path, "not a setting netreconcile has, ignored")
                continue
            self.origin((*spec_path, key), key_path)
        return attachment

    # --- service keys ------------------------------------------------------------------------

    def _string(self, path: PathKey, value: Any) -> str | None:
        if value == "":  # as Compose: an empty value (an unset variable, say) is no value
            return None
        if isinstance(value, (str, int)) and not isinstance(value, bool):
            return str(value)
        self.note(path, "not a string, ignored")
        return None

    def _strings(self, path: PathKey, value: Any) -> list[str] | None:
        """A string or a list of strings (dns, dns_search), as a list."""
        if isinstance(value, str):
            return [value]
        if isinstance(value, list):
            return [str(item) for item in value if item is not None]
        self.note(path, "neither a string nor a list, ignored")
        return None

    def _extra_hosts(self, path: PathKey, value: Any) -> Any:
        if isinstance(value, list):
            return [str(item) for item in value]
        if isinstance(value, dict):
            if all(isinstance(address, str) for address in value.values()):
                return dict(value)
            entries = []
            for host, addresses in value.items():
                for address in addresses if isinstance(addresses, list) else [addresses]:
                    entries.append(f"{host}={address}")
            return entries
        self.note(path, "neither a list nor a mapping, ignored")
        return None

    def _links(self, path: PathKey, value: Any) -> list[str] | None:
        if not isinstance(value, list):
            self.note(path, "not a list, ignored")
            return None
        links = []
        for index, item in enumerate(value):
            target, colon, alias = str(item).partition(":")
            if target not in self.container_names:
                self.note((*path, index), f"{target!r} is not a service of this file; left out")
                continue
            container = self.container_names[target]
            alias = alias if colon else target
            links.append(container if alias == container else f"{container}:{alias}")
        return links

    def _ports(self, path: PathKey, value: Any) -> list[str] | None:
        if not isinstance(value, list):
            self.note(path, "not a list, ignored")
            return None
        container_path = ("containers", self.container_names[path[1]], "ports")
        ports = []
        for index, item in enumerate(value):
            item_path = (*path, index)
            entry = self._long_port(item_path, item) if isinstance(item, dict) else _short_port(item)
            if entry is None:
                continue
            try:
                parse_port(entry)
            except PortError as error:
                message = str(error)
                if "no host port" in message:
                    message = (f"{entry!r} has no host port: Docker picks a random one, which a spec cannot say "
                               "(write HOST_PORT:CONTAINER_PORT); left out")
                else:
                    message += "; left out"
                self.note(item_path, message)
                continue
            self.origin((*container_path, len(ports)), item_path)
            ports.append(entry)
        return ports

    def _long_port(self, path: PathKey, item: dict[str, Any]) -> str | None:
        target = item.get("target")
        if target is None:
            self.note(path, "a port without target, left out")
            return None
        for key in item:
            if key in ("name", "app_protocol"):
                self.note((*path, key), "metadata netreconcile does not keep, ignored")
            elif key == "mode" and item[key] not in ("host", "ingress"):
                self.note((*path, key), f"mode {item[key]!r} is not one netreconcile has, ignored")
            elif key not in ("target", "published", "host_ip", "protocol", "mode"):
                self.note((*path, key), "not a setting netreconcile has, ignored")
        published = item.get("published")
        host_ip = item.get("host_ip")
        host = "" if host_ip in (None, "") else (f"[{host_ip}]:" if ":" in str(host_ip) else f"{host_ip}:")
        protocol = f"/{item['protocol']}" if item.get("protocol") else ""
        published_text = "" if published in (None, "") else str(published)
        return f"{host}{published_text}:{target}{protocol}" if published_text else f"{host}:{target}{protocol}"


NETWORK_KEY_ORDER = ("driver", "parent", "macvlan_mode", "bridge", "subnet", "gateway", "enable_ipv6", "subnet6",
                     "gateway6")


def _in_order(spec: dict[str, Any], order: tuple[str, ...]) -> dict[str, Any]:
    """`spec` with the keys of `order` first, in that order: as a reader looks for them."""
    first = {key: spec[key] for key in order if key in spec}
    return {**first, **{key: value for key, value in spec.items() if key not in first}}


def _short_port(item: Any) -> str:
    """A short-syntax entry as netreconcile reads it: an empty host IP (`:443:443`, as
    `${BIND:-}:443:443` gives) means every address, as in Docker."""
    text = str(item).strip()
    if text.startswith(":") and not text.startswith("::"):
        text = text[1:]
    return text


_SERVICE_HANDLERS = {
    "hostname": _Translator._string,
    "domainname": _Translator._string,
    "mac_address": _Translator._string,
    "dns": _Translator._strings,
    "dns_search": _Translator._strings,
    "dns_opt": _Translator._strings,
    "extra_hosts": _Translator._extra_hosts,
    "links": _Translator._links,
    "ports": _Translator._ports,
}

_TRUE = {"1", "t", "T", "TRUE", "true", "True"}
_FALSE = {"0", "f", "F", "FALSE", "false", "False"}


def _as_bool(value: Any) -> bool | None:
    """A boolean as Docker parses option strings (Go's strconv.ParseBool), or None."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        return True if value in _TRUE else False if value in _FALSE else None
    return None


def _as_int(value: Any) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and re.fullmatch(r"-?[0-9]+", value.strip()):
        return int(value)
    return None


def _unusable_parent(parent: Any) -> str | None:
    """Why `parent` cannot be a macvlan parent, None if it can."""
    return "not a string" if not isinstance(parent, str) else parent_issue(parent)


def _chosen_at_plan_time(spec: dict[str, Any], addressed: bool) -> bool:
    """Whether a network the Compose file gives no subnet is written without one, for
    netreconcile to choose when it plans, seeing the host's networks (as Docker does when it
    creates the network): a bridge network on which nothing needs a subnet to be checked
    against (a container's ipv4_address, aux_addresses; Docker refuses those without a
    subnet too). A macvlan network needs one written: the import chooses it."""
    return spec.get("driver", "bridge") == "bridge" and "aux_addresses" not in spec and not addressed


def _is_ipv4_network(text: str) -> bool:
    try:
        return isinstance(ip_network(text, strict=False), IPv4Network)
    except ValueError:
        return False
