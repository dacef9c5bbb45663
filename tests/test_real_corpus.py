"""A scan over the folder of real public samples: every file is read or named, none crashes."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tamperwatch.config import Config, build_inventory
from tamperwatch.scan import scan

CORPUS = os.environ.get("TAMPERWATCH_REAL_CORPUS")

pytestmark = pytest.mark.skipif(
    CORPUS is None,
    reason="TAMPERWATCH_REAL_CORPUS is not set; it points at the folder of real public samples",
)


def test_scan_reads_every_sample() -> None:
    assert CORPUS is not None
    root = Path(CORPUS)
    config = Config()
    result = scan([str(root)], config=config, inventory=build_inventory(config))
    by_name = {Path(stats.file).name: stats for stats in result.files}
    assert len(by_name) == len([p for p in root.rglob("*") if p.is_file()])
    assert not result.unreadable
    for name, stats in by_name.items():
        if stats.format is None:
            assert stats.unrecognised, name
            continue
        truncated = "TRUNCATED" in name
        # Console.app copies carry no date, so their rows are counted and set aside.
        undated = set(stats.skipped) == {"no date in Console copy"}
        assert stats.used >= 1 or truncated or undated, (name, stats.skipped)
        if not truncated and not undated:
            assert stats.read == stats.used, (name, dict(stats.skipped))
    for folder in ("eslogger", "jamf_protect", "ips", "unifiedlog"):
        assert any(
            stats.format is not None for stats in result.files if f"/{folder}/" in stats.file
        ), folder
