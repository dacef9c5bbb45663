"""Interpretation of executed command lines that impair a component.

Each handler reads the argument vector of one tool the way the tool itself parses it and names
the components it acts on. Vendor command lines that switch protection off are data in the
catalog (``clis``) and are matched by :meth:`tamperwatch.inventory.CliRule.matches`.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from tamperwatch import signals as sig
from tamperwatch.inventory import Component, Inventory
from tamperwatch.process_table import ProcessTable


@dataclass(frozen=True)
class Finding:
    """The effect of one command on one component."""

    kind: str
    component: Component
    summary: str
    techniques: tuple[str, ...] = ()


# Signal names and numbers as kill(1) accepts them on macOS (signal(3)).
SIGNAL_NUMBERS = {
    "HUP": 1, "INT": 2, "QUIT": 3, "ILL": 4, "TRAP": 5, "ABRT": 6, "EMT": 7, "FPE": 8,
    "KILL": 9, "BUS": 10, "SEGV": 11, "SYS": 12, "PIPE": 13, "ALRM": 14, "TERM": 15,
    "URG": 16, "STOP": 17, "TSTP": 18, "CONT": 19, "CHLD": 20, "TTIN": 21, "TTOU": 22,
    "IO": 23, "XCPU": 24, "XFSZ": 25, "VTALRM": 26, "PROF": 27, "WINCH": 28, "INFO": 29,
    "USR1": 30, "USR2": 31,
}  # fmt: skip
SIGNAL_NAMES = {number: name for name, number in SIGNAL_NUMBERS.items()}

# Signals that end a process that does not handle them.
TERMINATING_SIGNALS = frozenset({2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 24, 25, 26, 27})
STOPPING_SIGNALS = frozenset({17, 18, 21, 22})
# Sent to crashing processes by the kernel; an exit by one of these is a crash, not a kill.
CRASH_SIGNALS = frozenset({4, 5, 6, 7, 8, 10, 11, 12})

# chmod(1) options; anything else before the paths is the mode.
_CHMOD_FLAGS = frozenset({"-R", "-H", "-L", "-P", "-f", "-h", "-v", "-E", "-C", "-N", "-i", "-I"})

# launchctl subcommands that stop a job or keep it from starting.
LAUNCHCTL_STOP_VERBS = frozenset({"unload", "bootout", "disable", "remove", "stop", "kill"})


def parse_signal(text: str) -> int | None:
    """Parse ``9``, ``KILL``, ``SIGKILL`` or ``kill`` into a signal number."""
    value = text.strip().upper()
    if value.isdigit():
        return int(value)
    value = value.removeprefix("SIG")
    return SIGNAL_NUMBERS.get(value)


def signal_label(number: int | None) -> str:
    if number is None:
        return "a signal"
    name = SIGNAL_NAMES.get(number)
    return f"SIG{name}" if name else f"signal {number}"


class CommandInterpreter:
    """Turn one executed argument vector into findings about monitored components."""

    def __init__(self, inventory: Inventory) -> None:
        self.inventory = inventory
        self._handlers: dict[str, Callable[[Sequence[str], ProcessTable], list[Finding]]] = {
            "launchctl": self._launchctl,
            "kill": self._kill,
            "killall": self._killall,
            "pkill": self._pkill,
            "kextunload": self._kextunload,
            "kmutil": self._kmutil,
            "systemextensionsctl": self._systemextensionsctl,
            "rm": self._remove,
            "srm": self._remove,
            "shred": self._remove,
            "unlink": self._remove,
            "truncate": self._truncate,
            "mv": self._move,
            "dd": self._dd,
            "chmod": self._chmod,
            "chflags": self._chflags,
            "xattr": self._xattr,
            "osascript": self._osascript,
            "tccutil": self._tccutil,
            "profiles": self._profiles,
        }

    def interpret(self, argv: Sequence[str], table: ProcessTable) -> list[Finding]:
        if not argv:
            return []
        tool = posixpath.basename(argv[0])
        findings: list[Finding] = []
        handler = self._handlers.get(tool)
        if handler is not None:
            findings.extend(handler(argv, table))
        for component, rule in self.inventory.cli_rules(tool):
            if rule.matches(argv):
                findings.append(
                    Finding(
                        rule.kind, component, f"{rule.summary}: {_quote(argv)}", rule.techniques
                    )
                )
        return _unique(findings)

    # launchctl ---------------------------------------------------------------------------------

    def _launchctl(self, argv: Sequence[str], table: ProcessTable) -> list[Finding]:
        if len(argv) < 2:
            return []
        verb = argv[1].lower()
        if verb not in LAUNCHCTL_STOP_VERBS:
            return []
        findings = []
        for target in _operands(argv[2:], takes_value={"-S", "-D"}):
            if verb == "kill" and parse_signal(target) is not None and "/" not in target:
                continue
            component = self._launchd_target(target)
            if component is not None:
                findings.append(
                    Finding(sig.DAEMON_UNLOADED, component, f"launchctl {verb} {target}")
                )
        return findings

    def _launchd_target(self, target: str) -> Component | None:
        """Resolve a plist path, a service target (``system/LABEL``) or a bare label."""
        if target.endswith(".plist"):
            return self.inventory.match_plist(target)
        label = target
        if "/" in target:
            parts = target.split("/")
            # system/LABEL, gui/501/LABEL, user/501/LABEL or pid/123/LABEL.
            # A bare domain such as gui/501 names no label.
            if parts[0] in ("system", "gui", "user", "pid", "login", "session"):
                label = parts[-1] if len(parts) >= (2 if parts[0] == "system" else 3) else ""
            else:
                return self.inventory.match_plist(target)
        return self.inventory.match_label(label) if label else None

    # kill family -------------------------------------------------------------------------------

    def _kill(self, argv: Sequence[str], table: ProcessTable) -> list[Finding]:
        number, operands = _signal_and_operands(argv[1:], default=15)
        if number is None or not _impairs(number):
            return []
        findings = []
        for operand in operands:
            if not operand.lstrip("-").isdigit():
                continue
            entry = table.latest(int(operand))
            if entry is None:
                continue
            component = self.inventory.match_process(entry.path)
            if component is not None:
                findings.append(self._kill_finding(number, component, f"kill -{number} {operand}"))
        return findings

    def _killall(self, argv: Sequence[str], table: ProcessTable) -> list[Finding]:
        number, operands = _signal_and_operands(
            argv[1:], default=15, takes_value={"-u", "-t", "-c"}
        )
        if number is None or not _impairs(number):
            return []
        findings = []
        regex_mode = "-m" in argv[1:]
        for operand in operands:
            for component in self.inventory.match_name_pattern(operand, exact=not regex_mode):
                findings.append(
                    self._kill_finding(
                        number, component, f"killall {signal_label(number)} {operand}"
                    )
                )
        return findings

    def _pkill(self, argv: Sequence[str], table: ProcessTable) -> list[Finding]:
        number, operands = _signal_and_operands(
            argv[1:], default=15, takes_value={"-g", "-G", "-P", "-t", "-u", "-U", "-F"}
        )
        if number is None or not _impairs(number):
            return []
        exact = "-x" in argv[1:]
        findings = []
        for operand in operands:
            for component in self.inventory.match_name_pattern(operand, exact=exact):
                findings.append(
                    self._kill_finding(number, component, f"pkill {signal_label(number)} {operand}")
                )
        return findings

    @staticmethod
    def _kill_finding(number: int, component: Component, text: str) -> Finding:
        if number in STOPPING_SIGNALS:
            return Finding(sig.PROCESS_SUSPENDED, component, f"{text} ({signal_label(number)})")
        return Finding(sig.PROCESS_KILLED, component, f"{text} ({signal_label(number)})")

    # kernel and system extensions ---------------------------------------------------------------

    def _kextunload(self, argv: Sequence[str], table: ProcessTable) -> list[Finding]:
        findings = []
        for operand in _operands(argv[1:], takes_value={"-b", "-bundle-id", "-c", "-class", "-p"}):
            component = self.inventory.match_kext(operand)
            if component is not None:
                findings.append(
                    Finding(sig.EXTENSION_STATE_CHANGED, component, f"kextunload {operand}")
                )
        for flag in ("-b", "-bundle-id"):
            for value in _flag_values(argv[1:], flag):
                component = self.inventory.match_kext(value)
                if component is not None:
                    findings.append(
                        Finding(sig.EXTENSION_STATE_CHANGED, component, f"kextunload -b {value}")
                    )
        return findings

    def _kmutil(self, argv: Sequence[str], table: ProcessTable) -> list[Finding]:
        if len(argv) < 2 or argv[1] != "unload":
            return []
        findings = []
        for flag in ("-b", "--bundle-identifier", "-p", "--bundle-path"):
            for value in _flag_values(argv[2:], flag):
                component = self.inventory.match_kext(value)
                if component is not None:
                    findings.append(
                        Finding(
                            sig.EXTENSION_STATE_CHANGED, component, f"kmutil unload {flag} {value}"
                        )
                    )
        return findings

    def _systemextensionsctl(self, argv: Sequence[str], table: ProcessTable) -> list[Finding]:
        if len(argv) < 2:
            return []
        verb = argv[1].lower()
        if verb == "uninstall" and len(argv) >= 4:
            component = self.inventory.match_system_extension(argv[3])
            if component is not None:
                return [
                    Finding(
                        sig.EXTENSION_STATE_CHANGED,
                        component,
                        f"systemextensionsctl uninstall {argv[2]} {argv[3]}",
                    )
                ]
        return []

    # file tools --------------------------------------------------------------------------------

    def _remove(self, argv: Sequence[str], table: ProcessTable) -> list[Finding]:
        tool = posixpath.basename(argv[0])
        return self._path_findings(_operands(argv[1:]), f"{tool} removed")

    def _truncate(self, argv: Sequence[str], table: ProcessTable) -> list[Finding]:
        operands = _operands(argv[1:], takes_value={"-s", "-r"})
        return self._path_findings(operands, "truncate emptied")

    def _move(self, argv: Sequence[str], table: ProcessTable) -> list[Finding]:
        operands = _operands(argv[1:])
        return self._path_findings(operands[:-1], "mv moved away")

    def _dd(self, argv: Sequence[str], table: ProcessTable) -> list[Finding]:
        targets = [arg[3:] for arg in argv[1:] if arg.startswith("of=")]
        return self._path_findings(targets, "dd overwrote")

    def _chmod(self, argv: Sequence[str], table: ProcessTable) -> list[Finding]:
        # A mode may itself start with "-" ("-x"), so only chmod's own flags count as options.
        operands = [arg for arg in argv[1:] if arg not in _CHMOD_FLAGS]
        if len(operands) < 2 or not _removes_execute(operands[0]):
            return []
        return self._path_findings(
            operands[1:], f"chmod {operands[0]} made unrunnable", roles=("install", "process")
        )

    def _chflags(self, argv: Sequence[str], table: ProcessTable) -> list[Finding]:
        operands = _operands(argv[1:])
        if len(operands) < 2:
            return []
        return self._path_findings(operands[1:], f"chflags {operands[0]} locked")

    def _xattr(self, argv: Sequence[str], table: ProcessTable) -> list[Finding]:
        if "-w" not in argv[1:]:
            return []
        operands = _operands(argv[1:])
        if len(operands) < 3 or operands[0] != "com.apple.quarantine":
            return []
        return self._path_findings(operands[2:], "xattr quarantined")

    def _osascript(self, argv: Sequence[str], table: ProcessTable) -> list[Finding]:
        scripts = _flag_values(argv[1:], "-e")
        findings: list[Finding] = []
        for script in scripts:
            if not re.search(r"\b(delete|move)\b", script, re.IGNORECASE):
                continue
            for path in re.findall(r'POSIX file\s+"([^"]{1,4096})"', script):
                findings.extend(self._path_findings([path], "osascript deleted"))
        return findings

    # privacy permissions and configuration profiles --------------------------------------------

    def _tccutil(self, argv: Sequence[str], table: ProcessTable) -> list[Finding]:
        # tccutil reset SERVICE [BUNDLE_ID]: with a bundle id, one app loses the permission.
        operands = _operands(argv[1:])
        if len(operands) < 3 or operands[0].lower() != "reset":
            return []
        component = self.inventory.match_bundle_id(operands[2])
        if component is None:
            return []
        text = f"tccutil reset {operands[1]} {operands[2]}"
        return [Finding(sig.PROTECTION_WEAKENED, component, f"privacy permission revoked: {text}")]

    def _profiles(self, argv: Sequence[str], table: ProcessTable) -> list[Finding]:
        if len(argv) < 2 or argv[1].lower() not in ("remove", "-r"):
            return []
        findings = []
        for flag in ("-identifier", "-I"):
            for identifier in _flag_values(argv[2:], flag):
                component = component_for_identifier(self.inventory, identifier)
                if component is not None:
                    findings.append(
                        Finding(
                            sig.PROTECTION_WEAKENED,
                            component,
                            f"configuration profile removed: profiles remove -identifier {identifier}",
                        )
                    )
        return findings

    def _path_findings(
        self, paths: Sequence[str], verb: str, roles: tuple[str, ...] | None = None
    ) -> list[Finding]:
        findings = []
        for path in paths:
            for component, role in self.inventory.match_path(path):
                if roles is None or role in roles:
                    findings.append(_path_finding(component, role, f"{verb} {path}"))
        return findings


def component_for_identifier(inventory: Inventory, identifier: str) -> Component | None:
    """Find the component a configuration profile identifier belongs to.

    A profile that approves a system extension, grants Full Disk Access or carries a vendor's
    settings is usually named after the vendor's bundle ids (``com.crowdstrike.falcon.settings``).
    The identifier matches when it is one of the component's bundle ids or starts with the
    vendor prefix of one, such as ``com.crowdstrike.``. Shared prefixes need a third label.
    """
    # NOTE: the author of a profile chooses its identifier, so a profile named after something
    # else is not tied to its component here.
    if not identifier:
        return None
    direct = inventory.match_bundle_id(identifier)
    if direct is not None:
        return direct
    for component in inventory.components:
        for bundle in (
            *component.system_extensions,
            *component.network_filters,
            *component.bundle_ids,
        ):
            labels = bundle.split(".")
            prefix = ".".join(labels[:2]) + "."
            if prefix in _SHARED_PREFIXES:
                prefix = ".".join(labels[:3]) + "."
            if len(labels) > prefix.count(".") and identifier.startswith(prefix):
                return component
    return None


# Reverse-DNS prefixes that many unrelated products share; for these one more label is needed
# (com.microsoft.wdav. for Defender, not com.microsoft. for every Microsoft app).
_SHARED_PREFIXES = frozenset({"com.apple.", "com.github.", "com.google.", "com.microsoft."})


def _path_finding(component: Component, role: str, text: str) -> Finding:
    if role == "plist":
        return Finding(sig.DAEMON_UNLOADED, component, f"launchd plist: {text}")
    if role == "log":
        return Finding(sig.PROTECTION_WEAKENED, component, f"log cleared: {text}", ("T1685.006",))
    if role == "data" and component.id == "packet-filter":
        return Finding(sig.FILTER_DISABLED, component, f"packet filter rules: {text}")
    return Finding(sig.PROTECTION_WEAKENED, component, f"component files: {text}")


def _impairs(number: int) -> bool:
    return number in TERMINATING_SIGNALS or number in STOPPING_SIGNALS


def _signal_and_operands(
    args: Sequence[str], default: int, takes_value: frozenset[str] | set[str] = frozenset()
) -> tuple[int | None, list[str]]:
    """Split ``kill``-style arguments into the signal number and the operands."""
    number: int | None = default
    operands: list[str] = []
    skip_next = False
    options_done = False
    for index, arg in enumerate(args):
        if skip_next:
            skip_next = False
            continue
        if options_done or not arg.startswith("-") or arg == "-":
            operands.append(arg)
            continue
        if arg == "--":
            options_done = True
        elif arg in ("-s", "-SIGNAL") and index + 1 < len(args):
            number = parse_signal(args[index + 1])
            skip_next = True
        elif arg in takes_value:
            skip_next = True
        elif arg[1:].isdigit() or parse_signal(arg[1:]) is not None:
            number = parse_signal(arg[1:])
    return number, operands


def _operands(
    args: Sequence[str], takes_value: frozenset[str] | set[str] = frozenset()
) -> list[str]:
    """Return the non-option arguments, skipping the values of options that take one."""
    operands: list[str] = []
    skip_next = False
    options_done = False
    for arg in args:
        if skip_next:
            skip_next = False
            continue
        if options_done or not arg.startswith("-") or arg == "-":
            operands.append(arg)
        elif arg == "--":
            options_done = True
        elif arg in takes_value:
            skip_next = True
    return operands


def _flag_values(args: Sequence[str], flag: str) -> list[str]:
    values = []
    for index, arg in enumerate(args[:-1]):
        if arg == flag:
            values.append(args[index + 1])
    return values


def _removes_execute(mode: str) -> bool:
    if mode.isdigit():
        return all(int(digit) % 2 == 0 for digit in mode[-3:])
    return bool(re.search(r"-[rwst]*x", mode))


def _quote(argv: Sequence[str]) -> str:
    text = " ".join(arg if arg and " " not in arg else repr(arg) for arg in argv)
    return text if len(text) <= 300 else text[:297] + "..."


def _unique(findings: list[Finding]) -> list[Finding]:
    seen: set[tuple[str, str]] = set()
    unique = []
    for finding in findings:
        key = (finding.kind, finding.component.id)
        if key not in seen:
            seen.add(key)
            unique.append(finding)
    return unique
