"""Tests of configuration loading, duration parsing and building the monitored inventory."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tamperwatch.config import (
    MAX_YAML_VALUES,
    Config,
    ConfigError,
    build_inventory,
    load_config,
    parse_duration,
)


def write(tmp_path: Path, text: str, name: str = "tamperwatch.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def load_error(path: Path) -> ConfigError:
    with pytest.raises(ConfigError) as raised:
        load_config(path)
    return raised.value


# --- defaults and valid files ---------------------------------------------------------------


def test_defaults_without_file() -> None:
    config = load_config(None)
    assert config.crash_correlation_window == 300.0
    assert config.crash_burst_threshold == 3
    assert config.flood_event_threshold == 1000
    assert config.extension_list == ()
    assert config.components == ()
    assert config.management_agents == ()


@pytest.mark.parametrize("text", ["", "# only a comment\n", "---\n", "\n\n", "null\n"])
def test_empty_file_gives_defaults(
    tmp_path: Path, text: str, caplog: pytest.LogCaptureFixture
) -> None:
    path = write(tmp_path, text)
    assert load_config(path) == Config()
    assert "contains no settings; using the defaults" in caplog.text


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        (45, 45.0),
        (2.5, 2.5),
        ("120", 120.0),
        ("90s", 90.0),
        ("5m", 300.0),
        ("2h", 7200.0),
        ("1d", 86400.0),
        ("1h30m", 5400.0),
        ("1H 30M 15S", 5415.0),
        ("0.5m", 30.0),
    ],
)
def test_parse_duration(value: object, seconds: float) -> None:
    assert parse_duration(value) == seconds


@pytest.mark.parametrize(
    "value", ["5x", "m5", "", "-5m", -1, True, None, [5], "nan", "inf", 10**400, "9" * 400 + "s"]
)
def test_parse_duration_rejects(value: object) -> None:
    with pytest.raises(ValueError, match="invalid duration"):
        parse_duration(value)


def test_full_config(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """\
crash_correlation_window: 2m
crash_burst_threshold: 5
flood_event_threshold: 2500
extension_list:
  - crowdstrike-falcon
  - acme-edr
  - crowdstrike-falcon
components:
  - id: crowdstrike-falcon
    heartbeat_seconds: 300
  - id: acme-edr
    product: ACME EDR
    vendor: ACME
    category: edr
    process_names: [acmed]
    launchd_plists: [/Library/LaunchDaemons/com.acme.sensor.plist]
management_agents:
  - {path: /usr/local/bin/acme-mdm, name: ACME MDM}
""",
    )
    config = load_config(path)
    assert config.crash_correlation_window == 120.0
    assert config.crash_burst_threshold == 5
    assert config.flood_event_threshold == 2500
    assert config.extension_list == ("crowdstrike-falcon", "acme-edr")
    assert len(config.components) == 2
    assert config.management_agents == ({"path": "/usr/local/bin/acme-mdm", "name": "ACME MDM"},)

    inventory = build_inventory(config)
    assert [c.id for c in inventory.components] == ["crowdstrike-falcon", "acme-edr"]
    falcon = inventory.get("crowdstrike-falcon")
    assert falcon is not None
    assert falcon.heartbeat_seconds == 300
    assert inventory.match_plist("/Library/LaunchDaemons/com.acme.sensor.plist") is not None
    assert inventory.match_plist("/Library/LaunchDaemons/com.carbonblack.daemon.plist") is None
    agent = inventory.management_agent("/usr/local/bin/acme-mdm")
    assert agent is not None
    assert agent.name == "ACME MDM"


def test_build_inventory_without_extension_list(tmp_path: Path) -> None:
    inventory = build_inventory(load_config(write(tmp_path, "crash_burst_threshold: 4\n")))
    assert inventory.get("sip") is not None
    assert inventory.get("crowdstrike-falcon") is not None
    assert len(inventory.components) >= 30


def test_build_inventory_rejects_unknown_id_in_code() -> None:
    with pytest.raises(ConfigError) as raised:
        build_inventory(Config(extension_list=("no-such-component",)))
    assert raised.value.key == "extension_list"
    assert "no-such-component" in str(raised.value)


def test_build_inventory_rejects_bad_component_in_code() -> None:
    with pytest.raises(ConfigError) as raised:
        build_inventory(Config(components=({"id": "acme"},)))
    assert raised.value.key == "components[0]"
    assert "product" in str(raised.value)


# --- errors name file, key and line ---------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "key", "line", "fragment"),
    [
        (
            "crash_burst_threshold: 3\ncrash_windw: 5m\n",
            "crash_windw",
            2,
            "unknown key",
        ),
        (
            "crash_burst_threshold: three\n",
            "crash_burst_threshold",
            1,
            "expected a whole number",
        ),
        (
            "crash_burst_threshold: true\n",
            "crash_burst_threshold",
            1,
            "expected a whole number",
        ),
        (
            "# thresholds\n\nflood_event_threshold: -5\n",
            "flood_event_threshold",
            3,
            "at least 1",
        ),
        (
            "crash_correlation_window: -30\n",
            "crash_correlation_window",
            1,
            "finite number of seconds >= 0",
        ),
        (
            "crash_correlation_window: 0\n",
            "crash_correlation_window",
            1,
            "greater than 0",
        ),
        (
            "crash_correlation_window: soon\n",
            "crash_correlation_window",
            1,
            "invalid duration",
        ),
        (
            "extension_list:\n  - crowdstrike-falcon\n  - no-such-edr\n",
            "extension_list[1]",
            3,
            "unknown component id 'no-such-edr'",
        ),
        (
            "extension_list: crowdstrike-falcon\n",
            "extension_list",
            1,
            "expected a list",
        ),
        (
            "components:\n  - id: acme\n    product: ACME\n    team_ids: [abc]\n",
            "components[0].team_ids[0]",
            4,
            "invalid team ID",
        ),
        (
            "components:\n  - id: lulu\n    colour: red\n",
            "components[0].colour",
            3,
            "unknown component key",
        ),
        (
            "components:\n  - id: acme\n    process_names: [acmed]\n",
            "components[0]",
            2,
            "missing product",
        ),
        (
            "components:\n  - id: lulu\n    clis:\n      - tool: lulu\n        kind: off\n"
            "        summary: x\n",
            "components[0].clis[0].kind",
            5,
            "invalid kind",
        ),
        (
            "components:\n  - just-a-string\n",
            "components[0]",
            2,
            "expected a mapping",
        ),
        (
            "management_agents:\n  - path: usr/local/bin/agent\n    name: Agent\n",
            "management_agents[0].path",
            2,
            "absolute path",
        ),
        (
            "crash_burst_threshold: 3\ncrash_burst_threshold: 4\n",
            "crash_burst_threshold",
            2,
            "duplicate key",
        ),
    ],
)
def test_error_names_file_key_line(
    tmp_path: Path, text: str, key: str, line: int, fragment: str
) -> None:
    path = write(tmp_path, text)
    error = load_error(path)
    assert error.file == str(path)
    assert error.key == key
    assert error.line == line
    assert fragment in error.message
    assert str(error).startswith(f"{path}:{line}: {key}: ")


def test_yaml_syntax_error_line(tmp_path: Path) -> None:
    path = write(tmp_path, "crash_burst_threshold: 3\nextension_list: [lulu\n")
    error = load_error(path)
    assert error.file == str(path)
    assert error.line is not None
    assert error.line >= 2
    assert "invalid YAML" in error.message


def test_top_level_not_mapping(tmp_path: Path) -> None:
    path = write(tmp_path, "- lulu\n- sip\n")
    error = load_error(path)
    assert error.line == 1
    assert "mapping" in error.message


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "absent.yaml"
    error = load_error(path)
    assert error.file == str(path)
    assert "not found" in error.message


def test_unsafe_yaml_tag_rejected(tmp_path: Path) -> None:
    path = write(tmp_path, "crash_burst_threshold: !!python/object/apply:os.getpid []\n")
    error = load_error(path)
    assert error.line == 1
    assert error.message.startswith(
        "invalid YAML: tag !!python/object/apply:os.getpid is not allowed"
    )


# --- checkins --------------------------------------------------------------------------------


def test_checkins_default_is_none() -> None:
    assert load_config(None).checkins is None


def test_checkins_full(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """\
checkins:
  columns: {host: "Computer Name", component: "Agent", time: "Last Check-in", status: "Status"}
  healthy_status: [Online, healthy, connected, online]
  unhealthy_status: [offline, degraded, "Sensor Disabled"]
  timezone: Europe/Berlin
""",
    )
    checkins = load_config(path).checkins
    assert checkins is not None
    assert checkins["columns"] == {
        "host": "Computer Name",
        "component": "Agent",
        "time": "Last Check-in",
        "status": "Status",
    }
    assert checkins["healthy_status"] == ["online", "healthy", "connected"]
    assert checkins["unhealthy_status"] == ["offline", "degraded", "sensor disabled"]
    assert checkins["timezone"] == "Europe/Berlin"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("checkins:\n", None),
        ("checkins: {}\n", {}),
        ("checkins:\n  timezone: UTC\n", {"timezone": "UTC"}),
        ("checkins:\n  columns: {host: Asset}\n", {"columns": {"host": "Asset"}}),
    ],
)
def test_checkins_partial(tmp_path: Path, text: str, expected: object) -> None:
    assert load_config(write(tmp_path, text)).checkins == expected


@pytest.mark.parametrize(
    ("text", "key", "line", "fragment"),
    [
        ("checkins: [host]\n", "checkins", 1, "expected a mapping"),
        ("checkins:\n  timezone: UTC\n  colums: {}\n", "checkins.colums", 3, "unknown key"),
        ("checkins:\n  columns: [host]\n", "checkins.columns", 2, "expected a mapping"),
        (
            "checkins:\n  columns:\n    host: Computer\n    serial: Serial\n",
            "checkins.columns.serial",
            4,
            "unknown column role",
        ),
        (
            "checkins:\n  columns:\n    host: ''\n",
            "checkins.columns.host",
            3,
            "invalid column name",
        ),
        (
            "checkins:\n  columns:\n    time: 5\n",
            "checkins.columns.time",
            3,
            "invalid column name",
        ),
        (
            "checkins:\n  healthy_status: online\n",
            "checkins.healthy_status",
            2,
            "expected a list",
        ),
        (
            "checkins:\n  unhealthy_status:\n    - offline\n    - 3\n",
            "checkins.unhealthy_status[1]",
            4,
            "invalid status 3",
        ),
        (
            "checkins:\n  healthy_status: [online]\n  unhealthy_status:\n    - offline\n"
            "    - offline\n    - Online\n",
            "checkins.unhealthy_status[2]",
            6,
            "also in healthy_status",
        ),
        (
            "checkins:\n  timezone: Mars/Olympus\n",
            "checkins.timezone",
            2,
            "unknown time zone 'Mars/Olympus'",
        ),
        (
            "checkins:\n  timezone: ../../etc/passwd\n",
            "checkins.timezone",
            2,
            "unknown time zone",
        ),
        (
            "checkins:\n  timezone: 2\n",
            "checkins.timezone",
            2,
            "expected an IANA name",
        ),
    ],
)
def test_checkins_errors(tmp_path: Path, text: str, key: str, line: int, fragment: str) -> None:
    path = write(tmp_path, text)
    error = load_error(path)
    assert error.file == str(path)
    assert error.key == key
    assert error.line == line
    assert fragment in error.message


# --- hostile and malformed files ----------------------------------------------------------------


def test_invalid_duration_names_file_line_key(tmp_path: Path) -> None:
    text = "".join(f"# line {number}\n" for number in range(1, 12)) + (
        "crash_correlation_window: 5 parsecs\n"
    )
    path = write(tmp_path, text)

    error = load_error(path)

    assert str(error) == (
        f"{path}:12: crash_correlation_window: invalid duration '5 parsecs': expected seconds "
        "or text such as 90s, 5m, 2h"
    )


@pytest.mark.parametrize(
    ("text", "key", "line"),
    [
        ("crash_burst_threshold: 3\n\nflod_event_threshold: 10\n", "flod_event_threshold", 3),
        ("12: x\n", "12", 1),
        ("checkins:\n  timezone: UTC\n  zone: UTC\n", "checkins.zone", 3),
        ("checkins:\n  columns:\n    host: Name\n    serial: S\n", "checkins.columns.serial", 4),
        (
            "maintenance_windows:\n  - start: 2026-11-20T22:00:00Z\n    end: 2026-11-20T23:00:00Z\n"
            "    reason: upgrade\n    author: kim\n    ticket: 4711\n",
            "maintenance_windows[0].ticket",
            6,
        ),
    ],
)
def test_unknown_key_located(tmp_path: Path, text: str, key: str, line: int) -> None:
    path = write(tmp_path, text)

    error = load_error(path)

    assert error.key == key
    assert error.line == line
    assert str(error).startswith(f"{path}:{line}: {key}: unknown ")


def test_window_grace_error_located(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "maintenance_windows:\n  - start: 2026-11-20T22:00:00Z\n    end: 2026-11-20T23:00:00Z\n"
        "    reason: upgrade\n    author: kim\n    grace: soon\n",
    )

    error = load_error(path)

    assert error.key == "maintenance_windows[0].grace"
    assert error.line == 6
    assert "invalid duration 'soon'" in error.message


@pytest.mark.parametrize(
    "tag",
    [
        "!!python/object/apply:os.system ['touch {marker}']",
        "!!python/object/new:os.system ['touch {marker}']",
        "!!python/name:os.system",
        "!!python/object:pathlib.Path {{}}",
        "!mytag '{marker}'",
    ],
)
def test_python_tags_not_executed(tmp_path: Path, tag: str) -> None:
    marker = tmp_path / "marker"
    path = write(tmp_path, "crash_burst_threshold: 3\nextension_list: " + tag.format(marker=marker))

    error = load_error(path)

    assert not marker.exists()
    assert error.line == 2
    assert "is not allowed; the configuration accepts plain values only" in error.message


def test_explicit_timestamp_tag_stays_text(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "maintenance_windows:\n  - start: !!timestamp 2026-02-30T22:00:00Z\n"
        "    end: 2026-03-01T23:00:00Z\n    reason: upgrade\n    author: kim\n",
    )

    error = load_error(path)

    assert error.key == "maintenance_windows[0].start"
    assert error.line == 2
    assert "invalid time '2026-02-30T22:00:00Z'" in error.message


BILLION_LAUGHS = """\
a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]
b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]
c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]
d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]
e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d]
f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e]
g: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f]
h: &h [*g, *g, *g, *g, *g, *g, *g, *g, *g]
i: &i [*h, *h, *h, *h, *h, *h, *h, *h, *h]
"""


@pytest.mark.parametrize(
    "text",
    [BILLION_LAUGHS, BILLION_LAUGHS.replace("i: &i", "extension_list: &i")],
    ids=["unknown keys", "known key"],
)
def test_alias_bomb_rejected(tmp_path: Path, text: str) -> None:
    path = write(tmp_path, text)

    error = load_error(path)

    assert error.message.startswith(
        f"invalid YAML: aliases expand the document to more than {MAX_YAML_VALUES} values"
    )
    assert error.line is not None


def test_aliases_within_limit_allowed(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "checkins:\n  healthy_status: &ok [online, connected]\n"
        "  columns: {host: Name, time: Seen}\n"
        "maintenance_windows:\n"
        "  - &window {start: 2026-11-20T22:00:00Z, end: 2026-11-20T23:00:00Z, reason: upgrade,"
        " author: kim}\n"
        "  - *window\n",
    )

    config = load_config(path)

    assert len(config.maintenance_windows) == 2


@pytest.mark.parametrize(
    "text",
    [
        "extension_list: " + "[" * 100_000 + "]" * 100_000 + "\n",
        "a:\n" + "".join(" " * depth + "b:\n" for depth in range(1, 3000)),
    ],
    ids=["flow", "block"],
)
def test_deep_nesting_rejected(tmp_path: Path, text: str) -> None:
    path = write(tmp_path, text)

    error = load_error(path)

    assert error.file == str(path)
    assert error.message == "invalid YAML: values nested too deeply"


def test_huge_integer_located(tmp_path: Path) -> None:
    path = write(
        tmp_path, "crash_burst_threshold: 3\ncrash_correlation_window: " + "9" * 5000 + "\n"
    )

    error = load_error(path)

    assert error.line == 2
    assert error.message.startswith("invalid YAML: invalid integer 99999999999999999999...")


def test_huge_duration_number_rejected(tmp_path: Path) -> None:
    path = write(tmp_path, "crash_correlation_window: 1" + "0" * 400 + "\n")

    error = load_error(path)

    assert error.key == "crash_correlation_window"
    assert "must be a finite number of seconds" in error.message


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("just some text\n", "not the value 'just some text'"),
        ("42\n", "not the value 42"),
        ("- lulu\n", "not a list"),
    ],
)
def test_non_mapping_document(tmp_path: Path, text: str, fragment: str) -> None:
    path = write(tmp_path, text)

    error = load_error(path)

    assert error.line == 1
    assert error.message.startswith("expected a mapping of settings at the top level")
    assert fragment in error.message


def test_several_documents_rejected(tmp_path: Path) -> None:
    path = write(tmp_path, "crash_burst_threshold: 3\n---\ncrash_burst_threshold: 4\n")

    error = load_error(path)

    assert error.line == 2
    assert error.message == (
        "invalid YAML: expected a single document in the stream, but found another document"
    )


def test_control_character_located(tmp_path: Path) -> None:
    path = write(tmp_path, "crash_burst_threshold: 3\nextension_list: [lu\x00lu]\n")

    error = load_error(path)

    assert error.line == 2
    assert error.message == (
        "invalid YAML: character #x0000 is not allowed (special characters are not allowed)"
    )


def test_invalid_utf8_located(tmp_path: Path) -> None:
    path = tmp_path / "tamperwatch.yaml"
    path.write_bytes(b"crash_burst_threshold: 3\n# caf\xe9\n")

    error = load_error(path)

    assert error.line == 2
    assert error.message == "invalid UTF-8 (byte 0xe9); save the file as UTF-8"


def test_folder_instead_of_file(tmp_path: Path) -> None:
    error = load_error(tmp_path)

    assert error.file == str(tmp_path)
    assert error.message.startswith("cannot read configuration file: ")


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("crash_correlation_window: 5 parsecs\n", ":1: crash_correlation_window: invalid duration"),
        ("[1, 2]\n", ":1: expected a mapping of settings at the top level"),
        (BILLION_LAUGHS, ": invalid YAML: aliases expand the document"),
        ("extension_list: !!python/object/apply:os.getpid []\n", ":1: invalid YAML: tag"),
        ("a: " + "[" * 50_000 + "]" * 50_000 + "\n", ": invalid YAML: values nested too deeply"),
    ],
    ids=["duration", "not a mapping", "alias bomb", "python tag", "deep nesting"],
)
def test_cli_shows_config_error_without_traceback(tmp_path: Path, text: str, fragment: str) -> None:
    config = write(tmp_path, text)
    telemetry = tmp_path / "es.ndjson"
    telemetry.write_text("")

    result = subprocess.run(
        [sys.executable, "-m", "tamperwatch", "scan", "--config", str(config), str(telemetry)],
        capture_output=True,
        timeout=120,
        check=False,
    )

    stderr = result.stderr.decode()
    assert result.returncode == 2
    assert stderr.startswith(f"error: {config}")
    assert fragment in stderr
    assert "Traceback" not in stderr
    assert stderr.count("\n") == 1


def test_first_error_in_file_order_is_reported(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        'crash_burst_threshold: "many"\nfleet_outage_share: 7\ncomponets: []\n',
    )
    error = load_error(path)
    assert error.line == 1
    assert error.key == "crash_burst_threshold"
    assert error.message.endswith("(and 2 more errors in the file)")
    assert str(error).startswith(f"{path}:1: crash_burst_threshold: ")
