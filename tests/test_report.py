"""The HTML report: view model, escaping, evidence read-back, the CLI, and a real Chromium.

The browser tests drive Debian's Chromium (``/usr/bin/chromium``) through Playwright. Outside
CI they skip when the browser is missing; in CI (``CI=true``) a missing browser fails them.
"""

from __future__ import annotations

import io
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from tamperwatch.config import build_inventory, load_config
from tamperwatch.incident import (
    ActorRecord,
    AncestorRecord,
    AttackRecord,
    ComponentRef,
    EvidenceRef,
    Incident,
    SignalRecord,
)
from tamperwatch.liveness import BlindWindow
from tamperwatch.model import Evidence
from tamperwatch.report import attach_records, from_scan, render_html, write_html
from tamperwatch.report.view import HOST_LANE, MAX_SIGNALS_SHOWN
from tamperwatch.scan import HostSummary, ScanResult, scan
from tamperwatch.synth import EsWriter, interactive_shell

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = REPO / "examples"
GENERATED = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
CHROMIUM = os.environ.get("TAMPERWATCH_CHROMIUM", "/usr/bin/chromium")

HOSTILE_PATH = "/tmp/<script>alert(1)</script>"
HOSTILE_ARG = '"><img src=x onerror=alert(2)>'
HOSTILE_HOST = "<b>lab</b>\x1b[2J\u202emac"


def run_cli(*args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "tamperwatch", *args],
        capture_output=True,
        timeout=120,
        check=False,
    )


def scan_examples() -> ScanResult:
    config = load_config(None)
    return scan([str(EXAMPLES)], config=config, inventory=build_inventory(config))


def hostile_incident(**changes: Any) -> Incident:
    evidence = [EvidenceRef("eslogger", "/collect/<i>es</i>.ndjson", 3)]
    incident = Incident(
        id="tw-0011223344556677",
        host=HOSTILE_HOST,
        first_seen="2026-11-30T10:00:00.000000Z",
        last_seen="2026-11-30T10:05:00.000000Z",
        status="suspicious",
        explanation=None,
        severity="high",
        title="Falcon <u>killed</u> by \x1b]0;title\x07",
        components=[ComponentRef("crowdstrike-falcon", "CrowdStrike <Falcon>", "CrowdStrike")],
        signals=[
            SignalRecord(
                kind="process_killed",
                time="2026-11-30T10:00:00.000000Z",
                component="crowdstrike-falcon",
                summary=f"SIGKILL sent by {HOSTILE_PATH}",
                evidence=evidence,
            )
        ],
        actor=ActorRecord(
            pid=4242,
            path=HOSTILE_PATH,
            args=[HOSTILE_PATH, HOSTILE_ARG],
            team_id=None,
            signing_id="<svg onload=alert(3)>",
            platform_binary=False,
            masquerade=True,
            ancestry=[AncestorRecord(1, "/sbin/launchd", None)],
        ),
        attack=AttackRecord("AN2040", ["T1685"]),
    )
    for name, value in changes.items():
        setattr(incident, name, value)
    return incident


def hostile_result() -> ScanResult:
    window = BlindWindow(
        HOSTILE_HOST,
        1_796_032_800.0,
        1_796_036_400.0,
        "ES client lost <events>",
        events_lost=12,
        evidence=[Evidence("eslogger", "/collect/x.ndjson", 9)],
    )
    return ScanResult(
        incidents=[hostile_incident()],
        files=[],
        warnings=["file <x>: a warning with \x1b[31m colour"],
        blind_windows=[window],
        hosts={
            HOSTILE_HOST: HostSummary(
                1_796_032_000.0, 1_796_040_000.0, 100, ("crowdstrike-falcon", "santa-nps")
            )
        },
    )


# view model --------------------------------------------------------------------------------------


def test_fleet_health_of_examples() -> None:
    config = load_config(None)
    view = from_scan(
        scan_examples(), source="examples", generated=GENERATED, inventory=build_inventory(config)
    )
    hosts = {host.name: host for host in view.hosts}
    assert sorted(hosts) == [
        "build-mac-02",
        "design-mac-11",
        "it-mac-03",
        "mbp-finance-07",
        "ops-mac-05",
    ]
    assert hosts["mbp-finance-07"].health_of("crowdstrike-falcon") == "impaired"
    assert hosts["it-mac-03"].health_of("santa-nps") == "explained"
    assert hosts["ops-mac-05"].health_of("jamf-pro") == "healthy"
    assert hosts["build-mac-02"].health_of(HOST_LANE) == "blind"
    assert hosts["design-mac-11"].health_of("crowdstrike-falcon") is None
    assert hosts["it-mac-03"].health == "explained"


def test_component_names_come_from_inventory() -> None:
    config = load_config(None)
    view = from_scan(
        scan_examples(), source="examples", generated=GENERATED, inventory=build_inventory(config)
    )
    columns = dict(view.columns)
    assert columns["jamf-pro"] != "jamf-pro"
    assert columns["crowdstrike-falcon"] == "CrowdStrike Falcon"


def test_incident_anchors_are_unique() -> None:
    view = from_scan(scan_examples(), source="examples", generated=GENERATED)
    anchors = [incident.anchor for incident in view.incidents]
    assert len(anchors) == len(set(anchors))
    assert all(re.fullmatch(r"incident-[A-Za-z0-9_-]+", anchor) for anchor in anchors)


def test_unsafe_incident_id_gets_numbered_anchor() -> None:
    result = hostile_result()
    result.incidents = [hostile_incident(id='x" onclick="y'), hostile_incident(id="tw-same")]
    result.incidents.append(hostile_incident(id="tw-same"))
    view = from_scan(result, source="t", generated=GENERATED)
    anchors = {incident.id: incident.anchor for incident in view.incidents}
    assert anchors['x" onclick="y'] == "incident-n1"
    assert len({incident.anchor for incident in view.incidents}) == 3


def test_actor_chain_runs_from_launchd_to_actor() -> None:
    view = from_scan(hostile_result(), source="t", generated=GENERATED)
    chain = view.incidents[0].chain
    assert [process.pid for process in chain] == [1, 4242]
    assert "MASQUERADE" in chain[-1].detail


def test_signals_beyond_limit_are_counted() -> None:
    incident = hostile_incident()
    incident.signals = incident.signals * (MAX_SIGNALS_SHOWN + 5)
    result = hostile_result()
    result.incidents = [incident]
    view = from_scan(result, source="t", generated=GENERATED)
    assert len(view.incidents[0].signals) == MAX_SIGNALS_SHOWN
    assert view.incidents[0].signals_hidden == 5


# escaping ----------------------------------------------------------------------------------------


def test_html_escapes_telemetry_strings() -> None:
    page = render_html(from_scan(hostile_result(), source="t", generated=GENERATED))
    assert "<script>alert" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<img src=x" not in page
    assert "onerror=alert(2)&gt;" in page
    assert "<svg onload" not in page
    assert "<b>lab</b>" not in page
    assert "<u>killed</u>" not in page


def test_html_has_no_control_or_bidi_characters() -> None:
    page = render_html(from_scan(hostile_result(), source="t", generated=GENERATED))
    assert "\x1b" not in page
    assert "\x07" not in page
    assert "\u202e" not in page
    assert "\\x1b[2J" in page


def test_html_references_nothing_outside_itself() -> None:
    page = render_html(from_scan(scan_examples(), source="t", generated=GENERATED))
    hrefs = re.findall(r'href="([^"]*)"', page)
    assert hrefs
    assert all(href.startswith("#") for href in hrefs)
    assert " src=" not in page
    assert "url(" not in page
    assert "@import" not in page
    assert "Content-Security-Policy" in page
    assert "default-src 'none'" in page


def test_every_link_target_exists() -> None:
    page = render_html(from_scan(scan_examples(), source="t", generated=GENERATED))
    ids = set(re.findall(r'id="([^"]+)"', page))
    targets = {href[1:] for href in re.findall(r'href="(#[^"]*)"', page)}
    assert targets <= ids


# evidence read-back ------------------------------------------------------------------------------


def test_evidence_records_read_back(tmp_path: Path) -> None:
    log = tmp_path / "es.ndjson"
    long_line = b'{"long":"' + b"a" * 10_000 + b'"}\n'
    endless_line = b'{"endless":"' + b"b" * 100_000 + b'"}\n'
    log.write_bytes(b'{"first":1}\n' + long_line + endless_line + b'{"fourth":4}\n')
    result = hostile_result()
    incident = hostile_incident()
    incident.signals[0].evidence = [
        EvidenceRef("eslogger", str(log), 1),
        EvidenceRef("eslogger", str(log), 2),
        EvidenceRef("eslogger", str(log), 3),
        EvidenceRef("eslogger", str(log), 4),
        EvidenceRef("eslogger", str(log), 9),
        EvidenceRef("eslogger", str(tmp_path / "gone.ndjson"), 1),
    ]
    result.incidents = [incident]
    view = from_scan(result, source="t", generated=GENERATED)
    assert attach_records(view) == (4, 7)
    items = view.incidents[0].signals[0].evidence
    assert items[0].record == '{"first":1}'
    assert items[1].record is not None
    assert len(items[1].record) < 5000
    assert items[1].record.endswith("(6011 more characters)")
    assert items[2].record is not None
    assert items[2].record.endswith("(the line continues)")
    assert items[3].record == '{"fourth":4}'
    assert items[4].record is None
    assert items[5].record is None


def test_evidence_record_control_characters_neutralised(tmp_path: Path) -> None:
    log = tmp_path / "es.ndjson"
    log.write_bytes(b'{"path":"\x1b[2J<script>"}\n')
    result = hostile_result()
    incident = hostile_incident()
    incident.signals[0].evidence = [EvidenceRef("eslogger", str(log), 1)]
    result.incidents = [incident]
    view = from_scan(result, source="t", generated=GENERATED)
    attach_records(view)
    page = render_html(view)
    assert "\x1b" not in page
    assert "\\x1b[2J&lt;script&gt;" in page


# command line ------------------------------------------------------------------------------------


def hostile_capture(path: Path) -> Path:
    writer = EsWriter("2026-11-22T08:00:00Z", seed=11)
    daemon = writer.spawn(
        "/Library/CS/falcond", ["/Library/CS/falcond"], team_id="X9E956P446", platform_binary=False
    )
    shell = interactive_shell(writer)
    hostile = writer.spawn(HOSTILE_PATH, [HOSTILE_PATH, HOSTILE_ARG, "\x1b[2J"], parent=shell)
    writer.signal(hostile, daemon, 9)
    writer.exit(daemon, 9)
    writer.write_to(path)
    return path


def test_cli_report_from_scan(tmp_path: Path) -> None:
    out = tmp_path / "report.html"
    result = run_cli("report", "--html", str(out), str(EXAMPLES))
    assert result.returncode == 0, result.stderr.decode()
    page = out.read_text(encoding="utf-8")
    assert "mbp-finance-07" in page
    assert "6 incident(s)" in result.stderr.decode()


def test_cli_report_of_hostile_capture(tmp_path: Path) -> None:
    capture = hostile_capture(tmp_path / "es.ndjson")
    out = tmp_path / "report.html"
    result = run_cli("report", "--html", str(out), "--host", "lab-mac", str(capture))
    assert result.returncode == 0, result.stderr.decode()
    page = out.read_text(encoding="utf-8")
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<script>" not in page
    assert "\x1b" not in page


def test_cli_report_from_ledger(tmp_path: Path) -> None:
    ledger = tmp_path / "ledger.sqlite3"
    assert run_cli("scan", str(EXAMPLES), "--ledger", str(ledger)).returncode == 1
    listed = run_cli("ledger", "list", "--ledger", str(ledger), "--host", "mbp-finance-07")
    incident_id = re.findall(r"tw-[0-9a-f]+", listed.stdout.decode())[0]
    explained = run_cli(
        "ledger",
        "explain",
        incident_id,
        "--ledger",
        str(ledger),
        "--by",
        "<i>analyst</i>",
        "--reason",
        "approved <b>test</b>",
    )
    assert explained.returncode == 0, explained.stderr.decode()
    out = tmp_path / "report.html"
    result = run_cli("report", "--html", str(out), "--ledger", str(ledger))
    assert result.returncode == 0, result.stderr.decode()
    page = out.read_text(encoding="utf-8")
    assert "ledger: explained" in page
    assert "approved &lt;b&gt;test&lt;/b&gt;" in page
    assert "&lt;i&gt;analyst&lt;/i&gt;" in page
    assert "nothing recorded" in page


def test_cli_report_ledger_filter(tmp_path: Path) -> None:
    ledger = tmp_path / "ledger.sqlite3"
    run_cli("scan", str(EXAMPLES), "--ledger", str(ledger))
    out = tmp_path / "report.html"
    result = run_cli("report", "--html", str(out), "--ledger", str(ledger), "--host", "it-mac-03")
    assert result.returncode == 0, result.stderr.decode()
    page = out.read_text(encoding="utf-8")
    assert "it-mac-03" in page
    assert "mbp-finance-07" not in page


def test_cli_report_missing_ledger(tmp_path: Path) -> None:
    missing = tmp_path / "none.sqlite3"
    result = run_cli("report", "--html", str(tmp_path / "r.html"), "--ledger", str(missing))
    assert result.returncode == 2
    assert b"no ledger at" in result.stderr
    assert not missing.exists()


def test_cli_report_paths_and_ledger_conflict(tmp_path: Path) -> None:
    result = run_cli(
        "report", "--html", str(tmp_path / "r.html"), "--ledger", "x.sqlite3", str(EXAMPLES)
    )
    assert result.returncode == 2
    assert b"not both" in result.stderr


def test_cli_report_unwritable_output(tmp_path: Path) -> None:
    result = run_cli("report", "--html", str(tmp_path / "no" / "r.html"), str(EXAMPLES))
    assert result.returncode == 2
    assert b"cannot write the report" in result.stderr
    assert b"Traceback" not in result.stderr


# a real browser ----------------------------------------------------------------------------------


def _browser_available() -> str | None:
    """Return why the browser tests cannot run, or None when they can."""
    if shutil.which(CHROMIUM) is None:
        return f"Chromium not found at {CHROMIUM} (Debian package 'chromium')"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "Playwright is not installed (pip install -e '.[test]')"
    return None


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    reason = _browser_available()
    if reason is not None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"browser tests cannot run in CI: {reason}")
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        # The switches keep Chromium from reaching out to Google's services on its own, so that
        # every request the tests see comes from the page.
        launched = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
            ],
        )
        yield launched
        launched.close()


class PageVisit:
    """A browser page on one report file that records every request and console error."""

    def __init__(self, browser: Any, report: Path) -> None:
        self.url = report.resolve().as_uri()
        self.requests: list[str] = []
        self.blocked: list[str] = []
        self.errors: list[str] = []
        self.dialogs: list[str] = []
        self.context = browser.new_context(viewport={"width": 1400, "height": 1000})
        self.context.route("**/*", self._route)
        self.page = self.context.new_page()
        self.page.on("request", lambda request: self.requests.append(request.url))
        self.page.on(
            "console",
            lambda message: self.errors.append(message.text) if message.type == "error" else None,
        )
        self.page.on("dialog", self._dialog)

    def _route(self, route: Any) -> None:
        if route.request.url.split("#")[0] == self.url:
            route.continue_()
        else:
            self.blocked.append(route.request.url)
            route.abort()

    def _dialog(self, dialog: Any) -> None:
        self.dialogs.append(dialog.message)
        dialog.dismiss()

    def open(self, anchor: str) -> bytes:
        self.page.goto(f"{self.url}#{anchor}")
        self.page.wait_for_load_state("load")
        assert self.page.locator(f"section#{anchor}").is_visible()
        shot: bytes = self.page.screenshot(full_page=True)
        return shot

    def close(self) -> None:
        self.context.close()


def colours(png: bytes) -> dict[tuple[int, int, int], int]:
    from PIL import Image

    with Image.open(io.BytesIO(png)) as image:
        rgb = image.convert("RGB")
        counts = rgb.getcolors(maxcolors=1 << 20) or []
    return {colour: count for count, colour in counts}


def count_near(palette: dict[tuple[int, int, int], int], target: tuple[int, int, int]) -> int:
    return sum(
        count
        for colour, count in palette.items()
        if all(abs(a - b) <= 6 for a, b in zip(colour, target, strict=True))
    )


IMPAIRED_RED = (0xC6, 0x28, 0x28)
EXPLAINED_ORANGE = (0xEF, 0x8F, 0x00)


@pytest.fixture(scope="module")
def examples_report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    config = load_config(None)
    view = from_scan(
        scan_examples(), source="examples", generated=GENERATED, inventory=build_inventory(config)
    )
    attach_records(view)
    path = tmp_path_factory.mktemp("report") / "report.html"
    write_html(view, path)
    return path


def test_browser_every_page_renders(browser: Any, examples_report: Path, tmp_path: Path) -> None:
    page = examples_report.read_text(encoding="utf-8")
    anchors = re.findall(r'<section class="page" id="([^"]+)"', page)
    assert anchors[0] == "fleet"
    assert len(anchors) == 1 + 5 + 6
    visit = PageVisit(browser, examples_report)
    try:
        shots: dict[str, bytes] = {}
        for anchor in anchors:
            shots[anchor] = visit.open(anchor)
            (tmp_path / f"{anchor}.png").write_bytes(shots[anchor])
            visible = visit.page.locator("section.page:visible").count()
            assert visible == 1, anchor
    finally:
        visit.close()
    for anchor, shot in shots.items():
        palette = colours(shot)
        assert len(palette) > 20, f"{anchor}: screenshot looks blank"
    assert len({bytes(shot) for shot in shots.values()}) == len(shots)
    assert count_near(colours(shots["fleet"]), IMPAIRED_RED) > 200
    assert count_near(colours(shots["fleet"]), EXPLAINED_ORANGE) > 200


def test_browser_host_page_shows_timeline(browser: Any, examples_report: Path) -> None:
    visit = PageVisit(browser, examples_report)
    try:
        page_html = examples_report.read_text(encoding="utf-8")
        anchor = re.findall(r'<a href="#(host-\d+)">build-mac-02</a>', page_html)[0]
        shot = visit.open(anchor)
        lanes = visit.page.locator(f"section#{anchor} svg.timeline text.label").all_text_contents()
        bars = visit.page.locator(f"section#{anchor} svg.timeline rect.incident").count()
        windows = visit.page.locator(f"section#{anchor} svg.timeline rect.window").count()
    finally:
        visit.close()
    assert lanes == [HOST_LANE, "Santa (North Pole Security)"]
    assert bars == 1
    assert windows == 1
    assert count_near(colours(shot), IMPAIRED_RED) > 50


def test_browser_makes_no_network_request(browser: Any, examples_report: Path) -> None:
    visit = PageVisit(browser, examples_report)
    try:
        visit.open("fleet")
        visit.open("host-1")
    finally:
        visit.close()
    assert visit.blocked == []
    assert visit.requests
    assert all(url.split("#")[0] == visit.url for url in visit.requests)
    assert visit.errors == []


def test_browser_renders_hostile_strings_as_text(browser: Any, tmp_path: Path) -> None:
    report = tmp_path / "hostile.html"
    write_html(from_scan(hostile_result(), source="t", generated=GENERATED), report)
    visit = PageVisit(browser, report)
    try:
        page_html = report.read_text(encoding="utf-8")
        anchor = re.findall(r'<section class="page" id="(incident-[^"]+)"', page_html)[0]
        shot = visit.open(anchor)
        scripts = visit.page.evaluate("document.scripts.length")
        handlers = visit.page.locator("[onerror], [onload], [onclick]").count()
        images = visit.page.locator("img").count()
        shown = visit.page.locator(f"section#{anchor}").inner_text()
        host_shot = visit.open("host-1")
    finally:
        visit.close()
    assert scripts == 0
    assert handlers == 0
    assert images == 0
    assert HOSTILE_PATH in shown
    assert HOSTILE_ARG in shown
    assert visit.dialogs == []
    assert visit.blocked == []
    assert len(colours(shot)) > 20
    assert len(colours(host_shot)) > 20
