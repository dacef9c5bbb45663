"""The HTML report: a fleet overview, a timeline per host and a page per incident, in one file."""

from tamperwatch.report.evidence import attach_records
from tamperwatch.report.html import render_html, write_html
from tamperwatch.report.view import ReportError, ReportView, from_ledger, from_scan

__all__ = [
    "ReportError",
    "ReportView",
    "attach_records",
    "from_ledger",
    "from_scan",
    "render_html",
    "write_html",
]
