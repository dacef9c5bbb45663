"""The inventory: macOS security components that must stay healthy, and lookups into it.

The packaged catalog (``data/catalog.yaml``) lists well-known products and Apple's built-in
controls. Each identifier (team ID, bundle id, launchd label, path, ...) keeps the keys of the
public sources that state it, and :attr:`Component.sources` keeps that provenance queryable.
Users add components or override catalog fields with :func:`load_inventory`.

Lookups are case-insensitive, because the default macOS file system is, and treat
``/private/var``, ``/private/etc`` and ``/private/tmp`` like ``/var``, ``/etc`` and ``/tmp``.
Exact values are found with dictionary lookups. Only the few glob and prefix entries are scanned.
"""

from __future__ import annotations

import fnmatch
import functools
import importlib.resources
import logging
import posixpath
import re
from collections.abc import Callable, Hashable, Iterable, Iterator, Mapping, Sequence
from typing import Any, Final, TypeVar

import msgspec
import yaml

log = logging.getLogger(__name__)

CLI_KINDS: Final = frozenset(
    {
        "protection_weakened",
        "filter_disabled",
        "daemon_unloaded",
        "extension_state_changed",
        "process_killed",
    }
)

# Identifier fields of a component, in catalog order. Each is a tuple of strings.
IDENTIFIER_FIELDS: Final = (
    "team_ids",
    "system_extensions",
    "network_filters",
    "kexts",
    "bundle_ids",
    "launchd_labels",
    "launchd_plists",
    "process_names",
    "process_paths",
    "install_paths",
    "data_paths",
    "log_paths",
    "package_ids",
    "log_subsystems",
)

# Fields whose values are absolute paths or fnmatch globs over absolute paths.
PATH_FIELDS: Final = frozenset(
    {"launchd_plists", "process_paths", "install_paths", "data_paths", "log_paths"}
)

# Roles that :meth:`Inventory.match_path` reports, keyed by the field that contains the path.
PATH_ROLES: Final = {
    "launchd_plists": "plist",
    "install_paths": "install",
    "data_paths": "data",
    "log_paths": "log",
    "process_paths": "process",
}

# A name pattern (pkill, killall -m) must contain a literal run at least this long before it is
# compared with the inventory. Shorter runs ("sh", "a") would tie almost every component to
# unrelated commands.
MIN_PATTERN_LITERAL: Final = 3

_ID_RE: Final = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
_TEAM_ID_RE: Final = re.compile(r"^[A-Z0-9]{10}$")
_TECHNIQUE_RE: Final = re.compile(r"^T\d{4}(?:\.\d{3})?$")
# "TEAMID.bundle.id", the launchd label of a system extension job.
_TEAM_LABEL_RE: Final = re.compile(r"^([A-Z0-9]{10})\.(.+)$")
# Executable or bundle folder of an activated system extension (lookup keys are case-folded).
_SYSEXT_PATH_RE: Final = re.compile(
    r"^/library/systemextensions/[^/]+/([^/]+)\.systemextension(?:/|$)"
)
_GLOB_CHARS: Final = frozenset("*?[")
_PRIVATE_ALIASES: Final = ("/private/var", "/private/etc", "/private/tmp")


class InventoryError(ValueError):
    """An invalid catalog or user component entry.

    ``path`` locates the offending value inside the input, for example
    ``("components", 2, "launchd_labels", 0)``, so a caller can point at the file line.
    """

    def __init__(self, message: str, path: tuple[str | int, ...] = ()) -> None:
        super().__init__(message)
        self.message = message
        self.path = path

    def __str__(self) -> str:
        where = format_key_path(self.path)
        return f"{where}: {self.message}" if where else self.message


def format_key_path(path: Sequence[str | int]) -> str:
    """Render ``("components", 2, "clis", 0, "kind")`` as ``components[2].clis[0].kind``."""
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else part
    return text


# --- records --------------------------------------------------------------------------------


_WORD = re.compile(r"[a-z0-9]+")

# Entries kept by each lookup cache of an inventory.
LOOKUP_CACHE_ENTRIES = 65_536

_VALUE_TYPE_FLAGS = frozenset(
    {
        "-bool",
        "-boolean",
        "-int",
        "-integer",
        "-float",
        "-string",
        "-data",
        "-date",
        "-array",
        "-dict",
    }
)


class CliRule(msgspec.Struct, frozen=True):
    """A command line that switches a component's protection off.

    ``args`` are fnmatch tokens that must appear in ``argv[1:]`` in this order, not necessarily
    next to each other. Each token may list alternatives separated by ``|``. Matching of the
    tool name and the tokens is case-insensitive. No tokens match every run of the tool.
    """

    tool: str
    args: tuple[str, ...]
    kind: str
    summary: str
    techniques: tuple[str, ...] = ()
    sources: tuple[str, ...] = ()

    def matches(self, argv: Sequence[str]) -> bool:
        """Return whether ``argv`` runs this tool with these tokens as one contiguous run.

        The run may start anywhere after ``argv[0]``. Contiguity keeps an option and its value
        together: ``--setglobalstate on --setstealthmode off`` does not match
        ``--setglobalstate off``.
        """
        if not argv or posixpath.basename(argv[0]).casefold() != self.tool.casefold():
            return False
        patterns = [token.casefold().split("|") for token in self.args]
        if not patterns:
            return True
        # Value-type flags of defaults(1) and plutil(1) sit between a key and its value.
        arguments = [a.casefold() for a in argv[1:] if a.casefold() not in _VALUE_TYPE_FLAGS]
        for start in range(len(arguments) - len(patterns) + 1):
            if all(
                any(fnmatch.fnmatchcase(arguments[start + offset], alt) for alt in alternatives)
                for offset, alternatives in enumerate(patterns)
            ):
                return True
        return False


class Component(msgspec.Struct, frozen=True):
    """One security product or built-in control, with every identifier that ties telemetry to it.

    ``sources`` maps ``"field:value"`` (for example ``"team_ids:X9E956P446"`` or
    ``"clis:mdatp config real-time-protection --value disabled"``) to the source keys that state
    it. Catalog entries always have sources; user entries may not.
    """

    id: str
    product: str
    vendor: str
    category: str
    builtin: bool = False
    heartbeat_seconds: int | None = None
    team_ids: tuple[str, ...] = ()
    system_extensions: tuple[str, ...] = ()
    network_filters: tuple[str, ...] = ()
    kexts: tuple[str, ...] = ()
    bundle_ids: tuple[str, ...] = ()
    launchd_labels: tuple[str, ...] = ()
    launchd_plists: tuple[str, ...] = ()
    process_names: tuple[str, ...] = ()
    process_paths: tuple[str, ...] = ()
    install_paths: tuple[str, ...] = ()
    data_paths: tuple[str, ...] = ()
    log_paths: tuple[str, ...] = ()
    package_ids: tuple[str, ...] = ()
    log_subsystems: tuple[str, ...] = ()
    clis: tuple[CliRule, ...] = ()
    sources: dict[str, tuple[str, ...]] = msgspec.field(default_factory=dict)

    def sources_of(self, field: str, value: str) -> tuple[str, ...]:
        """Return the source keys of one identifier, or ``()`` when none are recorded."""
        return self.sources.get(f"{field}:{value}", ())


class ManagementAgent(msgspec.Struct, frozen=True):
    """A management agent executable whose actions count as sanctioned administration."""

    path: str
    name: str
    sources: tuple[str, ...] = ()


# --- path and pattern helpers ---------------------------------------------------------------


def normalize_path(path: str) -> str:
    """Return the lookup key of a path: case-folded, ``/private/{var,etc,tmp}`` folded, normalized.

    A relative path or bare file name stays relative. Globs pass through unchanged apart from
    the same folding.
    """
    text = path.strip()
    if not text:
        return ""
    text = posixpath.normpath(text)
    if text.startswith("//"):
        text = "/" + text.lstrip("/")
    for alias in _PRIVATE_ALIASES:
        if text == alias or text.startswith(alias + "/"):
            text = text[len("/private") :]
            break
    return text.casefold()


def _is_glob(value: str) -> bool:
    return any(char in _GLOB_CHARS for char in value)


def _ancestors(key: str) -> Iterator[str]:
    """Yield an absolute key and each parent folder up to, but not including, ``/``."""
    current = key
    while current and current != "/":
        yield current
        current = posixpath.dirname(current)


def _glob_covers(key: str, pattern: str) -> bool:
    """Return whether a glob names the path itself or a folder that contains it."""
    if fnmatch.fnmatchcase(key, pattern) or fnmatch.fnmatchcase(key, pattern + "/*"):
        return True
    # "/var/log/*" also names the folder /var/log itself.
    return pattern.endswith("/*") and key == pattern[:-2]


def literal_fragments(alternative: str) -> list[str]:
    """Split one regular-expression alternative into its literal runs, case-folded.

    Anchors, wildcards, character classes, groups and repetition counts end a run. The
    character before ``?``, ``*`` or a ``{m,n}`` count is dropped, which can only widen the
    match. The pattern is never compiled, because it comes from the command line being judged.
    """
    fragments: list[str] = []
    current: list[str] = []

    def flush() -> None:
        if current:
            fragments.append("".join(current).casefold())
            current.clear()

    index = 0
    while index < len(alternative):
        char = alternative[index]
        if char == "\\":
            following = alternative[index + 1 : index + 2]
            if following and not following.isalnum():
                current.append(following)
            else:
                # \d, \w, \b and friends stand for classes, not literal text.
                flush()
            index += 2
            continue
        if char == "[":
            flush()
            end = alternative.find("]", index + 2)
            index = len(alternative) if end < 0 else end + 1
            continue
        if char in "?*{":
            if current:
                current.pop()
            flush()
            if char == "{":
                end = alternative.find("}", index)
                index = len(alternative) if end < 0 else end + 1
            else:
                index += 1
            continue
        if char in "^$+.()":
            flush()
            index += 1
            continue
        current.append(char)
        index += 1
    flush()
    return fragments


def _contains_in_order(text: str, fragments: Sequence[str]) -> bool:
    position = 0
    for fragment in fragments:
        found = text.find(fragment, position)
        if found < 0:
            return False
        position = found + len(fragment)
    return True


# --- lookup tables --------------------------------------------------------------------------

_T = TypeVar("_T")


def _unique(items: Iterable[_T], key: Callable[[_T], Hashable]) -> list[_T]:
    seen: set[Hashable] = set()
    result: list[_T] = []
    for item in items:
        marker = key(item)
        if marker not in seen:
            seen.add(marker)
            result.append(item)
    return result


class _NameTable:
    """Exact names and ``*``-suffixed prefixes, case-insensitive."""

    def __init__(self) -> None:
        self.exact: dict[str, list[Component]] = {}
        self.prefixes: list[tuple[str, Component]] = []

    def add(self, value: str, component: Component) -> None:
        key = value.casefold()
        if key.endswith("*"):
            self.prefixes.append((key[:-1], component))
        else:
            self.exact.setdefault(key, []).append(component)

    def find(self, value: str) -> list[Component]:
        key = value.casefold()
        found = list(self.exact.get(key, ()))
        found.extend(component for prefix, component in self.prefixes if key.startswith(prefix))
        return found


class _PathTable:
    """Absolute paths and globs. ``covers`` lookups also match paths inside listed folders."""

    def __init__(self) -> None:
        self.exact: dict[str, list[Component]] = {}
        self.globs: list[tuple[str, Component]] = []

    def add(self, value: str, component: Component) -> None:
        key = normalize_path(value)
        if _is_glob(key):
            self.globs.append((key, component))
        else:
            self.exact.setdefault(key, []).append(component)

    def find_exact(self, key: str) -> list[Component]:
        found = list(self.exact.get(key, ()))
        found.extend(c for pattern, c in self.globs if fnmatch.fnmatchcase(key, pattern))
        return found

    def find_covering(self, key: str) -> list[Component]:
        found: list[Component] = []
        if key.startswith("/"):
            for ancestor in _ancestors(key):
                found.extend(self.exact.get(ancestor, ()))
        found.extend(c for pattern, c in self.globs if _glob_covers(key, pattern))
        return found


class _PlistTable:
    """Launchd plist paths, matched by full path or, for a bare file name, by basename."""

    def __init__(self) -> None:
        self.paths = _PathTable()
        self.basenames: dict[str, list[Component]] = {}
        self.basename_globs: list[tuple[str, Component]] = []

    def add(self, value: str, component: Component) -> None:
        self.paths.add(value, component)
        base = posixpath.basename(normalize_path(value))
        if _is_glob(base):
            self.basename_globs.append((base, component))
        else:
            self.basenames.setdefault(base, []).append(component)

    def find(self, path: str) -> list[Component]:
        key = normalize_path(path)
        if not key:
            return []
        if key.startswith("/"):
            return self.paths.find_exact(key)
        return self.find_basename(posixpath.basename(key))

    def find_basename(self, base: str) -> list[Component]:
        key = base.casefold()
        found = list(self.basenames.get(key, ()))
        found.extend(c for pattern, c in self.basename_globs if fnmatch.fnmatchcase(key, pattern))
        return found


# --- the inventory --------------------------------------------------------------------------


class Inventory:
    """Components to monitor, management agents, and fast lookups from telemetry to both.

    When several components match, lookups that return one component return the first in
    inventory order (catalog order, then user components).
    """

    def __init__(
        self,
        components: Iterable[Component],
        management_agents: Iterable[ManagementAgent] = (),
        sources: Mapping[str, str] | None = None,
    ) -> None:
        self.components: list[Component] = list(components)
        self.management_agents: list[ManagementAgent] = list(management_agents)
        self.sources: dict[str, str] = dict(sources or {})
        # Lookups repeat the same few thousand paths over millions of events; both caches are
        # cleared when full, so they stay bounded.
        self._path_cache: dict[str, tuple[tuple[Component, str], ...]] = {}
        self._process_cache: dict[tuple[str | None, str | None], Component | None] = {}
        self._build_indexes()

    # index construction ------------------------------------------------------------------------

    def _build_indexes(self) -> None:
        self._by_id: dict[str, Component] = {}
        self._by_team: dict[str, list[Component]] = {}
        self._labels = _NameTable()
        self._extensions = _NameTable()
        self._bundles = _NameTable()
        self._kext_ids = _NameTable()
        self._kext_paths: dict[str, list[Component]] = {}
        self._kext_basenames: dict[str, list[Component]] = {}
        self._process_names: dict[str, list[Component]] = {}
        self._plists = _PlistTable()
        self._paths = {name: _PathTable() for name in PATH_ROLES}
        self._cli: dict[str, list[tuple[Component, CliRule]]] = {}
        self._packages: list[tuple[str, Component]] = []
        self._exact_names: dict[str, list[Component]] = {}
        self._pattern_targets: list[tuple[str, Component]] = []
        self._agents: dict[str, ManagementAgent] = {}

        for component in self.components:
            if component.id in self._by_id:
                raise InventoryError(f"duplicate component id {component.id!r}")
            self._by_id[component.id] = component
            self._index_component(component)

        self._packages.sort(key=lambda item: len(item[0]), reverse=True)
        for agent in self.management_agents:
            self._agents[normalize_path(agent.path)] = agent

    def _index_component(self, component: Component) -> None:
        for team in component.team_ids:
            self._by_team.setdefault(team.upper(), []).append(component)
        for label in component.launchd_labels:
            self._labels.add(label, component)
        for bundle in (*component.system_extensions, *component.network_filters):
            self._extensions.add(bundle, component)
        for bundle in component.bundle_ids:
            self._bundles.add(bundle, component)
        for kext in component.kexts:
            self._index_kext(kext, component)
        for name in component.process_names:
            self._process_names.setdefault(name.casefold(), []).append(component)
        for plist in component.launchd_plists:
            self._plists.add(plist, component)
        for field, table in self._paths.items():
            for value in getattr(component, field):
                table.add(value, component)
        for rule in component.clis:
            self._cli.setdefault(rule.tool.casefold(), []).append((component, rule))
        for package in component.package_ids:
            self._packages.append((package.casefold(), component))
        self._index_names(component)

    def _index_kext(self, kext: str, component: Component) -> None:
        if kext.startswith("/"):
            key = normalize_path(kext)
            self._kext_paths.setdefault(key, []).append(component)
            self._kext_basenames.setdefault(posixpath.basename(key), []).append(component)
        elif kext.casefold().endswith(".kext"):
            self._kext_basenames.setdefault(kext.casefold(), []).append(component)
        else:
            self._kext_ids.add(kext, component)

    def _index_names(self, component: Component) -> None:
        """Collect the names that ``killall`` and ``pkill`` operands are compared with."""
        exact: list[str] = list(component.process_names)
        targets: list[str] = list(component.process_names)
        for path in component.process_paths:
            base = posixpath.basename(path)
            if not _is_glob(base):
                exact.append(base)
            targets.extend((base, path))
        for path in component.install_paths:
            base = posixpath.basename(path)
            if base.casefold().endswith(".app"):
                # An app's main executable is conventionally named like the bundle.
                exact.append(base[: -len(".app")])
            targets.extend((base, path))
        for bundle in (*component.system_extensions, *component.network_filters):
            if not bundle.endswith("*"):
                # A system extension's executable is named after its bundle id.
                exact.append(bundle)
                targets.append(bundle)
        targets.extend(b for b in component.bundle_ids if not b.endswith("*"))
        for name in exact:
            self._exact_names.setdefault(name.casefold(), []).append(component)
        for target in targets:
            self._pattern_targets.append((target.casefold(), component))

    # simple lookups ----------------------------------------------------------------------------

    def get(self, component_id: str) -> Component | None:
        """Return the component with this id, or ``None``."""
        return self._by_id.get(component_id)

    def by_team_id(self, team_id: str | None) -> list[Component]:
        """Return the components signed by this team ID (several share Objective-See's)."""
        if not team_id:
            return []
        return list(self._by_team.get(team_id.upper(), ()))

    def cli_rules(self, tool: str) -> list[tuple[Component, CliRule]]:
        """Return the tamper command rules of a tool, by basename of ``argv[0]``."""
        return list(self._cli.get(posixpath.basename(tool).casefold(), ()))

    def management_agent(self, path: str | None) -> ManagementAgent | None:
        """Return the management agent at this executable path, or ``None``."""
        if not path:
            return None
        return self._agents.get(normalize_path(path))

    def component_for_package(self, text: str) -> Component | None:
        """Return the component one of whose installer package ids occurs in ``text``.

        ``text`` is typically an installer script path such as
        ``/tmp/PKInstallSandbox.x/Scripts/com.wazuh.pkg.wazuh-agent.abc/postinstall``.
        Longer package ids are tried first.
        """
        if not text:
            return None
        folded = text.casefold()
        for package, component in self._packages:
            if package in folded:
                return component
        return None

    def restricted(self, component_ids: Iterable[str]) -> Inventory:
        """Return an inventory with only these components, keeping the management agents.

        Raises:
            InventoryError: an id names no component of this inventory.
        """
        requested = set(component_ids)
        unknown = sorted(requested - self._by_id.keys())
        if unknown:
            raise InventoryError(f"unknown component id {', '.join(map(repr, unknown))}")
        selected = [c for c in self.components if c.id in requested]
        return Inventory(selected, self.management_agents, self.sources)

    # identifier lookups ------------------------------------------------------------------------

    def match_system_extension(self, bundle_id: str) -> Component | None:
        """Return the component that owns a system extension or network filter bundle id."""
        found = self._extensions.find(bundle_id) if bundle_id else []
        return found[0] if found else None

    def match_bundle_id(self, bundle_id: str) -> Component | None:
        """Return the component of an app, helper, system extension or filter bundle id."""
        if not bundle_id:
            return None
        found = self._extensions.find(bundle_id) or self._bundles.find(bundle_id)
        return found[0] if found else None

    def match_label(self, label: str) -> Component | None:
        """Return the component that owns a launchd job label.

        Tried in turn:

        * the component's labels, exact or ``*`` prefix;
        * ``TEAMID.bundle.id``, the label launchd gives a system extension job;
        * a bare system extension bundle id;
        * a plist named ``<label>.plist``, because launchd plists are conventionally named
          after their label.
        """
        if not label:
            return None
        found = self._labels.find(label)
        if not found:
            team_label = _TEAM_LABEL_RE.match(label)
            if team_label is not None:
                found = self._extensions.find(team_label.group(2))
        if not found:
            found = self._extensions.find(label)
        if not found and "/" not in label:
            found = self._plists.find_basename(label + ".plist")
        return found[0] if found else None

    def match_plist(self, path: str) -> Component | None:
        """Return the component that owns a launchd plist.

        ``path`` is absolute (``/private`` prefixes tolerated, globs in the catalog honoured) or
        a bare or relative file name, which is compared with the basenames of catalog plists.
        """
        found = self._plists.find(path) if path else []
        return found[0] if found else None

    def match_kext(self, identifier_or_path: str) -> Component | None:
        """Return the component of a kext bundle id, kext path (or a file inside it) or ``X.kext``."""
        value = identifier_or_path.strip()
        if not value:
            return None
        key = normalize_path(value)
        found: list[Component] = []
        if key.startswith("/"):
            for ancestor in _ancestors(key):
                found.extend(self._kext_paths.get(ancestor, ()))
        if not found and key.endswith(".kext"):
            found = list(self._kext_basenames.get(posixpath.basename(key), ()))
        if not found and "/" not in value:
            found = self._kext_ids.find(value)
        return found[0] if found else None

    def match_process(self, path: str | None, name: str | None = None) -> Component | None:
        """Return the component that an executable path or process name belongs to.

        See :meth:`_match_process` for the rules; results are cached.
        """
        key = (path, name)
        try:
            return self._process_cache[key]
        except KeyError:
            pass
        if len(self._process_cache) >= LOOKUP_CACHE_ENTRIES:
            self._process_cache.clear()
        found = self._process_cache[key] = self._match_process(path, name)
        return found

    def _match_process(self, path: str | None, name: str | None) -> Component | None:
        """Return the component that an executable path or process name belongs to.

        A path matches the component's process paths, the executable of one of its system
        extensions under ``/Library/SystemExtensions/<uuid>/<bundle>.systemextension/``, or any
        file under one of its install paths. A name matches its process names or system
        extension bundle ids. Without a name, the basename of the path is used as the name.
        """
        if path:
            key = normalize_path(path)
            if key.startswith("/"):
                found = self._paths["process_paths"].find_exact(key)
                if not found:
                    found = self._sysext_owner(key)
                if not found:
                    found = self._paths["install_paths"].find_covering(key)
                if found:
                    return found[0]
            if name is None:
                name = posixpath.basename(path.rstrip("/"))
        if name:
            found = list(self._process_names.get(name.casefold(), ()))
            if not found:
                found = self._extensions.find(name)
            if found:
                return found[0]
        return None

    def _sysext_owner(self, key: str) -> list[Component]:
        match = _SYSEXT_PATH_RE.match(key)
        return self._extensions.find(match.group(1)) if match else []

    def match_path(self, path: str) -> list[tuple[Component, str]]:
        """Return every component that a file path belongs to, with the path's role.

        See :meth:`_match_path` for the roles; results are cached.
        """
        cached = self._path_cache.get(path)
        if cached is None:
            if len(self._path_cache) >= LOOKUP_CACHE_ENTRIES:
                self._path_cache.clear()
            cached = self._path_cache[path] = tuple(self._match_path(path))
        return list(cached)

    def _match_path(self, path: str) -> list[tuple[Component, str]]:
        """Return every component that a file path belongs to, with the path's role.

        Roles: ``plist`` (a launchd plist of the component), ``install`` (inside an install
        path), ``data`` (configuration, rules, managed preferences), ``log`` and ``process``
        (an executable of the component, including its system extension bundle).
        """
        key = normalize_path(path)
        if not key.startswith("/"):
            return []
        pairs: list[tuple[Component, str]] = [(c, "plist") for c in self._plists.find(key)]
        for field in ("install_paths", "data_paths", "log_paths"):
            role = PATH_ROLES[field]
            pairs.extend((c, role) for c in self._paths[field].find_covering(key))
        process = self._paths["process_paths"].find_exact(key) + self._sysext_owner(key)
        pairs.extend((c, "process") for c in process)
        return _unique(pairs, key=lambda pair: (pair[0].id, pair[1]))

    def match_subsystem(self, subsystem: str) -> Component | None:
        """Return the component that logs under a unified-log subsystem (prefix match)."""
        if not subsystem:
            return None
        for component in self.components:
            if any(subsystem.startswith(prefix) for prefix in component.log_subsystems):
                return component
        return None

    def match_product_name(self, text: str) -> Component | None:
        """Return the component a console or health record names in free text, if only one fits.

        Management consoles name agents in their own words ("CrowdStrike Falcon Sensor",
        "osquery", "falcond"). Tried in turn: the component id, a process name, then the words
        of the text against the words of each product name. A product fits when all its words
        are in the text, or all the text's words are in the product name. Several equally good
        fits ("Santa" names two products) return ``None``.
        """
        wanted = text.strip().casefold()
        if not wanted:
            return None
        if wanted in self._by_id:
            return self._by_id[wanted]
        by_name = self._process_names.get(wanted)
        if by_name:
            return by_name[0]
        words = set(_WORD.findall(wanted))
        if not words:
            return None
        contained: list[Component] = []
        containing: list[Component] = []
        for component in self.components:
            product_words = set(_WORD.findall(component.product.casefold()))
            if product_words and product_words <= words:
                contained.append(component)
            elif words <= product_words:
                containing.append(component)
        if contained:
            # The most specific product named in full wins ("Jamf Protect" over "Jamf").
            best = max(len(_WORD.findall(c.product.casefold())) for c in contained)
            top = [c for c in contained if len(_WORD.findall(c.product.casefold())) == best]
            return top[0] if len(top) == 1 else None
        return containing[0] if len(containing) == 1 else None

    def match_name_pattern(self, pattern: str, exact: bool) -> list[Component]:
        """Return the components whose processes a ``killall`` or ``pkill`` operand names.

        ``exact`` (``killall NAME``, ``pkill -x``) compares the whole operand, case-insensitively,
        with process names, executable basenames, app bundle names and system extension ids.
        Otherwise the operand is an extended regular expression: each ``|`` alternative is cut
        into literal runs (see :func:`literal_fragments`), and a component matches when the
        runs occur in order in one of its names, paths or bundle ids. This over-approximates
        the regex (a ``.`` may stand for more than one character) and ignores case. The
        pattern is never compiled.
        """
        text = pattern.strip()
        if not text:
            return []
        if exact:
            return _unique(self._exact_names.get(text.casefold(), ()), key=lambda c: c.id)
        found: list[Component] = []
        for alternative in text.split("|"):
            fragments = literal_fragments(alternative)
            if not fragments or max(len(f) for f in fragments) < MIN_PATTERN_LITERAL:
                continue
            found.extend(
                component
                for target, component in self._pattern_targets
                if _contains_in_order(target, fragments)
            )
        return _unique(found, key=lambda c: c.id)


# --- parsing catalog and user entries -------------------------------------------------------

_SCALAR_FIELDS: Final = ("product", "vendor", "category", "builtin", "heartbeat_seconds")
_COMPONENT_KEYS: Final = frozenset(
    {
        "id",
        *_SCALAR_FIELDS,
        "heartbeat_sources",
        *IDENTIFIER_FIELDS,
        *(f"add_{name}" for name in IDENTIFIER_FIELDS),
        "clis",
        "add_clis",
    }
)
_CLI_KEYS: Final = frozenset({"tool", "args", "kind", "summary", "techniques", "sources"})

_Item = tuple[str, tuple[str, ...]]


class _Draft:
    """A component being assembled: identifier values with their sources, and CLI rules."""

    def __init__(self, component_id: str) -> None:
        self.id = component_id
        self.scalars: dict[str, Any] = {
            "product": "",
            "vendor": "",
            "category": "custom",
            "builtin": False,
            "heartbeat_seconds": None,
        }
        self.heartbeat_sources: tuple[str, ...] = ()
        self.fields: dict[str, list[_Item]] = {name: [] for name in IDENTIFIER_FIELDS}
        self.clis: list[CliRule] = []

    @classmethod
    def from_component(cls, component: Component) -> _Draft:
        draft = cls(component.id)
        for name in _SCALAR_FIELDS:
            draft.scalars[name] = getattr(component, name)
        if component.heartbeat_seconds is not None:
            draft.heartbeat_sources = component.sources_of(
                "heartbeat_seconds", str(component.heartbeat_seconds)
            )
        for name in IDENTIFIER_FIELDS:
            draft.fields[name] = [
                (value, component.sources_of(name, value)) for value in getattr(component, name)
            ]
        draft.clis = list(component.clis)
        return draft

    def build(self) -> Component:
        sources: dict[str, tuple[str, ...]] = {}
        values: dict[str, tuple[str, ...]] = {}
        for name, items in self.fields.items():
            unique_values = _unique((value for value, _ in items), key=lambda v: v)
            values[name] = tuple(unique_values)
            for value, keys in items:
                if keys:
                    merged = _unique((*sources.get(f"{name}:{value}", ()), *keys), key=lambda k: k)
                    sources[f"{name}:{value}"] = tuple(merged)
        heartbeat = self.scalars["heartbeat_seconds"]
        if heartbeat is not None and self.heartbeat_sources:
            sources[f"heartbeat_seconds:{heartbeat}"] = self.heartbeat_sources
        for rule in self.clis:
            if rule.sources:
                sources[_cli_key(rule)] = rule.sources
        return Component(
            id=self.id,
            product=self.scalars["product"],
            vendor=self.scalars["vendor"],
            category=self.scalars["category"],
            builtin=self.scalars["builtin"],
            heartbeat_seconds=heartbeat,
            team_ids=values["team_ids"],
            system_extensions=values["system_extensions"],
            network_filters=values["network_filters"],
            kexts=values["kexts"],
            bundle_ids=values["bundle_ids"],
            launchd_labels=values["launchd_labels"],
            launchd_plists=values["launchd_plists"],
            process_names=values["process_names"],
            process_paths=values["process_paths"],
            install_paths=values["install_paths"],
            data_paths=values["data_paths"],
            log_paths=values["log_paths"],
            package_ids=values["package_ids"],
            log_subsystems=values["log_subsystems"],
            clis=tuple(self.clis),
            sources=sources,
        )


def _cli_key(rule: CliRule) -> str:
    return f"clis:{' '.join((rule.tool, *rule.args))}"


class _EntryParser:
    """Validate one component mapping and apply it to a draft.

    With ``known_sources`` (the catalog), every identifier needs source keys that resolve in
    it. Without (user entries), sources are optional free text.
    """

    def __init__(self, known_sources: Mapping[str, str] | None, path: tuple[str | int, ...]):
        self.known_sources = known_sources
        self.path = path

    def error(self, message: str, *keys: str | int) -> InventoryError:
        return InventoryError(message, (*self.path, *keys))

    def apply(self, entry: Mapping[str, Any], draft: _Draft, is_new: bool) -> None:
        for key in entry:
            if not isinstance(key, str) or key not in _COMPONENT_KEYS:
                raise self.error(
                    f"unknown component key {key!r}; expected id, "
                    + ", ".join((*_SCALAR_FIELDS, "heartbeat_sources", "clis"))
                    + ", an identifier field ("
                    + ", ".join(IDENTIFIER_FIELDS)
                    + ") or add_<identifier field>",
                    str(key),
                )
        if is_new:
            required = _SCALAR_FIELDS if self.known_sources is not None else ("product",)
            for name in required:
                if name not in entry:
                    raise self.error(f"missing {name}: a new component needs it")
        for name in _SCALAR_FIELDS:
            if name in entry:
                draft.scalars[name] = self._scalar(name, entry[name])
        if "heartbeat_seconds" in entry:
            # The base's sources stated the old interval, not this one.
            draft.heartbeat_sources = ()
        if "heartbeat_sources" in entry:
            draft.heartbeat_sources = self._source_keys(
                entry["heartbeat_sources"], "heartbeat_sources"
            )
        if (
            self.known_sources is not None
            and draft.scalars["heartbeat_seconds"] is not None
            and not draft.heartbeat_sources
        ):
            raise self.error("heartbeat_seconds needs heartbeat_sources", "heartbeat_seconds")
        for name in IDENTIFIER_FIELDS:
            if name in entry:
                draft.fields[name] = self._items(name, entry[name])
            added = f"add_{name}"
            if added in entry:
                draft.fields[name] = draft.fields[name] + self._items(added, entry[added], name)
        if "clis" in entry:
            draft.clis = self._clis("clis", entry["clis"])
        if "add_clis" in entry:
            draft.clis = draft.clis + self._clis("add_clis", entry["add_clis"])

    def _scalar(self, name: str, value: Any) -> Any:
        if name == "builtin":
            if not isinstance(value, bool):
                raise self.error(f"invalid builtin {value!r}: expected true or false", name)
            return value
        if name == "heartbeat_seconds":
            if value is None:
                return None
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise self.error(
                    f"invalid heartbeat_seconds {value!r}: expected a positive whole number "
                    "of seconds or null",
                    name,
                )
            return value
        if not isinstance(value, str) or not value.strip():
            raise self.error(f"invalid {name} {value!r}: expected non-empty text", name)
        return value.strip()

    def _source_keys(self, value: Any, *keys: str | int) -> tuple[str, ...]:
        if not isinstance(value, list) or not all(isinstance(k, str) and k for k in value):
            raise self.error("invalid sources: expected a list of source keys", *keys)
        if self.known_sources is not None:
            if not value:
                raise self.error("missing sources: every catalog entry needs a source", *keys)
            for key in value:
                if key not in self.known_sources:
                    raise self.error(f"source key {key!r} is not defined in sources", *keys)
        return tuple(value)

    def _items(self, key: str, value: Any, field: str | None = None) -> list[_Item]:
        field = field or key
        if not isinstance(value, list):
            raise self.error(f"invalid {key}: expected a list", key)
        items: list[_Item] = []
        for index, raw in enumerate(value):
            text: Any
            sources: tuple[str, ...] = ()
            if isinstance(raw, str):
                text = raw
                if self.known_sources is not None:
                    raise self.error(
                        "missing sources: every catalog entry needs a source", key, index
                    )
            elif isinstance(raw, Mapping):
                extra = set(raw) - {"value", "sources"}
                if extra:
                    raise self.error(
                        f"unknown key {sorted(map(str, extra))[0]!r}; expected value and sources",
                        key,
                        index,
                    )
                text = raw.get("value")
                if not isinstance(text, str):
                    raise self.error("invalid value: expected text", key, index)
                sources = self._source_keys(raw.get("sources", []), key, index, "sources")
            else:
                raise self.error(
                    f"invalid entry {raw!r}: expected text or a mapping with value and sources",
                    key,
                    index,
                )
            self._check_value(field, text, key, index)
            items.append((text, sources))
        return items

    def _check_value(self, field: str, text: str, key: str, index: int) -> None:
        if not text or text != text.strip():
            raise self.error(f"invalid value {text!r}: empty or padded with spaces", key, index)
        if field == "team_ids" and not _TEAM_ID_RE.match(text):
            raise self.error(
                f"invalid team ID {text!r}: expected 10 upper-case letters or digits", key, index
            )
        if field in PATH_FIELDS and not text.startswith(("/", "*")):
            raise self.error(
                f"invalid path {text!r}: expected an absolute path or a glob starting with *",
                key,
                index,
            )

    def _clis(self, key: str, value: Any) -> list[CliRule]:
        if not isinstance(value, list):
            raise self.error(f"invalid {key}: expected a list", key)
        rules: list[CliRule] = []
        for index, raw in enumerate(value):
            if not isinstance(raw, Mapping):
                raise self.error("invalid command rule: expected a mapping", key, index)
            for rule_key in raw:
                if rule_key not in _CLI_KEYS:
                    raise self.error(
                        f"unknown command rule key {rule_key!r}; expected one of: "
                        + ", ".join(sorted(_CLI_KEYS)),
                        key,
                        index,
                        str(rule_key),
                    )
            rules.append(self._cli(raw, key, index))
        return rules

    def _cli(self, raw: Mapping[str, Any], key: str, index: int) -> CliRule:
        tool = raw.get("tool")
        if not isinstance(tool, str) or not tool.strip() or "/" in tool:
            raise self.error(
                f"invalid tool {tool!r}: expected the command's file name", key, index, "tool"
            )

        args = raw.get("args", "")
        if not isinstance(args, str):
            raise self.error(f"invalid args {args!r}: expected text", key, index, "args")

        kind = raw.get("kind")
        if kind not in CLI_KINDS:
            raise self.error(
                f"invalid kind {kind!r}; expected one of: {', '.join(sorted(CLI_KINDS))}",
                key,
                index,
                "kind",
            )

        summary = raw.get("summary")
        if not isinstance(summary, str) or not summary.strip():
            raise self.error("missing summary: expected non-empty text", key, index, "summary")

        techniques = raw.get("techniques", [])
        if not isinstance(techniques, list) or not all(
            isinstance(t, str) and _TECHNIQUE_RE.match(t) for t in techniques
        ):
            raise self.error(
                f"invalid techniques {techniques!r}: expected ATT&CK ids such as T1685",
                key,
                index,
                "techniques",
            )

        sources = self._source_keys(raw.get("sources", []), key, index, "sources")
        return CliRule(
            tool=tool.strip(),
            args=tuple(args.split()),
            kind=str(kind),
            summary=summary.strip(),
            techniques=tuple(techniques),
            sources=sources,
        )


def parse_component(
    entry: Any,
    base: Component | None = None,
    known_sources: Mapping[str, str] | None = None,
    path: tuple[str | int, ...] = (),
) -> Component:
    """Build a component from a mapping in catalog schema, applied over ``base`` if given.

    Fields set in ``entry`` replace those of ``base``; ``add_<field>`` appends to them.

    Raises:
        InventoryError: the entry is not valid; ``path`` prefixes the error's location.
    """
    parser = _EntryParser(known_sources, path)
    if not isinstance(entry, Mapping):
        raise parser.error("invalid component: expected a mapping")
    component_id = entry.get("id")
    if not isinstance(component_id, str) or not _ID_RE.match(component_id):
        raise parser.error(
            f"invalid id {component_id!r}: expected lower-case words joined by hyphens", "id"
        )
    if base is not None and base.id != component_id:
        raise parser.error(f"id {component_id!r} does not match {base.id!r}", "id")
    draft = _Draft.from_component(base) if base is not None else _Draft(component_id)
    parser.apply(entry, draft, is_new=base is None)
    return draft.build()


def parse_management_agent(
    entry: Any,
    known_sources: Mapping[str, str] | None = None,
    path: tuple[str | int, ...] = (),
) -> ManagementAgent:
    """Build a management agent from ``{path, name, sources}``.

    Raises:
        InventoryError: the entry is not valid.
    """
    parser = _EntryParser(known_sources, path)
    if not isinstance(entry, Mapping):
        raise parser.error("invalid management agent: expected a mapping with path and name")
    extra = set(entry) - {"path", "name", "sources"}
    if extra:
        key = sorted(map(str, extra))[0]
        raise parser.error(
            f"unknown management agent key {key!r}; expected path, name, sources", key
        )
    agent_path = entry.get("path")
    if not isinstance(agent_path, str) or not agent_path.startswith("/"):
        raise parser.error(f"invalid path {agent_path!r}: expected an absolute path", "path")
    name = entry.get("name")
    if not isinstance(name, str) or not name.strip():
        raise parser.error("missing name: expected non-empty text", "name")
    sources = parser._source_keys(entry.get("sources", []), "sources")
    return ManagementAgent(path=agent_path, name=name.strip(), sources=sources)


# --- loading --------------------------------------------------------------------------------


@functools.cache
def _catalog_parts() -> tuple[tuple[Component, ...], tuple[ManagementAgent, ...], dict[str, str]]:
    resource = importlib.resources.files("tamperwatch.data").joinpath("catalog.yaml")
    data = yaml.safe_load(resource.read_text(encoding="utf-8"))
    if not isinstance(data, Mapping):
        raise InventoryError("invalid catalog: expected a mapping at the top level")
    unknown = set(data) - {"sources", "components", "management_agents"}
    if unknown:
        raise InventoryError(f"unknown catalog key {sorted(map(str, unknown))[0]!r}")
    sources = data.get("sources")
    if not isinstance(sources, Mapping) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in sources.items()
    ):
        raise InventoryError("invalid sources: expected a mapping of key to text", ("sources",))
    components = tuple(
        parse_component(entry, known_sources=sources, path=("components", index))
        for index, entry in enumerate(data.get("components") or ())
    )
    agents = tuple(
        parse_management_agent(entry, known_sources=sources, path=("management_agents", index))
        for index, entry in enumerate(data.get("management_agents") or ())
    )
    log.debug("catalog: %d components, %d management agents", len(components), len(agents))
    return components, agents, dict(sources)


def load_catalog() -> Inventory:
    """Load the packaged catalog.

    Raises:
        InventoryError: the packaged catalog is invalid (a packaging bug).
    """
    components, agents, sources = _catalog_parts()
    return Inventory(components, agents, sources)


def load_inventory(
    overrides: Sequence[Mapping[str, Any]] = (),
    management_agents: Sequence[Mapping[str, Any]] = (),
) -> Inventory:
    """Load the catalog and apply user components and management agents.

    An override whose id exists replaces the fields it sets (lists replace; ``add_<field>``
    appends). Any other id adds a component, which needs at least ``product``. A management
    agent with a known path renames it; other agents are added.

    Raises:
        InventoryError: an entry is invalid; its ``path`` starts with ``("components", i)`` or
            ``("management_agents", i)``.
    """
    components, agents, sources = _catalog_parts()
    merged: dict[str, Component] = {c.id: c for c in components}
    for index, entry in enumerate(overrides):
        entry_id = entry.get("id") if isinstance(entry, Mapping) else None
        base = merged.get(entry_id) if isinstance(entry_id, str) else None
        merged[str(entry_id)] = parse_component(entry, base=base, path=("components", index))
    agent_by_path: dict[str, ManagementAgent] = {normalize_path(a.path): a for a in agents}
    for index, entry in enumerate(management_agents):
        agent = parse_management_agent(entry, path=("management_agents", index))
        agent_by_path[normalize_path(agent.path)] = agent
    return Inventory(merged.values(), agent_by_path.values(), sources)
