"""Patterns over unified-log messages that signal an impairment of security tooling.

The patterns are data: ``data/log_patterns.yaml`` ships with the package, and a user file with
the same schema adds entries or replaces packaged ones by ``id``. The schema is described at
the top of the packaged file.

Matching is bounded. Only ``log`` events are tried, and each pattern checks the process name,
the subsystem and a literal keyword before its regex runs. Messages are cut to
:data:`MAX_MESSAGE_CHARS` first. A regex that repeats a group which itself repeats is rejected
at load, because such a regex can take exponential time on a crafted message.
"""

from __future__ import annotations

import importlib
import logging
import re
from collections.abc import Iterable, Iterator
from importlib import resources
from pathlib import Path
from typing import Any

import msgspec
import yaml

from tamperwatch.model import Event

log = logging.getLogger(__name__)

# Maximum message length, in characters, that the patterns see; the rest is cut off.
MAX_MESSAGE_CHARS = 16 * 1024

# Process names whose candidate patterns are cached.
MAX_CACHED_PROCESSES = 10_000

SIGNALS = frozenset(
    {
        "process_killed",
        "crashed",
        "es_client_terminated",
        "es_client_degraded",
        "daemon_unloaded",
        "extension_state_changed",
        "filter_disabled",
        "protection_weakened",
        "lifecycle",
    }
)

# Named groups a pattern may use; they become the keys of LogMatch.fields.
FIELD_NAMES = frozenset(
    {
        "label",
        "pid",
        "sender_name",
        "sender_pid",
        "signal_name",
        "namespace",
        "code",
        "bundle_id",
        "process_name",
        "state",
    }
)

_PACKAGED_FILE = "log_patterns.yaml"


class LogPatternError(Exception):
    """A pattern file that cannot be used: unreadable, invalid YAML, schema or regex error."""


class LogPattern(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """One entry of a pattern file, as written there."""

    id: str
    regex: str
    signal: str
    verified: bool
    source: str
    process: str | list[str] | None = None
    subsystem: str | list[str] | None = None
    keywords: list[str] | None = None
    note: str = ""
    enabled: bool = True


class LogMatch(msgspec.Struct, frozen=True):
    """A pattern that matched one message, with the named groups that took part in the match."""

    pattern_id: str
    signal: str
    verified: bool
    fields: dict[str, str]


class _Compiled:
    """A pattern ready to match: names as sets, keywords lower-cased, regex compiled."""

    __slots__ = ("keywords", "processes", "regex", "spec", "subsystems")

    def __init__(self, spec: LogPattern, regex: re.Pattern[str]) -> None:
        self.spec = spec
        self.regex = regex
        self.processes = _as_set(spec.process)
        self.subsystems = _as_set(spec.subsystem)
        self.keywords = tuple(keyword.lower() for keyword in spec.keywords or ())


def _as_set(value: str | list[str] | None) -> frozenset[str] | None:
    if value is None:
        return None
    return frozenset([value] if isinstance(value, str) else value)


class LogPatterns:
    """A loaded set of patterns; :meth:`match` runs them over one event."""

    def __init__(self, patterns: Iterable[LogPattern]) -> None:
        """Compile ``patterns``; raise :class:`LogPatternError` on an invalid one."""
        self._set_compiled(_compile(spec, "<patterns>") for spec in patterns)

    @classmethod
    def _from_compiled(cls, compiled: Iterable[_Compiled]) -> LogPatterns:
        instance = cls.__new__(cls)
        instance._set_compiled(compiled)
        return instance

    def _set_compiled(self, compiled: Iterable[_Compiled]) -> None:
        self._compiled = tuple(pattern for pattern in compiled if pattern.spec.enabled)
        self.patterns: tuple[LogPattern, ...] = tuple(pattern.spec for pattern in self._compiled)
        # Candidate patterns per process name, built on first use of each name.
        self._by_process: dict[str | None, tuple[_Compiled, ...]] = {}

    def __len__(self) -> int:
        return len(self.patterns)

    def match(self, event: Event) -> list[LogMatch]:
        """Return the matches of all patterns on a ``log`` event, in pattern order."""
        if event.kind != "log" or not event.message:
            return []
        name = event.process.name if event.process is not None else None
        candidates = self._candidates(name)
        if not candidates:
            return []
        message = event.message[:MAX_MESSAGE_CHARS]
        lowered: str | None = None
        matches: list[LogMatch] = []
        for pattern in candidates:
            if pattern.subsystems is not None and event.subsystem not in pattern.subsystems:
                continue
            if pattern.keywords:
                if lowered is None:
                    lowered = message.lower()
                if not any(keyword in lowered for keyword in pattern.keywords):
                    continue
            found = pattern.regex.search(message)
            if found is None:
                continue
            fields = {
                key: value.strip() for key, value in found.groupdict().items() if value is not None
            }
            spec = pattern.spec
            matches.append(LogMatch(spec.id, spec.signal, spec.verified, fields))
        return matches

    def _candidates(self, name: str | None) -> tuple[_Compiled, ...]:
        cached = self._by_process.get(name)
        if cached is None:
            cached = tuple(
                pattern
                for pattern in self._compiled
                if pattern.processes is None or name in pattern.processes
            )
            # Process names come from telemetry, so a host that invents names cannot grow
            # the cache past MAX_CACHED_PROCESSES; it starts afresh instead.
            if len(self._by_process) >= MAX_CACHED_PROCESSES:
                self._by_process.clear()
            self._by_process[name] = cached
        return cached


def load_log_patterns(extra: Path | None = None) -> LogPatterns:
    """Load the packaged patterns, then the entries of ``extra``; the same ``id`` replaces.

    Raise :class:`LogPatternError` naming the file, the pattern id and the key when a file
    cannot be read or an entry is invalid.
    """
    packaged = resources.files("tamperwatch").joinpath("data", _PACKAGED_FILE)
    merged = {
        pattern.spec.id: pattern
        for pattern in _parse_file(packaged.read_text(encoding="utf-8"), _PACKAGED_FILE)
    }
    if extra is not None:
        try:
            text = extra.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as error:
            raise LogPatternError(f"{extra}: cannot read the pattern file: {error}") from error
        for pattern in _parse_file(text, str(extra)):
            if pattern.spec.id in merged:
                log.debug("%s: pattern %r replaces the packaged one", extra, pattern.spec.id)
            merged[pattern.spec.id] = pattern
    return LogPatterns._from_compiled(merged.values())


def _parse_file(text: str, file: str) -> list[_Compiled]:
    """Parse one pattern file and compile its entries, so that errors name the file."""
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise LogPatternError(f"{file}: invalid YAML: {error}") from error
    if not isinstance(document, dict) or not isinstance(document.get("patterns"), list):
        raise LogPatternError(f"{file}: expected a mapping with a 'patterns' list")
    compiled: list[_Compiled] = []
    seen: set[str] = set()
    for index, entry in enumerate(document["patterns"]):
        spec = _convert_entry(entry, index, file)
        if spec.id in seen:
            raise LogPatternError(f"{file}: pattern {spec.id!r}: duplicate id")
        seen.add(spec.id)
        compiled.append(_compile(spec, file))
    return compiled


def _convert_entry(entry: object, index: int, file: str) -> LogPattern:
    label = f"entry {index + 1}"
    if isinstance(entry, dict) and isinstance(entry.get("id"), str):
        label = f"pattern {entry['id']!r}"
    try:
        return msgspec.convert(entry, type=LogPattern)
    except msgspec.ValidationError as error:
        # msgspec names the key, e.g. "Expected `bool`, got `str` - at `$.verified`".
        raise LogPatternError(f"{file}: {label}: {error}") from error


def _compile(spec: LogPattern, file: str) -> _Compiled:
    where = f"{file}: pattern {spec.id!r}"
    if spec.signal not in SIGNALS:
        raise LogPatternError(
            f"{where}: key 'signal': unknown signal {spec.signal!r}; "
            f"expected one of {', '.join(sorted(SIGNALS))}"
        )
    try:
        regex = re.compile(spec.regex)
    except re.error as error:
        raise LogPatternError(f"{where}: key 'regex': invalid regex: {error}") from error
    unknown = set(regex.groupindex) - FIELD_NAMES
    if unknown:
        raise LogPatternError(
            f"{where}: key 'regex': unknown group name(s) {', '.join(sorted(unknown))}; "
            f"allowed: {', '.join(sorted(FIELD_NAMES))}"
        )
    if _has_nested_repeat(spec.regex):
        raise LogPatternError(
            f"{where}: key 'regex': a repeated group contains another repeat, which can take "
            "exponential time; rewrite it with a single repeat or a bounded character class"
        )
    if spec.keywords is not None and not all(spec.keywords):
        raise LogPatternError(f"{where}: key 'keywords': empty keyword")
    return _Compiled(spec, regex)


# --- nested-repeat check -----------------------------------------------------------------------

_REPEAT_OPCODES = frozenset({"MAX_REPEAT", "MIN_REPEAT", "POSSESSIVE_REPEAT"})


def _has_nested_repeat(pattern: str) -> bool:
    """Tell whether a regex repeats (more than once) a part that itself repeats.

    The check walks the parse tree of ``re``'s own parser (``re._parser``, Python 3.11+). That
    module is private; if a later Python drops it, the check is skipped with a debug log.
    """
    try:
        parser: Any = importlib.import_module("re._parser")
    except ImportError:
        log.debug("re._parser is not available; nested repeats are not checked")
        return False
    return _walk(parser.parse(pattern), parser, inside_repeat=False)


def _walk(items: Any, parser: Any, inside_repeat: bool) -> bool:
    for opcode, argument in items:
        if str(opcode) in _REPEAT_OPCODES:
            _low, high, body = argument
            repeats = high is parser.MAXREPEAT or high > 1
            if repeats and inside_repeat:
                return True
            if _walk(body, parser, inside_repeat or repeats):
                return True
            continue
        for child in _subpatterns(argument, parser):
            if _walk(child, parser, inside_repeat):
                return True
    return False


def _subpatterns(argument: Any, parser: Any) -> Iterator[Any]:
    if isinstance(argument, parser.SubPattern):
        yield argument
    elif isinstance(argument, (tuple, list)):
        for item in argument:
            yield from _subpatterns(item, parser)
