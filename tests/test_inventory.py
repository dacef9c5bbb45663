"""Tests of the packaged catalog, the inventory lookups and user overrides."""

from __future__ import annotations

import posixpath
from collections.abc import Sequence

import pytest

from tamperwatch.inventory import (
    IDENTIFIER_FIELDS,
    CliRule,
    Component,
    Inventory,
    InventoryError,
    literal_fragments,
    load_catalog,
    load_inventory,
    normalize_path,
)

REQUIRED_BUILTINS = (
    "xprotect",
    "gatekeeper",
    "sip",
    "application-firewall",
    "packet-filter",
    "unified-log",
    "auditd",
    "tcc",
    "software-update",
    "endpoint-security-kext",
    "system-extensions",
)


@pytest.fixture(scope="module")
def catalog() -> Inventory:
    return load_catalog()


def component_id(component: Component | None) -> str | None:
    return component.id if component is not None else None


def matching_rules(inventory: Inventory, argv: Sequence[str]) -> list[tuple[str, str]]:
    tool = posixpath.basename(argv[0])
    return [
        (component.id, rule.kind)
        for component, rule in inventory.cli_rules(tool)
        if rule.matches(argv)
    ]


# --- catalog content ------------------------------------------------------------------------


def test_catalog_loads_products(catalog: Inventory) -> None:
    products = [c for c in catalog.components if not c.builtin]
    assert len(products) >= 20
    assert len({c.id for c in catalog.components}) == len(catalog.components)


def test_catalog_identifiers_have_resolving_sources(catalog: Inventory) -> None:
    problems = []
    for component in catalog.components:
        for field in IDENTIFIER_FIELDS:
            for value in getattr(component, field):
                keys = component.sources_of(field, value)
                if not keys:
                    problems.append(f"{component.id} {field} {value}: no source")
                problems.extend(
                    f"{component.id} {field} {value}: unknown source {key}"
                    for key in keys
                    if key not in catalog.sources
                )
        for rule in component.clis:
            if not rule.sources:
                problems.append(f"{component.id} cli {rule.tool}: no source")
            problems.extend(
                f"{component.id} cli {rule.tool}: unknown source {key}"
                for key in rule.sources
                if key not in catalog.sources
            )
        if component.heartbeat_seconds is not None:
            keys = component.sources_of("heartbeat_seconds", str(component.heartbeat_seconds))
            if not keys:
                problems.append(f"{component.id} heartbeat: no source")
    for agent in catalog.management_agents:
        if not agent.sources or any(key not in catalog.sources for key in agent.sources):
            problems.append(f"management agent {agent.path}: missing or unknown source")
    assert problems == []


def test_catalog_sources_name_repositories(catalog: Inventory) -> None:
    assert catalog.sources["KANDJI-CS"].startswith("kandji-inc/support@")
    assert all(text.strip() for text in catalog.sources.values())


@pytest.mark.parametrize("builtin_id", REQUIRED_BUILTINS)
def test_catalog_has_builtin(catalog: Inventory, builtin_id: str) -> None:
    component = catalog.get(builtin_id)
    assert component is not None
    assert component.builtin is True
    assert component.vendor == "Apple"


def test_catalog_jamf_pro_rules(catalog: Inventory) -> None:
    jamf = catalog.get("jamf-pro")
    assert jamf is not None
    assert matching_rules(catalog, ["/usr/local/jamf/bin/jamf", "removeFramework"]) == [
        ("jamf-pro", "protection_weakened")
    ]
    assert matching_rules(catalog, ["jamf", "removeMdmProfile"]) == [
        ("jamf-pro", "protection_weakened")
    ]
    assert matching_rules(catalog, ["jamf", "policy"]) == []
    assert jamf.sources_of("process_paths", "/usr/local/jamf/bin/jamf") == (
        "PA-AGENT",
        "SIGMA-JAMF",
    )


def test_santa_team_ids_stay_apart(catalog: Inventory) -> None:
    nps = catalog.get("santa-nps")
    assert nps is not None
    assert "EQHXZ8M8AV" not in nps.team_ids
    assert [c.id for c in catalog.by_team_id("EQHXZ8M8AV")] == ["santa-google"]
    assert [c.id for c in catalog.by_team_id("ZMCG7MLDV9")] == ["santa-nps"]


def test_by_team_id_shared_and_missing(catalog: Inventory) -> None:
    assert {c.id for c in catalog.by_team_id("VBG97UB4TA")} == {"lulu", "blockblock"}
    assert [c.id for c in catalog.by_team_id("x9e956p446")] == ["crowdstrike-falcon"]
    assert catalog.by_team_id(None) == []
    assert catalog.by_team_id("ZZZZZZZZZZ") == []


def test_osquery_heartbeat_has_source(catalog: Inventory) -> None:
    osquery = catalog.get("osquery")
    assert osquery is not None
    assert osquery.heartbeat_seconds == 600
    assert osquery.sources_of("heartbeat_seconds", "600") == ("OSQ-MON",)


def test_management_agents(catalog: Inventory) -> None:
    jamf = catalog.management_agent("/usr/local/jamf/bin/jamf")
    intune = catalog.management_agent(
        "/Library/Intune/Microsoft Intune Agent.app/Contents/MacOS/IntuneMdmDaemon"
    )
    kandji = catalog.management_agent(
        "/Library/Kandji/Kandji Agent.app/Contents/Helpers/Kandji Daemon.app/Contents/MacOS/"
        "kandji-daemon"
    )
    assert jamf is not None
    assert jamf.name == "Jamf Pro"
    assert intune is not None
    assert kandji is not None
    assert catalog.management_agent("/Library/Addigy/auditor") is not None
    assert catalog.management_agent("/sbin/launchd") is None
    assert catalog.management_agent("/usr/libexec/xpcproxy") is None
    assert catalog.management_agent(None) is None


# --- identifier lookups ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("label", "expected"),
    [
        ("com.crowdstrike.falcon.Agent", "crowdstrike-falcon"),
        ("com.crowdstrike.falcon.userAGENT", "crowdstrike-falcon"),
        ("com.microsoft.wdav.tray", "microsoft-defender"),
        ("com.microsoft.fresno", "microsoft-defender"),
        ("EQHXZ8M8AV.com.google.santa.daemon", "santa-google"),
        ("ZMCG7MLDV9.com.northpolesec.santa.daemon", "santa-nps"),
        ("com.northpolesec.santa.daemon", "santa-nps"),
        ("com.northpolesec.santad", "santa-nps"),
        ("com.Wazuh.agent", "wazuh"),
        ("com.wazuh.agent", "wazuh"),
        ("com.crowdstrike.falcond", "crowdstrike-falcon"),
        ("co.elastic.elastic-agent", "elastic-defend"),
        ("com.apple.tccd", "tcc"),
        ("com.apple.XProtect.daemon.scan", "xprotect"),
        ("com.atomicredteam", None),
        ("com.apple.Safari", None),
        ("", None),
    ],
)
def test_match_label(catalog: Inventory, label: str, expected: str | None) -> None:
    assert component_id(catalog.match_label(label)) == expected


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/Library/LaunchDaemons/com.carbonblack.daemon.plist", "carbon-black"),
        ("/Library/LaunchDaemons/COM.CROWDSTRIKE.FALCOND.PLIST", "crowdstrike-falcon"),
        ("com.crowdstrike.falcond.plist", "crowdstrike-falcon"),
        ("./com.opendns.osx.RoamingClientConfigUpdater.plist", "cisco-umbrella"),
        ("/Library/LaunchDaemons/com.tenablesecurity.nessusagent.plist", "nessus-agent"),
        ("com.tenablesecurity.nessusagent.plist", "nessus-agent"),
        ("/Library/LaunchDaemons/com.netskope.stagent.plist", "netskope"),
        ("com.netskope.stagent.plist", "netskope"),
        ("/Library/LaunchDaemons/co.elastic.auditbeat.plist", "elastic-beats"),
        ("/Library/LaunchDaemons/com.zscaler.tunnel.plist", "zscaler"),
        ("/Library//LaunchDaemons/../LaunchDaemons/com.google.santad.plist", "santa-google"),
        ("/Library/LaunchDaemons/com.atomicredteam.plist", None),
        ("/Users/bob/Library/LaunchAgents/com.microsoft.wdav.tray.plist", None),
        ("/tmp/T1037_005_daemon.plist", None),
    ],
)
def test_match_plist(catalog: Inventory, path: str, expected: str | None) -> None:
    assert component_id(catalog.match_plist(path)) == expected


def test_match_plist_private_prefix() -> None:
    inventory = load_inventory(
        [
            {
                "id": "acme-edr",
                "product": "ACME EDR",
                "launchd_plists": ["/var/db/acme/com.acme.sensor.plist"],
            }
        ]
    )
    assert component_id(inventory.match_plist("/private/var/db/acme/com.acme.sensor.plist")) == (
        "acme-edr"
    )
    assert component_id(inventory.match_plist("/var/db/acme/com.acme.sensor.plist")) == "acme-edr"
    assert component_id(inventory.match_plist("com.acme.sensor.plist")) == "acme-edr"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("com.apple.iokit.EndpointSecurity", "endpoint-security-kext"),
        ("/System/Library/Extensions/EndpointSecurity.kext", "endpoint-security-kext"),
        ("/System/Library/Extensions/EndpointSecurity.kext/", "endpoint-security-kext"),
        (
            "/System/Library/Extensions/EndpointSecurity.kext/Contents/MacOS/EndpointSecurity",
            "endpoint-security-kext",
        ),
        ("EndpointSecurity.kext", "endpoint-security-kext"),
        ("com.northpolesec.santa-driver", "santa-nps"),
        ("/Library/Extensions/santa-driver.kext", "santa-nps"),
        ("com.microsoft.wdav.kext", "microsoft-defender"),
        ("/Library/Extensions/SoftRAID.kext", None),
        ("com.example.driver", None),
        ("", None),
    ],
)
def test_match_kext(catalog: Inventory, value: str, expected: str | None) -> None:
    assert component_id(catalog.match_kext(value)) == expected


@pytest.mark.parametrize(
    ("bundle", "expected"),
    [
        ("com.microsoft.wdav.epsext", "microsoft-defender"),
        ("co.elastic.endpoint", "elastic-defend"),
        ("com.objective-see.lulu.extension", "lulu"),
        ("com.netskope.client.sysext", "netskope"),
        ("com.example.extension", None),
    ],
)
def test_match_system_extension(catalog: Inventory, bundle: str, expected: str | None) -> None:
    assert component_id(catalog.match_system_extension(bundle)) == expected


def test_match_bundle_id(catalog: Inventory) -> None:
    assert component_id(catalog.match_bundle_id("com.sentinelone.sentineld")) == "sentinelone"
    assert component_id(catalog.match_bundle_id("com.crowdstrike.falcon.Agent")) == (
        "crowdstrike-falcon"
    )
    assert catalog.match_bundle_id("com.apple.Safari") is None


@pytest.mark.parametrize(
    ("path", "name", "expected"),
    [
        (
            "/Library/SystemExtensions/3C9C1D4E-7A0B-4C55-9E7D-0B1E2F3A4B5C/"
            "com.microsoft.wdav.epsext.systemextension/Contents/MacOS/com.microsoft.wdav.epsext",
            None,
            "microsoft-defender",
        ),
        (
            "/Library/SystemExtensions/11111111-2222-3333-4444-555555555555/"
            "com.crowdstrike.falcon.Agent.systemextension/Contents/MacOS/"
            "com.crowdstrike.falcon.Agent",
            "com.crowdstrike.falcon.Agent",
            "crowdstrike-falcon",
        ),
        (
            "/Applications/Microsoft Defender.app/Contents/MacOS/wdavdaemon",
            None,
            "microsoft-defender",
        ),
        ("/Applications/Netskope Client.app/Contents/MacOS/Netskope Client", None, "netskope"),
        ("/Library/CS/falcond", "falcond", "crowdstrike-falcon"),
        (
            "/Library/Elastic/Agent/data/elastic-agent-8.15.0-0a1b2c/components/"
            "osquery-extension.ext",
            None,
            "osquery",
        ),
        (None, "santad", "santa-google"),
        (None, "com.northpolesec.santa.daemon", "santa-nps"),
        (None, "LULU", "lulu"),
        ("/opt/homebrew/bin/nessusd", None, "nessus-agent"),
        ("/usr/bin/grep", None, None),
        ("/Users/bob/Downloads/payload", "payload", None),
        (None, None, None),
    ],
)
def test_match_process(
    catalog: Inventory, path: str | None, name: str | None, expected: str | None
) -> None:
    assert component_id(catalog.match_process(path, name)) == expected


def test_match_process_osquery_data_is_not_executable(catalog: Inventory) -> None:
    # /private/var/osquery is a data folder, so only the basename fallback applies there.
    assert catalog.match_process("/private/var/osquery/helper", None) is None


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/var/log/system.log", {("unified-log", "log")}),
        ("/private/var/log/install.log", {("unified-log", "log")}),
        ("/var/log/", {("unified-log", "log")}),
        ("/var/audit/20240301101500.20240301113000", {("auditd", "log")}),
        (
            "/private/var/log/osquery/osqueryd.results.log",
            {("unified-log", "log"), ("osquery", "log")},
        ),
        ("/private/var/db/santa/rules.db", {("santa-nps", "data")}),
        ("/var/db/santa/rules.db", {("santa-nps", "data")}),
        ("/private/etc/pf.conf", {("packet-filter", "data")}),
        (
            "/Library/Managed Preferences/mdatp_managed.json",
            {("microsoft-defender", "data")},
        ),
        ("/Applications/Microsoft Defender.app", {("microsoft-defender", "install")}),
        (
            "/Applications/Microsoft Defender.app/Contents/MacOS/wdavdaemon",
            {("microsoft-defender", "install"), ("microsoft-defender", "process")},
        ),
        ("/Library/LaunchDaemons/com.wazuh.agent.plist", {("wazuh", "plist")}),
        (
            "/Library/SystemExtensions/ABCD/com.objective-see.lulu.extension.systemextension",
            {("lulu", "process"), ("system-extensions", "data")},
        ),
        (
            "/Users/carol/Library/Application Support/com.apple.TCC/TCC.db",
            {("tcc", "data")},
        ),
        ("/Users/alice/Library/Logs/SomeApp", set()),
        ("/private/etc/hosts", set()),
        ("relative/file.txt", set()),
    ],
)
def test_match_path(catalog: Inventory, path: str, expected: set[tuple[str, str]]) -> None:
    assert {(c.id, role) for c, role in catalog.match_path(path)} == expected


def test_component_for_package(catalog: Inventory) -> None:
    script = "/tmp/PKInstallSandbox.Zq1/Scripts/com.wazuh.pkg.wazuh-agent.8Hf2/postinstall"
    assert component_id(catalog.component_for_package(script)) == "wazuh"
    assert component_id(catalog.component_for_package("io.osquery.agent")) == "osquery"
    assert component_id(catalog.component_for_package("com.northpolesec.santa.pkg")) == "santa-nps"
    assert catalog.component_for_package("/tmp/com.example.tool.pkg") is None
    assert catalog.component_for_package("") is None


# --- killall and pkill operands -------------------------------------------------------------


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        ("wdav*", ["microsoft-defender"]),
        ("etskope", ["netskope"]),
        ("stagent", ["netskope"]),
        ("Falcon Notifications", ["crowdstrike-falcon"]),
        (r"Little\ Snitch", ["little-snitch"]),
        ("^osqueryd$", ["osquery"]),
        ("[Ff]alcond", ["crowdstrike-falcon"]),
        ("com.crowdstrike.falcon.Agent", ["crowdstrike-falcon"]),
        ("Terminal", []),
        ("com.apple.Safari", []),
        ("Ledger Live", []),
        ("sh", []),
        (".*", []),
        ("", []),
    ],
)
def test_match_name_pattern_regex(catalog: Inventory, pattern: str, expected: list[str]) -> None:
    assert [c.id for c in catalog.match_name_pattern(pattern, exact=False)] == expected


def test_match_name_pattern_alternatives(catalog: Inventory) -> None:
    found = catalog.match_name_pattern("Little Snitch|ESET|osqueryd|Falcon", exact=False)
    assert {c.id for c in found} == {"little-snitch", "eset", "osquery", "crowdstrike-falcon"}


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("LuLu", ["lulu"]),
        ("lulu", ["lulu"]),
        ("epsext", ["microsoft-defender"]),
        ("wdavdaemon", ["microsoft-defender"]),
        ("com.jamf.protect.security-extension", ["jamf-protect"]),
        ("Falcon", ["crowdstrike-falcon"]),
        ("syslogd", ["unified-log"]),
        ("LuLuHelper", []),
        ("wdav", []),
    ],
)
def test_match_name_pattern_exact(catalog: Inventory, name: str, expected: list[str]) -> None:
    assert [c.id for c in catalog.match_name_pattern(name, exact=True)] == expected


@pytest.mark.parametrize(
    ("alternative", "fragments"),
    [
        ("wdav*", ["wda"]),
        ("Falcon", ["falcon"]),
        ("^osqueryd$", ["osqueryd"]),
        (r"Little\ Snitch", ["little snitch"]),
        (r"a\.b", ["a.b"]),
        (r"\d+agent", ["agent"]),
        ("[Ff]alcon", ["alcon"]),
        ("colou?r", ["colo", "r"]),
        ("(net)ope", ["net", "ope"]),
        ("ab{2,3}c", ["a", "c"]),
        ("x.*y", ["x", "y"]),
        ("[unclosed", []),
    ],
)
def test_literal_fragments(alternative: str, fragments: list[str]) -> None:
    assert literal_fragments(alternative) == fragments


# --- command rules --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (
            ["mdatp", "config", "real-time-protection", "--value", "disabled"],
            [("microsoft-defender", "protection_weakened")],
        ),
        (["mdatp", "config", "real-time-protection", "--value", "enabled"], []),
        (
            [
                "/usr/local/bin/mdatp",
                "config",
                "tamper-protection",
                "enforcement-level",
                "--value",
                "disabled",
            ],
            [("microsoft-defender", "protection_weakened")],
        ),
        (["mdatp", "config", "tamper-protection", "enforcement-level", "--value", "block"], []),
        (
            [
                "plutil",
                "-replace",
                "antivirusEngine.passiveMode",
                "-bool",
                "true",
                "com.microsoft.wdav.plist",
            ],
            [("microsoft-defender", "protection_weakened")],
        ),
        (["plutil", "-replace", "antivirusEngine.passiveMode", "-bool", "false", "x.plist"], []),
        (["csrutil", "disable"], [("sip", "protection_weakened")]),
        (["/usr/bin/csrutil", "status"], []),
        (["csrutil", "enable"], []),
        (["csrutil", "authenticated-root", "enable"], []),
        (["/usr/sbin/spctl", "--master-disable"], [("gatekeeper", "protection_weakened")]),
        (["/tmp/spctl", "spctl", "--master-disable"], [("gatekeeper", "protection_weakened")]),
        (["/usr/sbin/spctl", "--global-disable"], [("gatekeeper", "protection_weakened")]),
        (["spctl", "--master-enable"], []),
        (["spctl", "--status"], []),
        (
            ["/usr/libexec/ApplicationFirewall/socketfilterfw", "--setglobalstate", "off"],
            [("application-firewall", "filter_disabled")],
        ),
        (["/usr/libexec/ApplicationFirewall/socketfilterfw", "--setglobalstate", "on"], []),
        (["socketfilterfw", "--getglobalstate"], []),
        (
            ["socketfilterfw", "--unblockapp", "/tmp/listener"],
            [("application-firewall", "filter_disabled")],
        ),
        (
            ["defaults", "write", "/Library/Preferences/com.apple.alf", "globalstate", "-int", "0"],
            [("application-firewall", "filter_disabled")],
        ),
        (["defaults", "read", "/Library/Preferences/com.apple.alf"], []),
        (["pfctl", "-d"], [("packet-filter", "filter_disabled")]),
        (["/sbin/pfctl", "-F", "all"], [("packet-filter", "filter_disabled")]),
        (["pfctl", "-e", "-f", "/etc/pf.conf"], []),
        (
            [
                "defaults",
                "write",
                "/Library/Preferences/com.apple.SoftwareUpdate.plist",
                "CriticalUpdateInstall",
                "-bool",
                "NO",
            ],
            [("software-update", "protection_weakened")],
        ),
        (
            [
                "defaults",
                "write",
                "com.apple.SoftwareUpdate",
                "CriticalUpdateInstall",
                "-bool",
                "NO",
            ],
            [("software-update", "protection_weakened")],
        ),
        (
            [
                "defaults",
                "write",
                "/Library/Preferences/com.apple.SoftwareUpdate.plist",
                "AutomaticCheckEnabled",
                "-bool",
                "TRUE",
            ],
            [],
        ),
        (["log", "erase", "--all"], [("unified-log", "protection_weakened")]),
        (["log", "show", "--last", "1h"], []),
        (["tccutil", "reset", "All"], [("tcc", "protection_weakened")]),
        (["tccutil", "reset", "Camera"], []),
        (["systemextensionsctl", "reset"], [("system-extensions", "extension_state_changed")]),
        (["systemextensionsctl", "list"], []),
        (["/Library/CS/falconctl", "unload"], [("crowdstrike-falcon", "daemon_unloaded")]),
        (["/Applications/Falcon.app/Contents/Resources/falconctl", "load"], []),
        (["sudo", "elastic-agent", "uninstall"], []),
        (["elastic-agent", "uninstall", "-f"], [("elastic-defend", "protection_weakened")]),
        (["/tmp/elastic-endpoint", "uninstall"], [("elastic-defend", "protection_weakened")]),
        (["/Library/Ossec/bin/wazuh-control", "stop"], [("wazuh", "daemon_unloaded")]),
        (["/Library/Ossec/bin/wazuh-control", "start"], []),
        (
            ["/Applications/Santa.app/Contents/MacOS/Santa", "--unload-system-extension"],
            [("santa-nps", "extension_state_changed")],
        ),
        (
            [
                "/Applications/Cortex XDR Uninstaller.app/Contents/Resources/cortex_xdr_uninstaller_tool"
            ],
            [("cortex-xdr", "protection_weakened")],
        ),
    ],
)
def test_cli_rules(catalog: Inventory, argv: list[str], expected: list[tuple[str, str]]) -> None:
    assert matching_rules(catalog, argv) == expected


def test_csrutil_authenticated_root_rule_first(catalog: Inventory) -> None:
    argv = ["csrutil", "authenticated-root", "disable"]
    summaries = [rule.summary for _, rule in catalog.cli_rules("csrutil") if rule.matches(argv)]
    assert len(summaries) == 2
    assert summaries[0] == "Signed system volume verification turned off"


def test_firewall_rule_keeps_option_and_value_together(catalog: Inventory) -> None:
    argv = ["socketfilterfw", "--setglobalstate", "on", "--setstealthmode", "off"]
    assert not [rule for _, rule in catalog.cli_rules("socketfilterfw") if rule.matches(argv)]


def test_cli_rule_token_semantics() -> None:
    rule = CliRule(
        tool="Tool",
        args=("set", "mode", "off|0"),
        kind="protection_weakened",
        summary="test rule",
    )
    assert rule.matches(["/opt/bin/tool", "set", "mode", "off"])
    assert rule.matches(["TOOL", "--verbose", "SET", "MODE", "0"])
    assert rule.matches(["tool", "set", "mode", "-bool", "off"])
    assert not rule.matches(["TOOL", "--verbose", "SET", "x", "MODE", "y", "0"])
    assert not rule.matches(["tool", "mode", "set", "off"])
    assert not rule.matches(["tool", "set", "mode"])
    assert not rule.matches(["tool", "set", "mode", "offline"])
    assert not rule.matches(["other", "set", "mode", "off"])
    assert not rule.matches([])


def test_cli_rule_globs_and_empty_args() -> None:
    glob_rule = CliRule(tool="defaults", args=("write", "*com.example"), kind="k", summary="s")
    any_run = CliRule(tool="remover", args=(), kind="k", summary="s")
    assert glob_rule.matches(["defaults", "write", "/Library/Preferences/com.example"])
    assert not glob_rule.matches(["defaults", "write", "com.example.other"])
    assert any_run.matches(["/usr/local/bin/remover"])
    assert not any_run.matches(["/usr/local/bin/removerd"])


def test_cli_rules_unknown_tool(catalog: Inventory) -> None:
    assert catalog.cli_rules("ls") == []
    assert [c.id for c, _ in catalog.cli_rules("/usr/sbin/SPCTL")] == ["gatekeeper"] * 3


# --- paths ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "key"),
    [
        ("/private/var/log/system.log", "/var/log/system.log"),
        ("/private/etc/pf.conf", "/etc/pf.conf"),
        ("/private/tmp/x", "/tmp/x"),
        ("/private", "/private"),
        ("/private/varx/y", "/private/varx/y"),
        ("//Library/LaunchDaemons/", "/library/launchdaemons"),
        ("com.Example.plist", "com.example.plist"),
        ("", ""),
    ],
)
def test_normalize_path(path: str, key: str) -> None:
    assert normalize_path(path) == key


# --- user overrides -------------------------------------------------------------------------


def test_override_replaces_and_appends() -> None:
    inventory = load_inventory(
        [
            {
                "id": "crowdstrike-falcon",
                "heartbeat_seconds": 300,
                "process_names": ["falcond"],
                "add_launchd_labels": ["com.crowdstrike.falcon.Helper"],
            }
        ]
    )
    falcon = inventory.get("crowdstrike-falcon")
    assert falcon is not None
    assert falcon.heartbeat_seconds == 300
    assert falcon.process_names == ("falcond",)
    assert "com.crowdstrike.falcon.Helper" in falcon.launchd_labels
    assert "com.crowdstrike.falcon.Agent" in falcon.launchd_labels
    assert falcon.team_ids == ("X9E956P446",)
    assert falcon.sources_of("team_ids", "X9E956P446") == ("KANDJI-CS", "KANDJI-CS-SM")
    assert falcon.sources_of("launchd_labels", "com.crowdstrike.falcon.Helper") == ()
    assert component_id(inventory.match_process(None, "Falcon Notifications")) is None


def test_override_heartbeat_drops_old_source() -> None:
    inventory = load_inventory([{"id": "osquery", "heartbeat_seconds": 120}])
    osquery = inventory.get("osquery")
    assert osquery is not None
    assert osquery.heartbeat_seconds == 120
    assert osquery.sources_of("heartbeat_seconds", "120") == ()
    assert osquery.sources_of("heartbeat_seconds", "600") == ()


def test_override_adds_component_and_rules() -> None:
    inventory = load_inventory(
        [
            {
                "id": "acme-edr",
                "product": "ACME EDR",
                "vendor": "ACME",
                "category": "edr",
                "team_ids": [{"value": "ABCDE12345", "sources": ["internal wiki"]}],
                "process_names": ["acmed"],
                "clis": [
                    {
                        "tool": "acmectl",
                        "args": "protection off",
                        "kind": "protection_weakened",
                        "summary": "ACME protection turned off",
                        "techniques": ["T1685"],
                    }
                ],
            }
        ],
        management_agents=[{"path": "/usr/local/bin/acme-mdm", "name": "ACME MDM"}],
    )
    acme = inventory.get("acme-edr")
    assert acme is not None
    assert inventory.components[-1].id == "acme-edr"
    assert acme.sources_of("team_ids", "ABCDE12345") == ("internal wiki",)
    assert component_id(inventory.match_process(None, "acmed")) == "acme-edr"
    assert matching_rules(inventory, ["acmectl", "protection", "off"]) == [
        ("acme-edr", "protection_weakened")
    ]
    agent = inventory.management_agent("/usr/local/bin/acme-mdm")
    assert agent is not None
    assert agent.name == "ACME MDM"
    assert inventory.management_agent("/usr/local/jamf/bin/jamf") is not None


def test_override_add_clis_keeps_catalog_rules() -> None:
    inventory = load_inventory(
        [
            {
                "id": "microsoft-defender",
                "add_clis": [
                    {
                        "tool": "mdatp",
                        "args": "config passive-mode --value enabled",
                        "kind": "protection_weakened",
                        "summary": "Defender switched to passive mode",
                    }
                ],
            }
        ]
    )
    argv_off = ["mdatp", "config", "real-time-protection", "--value", "disabled"]
    argv_passive = ["mdatp", "config", "passive-mode", "--value", "enabled"]
    assert matching_rules(inventory, argv_off) == [("microsoft-defender", "protection_weakened")]
    assert matching_rules(inventory, argv_passive) == [
        ("microsoft-defender", "protection_weakened")
    ]


@pytest.mark.parametrize(
    ("entry", "path"),
    [
        ({"product": "No id"}, ("components", 0, "id")),
        ({"id": "Bad_Id", "product": "x"}, ("components", 0, "id")),
        ({"id": "acme"}, ("components", 0)),
        ({"id": "acme", "product": "x", "colour": "red"}, ("components", 0, "colour")),
        ({"id": "acme", "product": "x", "team_ids": ["abc"]}, ("components", 0, "team_ids", 0)),
        (
            {"id": "acme", "product": "x", "launchd_plists": ["relative.plist"]},
            ("components", 0, "launchd_plists", 0),
        ),
        (
            {"id": "acme", "product": "x", "process_names": "acmed"},
            ("components", 0, "process_names"),
        ),
        (
            {"id": "lulu", "clis": [{"tool": "lulu", "kind": "wrong", "summary": "s"}]},
            ("components", 0, "clis", 0, "kind"),
        ),
        (
            {
                "id": "lulu",
                "clis": [
                    {"tool": "x", "kind": "process_killed", "summary": "s", "techniques": ["1685"]}
                ],
            },
            ("components", 0, "clis", 0, "techniques"),
        ),
        ({"id": "lulu", "heartbeat_seconds": -5}, ("components", 0, "heartbeat_seconds")),
        ({"id": "lulu", "builtin": "yes"}, ("components", 0, "builtin")),
    ],
)
def test_override_invalid_entry(entry: dict[str, object], path: tuple[object, ...]) -> None:
    with pytest.raises(InventoryError) as raised:
        load_inventory([entry])
    assert raised.value.path == path


def test_invalid_management_agent() -> None:
    with pytest.raises(InventoryError) as raised:
        load_inventory(management_agents=[{"path": "bin/agent", "name": "Agent"}])
    assert raised.value.path == ("management_agents", 0, "path")


def test_restricted_inventory(catalog: Inventory) -> None:
    restricted = catalog.restricted(["lulu", "sip"])
    assert [c.id for c in restricted.components] == ["lulu", "sip"]
    assert restricted.match_plist("/Library/LaunchDaemons/com.carbonblack.daemon.plist") is None
    assert component_id(restricted.match_process(None, "LuLu")) == "lulu"
    assert restricted.management_agent("/usr/local/jamf/bin/jamf") is not None
    with pytest.raises(InventoryError, match="no-such-thing"):
        catalog.restricted(["no-such-thing"])


def test_duplicate_component_ids_rejected() -> None:
    component = Component(id="same", product="P", vendor="V", category="edr")
    with pytest.raises(InventoryError, match="duplicate"):
        Inventory([component, component])
