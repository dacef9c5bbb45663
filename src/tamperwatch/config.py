"""The configuration file: thresholds, the monitored components, user components and agents.

The file is YAML, loaded with the safe loader. Every key is optional::

    crash_correlation_window: 5m     # seconds, or text such as 90s, 5m, 2h, 1h30m
    telemetry_gap_threshold: 1h      # silence of a component (without a heartbeat) or a host
    approval_grace: 20m              # an extension waiting for approval past this is impaired
    event_source_gap_threshold: 15m  # an agent's event table silent this long while it reports
    fleet_outage_share: 0.3          # share of a component's hosts silent at once for a fleet outage
    fleet_outage_min_hosts: 5        # and at least this many hosts
    crash_burst_threshold: 3
    flood_event_threshold: 1000
    extension_list: [crowdstrike-falcon, santa-nps]   # empty or absent: every component
    components:                      # catalog schema; an existing id overrides its fields
      - id: crowdstrike-falcon
        heartbeat_seconds: 300
      - id: acme-edr
        product: ACME EDR
        process_names: [acmed]
    management_agents:
      - {path: /usr/local/bin/acme-mdm, name: ACME MDM}
    maintenance_windows:
      - hosts: "build-*"                 # glob over host names; default every host
        components: [santa-nps]          # default every component
        start: 2026-11-20T22:00:00Z
        end: 2026-11-20T23:00:00Z
        reason: Santa upgrade, change 4711
        author: kim
        grace: 15m                       # time after the end for components to come back
        expires: 2026-11-20T22:30:00Z    # optional: the approval stops covering here
    checkins:                        # check-in exports of an MDM or EDR console
      columns: {host: "Computer Name", component: "Agent", time: "Last Check-in", status: "Status"}
      healthy_status: [online, healthy, connected]
      unhealthy_status: [offline, degraded, "sensor disabled"]
      timezone: UTC                  # IANA name for check-in times written without a zone

Under ``checkins`` every key is optional. A column role without a name is guessed from the
header, and the status lists are compared case-insensitively.

The names follow ATT&CK's mutable elements of AN2040 (``ExtensionList``, ``CrashBurstThreshold``)
and AN2038 (``CrashCorrelationWindow``). Errors name the file, the key and the line.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Callable, Mapping, Sequence
from functools import partial
from pathlib import Path
from typing import Any, Final, NoReturn
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import msgspec
import yaml

from tamperwatch.explain import Span
from tamperwatch.inventory import Inventory, InventoryError, format_key_path, load_inventory
from tamperwatch.timeutil import parse_rfc3339

_DURATION_PART_RE: Final = re.compile(r"(\d+(?:\.\d+)?)\s*([smhd])", re.IGNORECASE)
_DURATION_RE: Final = re.compile(r"^\s*(?:\d+(?:\.\d+)?\s*[smhd]\s*)+$", re.IGNORECASE)
_UNIT_SECONDS: Final = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}

_WINDOW_KEYS: Final = (
    "hosts",
    "components",
    "start",
    "end",
    "reason",
    "author",
    "grace",
    "expires",
)

_KEYS: Final = (
    "crash_correlation_window",
    "telemetry_gap_threshold",
    "approval_grace",
    "event_source_gap_threshold",
    "crash_burst_threshold",
    "flood_event_threshold",
    "extension_list",
    "components",
    "management_agents",
    "checkins",
    "maintenance_windows",
    "fleet_outage_share",
    "fleet_outage_min_hosts",
)

_CHECKIN_KEYS: Final = (
    "columns",
    "healthy_status",
    "unhealthy_status",
    "timezone",
    "component_names",
)
_CHECKIN_COLUMN_ROLES: Final = ("host", "component", "time", "status")

# Maximum number of YAML values (mappings, lists and scalars) in a configuration, counting
# each use of an alias again. Real files have a few thousand at most; the limit rejects alias
# bombs ("billion laughs"), whose aliases of aliases expand to billions of values.
MAX_YAML_VALUES: Final = 100_000

log = logging.getLogger(__name__)


class ConfigError(Exception):
    """An invalid configuration, located by file, key and 1-based line where known."""

    def __init__(
        self, message: str, file: str | None = None, key: str | None = None, line: int | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.file = file
        self.key = key
        self.line = line

    def __str__(self) -> str:
        where = self.file or "configuration"
        if self.line is not None:
            where += f":{self.line}"
        return f"{where}: {self.key}: {self.message}" if self.key else f"{where}: {self.message}"


class Config(msgspec.Struct):
    """Detection thresholds and the inventory changes of one configuration file."""

    # Seconds between an action and the impairment it is blamed for.
    crash_correlation_window: float = 300.0
    # Failures of one component inside the window that make one burst incident.
    crash_burst_threshold: int = 3
    # Events from one process group inside the window that count as a flood.
    flood_event_threshold: int = 1000
    # Seconds without a sign of life after which a component without a stated heartbeat is
    # silent. A host that reports nothing for this long is a blind window instead.
    telemetry_gap_threshold: float = 3600.0
    # Seconds a system extension may wait for user approval, or sit beside its upgraded
    # successor, before that state is an impairment.
    approval_grace: float = 1200.0
    # Seconds without a record from an event source of an agent that still reports its health
    # (osquery's es_process_events while osquery_info keeps arriving) before the source is silent.
    event_source_gap_threshold: float = 900.0
    # Component ids to monitor; empty means every component of the inventory.
    extension_list: tuple[str, ...] = ()
    # User component entries in catalog schema, applied over the catalog.
    components: tuple[dict[str, Any], ...] = ()
    # Extra management agents: {path, name}.
    management_agents: tuple[dict[str, Any], ...] = ()
    # Options of the check-in reader: the keys of _CHECKIN_KEYS that the file sets, with status
    # texts lower-cased. None when the file has no checkins key.
    checkins: dict[str, Any] | None = None
    # A component silent on at least this share of the hosts that run it, and on at least
    # fleet_outage_min_hosts hosts, at the same time, is one fleet-wide outage.
    fleet_outage_share: float = 0.3
    fleet_outage_min_hosts: int = 5
    # Approved maintenance windows, parsed: hosts (glob), components (ids, empty = all), start
    # and end (epoch seconds), reason, author, grace (seconds).
    maintenance_windows: tuple[dict[str, Any], ...] = ()


def _short_repr(value: object) -> str:
    """Return the repr of a configured value for a message, cut to 40 characters."""
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def parse_duration(value: object) -> float:
    """Return a duration in seconds from a number or text such as ``90s``, ``5m``, ``1h30m``.

    Raises:
        ValueError: the value is not a duration, or is negative or not finite.
    """
    if isinstance(value, bool):
        raise ValueError(
            f"invalid duration {_short_repr(value)}: expected seconds or text such as 5m"
        )
    if isinstance(value, int | float):
        try:
            seconds = float(value)
        except OverflowError:
            seconds = math.inf
    elif isinstance(value, str):
        text = value.strip()
        try:
            seconds = float(text)
        except ValueError:
            if not _DURATION_RE.match(text):
                raise ValueError(
                    f"invalid duration {_short_repr(value)}: expected seconds or text such as 90s, 5m, 2h"
                ) from None
            seconds = sum(
                float(amount) * _UNIT_SECONDS[unit.lower()]
                for amount, unit in _DURATION_PART_RE.findall(text)
            )
    else:
        raise ValueError(
            f"invalid duration {_short_repr(value)}: expected seconds or text such as 5m"
        )
    if not math.isfinite(seconds) or seconds < 0:
        raise ValueError(
            f"invalid duration {_short_repr(value)}: must be a finite number of seconds >= 0"
        )
    return seconds


class _Locator:
    """Find the line of a key path in the node tree that ``yaml.compose`` built."""

    def __init__(self, root: yaml.Node | None) -> None:
        self.root = root

    def line(self, path: Sequence[str | int]) -> int | None:
        node = self.root
        line = None if node is None else node.start_mark.line + 1
        for part in path:
            if isinstance(node, yaml.MappingNode) and isinstance(part, str):
                pair = next((p for p in node.value if getattr(p[0], "value", None) == part), None)
                if pair is None:
                    break
                line = pair[0].start_mark.line + 1
                node = pair[1]
            elif isinstance(node, yaml.SequenceNode) and isinstance(part, int):
                if not 0 <= part < len(node.value):
                    break
                node = node.value[part]
                line = node.start_mark.line + 1
            else:
                break
        return line


class _TextTimesLoader(yaml.SafeLoader):
    """The safe loader, except that timestamps stay text and bad values raise located errors.

    PyYAML turns an unquoted ``2026-02-30T22:00:00Z`` into a datetime and raises a bare
    ValueError for impossible dates; as text, the value gets a located configuration error.
    Integers with too many digits and tags of other than plain values raise a YAML error with
    their line instead of a ValueError or PyYAML's generic message.
    """


_TextTimesLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def _construct_int(loader: yaml.SafeLoader, node: yaml.ScalarNode) -> int:
    try:
        return int(loader.construct_yaml_int(node))
    except ValueError:
        # int() converts at most sys.get_int_max_str_digits() digits (4300 by default).
        raise yaml.constructor.ConstructorError(
            None,
            None,
            f"invalid integer {str(node.value)[:20]}...: too many digits",
            node.start_mark,
        ) from None


def _construct_text(loader: yaml.SafeLoader, node: yaml.ScalarNode) -> str:
    return str(loader.construct_scalar(node))


def _reject_tag(loader: yaml.SafeLoader, node: yaml.Node) -> NoReturn:
    tag = str(node.tag).replace("tag:yaml.org,2002:", "!!")
    raise yaml.constructor.ConstructorError(
        None,
        None,
        f"tag {tag} is not allowed; the configuration accepts plain values only "
        "(mappings, lists, text and numbers)",
        node.start_mark,
    )


_TextTimesLoader.add_constructor("tag:yaml.org,2002:int", _construct_int)
_TextTimesLoader.add_constructor("tag:yaml.org,2002:timestamp", _construct_text)
# The None entry is the constructor of every tag without one of its own, such as
# !!python/object. The safe loader's own message names the tag but not why it is refused.
_TextTimesLoader.add_constructor(None, _reject_tag)


def _check_nodes(root: yaml.Node, file: str) -> None:
    """Reject duplicate keys and documents that aliases expand past :data:`MAX_YAML_VALUES`.

    The walk visits a node again at every alias that names it, as code that walks the built
    values does. It keeps its own stack, so deep nesting cannot exhaust Python's recursion.
    """
    stack: list[tuple[yaml.Node, tuple[str | int, ...]]] = [(root, ())]
    visited = 0
    while stack:
        node, path = stack.pop()
        visited += 1
        if visited > MAX_YAML_VALUES:
            raise ConfigError(
                f"invalid YAML: aliases expand the document to more than {MAX_YAML_VALUES} "
                "values; write the values out instead of nesting aliases",
                file,
                line=node.start_mark.line + 1,
            )
        if isinstance(node, yaml.MappingNode):
            seen: set[str] = set()
            for key_node, value_node in node.value:
                key = str(key_node.value)
                if key in seen:
                    raise ConfigError(
                        "duplicate key; keep one of them",
                        file,
                        format_key_path((*path, key)),
                        key_node.start_mark.line + 1,
                    )
                seen.add(key)
                stack.append((value_node, (*path, key)))
        elif isinstance(node, yaml.SequenceNode):
            stack.extend((item, (*path, index)) for index, item in enumerate(node.value))


def _config_error_from_yaml(error: yaml.YAMLError, text: str, file: str) -> ConfigError:
    """Locate a PyYAML error: a mark for syntax and tag errors, an offset for bad characters."""
    if isinstance(error, yaml.reader.ReaderError):
        return ConfigError(
            f"invalid YAML: character #x{error.character:04x} is not allowed ({error.reason})",
            file,
            line=text.count("\n", 0, error.position) + 1,
        )
    mark = getattr(error, "problem_mark", None)
    line = mark.line + 1 if mark is not None else None
    problem = getattr(error, "problem", None) or str(error)
    context = getattr(error, "context", None)
    if context:
        problem = f"{context}, {problem}"
    return ConfigError(f"invalid YAML: {problem}", file, line=line)


def _parse(text: str, file: str) -> tuple[yaml.Node | None, Any]:
    """Compose and check the YAML node tree, then build the Python values from it."""
    try:
        # The reader checks the whole text for unacceptable characters here already.
        loader = _TextTimesLoader(text)
    except yaml.YAMLError as error:
        raise _config_error_from_yaml(error, text, file) from None
    try:
        root = loader.get_single_node()
        if root is None:
            return None, None
        _check_nodes(root, file)
        return root, loader.construct_document(root)
    except yaml.YAMLError as error:
        raise _config_error_from_yaml(error, text, file) from None
    except RecursionError:
        raise ConfigError("invalid YAML: values nested too deeply", file) from None
    finally:
        loader.dispose()


def load_config(path: Path | None) -> Config:
    """Load and validate a configuration file; ``None`` gives the defaults.

    Raises:
        ConfigError: the file cannot be read, is not valid YAML, or contains an unknown key,
            a value of the wrong type, a negative number or an unknown component id.
    """
    if path is None:
        return Config()
    file = str(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError("configuration file not found", file) from None
    except OSError as error:
        raise ConfigError(
            f"cannot read configuration file: {error.strerror or error}", file
        ) from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        line = raw.count(b"\n", 0, error.start) + 1
        raise ConfigError(
            f"invalid UTF-8 (byte 0x{raw[error.start]:02x}); save the file as UTF-8",
            file,
            line=line,
        ) from None

    root, data = _parse(text, file)
    if root is None or data is None:
        # A template with every setting commented out is a common starting point, so a file
        # without settings means the defaults, with a warning in case the file was cut short.
        log.warning("%s: the file contains no settings; using the defaults", file)
        return Config()
    locator = _Locator(root)
    if not isinstance(data, Mapping):
        raise ConfigError(
            f"expected a mapping of settings at the top level, not {_describe(data)}",
            file,
            line=locator.line(()),
        )
    return _ConfigBuilder(file, locator).build(data)


def _describe(value: object) -> str:
    return "a list" if isinstance(value, list) else f"the value {_short_repr(value)}"


def _first_error(errors: list[ConfigError]) -> ConfigError:
    """Return the error of the earliest line, naming how many more the file has."""
    first = min(errors, key=lambda error: error.line if error.line is not None else 0)
    if len(errors) > 1:
        more = len(errors) - 1
        first.message += f" (and {more} more error{'s' if more > 1 else ''} in the file)"
        first.args = (first.message,)
    return first


class _ConfigBuilder:
    def __init__(self, file: str, locator: _Locator) -> None:
        self.file = file
        self.locator = locator

    def error(self, message: str, *path: str | int) -> ConfigError:
        return ConfigError(message, self.file, format_key_path(path), self.locator.line(path))

    def build(self, data: Mapping[Any, Any]) -> Config:
        """Validate every setting and return the configuration.

        Independent settings are all checked before an error is raised, so that the error
        reported is the first in the file, with the number of the others.
        """
        errors: list[ConfigError] = []
        settings: dict[str, Any] = {}

        def put(key: str, compute: Callable[[], Any]) -> None:
            try:
                settings[key] = compute()
            except ConfigError as error:
                errors.append(error)

        for key in data:
            if key not in _KEYS:
                errors.append(
                    self.error(f"unknown key; expected one of: {', '.join(_KEYS)}", str(key))
                )
        for key in (
            "crash_correlation_window",
            "telemetry_gap_threshold",
            "approval_grace",
            "event_source_gap_threshold",
        ):
            if key in data:
                put(key, partial(self.duration, data[key], key))
        if "fleet_outage_share" in data:
            put(
                "fleet_outage_share",
                partial(self.share, "fleet_outage_share", data["fleet_outage_share"]),
            )
        for key in ("crash_burst_threshold", "flood_event_threshold", "fleet_outage_min_hosts"):
            if key in data:
                put(key, partial(self.count, key, data[key]))
        try:
            inventory = self._inventory_settings(data, settings)
        except ConfigError as error:
            # The sections below name components, so they cannot be checked without it.
            errors.append(error)
        else:
            if "extension_list" in data:
                put(
                    "extension_list",
                    partial(self.extension_list, data["extension_list"], inventory),
                )
            if data.get("checkins") is not None:
                put("checkins", partial(self._checkin_settings, data["checkins"], inventory))
            if data.get("maintenance_windows") is not None:
                windows = data["maintenance_windows"]
                put("maintenance_windows", partial(self.maintenance_windows, windows, inventory))
        if errors:
            raise _first_error(errors)
        return Config(**settings)

    def _inventory_settings(self, data: Mapping[Any, Any], settings: dict[str, Any]) -> Inventory:
        """Store the added components and agents in ``settings``; return the inventory."""
        components = self.mappings("components", data.get("components"))
        agents = self.mappings("management_agents", data.get("management_agents"))
        try:
            inventory = load_inventory(components, agents)
        except InventoryError as error:
            raise self.error(error.message, *error.path) from None
        settings["components"] = tuple(dict(entry) for entry in components)
        settings["management_agents"] = tuple(dict(entry) for entry in agents)
        return inventory

    def _checkin_settings(self, section: Any, inventory: Inventory) -> dict[str, Any]:
        checkins = self.checkins(section)
        for name, component_id in checkins.get("component_names", {}).items():
            if inventory.get(component_id) is None:
                raise self.error(
                    f"unknown component id {_short_repr(component_id)}",
                    "checkins",
                    "component_names",
                    name,
                )
        return checkins

    def duration(self, value: Any, *path: str | int) -> float:
        try:
            seconds = parse_duration(value)
        except ValueError as error:
            raise self.error(str(error), *path) from None
        if seconds <= 0:
            raise self.error(
                f"invalid duration {_short_repr(value)}: must be greater than 0", *path
            )
        return seconds

    def share(self, key: str, value: Any) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value <= 1:
            raise self.error(
                f"invalid value {_short_repr(value)}: expected a fraction above 0 and at most 1",
                key,
            )
        return float(value)

    def count(self, key: str, value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.error(f"invalid value {_short_repr(value)}: expected a whole number", key)
        if value < 1:
            raise self.error(f"invalid value {_short_repr(value)}: must be at least 1", key)
        return value

    def mappings(self, key: str, value: Any) -> list[Mapping[str, Any]]:
        if value is None:
            return []
        if not isinstance(value, list):
            raise self.error("invalid value: expected a list of mappings", key)
        for index, entry in enumerate(value):
            if not isinstance(entry, Mapping):
                raise self.error(
                    f"invalid entry {_short_repr(entry)}: expected a mapping", key, index
                )
        return value

    def extension_list(self, value: Any, inventory: Inventory) -> tuple[str, ...]:
        key = "extension_list"
        if value is None:
            return ()
        if not isinstance(value, list):
            raise self.error("invalid value: expected a list of component ids", key)
        ids: list[str] = []
        for index, item in enumerate(value):
            if not isinstance(item, str):
                raise self.error(
                    f"invalid component id {_short_repr(item)}: expected text", key, index
                )
            if inventory.get(item) is None:
                raise self.error(
                    f"unknown component id {_short_repr(item)}; define it under components or use a "
                    "catalog id",
                    key,
                    index,
                )
            if item not in ids:
                ids.append(item)
        return tuple(ids)

    def maintenance_windows(self, value: Any, inventory: Inventory) -> tuple[dict[str, Any], ...]:
        key = "maintenance_windows"
        entries = self.mappings(key, value)
        windows = []
        for index, entry in enumerate(entries):
            for name in entry:
                if name not in _WINDOW_KEYS:
                    raise self.error(
                        f"unknown key; expected one of: {', '.join(_WINDOW_KEYS)}",
                        key,
                        index,
                        str(name),
                    )
            for required in ("start", "end", "reason", "author"):
                if entry.get(required) in (None, ""):
                    raise self.error(f"missing {required!r}", key, index)
            start = self.timestamp(entry["start"], key, index, "start")
            end = self.timestamp(entry["end"], key, index, "end")
            if end <= start:
                raise self.error("invalid window: 'end' must be after 'start'", key, index, "end")
            if "expires" in entry:
                # An approval that expires before the window ends stops covering at its expiry.
                expires = self.timestamp(entry["expires"], key, index, "expires")
                if expires <= start:
                    raise self.error(
                        "invalid window: 'expires' must be after 'start'", key, index, "expires"
                    )
                end = min(end, expires)
            hosts = entry.get("hosts", "*")
            if not isinstance(hosts, str) or not hosts:
                raise self.error(
                    f"invalid value {_short_repr(hosts)}: expected a host name or glob",
                    key,
                    index,
                    "hosts",
                )
            components = entry.get("components", [])
            if isinstance(components, str):
                components = [components]
            if not isinstance(components, list) or not all(isinstance(c, str) for c in components):
                raise self.error(
                    "invalid value: expected a list of component ids", key, index, "components"
                )
            for component_id in components:
                if inventory.get(component_id) is None:
                    raise self.error(
                        f"unknown component id {_short_repr(component_id)}",
                        key,
                        index,
                        "components",
                    )
            grace = (
                self.duration(entry["grace"], key, index, "grace") if "grace" in entry else 900.0
            )
            windows.append(
                {
                    "hosts": hosts,
                    "components": tuple(components),
                    "start": start,
                    "end": end,
                    "reason": str(entry["reason"]),
                    "author": str(entry["author"]),
                    "grace": grace,
                }
            )
        return tuple(windows)

    def timestamp(self, value: Any, *path: str | int) -> float:
        parsed = parse_rfc3339(str(value)) if isinstance(value, str) else None
        if parsed is None:
            raise self.error(
                f"invalid time {_short_repr(value)}: expected RFC 3339, e.g. 2026-11-20T22:00:00Z",
                *path,
            )
        return parsed

    def checkins(self, value: Any) -> dict[str, Any]:
        key = "checkins"
        if not isinstance(value, Mapping):
            raise self.error(
                f"invalid value: expected a mapping with keys {', '.join(_CHECKIN_KEYS)}", key
            )
        for name in value:
            if name not in _CHECKIN_KEYS:
                raise self.error(
                    f"unknown key; expected one of: {', '.join(_CHECKIN_KEYS)}", key, str(name)
                )
        options: dict[str, Any] = {}
        if value.get("columns") is not None:
            options["columns"] = self.checkin_columns(value["columns"])
        for name in ("healthy_status", "unhealthy_status"):
            if value.get(name) is not None:
                options[name] = self.status_list(name, value[name])
        healthy = options.get("healthy_status", [])
        unhealthy = value.get("unhealthy_status") or []
        for index, item in enumerate(unhealthy):
            status = item.strip().lower()
            if status in healthy:
                raise self.error(
                    f"status {_short_repr(status)} is also in healthy_status; list it in one of them",
                    key,
                    "unhealthy_status",
                    index,
                )
        if value.get("timezone") is not None:
            options["timezone"] = self.timezone(value["timezone"])
        if value.get("component_names") is not None:
            options["component_names"] = self.component_names(value["component_names"])
        return options

    def component_names(self, value: Any) -> dict[str, str]:
        path = ("checkins", "component_names")
        if not isinstance(value, Mapping):
            raise self.error(
                "invalid value: expected a mapping of console names to component ids", *path
            )
        names: dict[str, str] = {}
        for name, component_id in value.items():
            if not isinstance(component_id, str) or not component_id.strip():
                raise self.error(
                    f"invalid component id {_short_repr(component_id)}", *path, str(name)
                )
            names[str(name).strip().casefold()] = component_id.strip()
        return names

    def checkin_columns(self, value: Any) -> dict[str, str]:
        path = ("checkins", "columns")
        if not isinstance(value, Mapping):
            raise self.error(
                "invalid value: expected a mapping of column roles to header names", *path
            )
        columns: dict[str, str] = {}
        for role, name in value.items():
            if role not in _CHECKIN_COLUMN_ROLES:
                raise self.error(
                    f"unknown column role; expected one of: {', '.join(_CHECKIN_COLUMN_ROLES)}",
                    *path,
                    str(role),
                )
            if not isinstance(name, str) or not name.strip():
                raise self.error(
                    f"invalid column name {_short_repr(name)}: expected the header text",
                    *path,
                    role,
                )
            columns[role] = name
        return columns

    def status_list(self, name: str, value: Any) -> list[str]:
        if not isinstance(value, list):
            raise self.error("invalid value: expected a list of status texts", "checkins", name)
        statuses: list[str] = []
        for index, item in enumerate(value):
            if not isinstance(item, str) or not item.strip():
                raise self.error(
                    f"invalid status {_short_repr(item)}: expected text", "checkins", name, index
                )
            status = item.strip().lower()
            if status not in statuses:
                statuses.append(status)
        return statuses

    def timezone(self, value: Any) -> str:
        path = ("checkins", "timezone")
        if not isinstance(value, str):
            raise self.error(
                f"invalid time zone {_short_repr(value)}: expected an IANA name", *path
            )
        name = value.strip()
        # UTC needs no time-zone database, so it is accepted where the system has none.
        if name.upper() == "UTC":
            return name
        try:
            ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            raise self.error(
                f"unknown time zone {_short_repr(value)}; use an IANA name such as Europe/Berlin or UTC",
                *path,
            ) from None
        return name


def maintenance_spans(config: Config) -> list[Span]:
    """Return the configured maintenance windows as explanation spans."""
    return [
        Span(
            start=window["start"],
            end=window["end"],
            reason=f"approved maintenance: {window['reason']}",
            grace=window["grace"],
            host_pattern=window["hosts"],
            components=tuple(window["components"]),
            author=window["author"],
        )
        for window in config.maintenance_windows
    ]


def build_inventory(config: Config) -> Inventory:
    """Build the inventory that a scan monitors.

    The catalog gets the config's components and management agents, then is restricted to
    ``extension_list`` when that is not empty.

    Raises:
        ConfigError: a component entry or an ``extension_list`` id is invalid (possible when
            the config was built in code rather than by :func:`load_config`).
    """
    try:
        inventory = load_inventory(config.components, config.management_agents)
    except InventoryError as error:
        raise ConfigError(error.message, key=format_key_path(error.path) or None) from None
    if not config.extension_list:
        return inventory
    try:
        return inventory.restricted(config.extension_list)
    except InventoryError as error:
        raise ConfigError(error.message, key="extension_list") from None
