"""Compressed files, archives, and the file-system edge cases of finding inputs.

Every archive is built in tmp_path from scenario files written here. Its scan is compared with
the scan of the same files unpacked in a folder.
"""

from __future__ import annotations

import bz2
import gzip
import io
import json
import lzma
import os
import posixpath
import subprocess
import sys
import tarfile
import threading
import zipfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest

from tamperwatch import archives
from tamperwatch import scan as scan_module
from tamperwatch.config import Config, build_inventory
from tamperwatch.logpatterns import load_log_patterns
from tamperwatch.readers.base import FileStats
from tamperwatch.scan import InputFile, ScanResult, scan
from tamperwatch.synth import EsWriter, interactive_shell

SANTA_DAEMON = (
    "/Applications/Santa.app/Contents/Library/SystemExtensions/"
    "com.northpolesec.santa.daemon.systemextension/Contents/MacOS/com.northpolesec.santa.daemon"
)
SANTA_TEAM = "ZMCG7MLDV9"

CONFIG = Config()
INVENTORY = build_inventory(CONFIG)
PATTERNS = load_log_patterns()


# --- scenario files -------------------------------------------------------------------------


def santa_kill(path: Path, *, seed: int = 21, noise: int = 0) -> Path:
    """Write an eslogger capture in which a user's shell kills Santa's daemon with SIGKILL."""
    writer = EsWriter("2026-12-02T07:30:00Z", seed=seed)
    daemon = writer.spawn(SANTA_DAEMON, [SANTA_DAEMON], team_id=SANTA_TEAM, platform_binary=False)
    shell = interactive_shell(writer, user_name="rivka")
    writer.noise(daemon, noise)
    kill = writer.command(f"sudo kill -9 {daemon.pid}", shell=shell, keep=True)[-1]
    writer.signal(kill, daemon, 9)
    writer.exit(daemon, 9)
    writer.write_to(path)
    return path


def quiet_day(path: Path, *, seed: int = 22) -> Path:
    """Write an eslogger capture of ordinary shell use: no incident."""
    writer = EsWriter("2026-12-02T09:10:00Z", seed=seed)
    shell = interactive_shell(writer, user_name="tomasz")
    writer.command("ls -la /Library/LaunchDaemons", shell=shell)
    writer.command("git status", shell=shell)
    writer.write_to(path)
    return path


def unified_log(path: Path) -> Path:
    """Write two unified log records in the ``log show --style ndjson`` shape."""
    lines = []
    for second, message in ((5, "Assessment granted"), (9, "Checking policy for /bin/zsh")):
        record = {
            "timestamp": f"2026-12-02 09:11:0{second}.250000+0000",
            "processID": 377,
            "processImagePath": "/usr/libexec/syspolicyd",
            "userID": 0,
            "eventMessage": message,
            "subsystem": "com.apple.syspolicy",
            "category": "default",
            "messageType": "Default",
            "eventType": "logEvent",
        }
        lines.append(json.dumps(record).replace("/", "\\/"))
    path.write_text("\n".join(lines) + "\n")
    return path


def write_collection(root: Path) -> Path:
    """Write a collection folder: host-a has a Santa kill, host-b quiet eslogger and log lines."""
    (root / "host-a").mkdir(parents=True)
    (root / "host-b").mkdir()
    santa_kill(root / "host-a" / "eslogger.ndjson")
    quiet_day(root / "host-b" / "eslogger.ndjson")
    unified_log(root / "host-b" / "unifiedlog.ndjson")
    return root


# --- archive builders -----------------------------------------------------------------------


def pack_tar(folder: Path, target: Path, mode: str = "w:gz", *, top_folder: bool = True) -> Path:
    with tarfile.open(target, mode) as tar:
        if top_folder:
            tar.add(folder, arcname=folder.name)
        else:
            for child in sorted(folder.iterdir()):
                tar.add(child, arcname=child.name)
    return target


def pack_zip(folder: Path, target: Path, *, top_folder: bool = True) -> Path:
    base = folder.parent if top_folder else folder
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(folder.rglob("*")):
            archive.write(path, path.relative_to(base).as_posix())
    return target


def tar_of(members: dict[str, bytes], target: Path, mode: str = "w") -> Path:
    """Write a tar with exactly these regular-file members, in this order."""
    with tarfile.open(target, mode) as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mtime = 1_796_000_000
            tar.addfile(info, io.BytesIO(data))
    return target


def zip_bytes(members: dict[str, bytes], method: int = zipfile.ZIP_DEFLATED) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", method) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def zeros_gzip(mebibytes: int) -> bytes:
    """Return a gzip file of ``mebibytes`` MiB of zero bytes, about 1 KiB per MiB on disk.

    Concatenated gzip members form one valid gzip stream, so one compressed MiB is repeated.
    """
    return gzip.compress(bytes(1024 * 1024), compresslevel=9) * mebibytes


# --- scanning -------------------------------------------------------------------------------


def run_scan(*paths: Path | str, stdin: bytes | None = None, host: str | None = None) -> ScanResult:
    return scan(
        [str(path) for path in paths],
        host=host,
        config=CONFIG,
        inventory=INVENTORY,
        patterns=PATTERNS,
        stdin=io.BytesIO(stdin) if stdin is not None else None,
    )


def run_cli(*args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "tamperwatch", *args],
        input=stdin,
        capture_output=True,
        timeout=120,
        check=False,
    )


def incident_keys(result: ScanResult, *, file_names: bool = True) -> list[tuple[object, ...]]:
    """Reduce incidents to what must not depend on how the files were packed.

    The id hashes the base name of the evidence file, which a compressed file changes, so
    ``file_names=False`` leaves out both.
    """
    return sorted(
        (
            incident.id if file_names else "",
            incident.host,
            incident.status,
            incident.severity,
            incident.title,
            tuple(
                (
                    signal.kind,
                    signal.time,
                    posixpath.basename(ref.file) if file_names else "",
                    ref.line,
                )
                for signal in incident.signals
                for ref in signal.evidence
            ),
        )
        for incident in result.incidents
    )


def evidence_files(result: ScanResult) -> set[str]:
    return {
        ref.file
        for incident in result.incidents
        for signal in incident.signals
        for ref in signal.evidence
    }


def stats_of(result: ScanResult, file: str) -> FileStats:
    matches = [stats for stats in result.files if stats.file == file]
    assert len(matches) == 1, [stats.file for stats in result.files]
    return matches[0]


def warning_texts(stats: FileStats) -> list[str]:
    return [f"{warning.file}:{warning.line}: {warning.message}" for warning in stats.warnings]


@pytest.fixture
def collection(tmp_path: Path) -> Path:
    return write_collection(tmp_path / "collection")


@pytest.fixture
def folder_result(collection: Path) -> ScanResult:
    return run_scan(collection)


# --- single compressed files ----------------------------------------------------------------

COMPRESSORS: dict[str, Callable[[bytes], bytes]] = {
    "gz": gzip.compress,
    "bz2": bz2.compress,
    "xz": lzma.compress,
}


@pytest.mark.parametrize("suffix", sorted(COMPRESSORS))
def test_compressed_file_reads_like_plain(tmp_path: Path, suffix: str) -> None:
    plain = santa_kill(tmp_path / "eslogger.ndjson")
    packed = tmp_path / f"capture.{suffix}"
    packed.write_bytes(COMPRESSORS[suffix](plain.read_bytes()))
    expected = run_scan(plain, host="lab-mac-9")

    result = run_scan(packed, host="lab-mac-9")

    assert incident_keys(result, file_names=False) == incident_keys(expected, file_names=False)
    assert evidence_files(result) == {str(packed)}
    stats = stats_of(result, str(packed))
    assert stats.format == "eslogger"
    assert stats.used == stats_of(expected, str(plain)).used
    assert stats.error is None


def test_compressed_standard_input(tmp_path: Path) -> None:
    plain = santa_kill(tmp_path / "eslogger.ndjson")
    expected = run_scan(plain, host="piped-mac")

    result = run_scan("-", stdin=gzip.compress(plain.read_bytes()), host="piped-mac")

    assert incident_keys(result, file_names=False) == incident_keys(expected, file_names=False)
    assert stats_of(result, "-").format == "eslogger"


def test_compressed_twice_is_read(tmp_path: Path) -> None:
    plain = santa_kill(tmp_path / "eslogger.ndjson")
    packed = tmp_path / "capture.ndjson.gz.xz"
    packed.write_bytes(lzma.compress(gzip.compress(plain.read_bytes())))

    result = run_scan(packed, host="lab-mac-9")

    assert stats_of(result, str(packed)).format == "eslogger"
    assert len(result.suspicious) == 1


def test_compressed_three_times_is_named(tmp_path: Path) -> None:
    plain = santa_kill(tmp_path / "eslogger.ndjson")
    packed = tmp_path / "capture.ndjson.gz.gz.gz"
    packed.write_bytes(gzip.compress(gzip.compress(gzip.compress(plain.read_bytes()))))

    result = run_scan(packed, host="lab-mac-9")

    stats = stats_of(result, str(packed))
    assert stats.used == 0
    assert stats.unrecognised is not None
    assert "nested too deep" in stats.unrecognised


def test_empty_gzip_is_an_empty_file(tmp_path: Path) -> None:
    packed = tmp_path / "nothing.ndjson.gz"
    packed.write_bytes(gzip.compress(b""))

    result = run_scan(packed, host="lab-mac-9")

    assert stats_of(result, str(packed)).unrecognised == "empty file"


def test_gzip_read_past_replay_window(tmp_path: Path) -> None:
    plain = santa_kill(tmp_path / "eslogger.ndjson", noise=1500)
    assert plain.stat().st_size > 2 * archives.REPLAY_BYTES
    packed = tmp_path / "capture.ndjson.gz"
    packed.write_bytes(gzip.compress(plain.read_bytes()))
    expected = run_scan(plain, host="lab-mac-9")

    result = run_scan(packed, host="lab-mac-9")

    assert stats_of(result, str(packed)).used == stats_of(expected, str(plain)).used
    assert incident_keys(result, file_names=False) == incident_keys(expected, file_names=False)


def test_checkin_export_seeks_inside_gzip(tmp_path: Path) -> None:
    # The check-in reader seeks back after reading the header line itself.
    csv = (
        "Computer Name,Agent,Last Check-in,Status\n"
        "lab-mac-9,Santa,2026-12-02T10:00:00Z,healthy\n"
        "lab-mac-9,Santa,2026-12-02T10:15:00Z,healthy\n"
    )
    packed = tmp_path / "checkins.csv.gz"
    packed.write_bytes(gzip.compress(csv.encode()))

    result = run_scan(packed)

    stats = stats_of(result, str(packed))
    assert stats.format == "checkins"
    assert stats.used == 2


# --- archives -------------------------------------------------------------------------------

ARCHIVE_KINDS = {
    "tar": "w",
    "tar.gz": "w:gz",
    "tgz": "w:gz",
    "tar.bz2": "w:bz2",
    "tar.xz": "w:xz",
}


@pytest.mark.parametrize("suffix", [*ARCHIVE_KINDS, "zip"])
def test_archive_matches_unpacked_folder(
    tmp_path: Path, collection: Path, folder_result: ScanResult, suffix: str
) -> None:
    target = tmp_path / f"collection.{suffix}"
    if suffix == "zip":
        pack_zip(collection, target)
    else:
        pack_tar(collection, target, ARCHIVE_KINDS[suffix])

    result = run_scan(target)

    assert incident_keys(result) == incident_keys(folder_result)
    assert len(result.suspicious) == 1
    assert evidence_files(result) == {f"{target}!collection/host-a/eslogger.ndjson"}
    member = stats_of(result, f"{target}!collection/host-b/unifiedlog.ndjson")
    assert member.host == "host-b"
    assert member.format == "unifiedlog"
    assert result.records_used == folder_result.records_used
    assert result.unreadable == []


@pytest.mark.parametrize("suffix", ["tar.gz", "zip"])
def test_archive_without_top_folder(
    tmp_path: Path, collection: Path, folder_result: ScanResult, suffix: str
) -> None:
    target = tmp_path / f"hosts.{suffix}"
    if suffix == "zip":
        pack_zip(collection, target, top_folder=False)
    else:
        pack_tar(collection, target, top_folder=False)

    result = run_scan(target)

    assert incident_keys(result) == incident_keys(folder_result)
    assert stats_of(result, f"{target}!host-a/eslogger.ndjson").host == "host-a"


def test_archive_in_host_folder_takes_its_host(tmp_path: Path) -> None:
    (tmp_path / "fleet" / "mbp-lab-4").mkdir(parents=True)
    capture = santa_kill(tmp_path / "eslogger.ndjson")
    target = tar_of(
        {"logs/eslogger.ndjson": capture.read_bytes()},
        tmp_path / "fleet" / "mbp-lab-4" / "logs.tar",
    )

    result = run_scan(tmp_path / "fleet")

    assert [incident.host for incident in result.incidents] == ["mbp-lab-4"]
    assert stats_of(result, f"{target}!logs/eslogger.ndjson").host == "mbp-lab-4"


def test_archive_on_standard_input(collection: Path, folder_result: ScanResult) -> None:
    packed = io.BytesIO()
    with tarfile.open(fileobj=packed, mode="w:gz") as tar:
        tar.add(collection, arcname=collection.name)

    result = run_scan("-", stdin=packed.getvalue())

    assert incident_keys(result) == incident_keys(folder_result)
    assert evidence_files(result) == {"-!collection/host-a/eslogger.ndjson"}
    stats = stats_of(result, "-")
    assert stats.format == "eslogger, unifiedlog"
    assert stats.used == folder_result.records_used


def test_cli_scans_a_tarball(tmp_path: Path, collection: Path) -> None:
    target = pack_tar(collection, tmp_path / "collection.tar.gz")

    result = run_cli("scan", str(target), "--format", "jsonl")

    assert result.returncode == 1, result.stderr.decode()
    incidents = [json.loads(line) for line in result.stdout.splitlines()]
    assert [incident["host"] for incident in incidents] == ["host-a"]
    files = {ref["file"] for signal in incidents[0]["signals"] for ref in signal["evidence"]}
    assert files == {f"{target}!collection/host-a/eslogger.ndjson"}
    assert f"{target}!collection/host-b/unifiedlog.ndjson".encode() in result.stderr


def test_cli_reads_a_tarball_from_standard_input(tmp_path: Path, collection: Path) -> None:
    target = pack_tar(collection, tmp_path / "collection.tgz")

    result = run_cli("scan", "-", "--format", "jsonl", stdin=target.read_bytes())

    assert result.returncode == 1, result.stderr.decode()
    assert [json.loads(line)["host"] for line in result.stdout.splitlines()] == ["host-a"]


def test_archive_of_folders_only_is_named(tmp_path: Path) -> None:
    # A tar with no entry at all is only zero blocks, which carry no magic to recognise.
    (tmp_path / "host-a").mkdir()
    target = tmp_path / "folders.tar"
    with tarfile.open(target, "w") as tar:
        tar.add(tmp_path / "host-a", arcname="host-a")

    result = run_scan(target)

    assert stats_of(result, str(target)).unrecognised == "a tar without regular files"


def test_non_telemetry_member_is_named(tmp_path: Path) -> None:
    capture = santa_kill(tmp_path / "eslogger.ndjson")
    target = tmp_path / "bundle.zip"
    target.write_bytes(
        zip_bytes({"eslogger.ndjson": capture.read_bytes(), "README.txt": b"collected by ops\n"})
    )

    result = run_scan(target, host="lab-mac-9")

    readme = stats_of(result, f"{target}!README.txt")
    assert readme.unrecognised == "not a recognised telemetry format"
    assert stats_of(result, f"{target}!eslogger.ndjson").format == "eslogger"


def test_macos_metadata_members_are_skipped(tmp_path: Path) -> None:
    capture = santa_kill(tmp_path / "eslogger.ndjson")
    target = tmp_path / "collection.zip"
    target.write_bytes(
        zip_bytes(
            {
                "collection/host-a/eslogger.ndjson": capture.read_bytes(),
                "__MACOSX/collection/host-a/._eslogger.ndjson": b"\x00\x05\x16\x07resource",
                "collection/host-a/._eslogger.ndjson": b"\x00\x05\x16\x07resource",
            }
        )
    )

    result = run_scan(target)

    assert [stats.file for stats in result.files] == [f"{target}!collection/host-a/eslogger.ndjson"]
    assert [incident.host for incident in result.incidents] == ["host-a"]
    assert f"{target}: 2 macOS metadata member(s) (__MACOSX/, ._ files) skipped" in result.warnings


def test_unsafe_members_are_not_read(tmp_path: Path) -> None:
    capture = santa_kill(tmp_path / "eslogger.ndjson")
    work = tmp_path / "work"
    work.mkdir()
    target = work / "odd.tar"
    with tarfile.open(target, "w") as tar:
        for name in ("../escape.ndjson", "/tmp/absolute.ndjson", "host-a/eslogger.ndjson"):
            info = tarfile.TarInfo(name)
            info.size = len(capture.read_bytes())
            tar.addfile(info, io.BytesIO(capture.read_bytes()))
        link = tarfile.TarInfo("host-a/passwd")
        link.type, link.linkname = tarfile.SYMTYPE, "../../../etc/passwd"
        tar.addfile(link)
        hard = tarfile.TarInfo("host-a/copy.ndjson")
        hard.type, hard.linkname = tarfile.LNKTYPE, "host-a/eslogger.ndjson"
        tar.addfile(hard)
        pipe = tarfile.TarInfo("host-a/pipe")
        pipe.type = tarfile.FIFOTYPE
        tar.addfile(pipe)

    result = run_scan(target)

    assert [stats.file for stats in result.files] == [f"{target}!host-a/eslogger.ndjson"]
    assert f"{target}!../escape.ndjson: a name with '..', not read" in result.warnings
    assert f"{target}!tmp/absolute.ndjson: an absolute path, not read" in result.warnings
    assert (
        f"{target}!host-a/passwd: a link to '../../../etc/passwd', not followed" in result.warnings
    )
    assert (
        f"{target}!host-a/copy.ndjson: a link to 'host-a/eslogger.ndjson', not followed"
        in result.warnings
    )
    assert f"{target}!host-a/pipe: not a regular file" in result.warnings
    assert sorted(os.listdir(work)) == ["odd.tar"]
    assert not (tmp_path / "escape.ndjson").exists()


def test_zip_symlink_member_is_not_followed(tmp_path: Path) -> None:
    target = tmp_path / "links.zip"
    with zipfile.ZipFile(target, "w") as archive:
        info = zipfile.ZipInfo("host-a/shadow")
        info.external_attr = (0o120777 << 16) | 0x20
        archive.writestr(info, "/etc/master.passwd")
        archive.writestr("host-a/notes.txt", "nothing here\n")

    result = run_scan(target)

    assert f"{target}!host-a/shadow: a symbolic link, not followed" in result.warnings
    assert [stats.file for stats in result.files] == [f"{target}!host-a/notes.txt"]


# --- nesting --------------------------------------------------------------------------------


def test_nested_archives_one_level_deep(tmp_path: Path) -> None:
    capture = santa_kill(tmp_path / "eslogger.ndjson").read_bytes()
    quiet = quiet_day(tmp_path / "quiet.ndjson").read_bytes()
    inner_tgz = io.BytesIO()
    with tarfile.open(fileobj=inner_tgz, mode="w:gz") as tar:
        info = tarfile.TarInfo("eslogger.ndjson")
        info.size = len(capture)
        tar.addfile(info, io.BytesIO(capture))
    target = tar_of(
        {
            "host-a/eslogger.ndjson.gz": gzip.compress(capture),
            "host-b/bundle.zip": zip_bytes({"day/eslogger.ndjson": quiet}),
            "host-c/deep.zip": zip_bytes({"inner.tar.gz": inner_tgz.getvalue()}),
        },
        tmp_path / "nested.tar",
    )

    result = run_scan(target)

    gz_member = stats_of(result, f"{target}!host-a/eslogger.ndjson.gz")
    assert gz_member.format == "eslogger"
    assert gz_member.host == "host-a"
    zip_member = stats_of(result, f"{target}!host-b/bundle.zip")
    assert zip_member.format == "eslogger"
    assert zip_member.used > 0
    deep = stats_of(result, f"{target}!host-c/deep.zip")
    assert deep.used == 0
    assert warning_texts(deep) == [
        f"{target}!host-c/deep.zip!inner.tar.gz:0: not read: gzip data nested too deep in "
        "other archives or compressed files; unpack the outer ones first"
    ]
    assert [incident.host for incident in result.incidents] == ["host-a"]
    assert evidence_files(result) == {f"{target}!host-a/eslogger.ndjson.gz"}


def test_zip_inside_gzip_is_read(tmp_path: Path) -> None:
    capture = santa_kill(tmp_path / "eslogger.ndjson").read_bytes()
    quiet = quiet_day(tmp_path / "quiet.ndjson").read_bytes()
    target = tmp_path / "export.zip.gz"
    members = {"mbp-lab-2/eslogger.ndjson": capture, "mbp-lab-3/eslogger.ndjson": quiet}
    target.write_bytes(gzip.compress(zip_bytes(members)))

    result = run_scan(target)

    assert evidence_files(result) == {f"{target}!mbp-lab-2/eslogger.ndjson"}
    assert [incident.host for incident in result.incidents] == ["mbp-lab-2"]


# --- limits ---------------------------------------------------------------------------------


def test_gzip_bomb_keeps_earlier_records(tmp_path: Path) -> None:
    capture = santa_kill(tmp_path / "eslogger.ndjson")
    records = capture.read_bytes()
    bomb = tmp_path / "bomb.ndjson.gz"
    # The records, then 1 GiB of zeros: about 1 MiB on disk.
    bomb.write_bytes(gzip.compress(records) + zeros_gzip(1024))
    assert bomb.stat().st_size < 2 * 1024 * 1024
    other = quiet_day(tmp_path / "other.ndjson")

    result = run_scan(bomb, other, host="lab-mac-9")

    stats = stats_of(result, str(bomb))
    assert stats.error is not None
    assert "more than the limit of 200:1 (a likely decompression bomb)" in stats.error
    line_count = records.count(b"\n")
    assert f"records from line {line_count + 1} on were not read" in stats.error
    assert stats.used == line_count
    cut_off = [w for w in stats.warnings if w.line == line_count + 1 and "not read" in w.message]
    assert [w.message for w in cut_off] == [f"records from line {line_count + 1} on were not read"]
    assert len(result.suspicious) == 1
    assert stats_of(result, str(other)).used > 0


def test_cli_refuses_gzip_bomb(tmp_path: Path) -> None:
    capture = santa_kill(tmp_path / "eslogger.ndjson")
    bomb = tmp_path / "capture.gz"
    bomb.write_bytes(gzip.compress(capture.read_bytes()) + zeros_gzip(1024))

    result = run_cli("scan", str(bomb), "--host", "lab-mac-9")

    assert result.returncode == 2
    text = result.stdout.decode()
    assert f"error: {bomb}: decompression stopped" in text
    assert "limit of 200:1" in text
    assert "Traceback" not in result.stderr.decode()


def test_zeros_alone_are_never_expanded(tmp_path: Path) -> None:
    # Detection looks at the first 64 KiB only, and no reader takes zero bytes.
    bomb = tmp_path / "zeros.gz"
    bomb.write_bytes(zeros_gzip(1024))

    result = run_scan(bomb, host="lab-mac-9")

    stats = stats_of(result, str(bomb))
    assert stats.unrecognised == "not a recognised telemetry format (binary data)"
    assert stats.error is None


def test_tar_gzip_bomb_stops_at_the_member(tmp_path: Path) -> None:
    capture = santa_kill(tmp_path / "eslogger.ndjson").read_bytes()
    first = tarfile.TarInfo("host-a/eslogger.ndjson")
    first.size = len(capture)
    padding = bytes(-len(capture) % tarfile.BLOCKSIZE)
    huge = tarfile.TarInfo("host-b/zeros.ndjson")
    huge.size = 1024**3
    head = first.tobuf() + capture + padding + huge.tobuf()
    target = tmp_path / "bomb.tar.gz"
    # A tar header that declares 1 GiB of data, then that data: zeros, about 1 MiB on disk.
    target.write_bytes(gzip.compress(head) + zeros_gzip(1024))

    result = run_scan(target)

    assert stats_of(result, f"{target}!host-a/eslogger.ndjson").error is None
    assert [incident.host for incident in result.incidents] == ["host-a"]
    zeros = stats_of(result, f"{target}!host-b/zeros.ndjson")
    assert zeros.error is not None
    assert zeros.error.startswith("decompression stopped: the gzip data expands ")
    assert zeros.error.endswith(
        "more than the limit of 200:1 (a likely decompression bomb); "
        "the archive's members after this one were not read"
    )


def test_total_decompressed_limit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(archives.limits, "MAX_DECOMPRESSED_BYTES", 256 * 1024)
    capture = santa_kill(tmp_path / "eslogger.ndjson", noise=400)
    assert capture.stat().st_size > 512 * 1024
    packed = tmp_path / "capture.ndjson.bz2"
    packed.write_bytes(bz2.compress(capture.read_bytes()))

    result = run_scan(packed, host="lab-mac-9")

    stats = stats_of(result, str(packed))
    assert stats.error is not None
    assert stats.error.startswith(
        "decompression stopped at the limit of 256 KiB of decompressed data per input"
    )
    assert stats.used > 0
    assert result.incidents == []


def test_zip_declared_size_bomb_is_refused(tmp_path: Path) -> None:
    capture = santa_kill(tmp_path / "eslogger.ndjson").read_bytes()
    data = bytearray(zip_bytes({"big.ndjson": b"{}\n" * 4000, "eslogger.ndjson": capture}))
    # Make the first member declare 2 GiB uncompressed, in its local and central headers.
    central = data.index(b"PK\x01\x02")
    data[central + 24 : central + 28] = (2**31).to_bytes(4, "little")
    data[22:26] = (2**31).to_bytes(4, "little")
    target = tmp_path / "declared.zip"
    target.write_bytes(bytes(data))

    result = run_scan(target, host="lab-mac-9")

    big = stats_of(result, f"{target}!big.ndjson")
    assert big.error is not None
    assert big.error.startswith("not read: the member declares 2 GiB from ")
    assert "more than the limit of 200:1" in big.error
    assert big.read == 0
    assert stats_of(result, f"{target}!eslogger.ndjson").used > 0
    assert len(result.suspicious) == 1


def test_zip_members_share_the_limit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(archives.limits, "MAX_DECOMPRESSED_BYTES", 64 * 1024)
    quiet = quiet_day(tmp_path / "quiet.ndjson").read_bytes()
    assert 32 * 1024 < len(quiet) < 64 * 1024
    target = tmp_path / "three.zip"
    target.write_bytes(zip_bytes({f"day-{n}.ndjson": quiet for n in (1, 2, 3)}))

    result = run_scan(target, host="lab-mac-9")

    first, second, third = (stats_of(result, f"{target}!day-{n}.ndjson") for n in (1, 2, 3))
    assert first.error is None
    assert second.error is not None
    assert second.error.startswith("decompression stopped at the limit of 64 KiB")
    assert third.error == (
        "not read: the archive already reached the limit of 64 KiB of decompressed data per input"
    )


def test_member_count_limit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(archives.limits, "MAX_MEMBERS", 2)
    capture = santa_kill(tmp_path / "eslogger.ndjson").read_bytes()
    target = tar_of(
        {f"host-{n}/eslogger.ndjson": capture for n in "abc"}, tmp_path / "many.tgz", "w:gz"
    )

    result = run_scan(target)

    assert [stats.file for stats in result.files] == [
        f"{target}!host-a/eslogger.ndjson",
        f"{target}!host-b/eslogger.ndjson",
    ]
    last = result.files[-1]
    assert last.error == (
        "the archive has more than 2 entries, the limit; "
        "the archive's members after this one were not read"
    )
    assert sorted(incident.host for incident in result.incidents) == ["host-a", "host-b"]


def test_zip_declaring_too_many_entries(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(archives.limits, "MAX_MEMBERS", 3)
    target = tmp_path / "crowd.zip"
    target.write_bytes(zip_bytes({f"n{n}.txt": b"x\n" for n in range(5)}))

    result = run_scan(target)

    assert stats_of(result, str(target)).error == (
        "the archive declares 5 entries, more than the limit of 3; nothing was read"
    )


# --- damaged data ---------------------------------------------------------------------------


def test_truncated_gzip_keeps_earlier_records(tmp_path: Path) -> None:
    capture = santa_kill(tmp_path / "eslogger.ndjson", noise=200)
    packed = tmp_path / "cut.ndjson.gz"
    data = gzip.compress(capture.read_bytes())
    packed.write_bytes(data[: len(data) * 3 // 4])

    result = run_scan(packed, host="lab-mac-9")

    stats = stats_of(result, str(packed))
    assert stats.error is None
    assert stats.used > 100
    cut = [w for w in stats.warnings if "ends early" in w.message]
    assert len(cut) == 1
    assert cut[0].message == (
        f"the gzip data ends early (truncated file); records from line {cut[0].line} on "
        "were not read"
    )
    assert cut[0].line > stats.used


def test_cli_truncated_gzip_has_no_traceback(tmp_path: Path) -> None:
    capture = santa_kill(tmp_path / "eslogger.ndjson")
    packed = tmp_path / "cut.ndjson.gz"
    data = gzip.compress(capture.read_bytes())
    packed.write_bytes(data[:-200])

    result = run_cli("scan", str(packed), "--host", "lab-mac-9")

    assert "Traceback" not in result.stderr.decode()
    assert "the gzip data ends early (truncated file)" in result.stdout.decode()


def test_corrupt_gzip_header_is_an_error(tmp_path: Path) -> None:
    packed = tmp_path / "garbage.gz"
    packed.write_bytes(b"\x1f\x8b\x08\x00" + bytes(range(200)))

    result = run_scan(packed, host="lab-mac-9")

    stats = stats_of(result, str(packed))
    assert stats.error is not None
    assert stats.error.startswith("the gzip data is damaged (")
    assert stats.error.endswith("; nothing was read")


def test_zip_bad_crc_keeps_earlier_records(tmp_path: Path) -> None:
    capture = santa_kill(tmp_path / "eslogger.ndjson", noise=300).read_bytes()
    assert len(capture) > 4 * 64 * 1024
    data = bytearray(zip_bytes({"eslogger.ndjson": capture}, zipfile.ZIP_STORED))
    # Flip one byte of the stored data near its end. The CRC check fails at the last read.
    at = data.index(capture[-100:])
    data[at] ^= 0x20
    target = tmp_path / "badcrc.zip"
    target.write_bytes(bytes(data))

    result = run_scan(target, host="lab-mac-9")

    stats = stats_of(result, f"{target}!eslogger.ndjson")
    assert stats.error is None
    assert stats.used > 100
    messages = [w.message for w in stats.warnings]
    assert any(
        message.startswith("the zip member is damaged (Bad CRC-32 for file 'eslogger.ndjson')")
        for message in messages
    ), messages


TAR_CUTS = {
    # The tar file itself ends inside the second member.
    "cut.tar": (lambda raw, at: raw[:at], "the tar member ends early"),
    # A whole gzip stream of a tar that ends inside the second member.
    "cut-tar.tar.gz": (lambda raw, at: gzip.compress(raw[:at]), "the tar member ends early"),
    # A gzip stream that ends inside the second member: two gzip members, the second cut.
    "cut-gzip.tar.gz": (
        lambda raw, at: gzip.compress(raw[:at]) + gzip.compress(raw[at:])[:12],
        "the gzip data ends early",
    ),
}


@pytest.mark.parametrize("name", sorted(TAR_CUTS))
def test_tar_cut_inside_member(tmp_path: Path, name: str) -> None:
    capture = santa_kill(tmp_path / "eslogger.ndjson").read_bytes()
    quiet = quiet_day(tmp_path / "quiet.ndjson").read_bytes()
    whole = tar_of(
        {"host-a/eslogger.ndjson": capture, "host-b/eslogger.ndjson": quiet},
        tmp_path / "whole.tar",
    )
    with tarfile.open(whole) as tar:
        second = tar.getmember("host-b/eslogger.ndjson")
        cut_at = second.offset_data + second.size // 2
    damage, expected = TAR_CUTS[name]
    target = tmp_path / name
    target.write_bytes(damage(whole.read_bytes(), cut_at))

    result = run_scan(target)

    first = stats_of(result, f"{target}!host-a/eslogger.ndjson")
    assert first.warnings == []
    assert [incident.host for incident in result.incidents] == ["host-a"]
    partial = stats_of(result, f"{target}!host-b/eslogger.ndjson")
    assert partial.used > 0
    assert partial.error is None
    ends = [w for w in partial.warnings if "ends early" in w.message]
    assert len(ends) == 1
    assert ends[0].message.startswith(expected)
    assert ends[0].line == quiet[: second.size // 2].count(b"\n") + 1


# --- discovery edge cases -------------------------------------------------------------------


def test_link_loops_in_folders_are_named(tmp_path: Path) -> None:
    root = tmp_path / "collection"
    (root / "host-a").mkdir(parents=True)
    quiet_day(root / "host-a" / "eslogger.ndjson")
    (root / "host-a" / "up").symlink_to(root)
    (root / "back").symlink_to(root)
    (root / "host-a" / "ping").symlink_to(root / "host-a" / "pong")
    (root / "host-a" / "pong").symlink_to(root / "host-a" / "ping")

    result = run_scan(root)

    assert f"{root / 'back'}: symbolic link to a folder, not followed" in result.warnings
    assert f"{root / 'host-a' / 'up'}: symbolic link to a folder, not followed" in result.warnings
    for name in ("ping", "pong"):
        stats = stats_of(result, str(root / "host-a" / name))
        assert stats.error == "cannot read: symbolic link loop (a link that leads back to itself)"
    assert stats_of(result, str(root / "host-a" / "eslogger.ndjson")).used > 0


def test_link_to_outside_file_is_read_once(tmp_path: Path) -> None:
    outside = santa_kill(tmp_path / "elsewhere.ndjson")
    root = tmp_path / "collection"
    (root / "host-a").mkdir(parents=True)
    (root / "host-a" / "eslogger.ndjson").symlink_to(outside)

    result = run_scan(root, outside)

    assert [stats.file for stats in result.files] == [str(root / "host-a" / "eslogger.ndjson")]
    assert f"{outside}: same file as {root / 'host-a' / 'eslogger.ndjson'}, read once" in (
        result.warnings
    )
    assert [incident.host for incident in result.incidents] == ["host-a"]


def test_broken_link_is_unreadable(tmp_path: Path) -> None:
    (tmp_path / "host-a").mkdir()
    link = tmp_path / "host-a" / "eslogger.ndjson"
    link.symlink_to(tmp_path / "rotated-away.ndjson")

    result = run_scan(tmp_path)

    stats = stats_of(result, str(link))
    assert stats.error == f"cannot read: broken symbolic link to {tmp_path / 'rotated-away.ndjson'}"
    assert result.unreadable == [stats]


@pytest.mark.skipif(
    hasattr(os, "geteuid") and os.geteuid() == 0,
    reason="root reads a file whatever its permission bits, so mode 000 does not block it",
)
def test_unreadable_file_is_reported(tmp_path: Path) -> None:
    capture = quiet_day(tmp_path / "eslogger.ndjson")
    capture.chmod(0)

    result = run_scan(capture, host="lab-mac-9")

    assert stats_of(result, str(capture)).error == "cannot read: Permission denied"


def test_unlistable_subfolder_is_reported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    host_folder = tmp_path / "host-a"
    locked = host_folder / "locked"
    locked.mkdir(parents=True)
    quiet_day(host_folder / "eslogger.ndjson")
    real_walk = os.walk

    # Root lists any folder, so the permission failure that os.walk reports through onerror
    # is made here for the one folder.
    def walk_without_locked(top: str | os.PathLike[str], **kwargs: Any) -> Any:
        onerror = kwargs.get("onerror")
        for directory, subfolders, files in real_walk(top, **kwargs):
            if locked.name in subfolders and onerror is not None:
                subfolders.remove(locked.name)
                onerror(PermissionError(13, "Permission denied", str(locked)))
            yield directory, subfolders, files

    monkeypatch.setattr(os, "walk", walk_without_locked)
    result = run_scan(tmp_path)

    stats = stats_of(result, str(locked))
    assert stats.error == "cannot list folder: Permission denied"
    assert result.unreadable == [stats]
    assert stats_of(result, str(host_folder / "eslogger.ndjson")).used > 0


def after_discovery(
    monkeypatch: pytest.MonkeyPatch, change: Callable[[list[InputFile]], None]
) -> None:
    """Run ``change`` between the discovery of the inputs and their reading."""
    discover = scan_module.discover

    def discover_then_change(
        paths: Sequence[str], notices: list[str] | None = None
    ) -> list[InputFile]:
        found = discover(paths, notices)
        change(found)
        return found

    monkeypatch.setattr(scan_module, "discover", discover_then_change)


def test_file_vanishing_after_discovery(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    vanished = quiet_day(tmp_path / "vanished.ndjson")
    remaining = santa_kill(tmp_path / "remaining.ndjson")
    after_discovery(monkeypatch, lambda found: vanished.unlink())

    result = run_scan(tmp_path, host="lab-mac-9")

    assert stats_of(result, str(vanished)).error == "cannot read: No such file or directory"
    assert stats_of(result, str(remaining)).used > 0
    assert len(result.suspicious) == 1


def test_file_replaced_by_folder_after_discovery(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    capture = quiet_day(tmp_path / "eslogger.ndjson")

    def replace(found: list[InputFile]) -> None:
        capture.unlink()
        capture.mkdir()

    after_discovery(monkeypatch, replace)

    result = run_scan(capture, host="lab-mac-9")

    assert stats_of(result, str(capture)).error == "cannot read: Is a directory"


def test_archive_vanishing_after_discovery(
    tmp_path: Path, collection: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = pack_tar(collection, tmp_path / "collection.tar.gz")
    after_discovery(monkeypatch, lambda found: target.unlink())

    result = run_scan(target)

    assert len(result.files) == 3
    for stats in result.files:
        assert stats.error == "cannot read: No such file or directory"


def test_empty_file_is_named(tmp_path: Path) -> None:
    empty = tmp_path / "eslogger.ndjson"
    empty.write_bytes(b"")

    result = run_scan(empty, host="lab-mac-9")

    assert stats_of(result, str(empty)).unrecognised == "empty file"


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="named pipes need os.mkfifo")
def test_fifo_in_folder_is_not_opened(tmp_path: Path) -> None:
    (tmp_path / "host-a").mkdir()
    quiet_day(tmp_path / "host-a" / "eslogger.ndjson")
    os.mkfifo(tmp_path / "host-a" / "stream.ndjson")

    # Opening the pipe would block without a writer, so the command's timeout fails the test.
    result = run_cli("scan", str(tmp_path))

    assert result.returncode == 0, result.stderr.decode()
    assert f"{tmp_path / 'host-a' / 'stream.ndjson'}: not a regular file, not read".encode() in (
        result.stdout
    )


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="named pipes need os.mkfifo")
def test_fifo_named_on_command_line_is_read(tmp_path: Path) -> None:
    capture = santa_kill(tmp_path / "eslogger.ndjson")
    pipe = tmp_path / "capture.pipe"
    os.mkfifo(pipe)

    def feed() -> None:
        with open(pipe, "wb") as writer:
            writer.write(gzip.compress(capture.read_bytes()))

    feeder = threading.Thread(target=feed)
    feeder.start()
    try:
        result = run_scan(pipe, host="lab-mac-9")
    finally:
        feeder.join(timeout=60)

    assert stats_of(result, str(pipe)).format == "eslogger"
    assert len(result.suspicious) == 1
