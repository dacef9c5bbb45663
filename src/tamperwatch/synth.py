"""Synthesize ``eslogger`` output for scripted scenarios.

:class:`EsWriter` keeps a process table the way the macOS kernel does (pid, pidversion, audit
tokens, process groups, sessions, the responsible process) and turns scenario steps into Endpoint
Security messages in the shape ``eslogger`` prints. Message version 9 (macOS 15) has audit
tokens as objects and version 10 (macOS 26) has them as arrays of eight integers. As in real
captures, ``/`` is escaped as ``\\/`` and keys come in a different order on every line. With
``vendor_shape=True`` the writer prints the Jamf Protect telemetry variant of the same messages
instead (``glob_seq_num``, a ``host`` object, millisecond times, sorted keys, no escaping).

:meth:`EsWriter.command` replays a shell command line the way ``zsh`` would run it: ``fork`` and
``exec`` events for every program, ``sudo``/``su``/``sh -c`` as parents of what they run,
pipelines as siblings and redirections as ``open`` events. Output is deterministic for a seed.
"""

from __future__ import annotations

import hashlib
import json
import posixpath
import random
import re
import shlex
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

# es_event_type_t values of the NOTIFY events the writer emits, keyed by eslogger short name.
EVENT_TYPES: dict[str, int] = {
    "exec": 9,
    "open": 10,
    "fork": 11,
    "close": 12,
    "create": 13,
    "exit": 15,
    "get_task": 16,
    "kextunload": 18,
    "rename": 25,
    "setextattr": 27,
    "setflags": 28,
    "setmode": 29,
    "signal": 31,
    "unlink": 32,
    "write": 33,
    "truncate": 41,
    "stat": 54,
    "proc_suspend_resume": 93,
    "btm_launch_item_remove": 125,
    "profile_remove": 127,
    "tcc_modify": 147,
}

# Kernel file flags as ES reports them in ``open.fflag`` (sys/fcntl.h): FREAD and FWRITE, not
# the O_RDONLY/O_WRONLY values passed to open(2).
FREAD = 0x1
FWRITE = 0x2
O_APPEND = 0x8
O_CREAT = 0x200
O_TRUNC = 0x400

# es_proc_suspend_resume_type_t (EndpointSecurity/ESTypes.h).
SUSPEND = 0
RESUME = 1
SHUTDOWN_SOCKETS = 3

# es_btm_item_type_t.
BTM_USER_ITEM = 0
BTM_APP = 1
BTM_LOGIN_ITEM = 2
BTM_AGENT = 3
BTM_DAEMON = 4

# es_tcc_event_type_t, es_tcc_identity_type_t and es_tcc_authorization_reason_t values used here.
TCC_UPDATE_CREATE = 1
TCC_UPDATE_MODIFY = 2
TCC_UPDATE_DELETE = 3
TCC_IDENTITY_BUNDLE_ID = 0
TCC_IDENTITY_EXECUTABLE_PATH = 1
TCC_REASON_SYSTEM_SET = 4

# es_profile_source_t.
PROFILE_SOURCE_MANAGED = 0
PROFILE_SOURCE_INSTALL = 1

# Audit user id of processes outside any login session (AU_DEFAUDITID).
AU_DEFAUDITID = 4294967295

# mach_absolute_time() ticks at 24 MHz on Apple silicon, the platform these captures model.
MACH_TICKS_PER_SECOND = 24_000_000

CPU_TYPE_ARM64 = 16777228
# CPU_SUBTYPE_ARM64E with the pointer-authentication ABI bit, read as a signed int32. Platform
# binaries are arm64e, and third-party binaries are usually plain arm64 (subtype 0).
CPU_SUBTYPE_ARM64E_PTRAUTH = -2147483646
CPU_SUBTYPE_ARM64_ALL = 0

# Code-signing flag sets seen on real macOS 14-26 messages for each kind of signature.
CS_FLAGS_PLATFORM = 0x22017B11
CS_FLAGS_DEVELOPER_ID = 0x22010301
CS_FLAGS_AD_HOC = 0x22020203

# es_cs_validation_category_t, present from message version 10.
CS_CATEGORY_PLATFORM = 1
CS_CATEGORY_DEVELOPER_ID = 6
CS_CATEGORY_NONE = 10

# Each event moves the clock forward by a few milliseconds.
STEP_MIN_NS = 3_000_000
STEP_MAX_NS = 7_000_000

PID_MAX = 99_999

_SYSTEM_PREFIXES = ("/bin/", "/sbin/", "/usr/bin/", "/usr/sbin/", "/usr/libexec/", "/System/")

# Images with the set-user-id bit, owned by root, and their st_mode.
_SETUID_ROOT = {
    "/usr/bin/sudo": 0o104511,
    "/usr/bin/su": 0o104555,
    "/usr/bin/login": 0o104555,
}

LAUNCHD_PATH = "/sbin/launchd"
TERMINAL_PATH = "/System/Applications/Utilities/Terminal.app/Contents/MacOS/Terminal"
BTM_DAEMON_PATH = (
    "/System/Library/PrivateFrameworks/BackgroundTaskManagement.framework"
    "/Versions/A/Resources/backgroundtaskmanagementd"
)
TCCD_PATH = "/System/Library/PrivateFrameworks/TCC.framework/Support/tccd"
# NOTE: no real capture confirmed which process submits profile_remove messages. mdmclient is
# the daemon that installs and removes configuration profiles.
PROFILE_DAEMON_PATH = "/usr/libexec/mdmclient"

# Apple command-line tools by folder, as installed on macOS 14 to 26.
_APPLE_TOOLS = {
    "/bin": (
        "bash cat chmod cp csh dash date dd df echo expr hostname kill ksh launchctl ln ls "
        "mkdir mv ps pwd rm rmdir sh sleep stty sync tcsh test zsh"
    ),
    "/sbin": (
        "ifconfig kextload kextunload md5 mount mount_apfs pfctl ping reboot route shutdown umount"
    ),
    "/usr/bin": (
        "awk base64 caffeinate chflags codesign crontab csrutil curl cut defaults diff ditto "
        "dscl du egrep env fdesetup fgrep file find grep head hdiutil id killall kmutil less "
        "log login mdfind mdls nc nice nohup open osascript perl pgrep pkill plutil pmset "
        "printf profiles python3 ruby security sed sfltool shasum sort sqlite3 srm ssh stat su "
        "sudo sw_vers systemextensionsctl tail tar tccutil tee time tmutil touch tr truncate "
        "uname uniq unzip wc which whoami xargs xattr zip"
    ),
    "/usr/sbin": (
        "chown diskutil dseditgroup dtrace installer ioreg kextcache kextstat lsof netstat "
        "networksetup nvram pkgutil screencapture scutil softwareupdate spctl sysadminctl "
        "sysctl system_profiler systemsetup tcpdump"
    ),
}

# Locations of the programs that `command` runs by a name without a slash. Unknown names
# resolve to /usr/local/bin/<name>, the usual place of third-party tools.
# NOTE: vendor tools in /usr/local/bin are often symlinks. ES reports the resolved path, which
# this table does not know.
TOOL_PATHS: dict[str, str] = {
    **{
        name: f"{folder}/{name}" for folder, names in _APPLE_TOOLS.items() for name in names.split()
    },
    "PlistBuddy": "/usr/libexec/PlistBuddy",
    "socketfilterfw": "/usr/libexec/ApplicationFirewall/socketfilterfw",
    "shred": "/opt/homebrew/bin/shred",
    "falconctl": "/Applications/Falcon.app/Contents/Resources/falconctl",
    "mdatp": "/usr/local/bin/mdatp",
    "protectctl": "/usr/local/bin/protectctl",
    "santactl": "/usr/local/bin/santactl",
    "osqueryctl": "/usr/local/bin/osqueryctl",
    "osqueryi": "/usr/local/bin/osqueryi",
    "osqueryd": "/usr/local/bin/osqueryd",
    "elastic-endpoint": "/Library/Elastic/Endpoint/elastic-endpoint",
    "jamf": "/usr/local/bin/jamf",
}

# Team IDs of security vendors' Developer ID certificates, by the files and install folders
# (keys ending in "/") that their signed programs occupy.
VENDOR_TEAM_IDS: dict[str, str] = {
    "/Applications/Falcon.app/": "X9E956P446",
    "/Library/CS/": "X9E956P446",
    "/Library/Sentinel/": "4AYE5J54KN",
    "/Applications/Microsoft Defender.app/": "UBF8T346G9",
    "/usr/local/bin/mdatp": "UBF8T346G9",
    "/Applications/JamfProtect.app/": "483DWKW443",
    "/usr/local/bin/protectctl": "483DWKW443",
    "/Applications/CarbonBlack/": "7AGZNQ2S2T",
    "/Applications/Confer.app/": "7AGZNQ2S2T",
    "/Applications/Santa.app/": "ZMCG7MLDV9",
    "/usr/local/bin/santactl": "ZMCG7MLDV9",
    "/usr/local/bin/osqueryctl": "3522FA9PXF",
    "/usr/local/bin/osqueryi": "3522FA9PXF",
    "/usr/local/bin/osqueryd": "3522FA9PXF",
    "/Applications/LuLu.app/": "VBG97UB4TA",
    "/Library/Objective-See/": "VBG97UB4TA",
    "/Applications/BlockBlock Helper.app/": "VBG97UB4TA",
    "/Applications/Little Snitch.app/": "MLZF7K7B5R",
    "/Library/Little Snitch/": "MLZF7K7B5R",
    "/Library/Application Support/OpenDNS Roaming Client/": "7P7HQ8H646",
    "/Library/Sophos Anti-Virus/": "2H5GFH3774",
    "/Library/Sophos Managed Detection and Response/": "2H5GFH3774",
    "/Library/Elastic/": "2BT3HPN62Z",
    "/Library/Kandji/": "P3FGV63VK7",
    "/Library/NessusAgent/": "4B8J598M7U",
}

# `sw_vers`-style OS strings that the vendor shape puts in ``host.os``, by message version.
_OS_BY_VERSION = {
    7: "Version 14.5 (Build 23F79)",
    8: "Version 15.0 (Build 24A335)",
    9: "Version 15.5 (Build 24F74)",
    10: "Version 26.0 (Build 25A354)",
}

_SHELLS = frozenset({"sh", "bash", "zsh", "dash", "ksh", "csh", "tcsh"})

# Shell builtins that run inside the shell without a new process. `echo`, `kill`, `printf`,
# `test` and `pwd` are builtins in zsh too, but are replayed as the programs in /bin and
# /usr/bin so that their arguments reach the telemetry as an exec.
_BUILTINS = frozenset(
    {
        ".",
        ":",
        "alias",
        "bg",
        "cd",
        "declare",
        "exit",
        "export",
        "false",
        "fc",
        "fg",
        "hash",
        "history",
        "jobs",
        "local",
        "logout",
        "readonly",
        "rehash",
        "return",
        "set",
        "setopt",
        "shift",
        "source",
        "true",
        "typeset",
        "umask",
        "unalias",
        "unset",
        "unsetopt",
        "wait",
    }
)

_NOISE_KINDS = ("open", "close", "write", "stat", "create", "unlink")

_KEY_ORDERS_PER_OBJECT = 8


@dataclass(eq=False)
class SynthProcess:
    """A process the writer tracks.

    ``uid`` is the effective user id and ``ruid`` the real one, which differ while a
    set-user-id image such as ``sudo`` runs. ``parent`` is the process that forked this one.
    After the parent exits, the kernel reparents the process to launchd, which
    ``adopted_by_launchd`` records. ``responsible`` is ``None`` when the process is responsible
    for itself.
    """

    pid: int
    pidversion: int
    path: str
    args: list[str]
    parent: SynthProcess | None
    team_id: str | None
    signing_id: str | None
    platform_binary: bool
    tty: str | None
    uid: int
    group_id: int
    session_id: int
    ruid: int = 0
    gid: int = 0
    rgid: int = 0
    auid: int = AU_DEFAUDITID
    asid: int = 0
    start_ns: int = 0
    thread_id: int = 0
    cwd: str = "/"
    es_client: bool = False
    responsible: SynthProcess | None = None
    env: dict[str, str] = field(default_factory=dict, repr=False)
    job_control: bool = False
    stays_open: bool = False
    adopted_by_launchd: bool = False
    exited: bool = False
    open_redirects: list[tuple[str, bool]] = field(default_factory=list, repr=False)
    exit_with: list[SynthProcess] = field(default_factory=list, repr=False)

    @property
    def name(self) -> str:
        """Base name of the executable."""
        return posixpath.basename(self.path)


class EsWriter:
    """Build the eslogger lines of one host, one scenario step at a time.

    ``start`` is the time of the first event and must carry a time zone. ``version`` is the
    es_message_t version (7: macOS 14, 8: macOS 15.0, 9: macOS 15.4+, 10: macOS 26).
    ``vendor_shape`` writes the Jamf Protect telemetry variant, which needs ``host``. The same
    ``seed`` and the same calls give the same lines.
    """

    def __init__(
        self,
        start: datetime | str,
        *,
        version: int = 9,
        vendor_shape: bool = False,
        host: str | None = None,
        seed: int = 0,
    ) -> None:
        if version < 7:
            raise ValueError(f"message version {version} is not modelled; use 7 to 10")
        if vendor_shape and not host:
            raise ValueError("vendor_shape needs a host name: pass host='...'")
        self.version = version
        self.vendor_shape = vendor_shape
        self.host = host
        self.tool_paths: dict[str, str] = dict(TOOL_PATHS)
        self.vendor_team_ids: dict[str, str] = dict(VENDOR_TEAM_IDS)
        self._seed = seed
        self._rng = random.Random(seed)
        self._now_ns = _parse_time(start)
        rng = self._rng

        uptime_s = rng.randint(3 * 3600, 3 * 86400)
        self._boot_ns = self._now_ns - uptime_s * 1_000_000_000
        # Files of the sealed system volume all carry the time the OS build was made.
        build_s = self._boot_ns // 1_000_000_000 - rng.randint(20, 120) * 86400
        self._system_file_ns = build_s * 1_000_000_000
        self._device = 16777229 + rng.randint(0, 6)
        self._tty_device = rng.randint(-(2**31), 2**31 - 1)

        self._next_pid = rng.randint(18_000, 62_000)
        self._next_boot_pid = rng.randint(90, 140)
        self._pidversion = rng.randint(40_000, 240_000)
        self._boot_pidversion = rng.randint(500, 1400)
        self._next_thread = rng.randint(200_000, 2_000_000)
        self._next_boot_thread = rng.randint(600, 3000)
        self._next_tty = rng.randint(0, 5)
        self._system_asid = 100_000 + rng.randint(5, 20)

        self._seq: dict[int, int] = {}
        self._global_seq = 0
        self._lines: list[str] = []
        self._live: dict[int, SynthProcess] = {}
        self._users: dict[str, int] = {"root": 0}
        self._user_asids: dict[int, int] = {}
        self._ttys: dict[str, tuple[int, int]] = {}
        self._daemons: dict[str, SynthProcess] = {}
        self._stat_cache: dict[tuple[str, str], dict[str, Any]] = {}
        self._key_orders: dict[tuple[str, ...], list[list[str]]] = {}
        self._host_object = self._make_host_object() if vendor_shape else None
        self.launchd = self._make_launchd()

    # ------------------------------------------------------------------ clock and identities

    def advance(self, seconds: float) -> None:
        """Move the clock forward by ``seconds`` (no events are written)."""
        if seconds < 0:
            raise ValueError(f"cannot move the clock backwards ({seconds} s)")
        self._now_ns += round(seconds * 1_000_000_000)

    @property
    def now(self) -> datetime:
        """Time of the next event, without the small per-event step."""
        return datetime.fromtimestamp(self._now_ns / 1_000_000_000, tz=UTC)

    def add_user(self, name: str, uid: int) -> None:
        """Register a local account so that ``su NAME`` and ``$(id -un)`` can resolve it."""
        self._users[name] = uid

    def _tick(self) -> None:
        if self._lines:
            self._now_ns += self._rng.randint(STEP_MIN_NS, STEP_MAX_NS)

    def _allocate_pid(self, boot: bool) -> int:
        """Return a pid that no live process has; raise ValueError when none is left.

        Like macOS, the writer has pids up to PID_MAX, so a capture can keep at most that many
        processes alive at once.
        """
        if len(self._live) >= PID_MAX - 100:
            raise ValueError(
                f"no free pid: {len(self._live)} processes are alive and pids end at {PID_MAX}; "
                "let processes exit (exit() or keep=False) to free their pids"
            )
        for _ in range(PID_MAX):
            if boot:
                self._next_boot_pid += self._rng.randint(1, 9)
                pid = self._next_boot_pid
            else:
                # Other processes on the host take pids too, so pids advance in uneven steps.
                self._next_pid += self._rng.randint(1, 25)
                if self._next_pid > PID_MAX:
                    self._next_pid = 100 + self._rng.randint(0, 400)
                pid = self._next_pid
            if pid not in self._live:
                return pid
        # The uneven steps keep missing the few free pids of a nearly full table.
        return next(pid for pid in range(100, PID_MAX + 1) if pid not in self._live)

    def _allocate_pidversion(self, boot: bool) -> int:
        if boot:
            self._boot_pidversion += self._rng.randint(1, 8)
            return self._boot_pidversion
        self._pidversion += self._rng.randint(1, 30)
        return self._pidversion

    def _allocate_thread(self, boot: bool) -> int:
        if boot:
            self._next_boot_thread += self._rng.randint(3, 60)
            return self._next_boot_thread
        self._next_thread += self._rng.randint(5, 400)
        return self._next_thread

    def _user_asid(self, uid: int) -> int:
        if uid not in self._user_asids:
            self._user_asids[uid] = self._system_asid + 2 + len(self._user_asids) * 3
        return self._user_asids[uid]

    def _user_name(self, uid: int) -> str:
        for name, known in self._users.items():
            if known == uid:
                return name
        return str(uid)

    def _uid_for(self, user: str) -> int:
        """Return the uid of a user name, ``#uid`` or number. An unknown name gets a new uid."""
        text = user.removeprefix("#")
        if text.isdigit():
            return int(text)
        if user not in self._users:
            self._users[user] = max([501, *self._users.values()]) + 1
        return self._users[user]

    def _home(self, uid: int) -> str:
        return "/var/root" if uid == 0 else f"/Users/{self._user_name(uid)}"

    # ------------------------------------------------------------------ process table

    def _make_launchd(self) -> SynthProcess:
        launchd = SynthProcess(
            pid=1,
            pidversion=self._boot_pidversion,
            path=LAUNCHD_PATH,
            args=[LAUNCHD_PATH],
            parent=None,
            team_id=None,
            signing_id="com.apple.xpc.launchd",
            platform_binary=True,
            tty=None,
            uid=0,
            group_id=1,
            session_id=1,
            asid=self._system_asid,
            start_ns=self._boot_ns,
            thread_id=self._allocate_thread(boot=True),
        )
        self._live[1] = launchd
        return launchd

    def _new_process(self, parent: SynthProcess, *, boot: bool, start_ns: int) -> SynthProcess:
        """Create the copy of ``parent`` that fork(2) makes, without writing an event."""
        pid = self._allocate_pid(boot)
        from_launchd = parent is self.launchd
        child = SynthProcess(
            pid=pid,
            pidversion=self._allocate_pidversion(boot),
            path=parent.path,
            args=list(parent.args),
            parent=parent,
            team_id=parent.team_id,
            signing_id=parent.signing_id,
            platform_binary=parent.platform_binary,
            tty=parent.tty,
            uid=parent.uid,
            # launchd puts every job in a session and process group of its own.
            group_id=pid if from_launchd else parent.group_id,
            session_id=pid if from_launchd else parent.session_id,
            ruid=parent.ruid,
            gid=parent.gid,
            rgid=parent.rgid,
            auid=parent.auid,
            asid=parent.asid,
            start_ns=start_ns,
            thread_id=self._allocate_thread(boot),
            cwd=parent.cwd,
            es_client=parent.es_client,
            responsible=None if from_launchd else (parent.responsible or parent),
            env=dict(parent.env),
        )
        self._live[pid] = child
        return child

    def _set_credentials(self, proc: SynthProcess, uid: int) -> None:
        """Give ``proc`` real and effective ``uid``, as setuid(2) before exec does."""
        proc.uid = proc.ruid = uid
        proc.gid = proc.rgid = 0 if uid == 0 else 20
        if proc.auid == AU_DEFAUDITID and uid != 0:
            # A user process started outside any login session joins that user's session.
            proc.auid = uid
            proc.asid = self._user_asid(uid)

    def _apply_image(
        self,
        proc: SynthProcess,
        path: str,
        args: list[str],
        *,
        team_id: str | None,
        signing_id: str | None,
        platform_binary: bool | None,
        uid: int | None,
        tty: str | None,
        es_client: bool,
    ) -> None:
        team, signing, platform = _signing(path, team_id, signing_id, platform_binary)
        proc.path = path
        proc.args = list(args)
        proc.team_id = team
        proc.signing_id = signing
        proc.platform_binary = platform
        proc.es_client = es_client
        if tty is not None:
            proc.tty = tty
            self._register_tty(tty, proc.ruid if uid is None else uid)
        if uid is not None and (uid != proc.uid or uid != proc.ruid):
            self._set_credentials(proc, uid)
        if path in _SETUID_ROOT:
            proc.uid = 0

    def _require_alive(self, proc: SynthProcess) -> None:
        if proc.exited:
            raise ValueError(
                f"process {proc.name} (pid {proc.pid}, pidversion {proc.pidversion}) has exited"
            )

    def _current_parent(self, proc: SynthProcess) -> SynthProcess | None:
        if proc.adopted_by_launchd:
            return self.launchd
        return proc.parent

    def _fork(self, parent: SynthProcess) -> SynthProcess:
        self._require_alive(parent)
        self._tick()
        child = self._new_process(parent, boot=False, start_ns=self._now_ns)
        self._emit("fork", parent, {"child": self._process_object(child)})
        return child

    def _exec_image(
        self,
        proc: SynthProcess,
        path: str,
        args: list[str],
        *,
        team_id: str | None = None,
        signing_id: str | None = None,
        platform_binary: bool | None = None,
        uid: int | None = None,
        tty: str | None = None,
        es_client: bool = False,
        env: list[str] | None = None,
    ) -> None:
        self._require_alive(proc)
        self._tick()
        before = self._process_object(proc)
        self._apply_image(
            proc,
            path,
            args,
            team_id=team_id,
            signing_id=signing_id,
            platform_binary=platform_binary,
            uid=uid,
            tty=tty,
            es_client=es_client,
        )
        # pidversion comes from one host-wide counter, so it is the old value + 1 unless other
        # processes forked or exec'd in between.
        self._pidversion += 1
        proc.pidversion = self._pidversion
        payload = {
            "target": self._process_object(proc),
            "args": list(args),
            "env": list(env or []),
            "cwd": self._file_object(proc.cwd, "dir"),
            "script": None,
            "dyld_exec_path": path,
            "fds": [{"fd": fd, "fdtype": 1} for fd in (0, 1, 2)],
            "last_fd": 2,
            "image_cputype": CPU_TYPE_ARM64,
            "image_cpusubtype": (
                CPU_SUBTYPE_ARM64E_PTRAUTH if proc.platform_binary else CPU_SUBTYPE_ARM64_ALL
            ),
        }
        self._emit_with_process_object("exec", before, payload, proc.thread_id)

    def spawn(
        self,
        path: str,
        args: list[str] | None = None,
        *,
        parent: SynthProcess | None = None,
        team_id: str | None = None,
        signing_id: str | None = None,
        platform_binary: bool | None = None,
        tty: str | None = None,
        uid: int | None = None,
        es_client: bool = False,
        keep: bool = True,
        via_xpcproxy: bool = False,
    ) -> SynthProcess:
        """Start a program: ``fork`` by ``parent`` (launchd by default), then ``exec`` in the child.

        ``platform_binary`` defaults to ``True`` under the Apple system folders, ``signing_id``
        to ``com.apple.<name>`` for platform binaries, ``tty`` and ``uid`` to the parent's. A
        set-user-id root image (``sudo``, ``su``, ``login``) runs with effective uid 0.
        ``keep=False`` makes the process exit with status 0 right after its exec.
        ``via_xpcproxy`` adds the exec of ``/usr/libexec/xpcproxy`` that launchd jobs go through.
        """
        parent = parent or self.launchd
        child = self._fork(parent)
        if via_xpcproxy:
            self._exec_image(child, "/usr/libexec/xpcproxy", ["xpcproxy", posixpath.basename(path)])
        self._exec_image(
            child,
            path,
            args if args is not None else [path],
            team_id=team_id,
            signing_id=signing_id,
            platform_binary=platform_binary,
            uid=uid,
            tty=tty,
            es_client=es_client,
        )
        if not keep:
            self.exit(child)
        return child

    def already_running(
        self,
        path: str,
        args: list[str] | None = None,
        *,
        parent: SynthProcess | None = None,
        team_id: str | None = None,
        signing_id: str | None = None,
        platform_binary: bool | None = None,
        tty: str | None = None,
        uid: int | None = None,
        es_client: bool = False,
        started: datetime | str | None = None,
    ) -> SynthProcess:
        """Add a process that was running before the capture began, without writing an event.

        It gets a low pid and pidversion like a process started at boot, and by default a start
        time shortly after boot.
        """
        parent = parent or self.launchd
        self._require_alive(parent)
        if started is None:
            start_ns = max(self._boot_ns, parent.start_ns) + self._rng.randint(2, 180) * 10**9
            start_ns += self._rng.randint(0, 999_999) * 1000
        else:
            start_ns = _parse_time(started)
        if start_ns > self._now_ns:
            raise ValueError("a process that is already running must start before the clock")
        proc = self._new_process(parent, boot=True, start_ns=start_ns)
        self._apply_image(
            proc,
            path,
            args if args is not None else [path],
            team_id=team_id,
            signing_id=signing_id,
            platform_binary=platform_binary,
            uid=uid,
            tty=tty,
            es_client=es_client,
        )
        proc.pidversion = self._allocate_pidversion(boot=True)
        return proc

    def exec(
        self,
        proc: SynthProcess,
        path: str,
        args: list[str] | None = None,
        *,
        team_id: str | None = None,
        signing_id: str | None = None,
        platform_binary: bool | None = None,
        uid: int | None = None,
        es_client: bool = False,
    ) -> SynthProcess:
        """Replace the image of ``proc``: same pid, a new pidversion. Return ``proc``."""
        self._exec_image(
            proc,
            path,
            args if args is not None else [path],
            team_id=team_id,
            signing_id=signing_id,
            platform_binary=platform_binary,
            uid=uid,
            es_client=es_client,
        )
        return proc

    def exit(self, proc: SynthProcess, status: int = 0) -> None:
        """End ``proc`` with the raw wait(2) ``status`` (SIGKILL: 9, exit(1): 256).

        Files a redirection left open are closed first. Live children are reparented to
        launchd, and a process that waits on this one as its shell (``sudo -s``, ``su``,
        ``login``) exits too.
        """
        self._require_alive(proc)
        if proc is self.launchd:
            raise ValueError("launchd (pid 1) cannot exit")
        for path, written in proc.open_redirects:
            self.close(proc, path, modified=written)
        proc.open_redirects.clear()
        self._tick()
        self._emit("exit", proc, {"stat": status})
        proc.exited = True
        del self._live[proc.pid]
        for other in self._live.values():
            if self._current_parent(other) is proc:
                other.adopted_by_launchd = True
        for waiting in proc.exit_with:
            if not waiting.exited:
                self.exit(waiting, 0)

    def open_terminal(self, user_uid: int = 501, user_name: str = "tester") -> SynthProcess:
        """Open a Terminal window: Terminal.app, then ``login -pf``, then ``-zsh`` on a new tty.

        Return the interactive shell. It has job control, so each pipeline it starts gets a
        process group of its own.
        """
        self.add_user(user_name, user_uid)
        home = self._home(user_uid)
        terminal = self._daemons.get(TERMINAL_PATH)
        if terminal is None or terminal.exited:
            terminal = self.spawn(TERMINAL_PATH, [TERMINAL_PATH], uid=user_uid)
            self._daemons[TERMINAL_PATH] = terminal
            self.advance(0.4)
        tty = self._allocate_tty(user_uid)
        login = self._fork(terminal)
        # Terminal's child makes itself a session leader on the new pty before it runs login.
        login.session_id = login.group_id = login.pid
        self._exec_image(login, "/usr/bin/login", ["login", "-pf", user_name], tty=tty)
        login.cwd = home
        self.advance(0.05)
        shell = self._fork(login)
        shell.group_id = shell.pid
        self._exec_image(shell, "/bin/zsh", ["-zsh"], uid=user_uid)
        shell.job_control = True
        # login waits for the shell and exits with it.
        shell.exit_with.append(login)
        shell.env.update(
            {
                "HOME": home,
                "USER": user_name,
                "LOGNAME": user_name,
                "SHELL": "/bin/zsh",
                "PATH": "/usr/bin:/bin:/usr/sbin:/sbin:/usr/local/bin",
                "TERM": "xterm-256color",
            }
        )
        return shell

    def _system_daemon(self, path: str) -> SynthProcess:
        daemon = self._daemons.get(path)
        if daemon is None or daemon.exited:
            daemon = self.already_running(path, [path])
            self._daemons[path] = daemon
        return daemon

    def _allocate_tty(self, uid: int) -> str:
        path = f"/dev/ttys{self._next_tty:03d}"
        self._next_tty += 1
        self._register_tty(path, uid)
        return path

    def _register_tty(self, path: str, uid: int) -> None:
        if path not in self._ttys:
            self._ttys[path] = (uid, self._now_ns)

    # ------------------------------------------------------------------ process events

    def signal(
        self,
        sender: SynthProcess,
        target: SynthProcess,
        sig: int,
        *,
        instigator: SynthProcess | None = None,
    ) -> None:
        """Write a ``signal`` event. ``instigator`` is the process launchd signals on behalf of.

        The target keeps running: write its ``exit`` separately if the signal ends it.
        """
        self._require_alive(sender)
        self._require_alive(target)
        self._tick()
        payload: dict[str, Any] = {"sig": sig, "target": self._process_object(target)}
        if self.version >= 9:
            payload["instigator"] = (
                self._process_object(instigator) if instigator is not None else None
            )
        self._emit("signal", sender, payload)

    def suspend(self, sender: SynthProcess, target: SynthProcess) -> None:
        """Write a ``proc_suspend_resume`` event of type suspend (pid_suspend)."""
        self._suspend_resume(sender, target, SUSPEND)

    def resume(self, sender: SynthProcess, target: SynthProcess) -> None:
        """Write a ``proc_suspend_resume`` event of type resume (pid_resume)."""
        self._suspend_resume(sender, target, RESUME)

    def _suspend_resume(self, sender: SynthProcess, target: SynthProcess, kind: int) -> None:
        self._require_alive(sender)
        self._require_alive(target)
        self._tick()
        payload = {"target": self._process_object(target), "type": kind}
        self._emit("proc_suspend_resume", sender, payload)

    def get_task(self, sender: SynthProcess, target: SynthProcess, *, task_type: int = 0) -> None:
        """Write a ``get_task`` event, by default of type 0, task_for_pid()."""
        self._require_alive(sender)
        self._require_alive(target)
        self._tick()
        self._emit("get_task", sender, {"target": self._process_object(target), "type": task_type})

    # ------------------------------------------------------------------ file events

    def unlink(self, proc: SynthProcess, path: str) -> None:
        """Write an ``unlink`` event for ``path``."""
        self._file_event(
            proc,
            "unlink",
            {
                "target": self._file_object(path),
                "parent_dir": self._file_object(posixpath.dirname(path) or "/", "dir"),
            },
        )

    def rename(
        self, proc: SynthProcess, source: str, destination: str, *, overwrite: bool = False
    ) -> None:
        """Write a ``rename`` event. ``overwrite`` means that ``destination`` already existed."""
        if overwrite:
            payload: dict[str, Any] = {
                "source": self._file_object(source),
                "destination_type": 0,
                "destination": {"existing_file": self._file_object(destination)},
            }
        else:
            payload = {
                "source": self._file_object(source),
                "destination_type": 1,
                "destination": {
                    "new_path": {
                        "dir": self._file_object(posixpath.dirname(destination) or "/", "dir"),
                        "filename": posixpath.basename(destination),
                    }
                },
            }
        self._file_event(proc, "rename", payload)

    def open(self, proc: SynthProcess, path: str, fflag: int) -> None:
        """Write an ``open`` event with ``fflag`` in kernel flags (FREAD, FWRITE, O_CREAT...)."""
        self._file_event(proc, "open", {"fflag": fflag, "file": self._file_object(path)})

    def write(self, proc: SynthProcess, path: str) -> None:
        """Write a ``write`` event."""
        self._file_event(proc, "write", {"target": self._file_object(path)})

    def close(self, proc: SynthProcess, path: str, modified: bool = True) -> None:
        """Write a ``close`` event. ``modified`` is true when the file was written."""
        payload = {
            "modified": modified,
            "target": self._file_object(path),
            "was_mapped_writable": False,
        }
        self._file_event(proc, "close", payload)

    def truncate(self, proc: SynthProcess, path: str) -> None:
        """Write a ``truncate`` event."""
        self._file_event(proc, "truncate", {"target": self._file_object(path)})

    def create(self, proc: SynthProcess, path: str) -> None:
        """Write a ``create`` event for a file that now exists, as NOTIFY_CREATE reports it."""
        payload = {"destination_type": 0, "destination": {"existing_file": self._file_object(path)}}
        self._file_event(proc, "create", payload)

    def setmode(self, proc: SynthProcess, path: str, mode: int) -> None:
        """Write a ``setmode`` event with the requested new ``mode``."""
        self._file_event(proc, "setmode", {"mode": mode, "target": self._file_object(path)})

    def setflags(self, proc: SynthProcess, path: str, flags: int) -> None:
        """Write a ``setflags`` event with the requested new st_flags (as chflags sets them)."""
        self._file_event(proc, "setflags", {"flags": flags, "target": self._file_object(path)})

    def setextattr(self, proc: SynthProcess, path: str, name: str) -> None:
        """Write a ``setextattr`` event for extended attribute ``name``."""
        self._file_event(proc, "setextattr", {"target": self._file_object(path), "extattr": name})

    def _file_event(self, proc: SynthProcess, kind: str, payload: dict[str, Any]) -> None:
        self._require_alive(proc)
        self._tick()
        self._emit(kind, proc, payload)

    def noise(self, proc: SynthProcess, count: int, kind: str = "open") -> None:
        """Write ``count`` events of one ``kind`` by ``proc``, spread over the next second.

        Kinds: open, close, write, stat, create, unlink. Paths rotate over 4096 names under
        ``/private/tmp/<process name>/``. The clock ends one second later.
        """
        self._require_alive(proc)
        if kind not in _NOISE_KINDS:
            raise ValueError(
                f"unsupported noise kind {kind!r}; use one of {', '.join(_NOISE_KINDS)}"
            )
        if count < 0:
            raise ValueError(f"count must not be negative, got {count}")
        self._tick()
        start_ns = self._now_ns
        folder = f"/private/tmp/{proc.name}"
        process_object = self._process_object(proc)
        for index in range(count):
            self._now_ns = start_ns + (1_000_000_000 * index) // count
            path = f"{folder}/{index % 4096:04d}.tmp"
            payload = self._noise_payload(kind, path)
            self._emit_with_process_object(kind, process_object, payload, proc.thread_id)
        self._now_ns = start_ns + 1_000_000_000

    def _noise_payload(self, kind: str, path: str) -> dict[str, Any]:
        file_object = self._file_object(path)
        if kind == "open":
            return {"fflag": FREAD, "file": file_object}
        if kind == "close":
            return {"modified": False, "target": file_object, "was_mapped_writable": False}
        if kind == "create":
            return {"destination_type": 0, "destination": {"existing_file": file_object}}
        if kind == "unlink":
            return {
                "target": file_object,
                "parent_dir": self._file_object(posixpath.dirname(path), "dir"),
            }
        return {"target": file_object}

    def drop(self, kind: str = "open", count: int = 1) -> None:
        """Lose ``count`` events of ``kind``: their sequence numbers pass without lines.

        This is what a reader sees when the ES client falls behind and the kernel drops events.
        """
        if count < 1:
            raise ValueError(f"count must be at least 1, got {count}")
        event_type = _event_type(kind)
        self._seq[event_type] = self._seq.get(event_type, 0) + count
        self._global_seq += count

    # ------------------------------------------------------------------ system events

    def kextunload(self, proc: SynthProcess, identifier: str) -> None:
        """Write a ``kextunload`` event for the kext with bundle ``identifier``."""
        self._require_alive(proc)
        self._tick()
        self._emit("kextunload", proc, {"identifier": identifier})

    def btm_remove(
        self, proc: SynthProcess, item_url: str, item_type: int = BTM_LOGIN_ITEM
    ) -> None:
        """Write a ``btm_launch_item_remove`` event that ``proc`` instigated.

        As for other events that macOS daemons submit, the message's ``process`` is the daemon
        (backgroundtaskmanagementd) and ``proc`` is the payload's ``instigator``. A path given
        as ``item_url`` becomes a ``file://`` URL.
        """
        self._require_alive(proc)
        url = _file_url(item_url) if item_url.startswith("/") else item_url
        item_path = url.removeprefix("file://")
        uid = 0 if item_type == BTM_DAEMON or "/LaunchDaemons/" in item_path else proc.ruid
        legacy = item_path.endswith(".plist") and "/Library/Launch" in item_path
        payload: dict[str, Any] = {
            "instigator": self._process_object(proc),
            "app": None,
            "item": {
                "item_type": item_type,
                "legacy": legacy,
                "managed": False,
                "uid": uid,
                "item_url": url,
                "app_url": None,
            },
        }
        if self.version >= 8:
            payload["instigator_token"] = self._token(proc)
            payload["app_token"] = None
        daemon = self._system_daemon(BTM_DAEMON_PATH)
        self._tick()
        self._emit("btm_launch_item_remove", daemon, payload)

    def profile_remove(
        self,
        proc: SynthProcess,
        identifier: str,
        display_name: str = "",
        *,
        organization: str = "",
        install_source: int = PROFILE_SOURCE_MANAGED,
    ) -> None:
        """Write a ``profile_remove`` event for the configuration profile ``identifier``."""
        self._require_alive(proc)
        profile_uuid = str(uuid.uuid5(uuid.NAMESPACE_URL, f"profile:{identifier}")).upper()
        payload: dict[str, Any] = {
            "instigator": self._process_object(proc),
            "profile": {
                "identifier": identifier,
                "uuid": profile_uuid,
                "install_source": install_source,
                "organization": organization,
                "display_name": display_name,
                "scope": "System",
            },
        }
        if self.version >= 8:
            payload["instigator_token"] = self._token(proc)
        daemon = self._system_daemon(PROFILE_DAEMON_PATH)
        self._tick()
        self._emit("profile_remove", daemon, payload)

    def tcc_modify(
        self,
        proc: SynthProcess,
        service: str,
        identity: str,
        right: int = 0,
        *,
        update_type: int = TCC_UPDATE_DELETE,
        reason: int = TCC_REASON_SYSTEM_SET,
    ) -> None:
        """Write a ``tcc_modify`` event: ``proc`` changed ``identity``'s right to ``service``.

        ``service`` is the TCC service name (``kTCCServiceSystemPolicyAllFiles`` for Full Disk
        Access) and ``right`` the resulting es_tcc_authorization_right_t (0 denied, 2 allowed).
        The message's ``process`` is tccd. Needs message version 9 (macOS 15.4) or later.
        """
        if self.version < 9:
            raise ValueError("tcc_modify exists from message version 9 (macOS 15.4)")
        self._require_alive(proc)
        responsible = proc.responsible or proc
        identity_type = (
            TCC_IDENTITY_EXECUTABLE_PATH if identity.startswith("/") else TCC_IDENTITY_BUNDLE_ID
        )
        payload: dict[str, Any] = {
            "service": service,
            "identity": identity,
            "identity_type": identity_type,
            "update_type": update_type,
            "instigator_token": self._token(proc),
            "instigator": self._process_object(proc),
            "responsible_token": self._token(responsible),
            "responsible": self._process_object(responsible),
            "right": right,
            "reason": reason,
        }
        daemon = self._system_daemon(TCCD_PATH)
        self._tick()
        self._emit("tcc_modify", daemon, payload)

    # ------------------------------------------------------------------ shell command lines

    def command(
        self,
        line: str,
        *,
        shell: SynthProcess,
        env: dict[str, str] | None = None,
        keep: bool = False,
    ) -> list[SynthProcess]:
        """Replay what ``shell`` does for one command line and return the processes it started.

        The line may use ``;``, ``&&`` and ``||``. Every program exits 0, so the right side of
        ``||`` does not run. Pipelines become siblings, in one process group under a job-control
        shell. ``VAR=value`` prefixes go to the exec's ``env``. Quoting, ``$VAR``, ``${VAR}``
        and ``~`` work as in zsh, with variables from ``env`` and from the shell. The command
        substitutions ``$(id -u)``, ``$(id -g)``, ``$(id -un)`` and ``$(whoami)`` are modelled.

        A redirection is opened by the forked child before its exec (``>``: FWRITE|O_CREAT|
        O_TRUNC, ``>>``: FWRITE|O_CREAT|O_APPEND, ``<``: FREAD) and closed when that process
        exits. ``sudo``, ``su USER -c`` and ``sh|bash|zsh -c`` run their command as a child,
        while ``env``, ``nohup`` and ``nice`` exec it in place. Names without a slash resolve
        through :attr:`tool_paths`, and programs in vendor folders get their team ID from
        :attr:`vendor_team_ids`. ``kill``, ``killall`` and ``pkill`` write only their exec,
        because resolving their targets is the detector's job.

        Every program exits right after, unless ``keep`` is true. An interactive shell started
        by the line (``sudo -s``, ``su -``, a bare ``zsh``) stays open with its ``sudo`` or
        ``su``, and is the last process in the returned list.
        """
        self._require_alive(shell)
        variables = dict(shell.env)
        if env:
            variables.update(env)
        context = _ShellContext(shell=shell, uid=shell.uid, env=variables, keep=keep, spawned=[])
        self._run_line(line, context)
        return context.spawned

    def _run_line(self, line: str, context: _ShellContext) -> None:
        pipelines = _parse(_Lexer(line).tokens())
        try:
            for pipeline in pipelines:
                if pipeline.connector == "||":
                    continue
                self._run_pipeline(pipeline, context)
        except _ShellExit:
            return

    def _run_pipeline(self, pipeline: _Pipeline, context: _ShellContext) -> None:
        started: list[SynthProcess] = []
        in_pipeline = len(pipeline.commands) > 1
        for simple in pipeline.commands:
            group = started[0].group_id if started else None
            proc = self._run_simple(simple, context, in_pipeline, group)
            if proc is not None:
                started.append(proc)
        for proc in started:
            self._finish(proc, context)

    def _fork_job(self, context: _ShellContext, group: int | None) -> SynthProcess:
        """Fork a child of the context's shell for one element of a pipeline."""
        child = self._fork(context.shell)
        if context.shell.job_control:
            # A job-control shell puts each pipeline in a process group led by its first child.
            child.group_id = child.pid if group is None else group
        return child

    def _finish(self, proc: SynthProcess, context: _ShellContext) -> None:
        if context.keep or proc.stays_open or proc.exited:
            return
        self.exit(proc, 0)

    def _run_simple(
        self,
        simple: _SimpleCommand,
        context: _ShellContext,
        in_pipeline: bool,
        group: int | None,
    ) -> SynthProcess | None:
        if not simple.words:
            for name, word in simple.assignments:
                value = self._expand(word, context)
                context.env[name] = value
                context.shell.env[name] = value
            return self._run_builtin([":"], simple, context, in_pipeline, group)
        argv = self._expand_words(simple.words, context)
        env = [f"{name}={self._expand(word, context)}" for name, word in simple.assignments]
        if not argv:
            return self._run_builtin([":"], simple, context, in_pipeline, group)
        if argv[0] in _BUILTINS:
            return self._run_builtin(argv, simple, context, in_pipeline, group)
        child = self._fork_job(context, group)
        context.spawned.append(child)
        for redirect in simple.redirects:
            self._redirect(child, redirect, context)
        self._exec_argv(child, argv, context, env=env, uid=context.uid)
        return child

    def _exec_argv(
        self,
        proc: SynthProcess,
        argv: list[str],
        context: _ShellContext,
        *,
        env: list[str],
        uid: int | None,
    ) -> None:
        path, team_id = self._resolve_command(argv[0], proc.cwd)
        self._exec_image(proc, path, argv, team_id=team_id, uid=uid, env=env)
        name = posixpath.basename(path)
        if path == "/usr/bin/sudo":
            self._run_sudo(proc, argv[1:], context)
        elif path == "/usr/bin/su":
            self._run_su(proc, argv[1:], context)
        elif name in _SHELLS and _is_system_path(path):
            self._run_shell(proc, argv, context)
        elif path in ("/usr/bin/env", "/usr/bin/nohup", "/usr/bin/nice"):
            self._exec_through(proc, name, argv[1:], context, env)

    def _resolve_command(self, name: str, cwd: str) -> tuple[str, str | None]:
        if "/" in name:
            path = _absolute(name, cwd)
        else:
            path = self.tool_paths.get(name, f"/usr/local/bin/{name}")
        return path, self._vendor_team(path)

    def _vendor_team(self, path: str) -> str | None:
        """Return the team ID of a vendor program at ``path``, by file or by install folder."""
        team = self.vendor_team_ids.get(path)
        if team is not None:
            return team
        folders = [
            key for key in self.vendor_team_ids if key.endswith("/") and path.startswith(key)
        ]
        return self.vendor_team_ids[max(folders, key=len)] if folders else None

    def _run_sudo(self, sudo: SynthProcess, args: list[str], context: _ShellContext) -> None:
        target_uid = 0
        shell_flag = ""
        index = 0
        while index < len(args):
            arg = args[index]
            if arg == "--":
                index += 1
                break
            if not arg.startswith("-") or arg == "-":
                break
            if arg in ("-u", "--user") and index + 1 < len(args):
                target_uid = self._uid_for(args[index + 1])
                index += 2
                continue
            if arg in ("-g", "--group", "-C", "-p", "--prompt", "-h", "--host", "-U", "-r", "-t"):
                index += 2
                continue
            if arg.startswith("--user="):
                target_uid = self._uid_for(arg.split("=", 1)[1])
            elif arg.startswith("-u") and len(arg) > 2:
                target_uid = self._uid_for(arg[2:])
            elif not arg.startswith("--") and ("i" in arg or "s" in arg):
                shell_flag = "-i" if "i" in arg else "-s"
            elif arg in ("--login", "--shell"):
                shell_flag = "-i" if arg == "--login" else "-s"
            index += 1
        command = args[index:]
        inner = _ShellContext(
            shell=sudo,
            uid=target_uid,
            env=dict(context.env),
            keep=context.keep,
            spawned=context.spawned,
        )
        if command:
            child = self._fork(sudo)
            context.spawned.append(child)
            self._exec_argv(child, command, inner, env=[], uid=target_uid)
            self._hold_or_finish(sudo, child, inner)
        elif shell_flag:
            login_shell = shell_flag == "-i"
            self._open_subshell(sudo, target_uid, login_shell, inner)

    def _run_su(self, su: SynthProcess, args: list[str], context: _ShellContext) -> None:
        user = "root"
        user_given = False
        script: str | None = None
        login_shell = False
        index = 0
        while index < len(args):
            arg = args[index]
            if arg == "-c" and index + 1 < len(args):
                script = args[index + 1]
                index += 2
                continue
            if arg in ("-", "-l", "--login"):
                login_shell = True
            elif arg.startswith("-"):
                pass
            elif not user_given:
                user = arg
                user_given = True
            index += 1
        uid = self._uid_for(user)
        inner = _ShellContext(
            shell=su, uid=uid, env=dict(context.env), keep=context.keep, spawned=context.spawned
        )
        if script is not None:
            self._run_line(script, inner)
        else:
            self._open_subshell(su, uid, login_shell, inner)

    def _run_shell(self, shell: SynthProcess, argv: list[str], context: _ShellContext) -> None:
        script: str | None = None
        wants_script = False
        operands: list[str] = []
        for arg in argv[1:]:
            if wants_script and script is None:
                script = arg
            elif arg.startswith("-") and arg not in ("-", "--") and not operands:
                if not arg.startswith("--") and "c" in arg[1:]:
                    wants_script = True
            else:
                operands.append(arg)
        if script is not None:
            inner = _ShellContext(
                shell=shell,
                uid=shell.uid,
                env=dict(context.env),
                keep=context.keep,
                spawned=context.spawned,
            )
            self._run_line(script, inner)
        elif not operands and not wants_script:
            # A shell with neither -c nor a script file waits for commands on its terminal.
            shell.job_control = True
            shell.stays_open = True
            shell.env = dict(context.env)

    def _exec_through(
        self,
        proc: SynthProcess,
        name: str,
        args: list[str],
        context: _ShellContext,
        env: list[str],
    ) -> None:
        """Follow ``env``, ``nohup`` and ``nice``, which exec their command in the same process."""
        index = 0
        added = list(env)
        while index < len(args):
            arg = args[index]
            if name == "env" and re.match(r"[A-Za-z_][A-Za-z0-9_]*=", arg):
                added.append(arg)
            elif (name == "env" and arg in ("-u", "-P", "-S")) or (name == "nice" and arg == "-n"):
                # These options take a value: skip it.
                index += 1
            elif not arg.startswith("-") or arg == "-":
                break
            index += 1
        if index < len(args):
            self._exec_argv(proc, args[index:], context, env=added, uid=None)

    def _open_subshell(
        self, holder: SynthProcess, uid: int, login_shell: bool, context: _ShellContext
    ) -> None:
        child = self._fork(holder)
        context.spawned.append(child)
        if login_shell:
            child.cwd = self._home(uid)
        args = ["-zsh"] if login_shell else ["/bin/zsh"]
        self._exec_image(child, "/bin/zsh", args, uid=uid)
        child.job_control = True
        child.stays_open = True
        child.env = dict(context.env)
        child.env.update({"HOME": self._home(uid), "USER": self._user_name(uid)})
        child.exit_with.append(holder)
        holder.stays_open = True

    def _hold_or_finish(
        self, holder: SynthProcess, child: SynthProcess, context: _ShellContext
    ) -> None:
        """Exit ``child``, or keep ``holder`` waiting while ``child`` stays open."""
        if child.stays_open and not child.exited:
            child.exit_with.append(holder)
            holder.stays_open = True
            return
        self._finish(child, context)

    def _run_builtin(
        self,
        argv: list[str],
        simple: _SimpleCommand,
        context: _ShellContext,
        in_pipeline: bool,
        group: int | None,
    ) -> SynthProcess | None:
        """Run a shell builtin, in a forked subshell without an exec when in a pipeline."""
        holder = self._fork_job(context, group) if in_pipeline else context.shell
        for redirect in simple.redirects:
            self._redirect(holder, redirect, context)
        name = argv[0]
        if name == "cd":
            target = argv[1] if len(argv) > 1 else context.env.get("HOME", self._home(context.uid))
            holder.cwd = _absolute(target, holder.cwd)
        elif name == "export":
            for assignment in argv[1:]:
                key, separator, value = assignment.partition("=")
                if separator:
                    context.env[key] = value
                    holder.env[key] = value
        elif name == "unset":
            for key in argv[1:]:
                context.env.pop(key, None)
                holder.env.pop(key, None)
        elif name in (".", "source") and len(argv) > 1:
            script = _absolute(argv[1], holder.cwd)
            self.open(holder, script, FREAD)
            self.close(holder, script, modified=False)
        elif name in ("exit", "logout") and not in_pipeline:
            code = int(argv[1]) if len(argv) > 1 and argv[1].isdigit() else 0
            self.exit(context.shell, (code & 0xFF) << 8)
            raise _ShellExit
        if in_pipeline:
            return holder
        # The shell restores its descriptors when the builtin returns.
        for path, written in holder.open_redirects:
            self.close(holder, path, modified=written)
        holder.open_redirects.clear()
        return None

    def _redirect(self, proc: SynthProcess, redirect: _Redirect, context: _ShellContext) -> None:
        target = self._expand(redirect.target, context)
        op = redirect.op
        if op in (">&", "<&"):
            if target.isdigit() or target == "-":
                return
            op = "&>"
        path = _absolute(target, proc.cwd)
        if op in (">", ">|", "&>"):
            self.open(proc, path, FWRITE | O_CREAT | O_TRUNC)
            proc.open_redirects.append((path, True))
        elif op in (">>", "&>>"):
            self.open(proc, path, FWRITE | O_CREAT | O_APPEND)
            proc.open_redirects.append((path, True))
        else:
            self.open(proc, path, FREAD)
            proc.open_redirects.append((path, False))

    def _expand_words(self, words: list[_Word], context: _ShellContext) -> list[str]:
        """Expand command words, dropping unquoted words that expand to nothing, as zsh does."""
        argv = []
        for word in words:
            value = self._expand(word, context)
            if value or any(part.quoted for part in word.parts):
                argv.append(value)
        return argv

    def _expand(self, word: _Word, context: _ShellContext) -> str:
        pieces: list[str] = []
        for part in word.parts:
            if part.kind == "lit":
                pieces.append(part.text)
            elif part.kind == "var":
                pieces.append(self._variable(part.text, context))
            elif part.kind == "tilde":
                if part.text:
                    pieces.append(self._home(self._uid_for(part.text)))
                else:
                    pieces.append(context.env.get("HOME", self._home(context.uid)))
            else:
                pieces.append(self._substitute(part.text, context))
        return "".join(pieces)

    def _variable(self, name: str, context: _ShellContext) -> str:
        if name in context.env:
            return context.env[name]
        specials = {
            "UID": str(context.uid),
            "EUID": str(context.uid),
            "$": str(context.shell.pid),
            "?": "0",
            "PWD": context.shell.cwd,
            "USER": self._user_name(context.uid),
            "LOGNAME": self._user_name(context.uid),
            "HOME": self._home(context.uid),
        }
        return specials.get(name, "")

    def _substitute(self, text: str, context: _ShellContext) -> str:
        """Run a supported command substitution in a subshell and return its output."""
        try:
            argv = shlex.split(text)
        except ValueError as error:
            raise ValueError(f"invalid command substitution $({text}): {error}") from None
        name = posixpath.basename(argv[0]) if argv else ""
        options = argv[1:]
        if name == "id" and options == ["-u"]:
            value = str(context.uid)
        elif name == "id" and options == ["-g"]:
            value = "0" if context.uid == 0 else "20"
        elif (name == "id" and options in (["-un"], ["-u", "-n"], ["-nu"])) or (
            name == "whoami" and not options
        ):
            value = self._user_name(context.uid)
        else:
            raise ValueError(
                f"unsupported command substitution $({text}); "
                "only $(id -u), $(id -g), $(id -un) and $(whoami) are modelled"
            )
        subshell = self._fork(context.shell)
        path, _ = self._resolve_command(argv[0], context.shell.cwd)
        self._exec_image(subshell, path, argv)
        self.exit(subshell, 0)
        return value

    # ------------------------------------------------------------------ output

    def lines(self) -> list[str]:
        """Return the lines written so far, without line endings."""
        return list(self._lines)

    def write_to(self, path: Path) -> None:
        """Write the lines to ``path`` as UTF-8 JSON lines."""
        Path(path).write_text("".join(line + "\n" for line in self._lines), encoding="utf-8")

    def _emit(self, kind: str, proc: SynthProcess, payload: dict[str, Any]) -> None:
        self._emit_with_process_object(kind, self._process_object(proc), payload, proc.thread_id)

    def _emit_with_process_object(
        self,
        kind: str,
        process_object: dict[str, Any],
        payload: dict[str, Any],
        thread_id: int,
    ) -> None:
        event_type = _event_type(kind)
        seq_num = self._seq.get(event_type, 0)
        self._seq[event_type] = seq_num + 1
        global_seq_num = self._global_seq
        self._global_seq += 1
        mach_time = (self._now_ns - self._boot_ns) * MACH_TICKS_PER_SECOND // 1_000_000_000
        action = {"result": {"result_type": 0, "result": {"auth": 0}}}
        if self.vendor_shape:
            message: dict[str, Any] = {
                "action": action,
                "action_type": 1,
                "deadline": 0,
                "event": {kind: payload},
                "event_type": event_type,
                "glob_seq_num": global_seq_num,
                "host": self._host_object,
                "mach_time": mach_time,
                "metadata": {
                    "product": "Device Telemetry Stream",
                    "schemaVersion": "1.0",
                    "vendor": "Jamf",
                },
                "process": process_object,
                "seq_num": seq_num,
                "thread": {"thread_id": thread_id, "uuid": self._stable_uuid("thread", thread_id)},
                "time": _format_time(self._now_ns, 3),
                "uuid": str(uuid.UUID(int=self._rng.getrandbits(128), version=4)).upper(),
                "version": self.version,
            }
            text = json.dumps(
                _without_nulls(message), ensure_ascii=False, sort_keys=True, separators=(",", ":")
            )
        else:
            message = {
                "schema_version": 1,
                "version": self.version,
                "time": _format_time(self._now_ns, 9),
                "mach_time": mach_time,
                "seq_num": seq_num,
                "global_seq_num": global_seq_num,
                "event_type": event_type,
                "action_type": 1,
                "action": action,
                "thread": {"thread_id": thread_id},
                "process": process_object,
                "event": {kind: payload},
            }
            # eslogger writes keys in no fixed order and escapes "/" like NSJSONSerialization.
            text = json.dumps(self._shuffled(message), ensure_ascii=False, separators=(",", ":"))
            text = text.replace("/", "\\/")
        self._lines.append(text)

    def _shuffled(self, value: Any) -> Any:
        """Copy ``value`` with the keys of every object in one of a few random orders."""
        if isinstance(value, dict):
            keys = tuple(value)
            orders = self._key_orders.get(keys)
            if orders is None:
                # Eight orders per key set still vary from line to line, and cost far less than
                # a full shuffle of every object.
                orders = []
                for _ in range(_KEY_ORDERS_PER_OBJECT):
                    order = list(keys)
                    self._rng.shuffle(order)
                    orders.append(order)
                self._key_orders[keys] = orders
            order = orders[self._rng.randrange(_KEY_ORDERS_PER_OBJECT)]
            return {key: self._shuffled(value[key]) for key in order}
        if isinstance(value, list):
            return [self._shuffled(item) for item in value]
        return value

    def _stable_uuid(self, kind: str, *values: int) -> str:
        digest = hashlib.md5(f"{self._seed}:{kind}:{values}".encode(), usedforsecurity=False)
        return str(uuid.UUID(bytes=digest.digest(), version=5)).upper()

    def _make_host_object(self) -> dict[str, Any]:
        rng = self._rng
        return {
            "hostname": self.host,
            "ips": [f"192.0.2.{rng.randint(10, 250)}"],
            "os": _OS_BY_VERSION[min(self.version, 10)],
            "protectVersion": "6.2.0.14",
            "provisioningUDID": f"{rng.getrandbits(32):08X}-{rng.getrandbits(64):016X}",
            "serial": "TW"
            + "".join(rng.choice("0123456789ABCDEFGHJKLMNPQRSTUVWXYZ") for _ in range(8)),
        }

    # ------------------------------------------------------------------ JSON objects

    def _token(self, proc: SynthProcess | None) -> Any:
        if proc is None:
            # launchd's parent is the kernel task, pid 0.
            values = (AU_DEFAUDITID, 0, 0, 0, 0, 0, 0, 0)
        else:
            values = (
                proc.auid,
                proc.uid,
                proc.gid,
                proc.ruid,
                proc.rgid,
                proc.pid,
                proc.asid,
                proc.pidversion,
            )
        if self.version >= 10 and not self.vendor_shape:
            return list(values)
        token: dict[str, Any] = dict(zip(_TOKEN_FIELDS, values, strict=True))
        if self.vendor_shape:
            token["uuid"] = self._stable_uuid("token", values[5], values[7])
        return token

    def _process_object(self, proc: SynthProcess) -> dict[str, Any]:
        parent = self._current_parent(proc)
        if proc.platform_binary:
            flags, category = CS_FLAGS_PLATFORM, CS_CATEGORY_PLATFORM
        elif proc.team_id:
            flags, category = CS_FLAGS_DEVELOPER_ID, CS_CATEGORY_DEVELOPER_ID
        else:
            # NOTE: the validation category of ad hoc signatures is a guess (no real sample).
            flags, category = CS_FLAGS_AD_HOC, CS_CATEGORY_NONE
        cdhash = hashlib.sha1(
            f"cdhash:{proc.path}:{proc.team_id}".encode(), usedforsecurity=False
        ).hexdigest()
        digits = 3 if self.vendor_shape else 6
        obj: dict[str, Any] = {
            "audit_token": self._token(proc),
            "parent_audit_token": self._token(parent),
            "responsible_audit_token": self._token(proc.responsible or proc),
            "ppid": parent.pid if parent else 0,
            "original_ppid": proc.parent.pid if proc.parent else 0,
            "group_id": proc.group_id,
            "session_id": proc.session_id,
            "codesigning_flags": flags,
            "cdhash": cdhash if self.vendor_shape else cdhash.upper(),
            "signing_id": proc.signing_id,
            "team_id": proc.team_id,
            "is_platform_binary": proc.platform_binary,
            "is_es_client": proc.es_client,
            "start_time": _format_time(proc.start_ns - proc.start_ns % 1000, digits),
            "tty": self._file_object(proc.tty, "tty") if proc.tty else None,
            "executable": self._file_object(proc.path, "exec"),
        }
        if self.version >= 10:
            obj["cs_validation_category"] = category
        return obj

    def _file_object(self, path: str, kind: str = "auto") -> dict[str, Any]:
        if kind == "auto":
            kind = "dir" if _looks_like_directory(path) else "file"
        key = (path, kind)
        cached = self._stat_cache.get(key)
        if cached is None:
            cached = {"path": path, "path_truncated": False, "stat": self._stat(path, kind)}
            if self.vendor_shape and kind == "exec":
                cached["sha1"] = hashlib.sha1(path.encode(), usedforsecurity=False).hexdigest()
                cached["sha256"] = hashlib.sha256(path.encode()).hexdigest()
            if len(self._stat_cache) < 65_536:
                self._stat_cache[key] = cached
        return cached

    def _stat(self, path: str, kind: str) -> dict[str, Any]:
        """Build a plausible ``stat`` for ``path``, the same for the same path and seed."""
        digits = 3 if self.vendor_shape else 9
        if kind == "tty":
            return self._tty_stat(path, digits)
        value = int.from_bytes(
            hashlib.blake2b(f"{self._seed}:{path}".encode(), digest_size=8).digest(), "big"
        )
        system = _is_system_path(path)
        if system:
            inode = 1152921500311879701 + value % 2_000_000
            flags = 0x80020 if kind != "dir" else 0x80000  # SF_RESTRICTED, UF_COMPRESSED
            stamp = self._system_file_ns
            birth = stamp
        else:
            inode = 400_000 + value % 60_000_000
            flags = 0
            age_s = (value >> 16) % (300 * 86400) + 3 * 86400
            birth = self._boot_ns - age_s * 1_000_000_000 - (value >> 40) % 1_000_000_000
            stamp = birth + ((value >> 24) % 86400) * 1_000_000_000
        owner, group = self._owner(path)
        if kind == "dir":
            links = 2 + value % 40
            size = 64 + 32 * links
            mode = 0o40755
        elif kind == "exec":
            links = 1
            size = 80_000 + value % 6_000_000
            mode = _SETUID_ROOT.get(path, 0o100755)
        else:
            links = 1
            size = 200 + value % 40_000
            mode = 0o100644
        if path == "/":
            inode, links, size, flags = 2, 20, 640, 0x100000
        return {
            "st_dev": self._device,
            "st_ino": inode,
            "st_mode": mode,
            "st_nlink": links,
            "st_uid": owner,
            "st_gid": group,
            "st_rdev": 0,
            "st_size": size,
            "st_blocks": 0 if kind == "dir" else (size + 4095) // 4096 * 8,
            "st_blksize": 4096,
            "st_flags": flags,
            "st_gen": 0,
            "st_atimespec": _format_time(stamp, digits),
            "st_mtimespec": _format_time(stamp, digits),
            "st_ctimespec": _format_time(stamp, digits),
            "st_birthtimespec": _format_time(birth, digits),
        }

    def _tty_stat(self, path: str, digits: int) -> dict[str, Any]:
        uid, opened_ns = self._ttys.get(path, (0, self._now_ns))
        number = int(path[-3:]) if path[-3:].isdigit() else 0
        return {
            "st_dev": self._tty_device,
            "st_ino": 600 + 7 * number,
            "st_mode": 0o20620,
            "st_nlink": 1,
            "st_uid": uid,
            "st_gid": 4,  # tty
            "st_rdev": 0x10000000 + number,
            "st_size": 0,
            "st_blocks": 0,
            "st_blksize": 65536,
            "st_flags": 0,
            "st_gen": 0,
            "st_atimespec": _format_time(opened_ns, digits),
            "st_mtimespec": _format_time(opened_ns, digits),
            "st_ctimespec": _format_time(opened_ns, digits),
            "st_birthtimespec": _format_time(0, digits),
        }

    def _owner(self, path: str) -> tuple[int, int]:
        if path.startswith("/Users/"):
            name = path.split("/")[2] if path.count("/") >= 2 else ""
            uid = self._users.get(name)
            if uid is not None:
                return uid, 20
        if path.startswith("/Applications/"):
            return 0, 80
        return 0, 0


def interactive_shell(
    writer: EsWriter, user_uid: int = 501, *, user_name: str = "tester"
) -> SynthProcess:
    """Open a Terminal window on ``writer``: Terminal.app, ``login``, then ``-zsh`` on a tty."""
    return writer.open_terminal(user_uid, user_name)


# ---------------------------------------------------------------------- helpers

_TOKEN_FIELDS = ("auid", "euid", "egid", "ruid", "rgid", "pid", "asid", "pidversion")

# Bundles are directories although their names have an extension.
_BUNDLE_SUFFIXES = (".app", ".kext", ".bundle", ".framework", ".systemextension", ".plugin")


def _event_type(kind: str) -> int:
    try:
        return EVENT_TYPES[kind]
    except KeyError:
        raise ValueError(
            f"unknown event kind {kind!r}; use one of {', '.join(EVENT_TYPES)}"
        ) from None


def _parse_time(value: datetime | str) -> int:
    """Return nanoseconds since the epoch for an aware datetime or an RFC 3339 string."""
    if isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            raise ValueError(
                f"invalid time {value!r}; use RFC 3339 such as 2026-03-02T10:00:00Z"
            ) from None
    else:
        moment = value
    if moment.tzinfo is None:
        raise ValueError(f"time {moment.isoformat()} has no time zone; add Z or an offset")
    delta = moment - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86400 + delta.seconds) * 1_000_000_000 + delta.microseconds * 1000


def _format_time(ns: int, digits: int) -> str:
    """Format epoch nanoseconds as RFC 3339 UTC with ``digits`` fractional digits."""
    seconds, fraction = divmod(ns, 1_000_000_000)
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds))
    return f"{stamp}.{fraction // 10 ** (9 - digits):0{digits}d}Z"


def _is_system_path(path: str) -> bool:
    return path.startswith(_SYSTEM_PREFIXES)


def _looks_like_directory(path: str) -> bool:
    return path == "/" or path.endswith("/") or path.endswith(_BUNDLE_SUFFIXES)


def _absolute(path: str, cwd: str) -> str:
    return posixpath.normpath(posixpath.join(cwd, path)) if path else cwd


def _file_url(path: str) -> str:
    return "file://" + quote(path)


def _signing(
    path: str, team_id: str | None, signing_id: str | None, platform_binary: bool | None
) -> tuple[str | None, str, bool]:
    """Return (team ID, signing ID, platform flag) with the defaults a Mac would show."""
    platform = _is_system_path(path) if platform_binary is None else platform_binary
    if platform and team_id is not None:
        raise ValueError(f"{path}: platform binaries carry no team ID (got {team_id!r})")
    if signing_id is not None:
        return team_id, signing_id, platform
    name = posixpath.basename(path)
    bundle = re.search(r"([^/]+)\.app/Contents/MacOS/", path)
    if platform:
        return None, f"com.apple.{bundle.group(1) if bundle else name}", platform
    if team_id is not None:
        return team_id, name, platform
    # The linker signs unsigned arm64 binaries ad hoc with an identifier of this form.
    suffix = hashlib.sha1(path.encode(), usedforsecurity=False).hexdigest()[:16]
    return None, f"{name.replace('-', '_')}-{suffix}", platform


def _without_nulls(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _without_nulls(item) for key, item in value.items() if item is not None}
    if isinstance(value, list):
        return [_without_nulls(item) for item in value]
    return value


# ---------------------------------------------------------------------- shell parsing


class _ShellExit(Exception):
    """Raised by the ``exit`` builtin to stop the rest of a command line."""


@dataclass
class _ShellContext:
    """The shell a command line runs in, with the uid its children get and its variables."""

    shell: SynthProcess
    uid: int
    env: dict[str, str]
    keep: bool
    spawned: list[SynthProcess]


@dataclass
class _Part:
    """A piece of a shell word: literal text, ``$VAR``, ``$(...)`` or a ``~user`` prefix."""

    kind: str
    text: str
    quoted: bool = False


@dataclass
class _Word:
    parts: list[_Part]

    def assignment_name(self) -> str | None:
        """Return NAME when the word is an unquoted ``NAME=value`` assignment."""
        if self.parts and self.parts[0].kind == "lit" and not self.parts[0].quoted:
            match = _ASSIGNMENT.match(self.parts[0].text)
            if match:
                return match.group(1)
        return None

    def value_after(self, name: str) -> _Word:
        """Return the part of an assignment word after ``NAME=``."""
        first = self.parts[0]
        rest = first.text[len(name) + 1 :]
        head = [_Part("lit", rest, first.quoted)] if rest else []
        return _Word(head + self.parts[1:])


@dataclass
class _Operator:
    text: str
    fd: int | None = None


@dataclass
class _Redirect:
    fd: int
    op: str
    target: _Word


@dataclass
class _SimpleCommand:
    assignments: list[tuple[str, _Word]] = field(default_factory=list)
    words: list[_Word] = field(default_factory=list)
    redirects: list[_Redirect] = field(default_factory=list)

    def is_empty(self) -> bool:
        return not (self.assignments or self.words or self.redirects)


@dataclass
class _Pipeline:
    connector: str
    commands: list[_SimpleCommand]


_ASSIGNMENT = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)=")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_TILDE = re.compile(r"~([A-Za-z0-9_.-]*)")
_REDIRECT_OPERATORS = (">>", ">&", ">|", "<<", "<&", ">", "<")
_CONTROL_OPERATORS = ("&&", "||", "&>>", "&>", "|&", ";;", "|", "&", ";")


class _Lexer:
    """Split a command line into words and operators, keeping quoting and expansions apart."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0
        self.result: list[_Word | _Operator] = []
        self.parts: list[_Part] = []
        self.literal: list[str] = []
        self.literal_quoted = False
        self.in_word = False

    def tokens(self) -> list[_Word | _Operator]:
        text = self.text
        while self.pos < len(text):
            char = text[self.pos]
            if char in " \t":
                self._end_word()
                self.pos += 1
            elif char == "\n":
                self._end_word()
                self.result.append(_Operator(";"))
                self.pos += 1
            elif char == "#" and not self.in_word:
                end = text.find("\n", self.pos)
                self.pos = len(text) if end < 0 else end
            elif char == "'":
                end = text.find("'", self.pos + 1)
                if end < 0:
                    raise ValueError(f"unterminated single quote in {text!r}")
                self._add_literal(text[self.pos + 1 : end], quoted=True)
                self.pos = end + 1
            elif char == '"':
                self._double_quoted()
            elif char == "\\":
                if self.pos + 1 < len(text) and text[self.pos + 1] != "\n":
                    self._add_literal(text[self.pos + 1], quoted=True)
                self.pos += 2
            elif char == "$":
                self._dollar(quoted=False)
            elif char == "`":
                self._backtick(quoted=False)
            elif char == "~" and not self.in_word:
                self._tilde()
            elif char in "|&;<>":
                self._operator()
            else:
                self._add_literal(char, quoted=False)
                self.pos += 1
        self._end_word()
        return self.result

    def _add_literal(self, text: str, *, quoted: bool) -> None:
        if self.literal and self.literal_quoted != quoted:
            self._flush_literal()
        self.literal.append(text)
        self.literal_quoted = quoted
        self.in_word = True

    def _flush_literal(self) -> None:
        if self.literal:
            self.parts.append(_Part("lit", "".join(self.literal), self.literal_quoted))
            self.literal = []

    def _add_part(self, part: _Part) -> None:
        self._flush_literal()
        self.parts.append(part)
        self.in_word = True

    def _end_word(self) -> None:
        self._flush_literal()
        if self.in_word:
            self.result.append(_Word(self.parts))
        self.parts = []
        self.in_word = False

    def _double_quoted(self) -> None:
        text = self.text
        self.pos += 1
        self._add_literal("", quoted=True)
        while True:
            if self.pos >= len(text):
                raise ValueError(f"unterminated double quote in {text!r}")
            char = text[self.pos]
            if char == '"':
                self.pos += 1
                return
            if char == "\\" and self.pos + 1 < len(text) and text[self.pos + 1] in '$`"\\\n':
                if text[self.pos + 1] != "\n":
                    self._add_literal(text[self.pos + 1], quoted=True)
                self.pos += 2
            elif char == "$":
                self._dollar(quoted=True)
            elif char == "`":
                self._backtick(quoted=True)
            else:
                self._add_literal(char, quoted=True)
                self.pos += 1

    def _dollar(self, *, quoted: bool) -> None:
        text = self.text
        following = text[self.pos + 1] if self.pos + 1 < len(text) else ""
        if following == "(":
            if text.startswith("$((", self.pos):
                raise ValueError(f"arithmetic expansion $((...)) is not supported in {text!r}")
            end = _closing_parenthesis(text, self.pos + 1)
            self._add_part(_Part("cmd", text[self.pos + 2 : end], quoted))
            self.pos = end + 1
        elif following == "{":
            end = text.find("}", self.pos + 2)
            name = text[self.pos + 2 : end] if end >= 0 else ""
            if not _NAME.fullmatch(name):
                raise ValueError(f"only ${{NAME}} parameter expansion is supported in {text!r}")
            self._add_part(_Part("var", name, quoted))
            self.pos = end + 1
        elif following and (following.isalpha() or following == "_"):
            match = _NAME.match(text, self.pos + 1)
            assert match is not None
            self._add_part(_Part("var", match.group(0), quoted))
            self.pos = match.end()
        elif following and following in "?$#!@*0123456789":
            self._add_part(_Part("var", following, quoted))
            self.pos += 2
        else:
            self._add_literal("$", quoted=quoted)
            self.pos += 1

    def _backtick(self, *, quoted: bool) -> None:
        end = self.text.find("`", self.pos + 1)
        if end < 0:
            raise ValueError(f"unterminated backquote in {self.text!r}")
        self._add_part(_Part("cmd", self.text[self.pos + 1 : end], quoted))
        self.pos = end + 1

    def _tilde(self) -> None:
        match = _TILDE.match(self.text, self.pos)
        assert match is not None
        end = match.end()
        if end < len(self.text) and self.text[end] not in "/ \t\n;|&<>":
            self._add_literal("~", quoted=False)
            self.pos += 1
            return
        self._add_part(_Part("tilde", match.group(1)))
        self.pos = end

    def _operator(self) -> None:
        text = self.text
        char = text[self.pos]
        fd: int | None = None
        if char in "<>":
            digits = "".join(self.literal)
            if self.in_word and not self.parts and digits.isdigit() and not self.literal_quoted:
                # "2>" redirects descriptor 2: the digits are not a word of their own.
                fd = int(digits)
                self.literal = []
                self.in_word = False
            else:
                self._end_word()
            operator = next(op for op in _REDIRECT_OPERATORS if text.startswith(op, self.pos))
            if operator == "<<":
                raise ValueError(f"here-documents are not supported in {text!r}")
        else:
            self._end_word()
            operator = next(op for op in _CONTROL_OPERATORS if text.startswith(op, self.pos))
        self.pos += len(operator)
        normalized = {"|&": "|", ";;": ";"}.get(operator, operator)
        self.result.append(_Operator(normalized, fd))


def _closing_parenthesis(text: str, start: int) -> int:
    """Return the index of the ``)`` that closes the ``(`` at ``start``, skipping quotes."""
    depth = 0
    index = start
    while index < len(text):
        char = text[index]
        if char == "'":
            index = text.find("'", index + 1)
            if index < 0:
                break
        elif char == '"':
            index += 1
            while index < len(text) and text[index] != '"':
                index += 2 if text[index] == "\\" else 1
        elif char == "\\":
            index += 1
        elif char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
            if depth == 0:
                return index
        index += 1
    raise ValueError(f"unterminated command substitution in {text!r}")


def _parse(tokens: list[_Word | _Operator]) -> list[_Pipeline]:
    """Group tokens into pipelines, each with the operator that connects it to the previous one."""
    pipelines: list[_Pipeline] = []
    commands: list[_SimpleCommand] = []
    current = _SimpleCommand()
    connector = ";"
    pending: _Operator | None = None
    for token in tokens:
        if pending is not None:
            if not isinstance(token, _Word):
                raise ValueError(f"missing file name after {pending.text!r}")
            default_fd = 0 if pending.text.startswith("<") else 1
            fd = pending.fd if pending.fd is not None else default_fd
            current.redirects.append(_Redirect(fd, pending.text, token))
            pending = None
        elif isinstance(token, _Word):
            name = token.assignment_name()
            if name is not None and not current.words:
                current.assignments.append((name, token.value_after(name)))
            else:
                current.words.append(token)
        elif token.text in _REDIRECT_OPERATORS or token.text in ("&>", "&>>"):
            pending = token
        elif token.text == "|":
            if current.is_empty():
                raise ValueError("missing command before '|'")
            commands.append(current)
            current = _SimpleCommand()
        else:
            if not current.is_empty():
                commands.append(current)
            elif commands:
                raise ValueError("missing command after '|'")
            if commands:
                pipelines.append(_Pipeline(connector, commands))
            commands = []
            current = _SimpleCommand()
            connector = token.text
    if pending is not None:
        raise ValueError(f"missing file name after {pending.text!r}")
    if not current.is_empty():
        commands.append(current)
    elif commands:
        raise ValueError("missing command after '|'")
    if commands:
        pipelines.append(_Pipeline(connector, commands))
    return pipelines
