"""Fuzzing the other containers: a JSON array of records, CSV (lengths traces, every cell text)
and Parquet (typed columns: the column types are fuzzed too). Valid records, one field or
cell mutated, column types swapped; the property is tests/fuzz_oracle.py's."""
from __future__ import annotations

import csv
import io
import json
import math

import pyarrow as pa
import pyarrow.parquet as pq
from hypothesis import given, settings
from hypothesis import strategies as st

from . import fuzz_oracle as oracle
from .test_fuzz_jsonl import EXAMPLES, FUZZ, RECORDS, line_of, mutated_line, pairs_of


@FUZZ
@given(fmt=st.sampled_from(["mooncake", "bailian", "tokens", "lengths"]), data=st.data(), skip=st.booleans())
def test_json_array(tmp_path_factory, fmt, data, skip):
    recs = data.draw(st.lists(RECORDS[fmt], min_size=1, max_size=6))
    items = [line_of(pairs_of(r)) for r in recs]
    for i in data.draw(st.lists(st.integers(0, len(items) - 1), max_size=2, unique=True)):
        items[i] = data.draw(mutated_line(recs[i]))
    text = b"[" + b",\n ".join(items) + b"]"
    path = tmp_path_factory.mktemp("array") / "t.json"
    path.write_bytes(text)
    oracle.check(path, oracle.expect_json_array(text, fmt), format=fmt, skip_bad_lines=skip, unit="record")


# ---- CSV ---------------------------------------------------------------------------------------

NUMBER_CELL = st.integers(-10 ** 9, 10 ** 9).map(str) | st.floats(-1e9, 1e9, allow_nan=False).map(repr)
CELL = st.sampled_from(["", " ", " 5 ", "+5", "-5", "5.0", "1e3", "5_000", "\u0665", "nan", "inf", "-Infinity",
                        "1e400", "1e300", "0x10", "2147483648", "1073741824", "1073741825", "\t7",
                        "9007199254740993", "9.1e15", "12.", ".5", "2023-11-16 18:17:03",
                        "2023-11-16T18:17:03.9799607", "2023-11-16 18:17:03+01:00", "20231116", "é"]) | \
    NUMBER_CELL | st.text(max_size=5)
DATETIME = st.datetimes().map(lambda d: d.isoformat(sep=" ")) | \
    st.sampled_from(["2023-11-16 18:17:03.9799600", "2023-11-16 18:17:04.03196", "2023-11-16"])


@st.composite
def csv_file(draw) -> bytes:
    with_output = draw(st.booleans())
    dates = draw(st.booleans())
    header = ["timestamp", "input_tokens"] + (["output_tokens"] if with_output else [])
    rows = []
    for _ in range(draw(st.integers(1, 6))):
        row = [draw(DATETIME if dates else NUMBER_CELL), str(draw(st.integers(0, 1 << 30)))]
        if with_output:
            row.append(draw(st.sampled_from(["", str(draw(st.integers(0, 5000)))])))
        rows.append(row)
    for _ in range(draw(st.integers(0, 2))):
        r, c = draw(st.integers(0, len(rows) - 1)), draw(st.integers(0, len(header) - 1))
        rows[r][c] = draw(CELL)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    data = out.getvalue().encode()
    if draw(st.integers(0, 4)) == 0:  # a raw byte-level change: a cut, or stray bytes
        at = draw(st.integers(len(data) // 2, len(data)))
        data = data[:at] + draw(st.sampled_from([b"", b"\xff", b",", b'"', b"\r"])) + data[at:]
    return data


@FUZZ
@given(data=csv_file(), skip=st.booleans())
def test_csv_lengths(tmp_path_factory, data, skip):
    path = tmp_path_factory.mktemp("csv") / "t.csv"
    path.write_bytes(data)
    oracle.check(path, oracle.expect_csv(data), format="lengths", skip_bad_lines=skip)


# ---- Parquet -----------------------------------------------------------------------------------

INT_TYPES = [pa.int8(), pa.int16(), pa.int32(), pa.int64(), pa.uint8(), pa.uint16(), pa.uint32(), pa.uint64()]
COLUMN_TYPE = {
    "timestamp": st.sampled_from([pa.float64(), pa.float64(), pa.int64(), pa.float32(), pa.uint64(), pa.string(),
                                  pa.bool_(), pa.null()]),
    "input_length": st.sampled_from([pa.int64(), pa.int64(), pa.uint32(), pa.float64(), pa.string()]),
    "input_tokens": st.sampled_from([pa.int64(), pa.int64(), pa.uint64(), pa.float64(), pa.int32()]),
    "output_length": st.sampled_from([pa.int64(), pa.int64(), pa.int16(), pa.uint64(), pa.float32()]),
    "output_tokens": st.sampled_from([pa.int64(), pa.int64(), pa.int8(), pa.float64()]),
    "hash_ids": st.sampled_from([pa.list_(pa.int64()), pa.list_(pa.int64()), pa.list_(pa.uint64()),
                                 pa.list_(pa.int32()), pa.list_(pa.float64()), pa.list_(pa.null())]),
}


def _fits(value, t) -> bool:
    """Whether pyarrow can hold ``value`` in a column of type ``t`` (else the cell is None)."""
    try:
        pa.array([value], t)
        return True
    except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError, TypeError, ValueError):
        return False


CELL_VALUE = st.sampled_from([None, 0, -1, 1 << 30, (1 << 30) + 1, 1 << 31, (1 << 63) - 1, (1 << 64) - 1,
                              math.nan, math.inf, -math.inf, 1e300, 2.0 ** 53 * 1000, 2.0 ** 53 * 1001, 1.5,
                              [], [1.5], [None], [1, 2], [-1, (1 << 64) - 1]])


@st.composite
def parquet_table(draw, fmt: str):
    recs = draw(st.lists(RECORDS[fmt], min_size=1, max_size=6))
    names = list(dict.fromkeys(k for r in recs for k in r))
    types = {n: draw(COLUMN_TYPE[n]) if draw(st.integers(0, 3)) == 0 else
             {"timestamp": pa.float64(), "hash_ids": pa.list_(pa.uint64())}.get(n, pa.int64()) for n in names}
    for _ in range(draw(st.integers(0, 2))):
        r, n = draw(st.integers(0, len(recs) - 1)), draw(st.sampled_from(names))
        recs[r] = dict(recs[r], **{n: draw(CELL_VALUE)})
    columns = {n: pa.array([r.get(n) if _fits(r.get(n), types[n]) else None for r in recs], types[n]) for n in names}
    return pa.table(columns)


@settings(max_examples=EXAMPLES, deadline=None)
@given(fmt=st.sampled_from(["mooncake", "lengths"]), data=st.data(), skip=st.booleans())
def test_parquet(tmp_path_factory, fmt, data, skip):
    table = data.draw(parquet_table(fmt))
    path = tmp_path_factory.mktemp("parquet") / "t.parquet"
    pq.write_table(table, path)
    expected = oracle.expect_parquet(table, fmt)
    tr = oracle.check(path, expected, format=fmt, skip_bad_lines=skip, unit="row")
    if tr is None and expected.error:
        from kvctrace import KvctraceError, open_trace
        try:
            open_trace(path, format=fmt)
        except KvctraceError as err:
            assert err.field == expected.bad[0][1] and "column" in str(err) and "JSON" not in str(err), str(err)


def test_json_array_records_are_numbered(tmp_path):
    path = tmp_path / "t.json"
    recs = [{"timestamp": 0, "input_length": 1, "output_length": 0, "hash_ids": [1]},
            {"timestamp": 1, "input_length": 1, "output_length": 0, "hash_ids": [1.5]}]
    path.write_text(json.dumps(recs))
    oracle.check(path, oracle.expect_json_array(path.read_bytes(), "mooncake"), unit="record")
