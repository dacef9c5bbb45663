"""Tests of configuration loading, duration parsing and building the monitored inventory."""

from __future__ import annotations

from pathlib import Path

import pytest

from tamperwatch.config import Config, ConfigError, build_inventory, load_config, parse_duration


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


@pytest.mark.parametrize("text", ["", "# only a comment\n", "---\n"])
def test_empty_file_gives_defaults(tmp_path: Path, text: str) -> None:
    assert load_config(write(tmp_path, text)) == Config()


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


@pytest.mark.parametrize("value", ["5x", "m5", "", "-5m", -1, True, None, [5], "nan", "inf"])
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
    assert "invalid YAML" in error.message


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
