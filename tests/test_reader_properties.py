"""Property tests of every reader: damaged and arbitrary input is counted, never raised.

Each example checks the contract. ``read`` does not raise, yields as many events as it counts
as used, and keeps ``read == used + sum(skipped)``. Every warning names the file and a line of
it (0 for the whole file). The undamaged records beside a damaged one are still used.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reader_samples import (
    IPS,
    LINE_SAMPLES,
    RECORDS,
    SAMPLES,
    Sample,
    ips_parts,
    json_paths,
    located_problems,
    read_bytes,
    render_ips,
    used_indexes,
)
from tamperwatch.model import Event
from tamperwatch.readers import READERS, detect
from tamperwatch.readers.base import FileStats, Reader

# Modest example counts keep the whole file well under a minute on a shared 2-core machine.
PROPERTY_SETTINGS = settings(
    max_examples=40,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

# Values a damaged or hostile record may put in place of a JSON field.
HOSTILE_VALUES: tuple[object, ...] = (
    None,
    True,
    False,
    0,
    -1,
    -(2**31) - 1,
    -(2**63) - 1,
    2**64,
    10**30,
    -(10**30),
    10**4000,
    1.5,
    -0.0,
    1e308,
    float("nan"),
    float("inf"),
    float("-inf"),
    "",
    " ",
    "-1",
    "9" * 400,
    "NaN",
    "\x00",
    "\ud800",
    "\x1b[2J\x1b]0;owned\x07<script>alert(1)</script>",
    [],
    {},
    [[["nested"]]],
    {"pid": "1", "time": 0},
)

# Words a damaged text record may put in place of one of its words.
HOSTILE_WORDS: tuple[bytes, ...] = (
    b"",
    b"-1",
    b"-2147483649",
    b"9" * 40,
    b"9" * 5000,
    b"NaN",
    b"inf",
    b"0x7fffffffffffffff",
    b"\x00",
    b"\xff\xfe",
    b"\xc3",
    b"\x1b[2J",
    "\u202e".encode(),
    b'"',
    b'""',
    b"{",
    b"}",
    b"[",
    b"]",
    b"=",
    b"\t",
    b"\r",
    b"\n",
    b"\\",
    b"2026-13-45 99:99:99.000000+9999",
)


def sample_id(sample: Sample) -> str:
    return sample.name


def reader_id(reader: Reader) -> str:
    return reader.description


def assert_accounted(stats: FileStats, events: list[Event], data: bytes) -> None:
    """Check the counting contract of a reader on one file."""
    assert stats.used == len(events)
    assert stats.read == stats.used + sum(stats.skipped.values())
    assert all(count > 0 for count in stats.skipped.values())
    assert located_problems(stats, data) == []


# --- damage strategies -------------------------------------------------------------------------


@st.composite
def damaged_bytes(draw: st.DrawFn, chunk: bytes) -> bytes:
    """Flip, cut, insert or delete bytes of a record; its closing newline stays."""
    body, end = (chunk[:-1], chunk[-1:]) if chunk.endswith(b"\n") else (chunk, b"")
    operation = draw(st.sampled_from(["flip", "cut", "insert", "delete"]))
    position = draw(st.integers(min_value=0, max_value=len(body)))
    if operation == "flip" and body:
        position = min(position, len(body) - 1)
        replacement = draw(st.integers(min_value=0, max_value=255).filter(lambda b: b != 10))
        body = body[:position] + bytes([replacement]) + body[position + 1 :]
    elif operation == "cut":
        body = body[:position]
    elif operation == "insert":
        body = body[:position] + draw(st.binary(min_size=1, max_size=16)) + body[position:]
    else:
        length = draw(st.integers(min_value=1, max_value=24))
        body = body[:position] + body[position + length :]
    return body + end


@st.composite
def damaged_words(draw: st.DrawFn, chunk: bytes) -> bytes:
    """Delete one word of a text record or swap it for a hostile one."""
    parts = chunk.split(b" ")
    position = draw(st.integers(min_value=0, max_value=len(parts) - 1))
    if draw(st.booleans()):
        del parts[position]
    else:
        parts[position] = draw(st.sampled_from(HOSTILE_WORDS))
    text = b" ".join(parts)
    return text if text.endswith(b"\n") else text + b"\n"


def _parent(value: Any, path: tuple[str | int, ...]) -> Any:
    for part in path[:-1]:
        value = value[part]
    return value


@st.composite
def damaged_json(draw: st.DrawFn, value: Any) -> Any:
    """Delete one member or item of a decoded JSON value, or swap it for a hostile value."""
    paths = list(json_paths(value))
    if not paths or draw(st.integers(min_value=0, max_value=9)) == 0:
        return draw(st.sampled_from(HOSTILE_VALUES))
    path = draw(st.sampled_from(paths))
    parent = _parent(value, path)
    if draw(st.booleans()):
        del parent[path[-1]]
    else:
        parent[path[-1]] = draw(st.sampled_from(HOSTILE_VALUES))
    return value


@st.composite
def damaged_json_line(draw: st.DrawFn, chunk: bytes) -> bytes:
    value = draw(damaged_json(json.loads(chunk)))
    return json.dumps(value).encode() + b"\n"


def damaged_record(sample: Sample, chunk: bytes) -> st.SearchStrategy[bytes]:
    choices = [damaged_bytes(chunk), damaged_words(chunk)]
    if sample.json_records:
        choices.append(damaged_json_line(chunk))
    return st.one_of(choices)


@st.composite
def damaged_ips(draw: st.DrawFn) -> bytes:
    header, body = ips_parts()
    if draw(st.booleans()):
        header = draw(damaged_json(header))
    else:
        body = draw(damaged_json(body))
    return render_ips(header, body)


# A file stitched from lines of every format, hostile words and random bytes.
ALL_LINES: tuple[bytes, ...] = tuple(
    line + b"\n" for sample in SAMPLES for line in sample.data().splitlines()
)
soup = st.lists(
    st.one_of(
        st.sampled_from(ALL_LINES),
        st.sampled_from(HOSTILE_WORDS),
        st.binary(max_size=64),
    ),
    max_size=30,
).map(b"".join)


# --- properties --------------------------------------------------------------------------------


@pytest.mark.parametrize("reader", READERS, ids=reader_id)
@PROPERTY_SETTINGS
@given(data=st.one_of(st.binary(max_size=2048), soup))
def test_arbitrary_bytes_are_counted(reader: Reader, data: bytes) -> None:
    reader.sniff(data)
    detect(data)

    events, stats = read_bytes(reader, data)

    assert_accounted(stats, events, data)


@pytest.mark.parametrize("sample", LINE_SAMPLES, ids=sample_id)
@PROPERTY_SETTINGS
@given(data=st.data())
def test_damaged_record_spares_neighbours(sample: Sample, data: st.DataObject) -> None:
    index = data.draw(st.integers(min_value=0, max_value=RECORDS - 1), label="record")
    damaged = data.draw(damaged_record(sample, sample.records[index]), label="damaged")
    records = (*sample.records[:index], damaged, *sample.records[index + 1 :])
    file = sample.data(records)

    events, stats = read_bytes(sample.reader, file, sample.file_name)

    assert_accounted(stats, events, file)
    missing = set(range(RECORDS)) - {index} - used_indexes(sample, events)
    assert missing == set(), stats.warnings


@pytest.mark.parametrize("sample", LINE_SAMPLES, ids=sample_id)
@PROPERTY_SETTINGS
@given(data=st.data())
def test_several_damaged_records_are_counted(sample: Sample, data: st.DataObject) -> None:
    records = tuple(
        data.draw(st.one_of(st.just(chunk), damaged_record(sample, chunk)))
        for chunk in sample.records
    )
    file = sample.data(records)
    cut = data.draw(st.integers(min_value=0, max_value=len(file)), label="cut")

    for content in (file, file[:cut]):
        events, stats = read_bytes(sample.reader, content, sample.file_name)
        assert_accounted(stats, events, content)


@pytest.mark.parametrize("sample", [s for s in SAMPLES if s not in LINE_SAMPLES], ids=sample_id)
@PROPERTY_SETTINGS
@given(data=st.data())
def test_damaged_report_is_counted(sample: Sample, data: st.DataObject) -> None:
    strategies = [damaged_record(sample, sample.records[0])]
    if sample is IPS:
        strategies.append(damaged_ips())
    report = data.draw(st.one_of(strategies))

    events, stats = read_bytes(sample.reader, report, sample.file_name)

    assert_accounted(stats, events, report)
    assert stats.read == 1
