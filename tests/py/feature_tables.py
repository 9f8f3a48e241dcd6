#!/usr/bin/env python3
"""Small Delta tables with ONE Delta table feature each, for tidelake's integration tests,
run with the venv that scripts/test.sh creates. Every table has tidelake's `transactions`
schema (dt timestamp[us, tz=UTC], accountId string, amount double, alert bool, date string;
partitioned by date), so only the feature differs.

Prints exactly one JSON document on stdout and exits 0; on any error it prints a traceback
on stderr and exits non-zero.

    feature_tables.py make URL FEATURE [--rows N]
        Creates a new table at URL (it must not exist yet) with N rows (default 10): row i
        has dt = 2024-05-01T00:00:00Z + i s, accountId "py<i mod 7>", amount
        (i mod 1000) / 4 + 1 (so always > 0), alert false. Prints
        {"version": int,                # the table's latest version
         "protocol": {...},             # the latest protocol action, as in the log
         "configuration": {str: str},   # the latest metaData.configuration
         "rows": int,                   # rows a reader should see (after deletion vectors)
         "notes": str}                  # how the table was made, what delta-rs says of it

    feature_tables.py readers URL
        What delta-rs (DeltaTable.scan(), DataFusion, which applies deletion vectors) and
        polars (scan_delta) read at URL now:
        {"version": int, "rows": [row, ... sorted by dt], "polars_rows": int}

FEATURE is one of ("delta-rs" = made by deltalake's own writer, "hand" = Parquet files
written with pyarrow and the log written by this script from PROTOCOL.md):

    unknown-writer-feature  hand      (1,7) writerFeatures ["futureFeatureX"]
    unknown-reader-feature  hand      (3,7) ["futureReaderFeatureY"] in both lists
    append-only             delta-rs  delta.appendOnly=true, (1,2)
    invariants              delta-rs  amount has delta.invariants "amount > 0", (1,2)
    check-constraint        delta-rs  alter.add_constraint: delta.constraints.pos_amount =
                                      amount > 0, protocol upgraded to (1,3)
    generated-column        hand      date has delta.generationExpression
                                      DATE_FORMAT(dt, 'yyyy-MM-dd'), (1,4)
    change-data-feed        delta-rs  delta.enableChangeDataFeed=true, (1,4)
    column-mapping          delta-rs  delta.columnMapping.mode=name, (2,5); data files use
                                      the physical names col-<uuid> and Parquet field ids
    deletion-vectors        hand      (3,7) deletionVectors; two DELETE commits: an on-disk
                                      DV file with two DVs (storageType u, offsets 1 and
                                      more), then an inline DV (storageType i) replacing one
                                      of them; each as remove + add of the same path
    domain-metadata         hand      (1,7) domainMetadata; a user domain, plus one that a
                                      later commit removes (removed=true)
    row-tracking            hand      (1,7) domainMetadata + rowTracking, two commits with
                                      baseRowId / defaultRowCommitVersion and the
                                      delta.rowTracking high-water mark
    v2-checkpoint           hand      (3,7) v2Checkpoint; a UUID-named JSON V2 checkpoint at
                                      v1, _last_checkpoint naming it, 0.json deleted, v2 on
                                      top
    timestamp-ntz           delta-rs  alter.add_feature(TimestampWithoutTimezone): (3,7)
                                      timestampNtz listed, dt still a UTC timestamp
    vacuum-protocol-check   hand      (3,7) vacuumProtocolCheck
    in-commit-timestamp     hand      (1,7) inCommitTimestamp, commitInfo first in every
                                      commit with a monotonic inCommitTimestamp
    null-commit-info        hand      (1,2), Spark-style commitInfo with null fields and a
                                      metaData with name and description null

After making a table the script reads it back with delta-rs (DeltaTable.protocol(),
metadata().configuration, to_pyarrow_table(), scan()) and polars, and tries a delta-rs
append on a scratch copy; `notes` says what each of them did. It fails if a reader that
accepts the table returns other rows than expected (column mapping aside: to_pyarrow_table
ignores it and returns nulls, which the notes report).

URLs are local paths, file:// URLs or s3://bucket/prefix, with the storage options from
the environment as in delta_read.py.
"""

import argparse
import datetime
import io
import json
import os
import re
import shutil
import struct
import sys
import tempfile
import time
import uuid
import zlib

import polars as pl
import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq
from deltalake import DeltaTable, Field, Schema, TableFeatures, write_deltalake
from deltalake.schema import PrimitiveType

sys.dont_write_bytecode = True  # no __pycache__ in tests/py
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from delta_read import (  # noqa: E402
    START_MS,
    SCHEMA,
    filesystem_and_root,
    open_table,
    rows_of,
    storage_options,
    table_uri,
)

PARTITION = "date"
DATA_COLUMNS = ["dt", "accountId", "amount", "alert"]
DELTA_TYPES = {"dt": "timestamp", "accountId": "string", "amount": "double", "alert": "boolean", "date": "string"}

# --- rows -----------------------------------------------------------------------------


def rows(first, n):
    """Rows first..first+n-1 of the transactions schema (all columns, `date` included)."""
    ms = [START_MS + i * 1000 for i in range(first, first + n)]
    return pa.table(
        {
            "dt": pa.array([m * 1000 for m in ms], pa.timestamp("us", tz="UTC")),
            "accountId": [f"py{i % 7}" for i in range(first, first + n)],
            "amount": [(i % 1000) / 4 + 1 for i in range(first, first + n)],
            "alert": [False] * n,
            "date": [day(m) for m in ms],
        },
        schema=SCHEMA,
    )


def day(ms):
    return datetime.datetime.fromtimestamp(ms / 1000, tz=datetime.timezone.utc).strftime("%Y-%m-%d")


def split(n, parts):
    """`parts` (first, count) ranges covering 0..n-1, as even as possible."""
    out, first = [], 0
    for k in range(parts):
        count = n // parts + (1 if k < n % parts else 0)
        out.append((first, count))
        first += count
    return out


def now_ms():
    return int(time.time() * 1000)


# --- the log, by hand ------------------------------------------------------------------


def schema_string(field_metadata=None):
    """The Spark StructType JSON of the transactions schema; `field_metadata` maps a column
    to its metadata dict."""
    field_metadata = field_metadata or {}
    return json.dumps(
        {
            "type": "struct",
            "fields": [
                {
                    "name": f.name,
                    "type": DELTA_TYPES[f.name],
                    "nullable": True,
                    "metadata": field_metadata.get(f.name, {}),
                }
                for f in SCHEMA
            ],
        },
        separators=(",", ":"),
    )


def protocol(reader, writer, reader_features=None, writer_features=None):
    action = {"minReaderVersion": reader, "minWriterVersion": writer}
    if reader_features is not None:
        action["readerFeatures"] = reader_features
    if writer_features is not None:
        action["writerFeatures"] = writer_features
    return action


def metadata(configuration, field_metadata=None, **extra):
    action = {
        "id": str(uuid.uuid4()),
        "format": {"provider": "parquet", "options": {}},
        "schemaString": schema_string(field_metadata),
        "partitionColumns": [PARTITION],
        "createdTime": now_ms(),
        "configuration": configuration,
    }
    action.update(extra)
    return action


def commit_info(operation, read_version=None, **extra):
    info = {"timestamp": now_ms(), "operation": operation, "engineInfo": "tidelake-tests/feature_tables.py"}
    if operation == "WRITE":
        info["operationParameters"] = {
            "mode": "Append" if read_version is not None else "ErrorIfExists",
            "partitionBy": json.dumps([PARTITION]),
        }
        info["isBlindAppend"] = True
    if read_version is not None:
        info["readVersion"] = read_version
    info["txnId"] = str(uuid.uuid4())
    info.update(extra)
    return info


def stats_json(table, extra=None):
    """The add action's `stats` string (data columns only; dt floored to ms with a Z)."""
    stats = {"numRecords": table.num_rows, "minValues": {}, "maxValues": {}, "nullCount": {}}
    for name in DATA_COLUMNS:
        column = table.column(name)
        stats["nullCount"][name] = column.null_count
        values = [v for v in column.to_pylist() if v is not None]
        if not values or name == "alert":  # no min/max for booleans, as Spark
            continue
        lo, hi = min(values), max(values)
        if name == "dt":
            lo, hi = (v.strftime("%Y-%m-%dT%H:%M:%S.") + f"{v.microsecond // 1000:03d}Z" for v in (lo, hi))
        stats["minValues"][name], stats["maxValues"][name] = lo, hi
    stats.update(extra or {})
    return json.dumps(stats, separators=(",", ":"))


class HandTable:
    """A table written by hand: Parquet data files through pyarrow, log entries as JSON.
    Works on local paths and S3 alike (pyarrow filesystems)."""

    def __init__(self, url):
        self.url = url
        self.fs, self.root = filesystem_and_root(url)
        if self.exists("_delta_log/00000000000000000000.json"):
            raise FileExistsError(f"{url} already holds a Delta table")
        self.version = -1

    def exists(self, key):
        return self.fs.get_file_info(f"{self.root}/{key}").type != pafs.FileType.NotFound

    def put(self, key, data):
        path = f"{self.root}/{key}"
        if isinstance(self.fs, pafs.LocalFileSystem):
            self.fs.create_dir(os.path.dirname(path), recursive=True)
        with self.fs.open_output_stream(path) as out:
            out.write(data)

    def delete(self, key):
        self.fs.delete_file(f"{self.root}/{key}")

    def data_files(self, first, n):
        """Writes rows first..first+n-1 as Parquet files, one per date; returns their adds."""
        adds, i = [], first
        while i < first + n:
            j = i
            while j < first + n and day(START_MS + j * 1000) == day(START_MS + i * 1000):
                j += 1
            adds.append(self.data_file(i, j - i))
            i = j
        return adds

    def data_file(self, first, n):
        """Writes rows first..first+n-1 (all of one date) as one Parquet file without the
        partition column; returns its add action."""
        data = rows(first, n)
        dates = set(data.column(PARTITION).to_pylist())
        assert len(dates) == 1, f"rows {first}..{first + n - 1} span several dates"
        date = dates.pop()
        buf = io.BytesIO()
        pq.write_table(data.drop_columns([PARTITION]), buf, compression="snappy")
        key = f"{PARTITION}={date}/part-00000-{uuid.uuid4()}-c000.snappy.parquet"
        self.put(key, buf.getvalue())
        return {
            "path": key,
            "partitionValues": {PARTITION: date},
            "size": len(buf.getvalue()),
            "modificationTime": now_ms(),
            "dataChange": True,
            "stats": stats_json(data),
        }

    def commit(self, actions):
        """Writes the next version: `actions` is a list of (name, body) in log order."""
        self.version += 1
        lines = "".join(json.dumps({name: body}, separators=(",", ":")) + "\n" for name, body in actions)
        self.put(log_key(self.version), lines.encode())
        return self.version


def log_key(version):
    return f"_delta_log/{version:020d}.json"


def remove_of(add):
    """The remove action for the logical file `add`: its path and its deletion vector, if any."""
    remove = {
        "path": add["path"],
        "deletionTimestamp": now_ms(),
        "dataChange": True,
        "extendedFileMetadata": True,
        "partitionValues": add["partitionValues"],
        "size": add["size"],
    }
    if "deletionVector" in add:
        remove["deletionVector"] = add["deletionVector"]
    return remove


def create(table, proto, meta, adds, info=None, extra=()):
    """Version 0: commitInfo, protocol, metaData, then `extra` actions and the adds."""
    actions = [("commitInfo", info or commit_info("WRITE"))]
    actions += [("protocol", proto), ("metaData", meta)] + list(extra)
    actions += [("add", a) for a in adds]
    return table.commit(actions)


def append(table, adds, extra=(), info=None):
    info = info or commit_info("WRITE", read_version=table.version)
    return table.commit([("commitInfo", info)] + list(extra) + [("add", a) for a in adds])


def hand_plain(url, n, proto, configuration=None, field_metadata=None, notes=""):
    """A hand-written table with one commit: `proto`, `configuration`, n rows (a file per date)."""
    t = HandTable(url)
    create(t, proto, metadata(configuration or {}, field_metadata), t.data_files(0, n))
    return n, notes


# --- deletion vectors ------------------------------------------------------------------

Z85 = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#"
DV_MAGIC = 1681511377  # portable RoaringBitmapArray, little endian (PROTOCOL.md)
ROARING_NO_RUN_COOKIE = 12346


def z85(data):
    """Z85 (ZeroMQ base85) of `data`, zero-padded to a multiple of 4 bytes as Delta does for
    inline DVs (sizeInBytes gives the unpadded length)."""
    data = data + b"\0" * (-len(data) % 4)
    out = []
    for i in range(0, len(data), 4):
        value = int.from_bytes(data[i : i + 4], "big")
        chunk = ""
        for _ in range(5):
            value, digit = divmod(value, 85)
            chunk = Z85[digit] + chunk
        out.append(chunk)
    return "".join(out)


def roaring32(values):
    """A 32-bit RoaringBitmap in the portable format, without run containers: cookie 12346,
    container count, (key, cardinality-1) pairs, offsets, then array (<= 4096 values) or
    bitmap (8 KiB) containers; everything little endian."""
    containers = {}
    for v in sorted(set(values)):
        containers.setdefault(v >> 16, []).append(v & 0xFFFF)
    keys = sorted(containers)
    header = struct.pack("<II", ROARING_NO_RUN_COOKIE, len(keys))
    header += b"".join(struct.pack("<HH", k, len(containers[k]) - 1) for k in keys)
    bodies = []
    for k in keys:
        low = containers[k]
        if len(low) <= 4096:
            bodies.append(struct.pack(f"<{len(low)}H", *low))
        else:
            words = [0] * 1024
            for v in low:
                words[v >> 6] |= 1 << (v & 63)
            bodies.append(struct.pack("<1024Q", *words))
    offset = len(header) + 4 * len(keys)
    offsets = b""
    for body in bodies:
        offsets += struct.pack("<I", offset)
        offset += len(body)
    return header + offsets + b"".join(bodies)


def dv_bitmap(row_indexes):
    """A DV's serialized bitmap: the magic number, then the 64-bit RoaringBitmap in the
    portable format (bucket count as u64, then for each bucket its high 32 bits as u32 and
    a 32-bit bitmap of the low 32 bits)."""
    buckets = {}
    for i in sorted(set(row_indexes)):
        assert 0 <= i < 1 << 63
        buckets.setdefault(i >> 32, []).append(i & 0xFFFFFFFF)
    out = struct.pack("<IQ", DV_MAGIC, len(buckets))
    for key in sorted(buckets):
        out += struct.pack("<I", key) + roaring32(buckets[key])
    return out


def dv_file(dvs):
    """A deletion vector file holding the bitmaps `dvs` (lists of row indexes): version byte 1,
    then for each DV its size (u32 big endian), the bitmap, its CRC-32 (u32 big endian).
    Returns (file uuid, file bytes, [(offset, size, cardinality)])."""
    data, placed = bytearray(b"\x01"), []
    for indexes in dvs:
        bitmap = dv_bitmap(indexes)
        placed.append((len(data), len(bitmap), len(set(indexes))))
        data += struct.pack(">I", len(bitmap)) + bitmap + struct.pack(">I", zlib.crc32(bitmap))
    return uuid.uuid4(), bytes(data), placed


def on_disk_dv(file_uuid, offset, size, cardinality):
    return {
        "storageType": "u",
        "pathOrInlineDv": z85(file_uuid.bytes),  # no random prefix: the file is in the root
        "offset": offset,
        "sizeInBytes": size,
        "cardinality": cardinality,
    }


def inline_dv(indexes):
    bitmap = dv_bitmap(indexes)
    return {
        "storageType": "i",
        "pathOrInlineDv": z85(bitmap),
        "sizeInBytes": len(bitmap),
        "cardinality": len(set(indexes)),
    }


# --- the features ----------------------------------------------------------------------


def unknown_writer_feature(url, n):
    return hand_plain(
        url,
        n,
        protocol(1, 7, writer_features=["futureFeatureX"]),
        notes="hand-written; futureFeatureX is no Delta feature, so readers may read the "
        "table but every writer must refuse to write it",
    )


def unknown_reader_feature(url, n):
    return hand_plain(
        url,
        n,
        protocol(3, 7, ["futureReaderFeatureY"], ["futureReaderFeatureY"]),
        notes="hand-written; futureReaderFeatureY is no Delta feature, so readers and writers "
        f"must refuse the table; rows is the {n} rows it physically holds",
    )


def append_only(url, n):
    write_deltalake(
        table_uri(url),
        rows(0, n),
        partition_by=[PARTITION],
        configuration={"delta.appendOnly": "true"},
        storage_options=storage_options(url),
    )
    return n, "delta-rs write_deltalake(configuration={'delta.appendOnly': 'true'})"


def delta_rs_schema(field_metadata):
    return Schema(
        [Field(f.name, PrimitiveType(DELTA_TYPES[f.name]), True, field_metadata.get(f.name)) for f in SCHEMA]
    )


def invariants(url, n):
    rule = json.dumps({"expression": {"expression": "amount > 0"}}, separators=(",", ":"))
    DeltaTable.create(
        table_uri(url),
        delta_rs_schema({"amount": {"delta.invariants": rule}}),
        partition_by=[PARTITION],
        storage_options=storage_options(url),
    )
    write_deltalake(table_uri(url), rows(0, n), mode="append", storage_options=storage_options(url))
    return n, f"delta-rs DeltaTable.create with amount metadata delta.invariants={rule}, then an append"


def check_constraint(url, n):
    write_deltalake(table_uri(url), rows(0, n), partition_by=[PARTITION], storage_options=storage_options(url))
    open_table(url).alter.add_constraint({"pos_amount": "amount > 0"})
    return n, "delta-rs write_deltalake, then alter.add_constraint({'pos_amount': 'amount > 0'})"


GENERATION_EXPRESSION = "DATE_FORMAT(dt, 'yyyy-MM-dd')"


def generated_column(url, n):
    return hand_plain(
        url,
        n,
        protocol(1, 4),
        field_metadata={"date": {"delta.generationExpression": GENERATION_EXPRESSION}},
        notes=f"hand-written (delta-rs cannot write it, see below); date has "
        f"delta.generationExpression {GENERATION_EXPRESSION!r}, a Spark SQL expression that "
        "Spark recognises as a partition expression of dt (yyyy-MM-dd of dt in the session "
        "time zone, so UTC must be the session time zone); every row's date matches it",
    )


def change_data_feed(url, n):
    write_deltalake(
        table_uri(url),
        rows(0, n),
        partition_by=[PARTITION],
        configuration={"delta.enableChangeDataFeed": "true"},
        storage_options=storage_options(url),
    )
    return n, "delta-rs write_deltalake(configuration={'delta.enableChangeDataFeed': 'true'})"


def column_mapping(url, n):
    write_deltalake(
        table_uri(url),
        rows(0, n),
        partition_by=[PARTITION],
        configuration={"delta.columnMapping.mode": "name"},
        storage_options=storage_options(url),
    )
    dt = open_table(url)
    schema = json.loads(dt.schema().to_json())
    physical = {f["name"]: f["metadata"]["delta.columnMapping.physicalName"] for f in schema["fields"]}
    fs, root = filesystem_and_root(url)
    add = pa.table(dt.get_add_actions()).to_pylist()[0]
    file_columns = pq.read_schema(f"{root}/{add['path']}", filesystem=fs).names
    assert set(file_columns) == {physical[c] for c in DATA_COLUMNS}, (file_columns, physical)
    assert all(physical[c] != c for c in physical), physical
    return n, (
        "delta-rs write_deltalake(configuration={'delta.columnMapping.mode': 'name'}): "
        f"physical names col-<uuid> with Parquet field ids in the data files (e.g. amount is "
        f"{physical['amount']}), partitionValues and stats keyed by physical name, files under "
        "a random 2-character prefix directory instead of date=..."
    )


def deletion_vectors(url, n):
    if not 6 <= n <= 86_400:
        raise ValueError("deletion-vectors needs --rows from 6 to 86400 (one file per half, one date)")
    t = HandTable(url)
    (a_first, a_n), (b_first, b_n) = split(n, 2)
    proto = protocol(3, 7, ["deletionVectors"], ["deletionVectors"])
    a, b = t.data_file(a_first, a_n), t.data_file(b_first, b_n)
    create(t, proto, metadata({"delta.enableDeletionVectors": "true"}), [a, b])

    # v1: a DELETE with one DV file holding the DVs of both files (A at offset 1, B after it);
    # each file is removed without a DV and added again, same path, with its DV.
    dv_a_rows = [i for i in range(a_n) if i % 3 == 1]
    dv_b_rows = [0]
    file_uuid, data, placed = dv_file([dv_a_rows, dv_b_rows])
    t.put(f"deletion_vector_{file_uuid}.bin", data)
    dv_a, dv_b = (on_disk_dv(file_uuid, *p) for p in placed)
    stats_extra = {"tightBounds": False}
    a1 = dict(a, deletionVector=dv_a, stats=stats_json(rows(a_first, a_n), stats_extra))
    b1 = dict(b, deletionVector=dv_b, stats=stats_json(rows(b_first, b_n), stats_extra))
    info = delete_info(t, [a_first + i for i in dv_a_rows] + [b_first + i for i in dv_b_rows])
    t.commit([("commitInfo", info), ("remove", remove_of(a)), ("add", a1), ("remove", remove_of(b)), ("add", b1)])

    # v2: a second DELETE on B: its on-disk DV is replaced by a larger inline one.
    dv_b2_rows = sorted(set(dv_b_rows) | {i for i in range(b_n) if i % 3 == 2})
    b2 = dict(b1, deletionVector=inline_dv(dv_b2_rows))
    info = delete_info(t, [b_first + i for i in dv_b2_rows if i not in dv_b_rows])
    t.commit([("commitInfo", info), ("remove", remove_of(b1)), ("add", b2)])

    deleted = {a_first + i for i in dv_a_rows} | {b_first + i for i in dv_b2_rows}
    expected = rows(0, n).filter(pa.array([i not in deleted for i in range(n)]))
    return expected, (
        f"hand-written; v0 adds A ({a_n} rows) and B ({b_n} rows); v1 removes A and B and "
        f"adds them again with DVs in deletion_vector_{file_uuid}.bin (A: rows {brief(dv_a_rows)} "
        f"at offset {dv_a['offset']}, B: rows {brief(dv_b_rows)} at offset {dv_b['offset']}); v2 "
        f"removes B with that DV and adds it with an inline DV of rows {brief(dv_b2_rows)}; "
        f"{len(deleted)} rows deleted in all (row numbers in the table {brief(sorted(deleted))})"
    )


def brief(values, most=10):
    return str(values) if len(values) <= most else f"[{', '.join(map(str, values[:most]))}, ... ({len(values)})]"


def delete_info(table, deleted):
    """A Spark-like DELETE commitInfo for the rows `deleted` (global row numbers; the
    predicate is only informative, and exact while amounts are unique, i.e. rows < 1000)."""
    if len(deleted) <= 20:
        amounts = ", ".join(str(v) for v in rows(0, max(deleted) + 1).column("amount").take(deleted).to_pylist())
        predicate = f"(amount IN ({amounts}))"
    else:
        predicate = f"({len(deleted)} rows chosen by feature_tables.py)"
    return commit_info(
        "DELETE",
        read_version=table.version,
        isBlindAppend=False,
        operationParameters={"predicate": json.dumps([predicate])},
    )


def domain_metadata(url, n):
    t = HandTable(url)
    (f0, n0), (f1, n1) = split(n, 2)
    kept = {
        "domain": "com.tidelake.tests",
        "configuration": json.dumps({"owner": "feature_tables.py"}),
        "removed": False,
    }
    gone = {"domain": "com.tidelake.scratch", "configuration": json.dumps({"temporary": True}), "removed": False}
    create(
        t,
        protocol(1, 7, writer_features=["domainMetadata"]),
        metadata({}),
        t.data_files(f0, n0),
        extra=[("domainMetadata", kept), ("domainMetadata", gone)],
    )
    append(t, t.data_files(f1, n1), extra=[("domainMetadata", dict(gone, removed=True))])
    return n, (
        "hand-written; v0 has domainMetadata com.tidelake.tests and com.tidelake.scratch, "
        "v1 appends and removes com.tidelake.scratch (removed=true): the snapshot holds "
        "com.tidelake.tests only, and a checkpoint must keep it (delta.clustering is not used: "
        "clustering cannot be combined with partitioning)"
    )


def row_tracking(url, n):
    t = HandTable(url)
    configuration = {
        "delta.enableRowTracking": "true",
        "delta.rowTracking.materializedRowIdColumnName": f"_row-id-col-{uuid.uuid4()}",
        "delta.rowTracking.materializedRowCommitVersionColumnName": f"_row-commit-version-col-{uuid.uuid4()}",
    }
    proto = protocol(1, 7, writer_features=["domainMetadata", "rowTracking"])
    high_water_mark = -1
    for first, count in split(n, 2):
        adds = []
        for add in t.data_files(first, count):
            adds.append(dict(add, baseRowId=high_water_mark + 1, defaultRowCommitVersion=t.version + 1))
            high_water_mark += json.loads(add["stats"])["numRecords"]
        domain = {
            "domain": "delta.rowTracking",
            "configuration": json.dumps({"rowIdHighWaterMark": high_water_mark}, separators=(",", ":")),
            "removed": False,
        }
        tags = {"delta.rowTracking.preserved": "true"}
        if t.version < 0:
            create(
                t,
                proto,
                metadata(configuration),
                adds,
                info=commit_info("WRITE", tags=tags),
                extra=[("domainMetadata", domain)],
            )
        else:
            append(
                t,
                adds,
                extra=[("domainMetadata", domain)],
                info=commit_info("WRITE", read_version=t.version, tags=tags),
            )
    return n, (
        f"hand-written; two commits, each add with baseRowId (0, then the previous high-water "
        f"mark + 1) and defaultRowCommitVersion = its commit's version; domainMetadata "
        f"delta.rowTracking rowIdHighWaterMark ends at {high_water_mark}; materialized column "
        "names are set (required to enable) but no file has those columns"
    )


def v2_checkpoint(url, n):
    t = HandTable(url)
    (f0, n0), (f1, n1), (f2, n2) = split(n, 3)
    proto = protocol(3, 7, ["v2Checkpoint"], ["v2Checkpoint"])
    meta = metadata({"delta.checkpointPolicy": "v2"})
    adds0, adds1 = t.data_files(f0, n0), t.data_files(f1, n1)
    create(t, proto, meta, adds0)
    txn = {"appId": "feature-tables", "version": 1, "lastUpdated": now_ms()}
    append(t, adds1, extra=[("txn", txn)])

    # A UUID-named V2 checkpoint of v1 (JSON, no sidecars): checkpointMetadata first, then
    # every non-file action, then the live adds.
    checkpoint = [
        ("checkpointMetadata", {"version": t.version, "tags": {}}),
        ("protocol", proto),
        ("metaData", meta),
        ("txn", txn),
    ] + [("add", dict(a, dataChange=False)) for a in adds0 + adds1]
    body = "".join(json.dumps({k: v}, separators=(",", ":")) + "\n" for k, v in checkpoint).encode()
    name = f"{t.version:020d}.checkpoint.{uuid.uuid4()}.json"
    t.put(f"_delta_log/{name}", body)
    last = {
        "version": t.version,
        "size": len(checkpoint),
        "sizeInBytes": len(body),
        "numOfAddFiles": len(adds0 + adds1),
    }
    t.put("_delta_log/_last_checkpoint", json.dumps(last, separators=(",", ":")).encode())
    t.delete(log_key(0))
    append(t, t.data_files(f2, n2))
    return n, (
        f"hand-written; v0, v1 (with txn feature-tables=1); V2 checkpoint _delta_log/{name} "
        f"(JSON; checkpointMetadata, protocol, metaData, txn, {len(adds0 + adds1)} adds); _last_checkpoint names "
        "v1; 00000000000000000000.json deleted (1.json kept, as PROTOCOL.md's metadata "
        "cleanup keeps the checkpoint version's commit); v2 appends on top, so the snapshot "
        "needs the UUID-named checkpoint"
    )


def timestamp_ntz(url, n):
    write_deltalake(table_uri(url), rows(0, n), partition_by=[PARTITION], storage_options=storage_options(url))
    open_table(url).alter.add_feature(
        TableFeatures.TimestampWithoutTimezone, allow_protocol_versions_increase=True
    )
    return n, (
        "delta-rs write_deltalake, then alter.add_feature(TimestampWithoutTimezone): (1,2) "
        "becomes (3,7) with timestampNtz in both lists (delta-rs drops appendOnly/invariants "
        "from the implied legacy set); no column is timestamp_ntz, dt is still a UTC timestamp"
    )


def vacuum_protocol_check(url, n):
    return hand_plain(
        url,
        n,
        protocol(3, 7, ["vacuumProtocolCheck"], ["vacuumProtocolCheck"]),
        notes="hand-written; (3,7) with vacuumProtocolCheck in both lists",
    )


def in_commit_timestamp(url, n):
    t = HandTable(url)
    configuration = {"delta.enableInCommitTimestamps": "true"}
    proto = protocol(1, 7, writer_features=["inCommitTimestamp"])
    stamps = []
    for first, count in split(n, 2):
        stamp = max(now_ms(), stamps[-1] + 1) if stamps else now_ms()
        stamps.append(stamp)
        if t.version < 0:
            create(
                t,
                proto,
                metadata(configuration),
                t.data_files(first, count),
                info=commit_info("WRITE", inCommitTimestamp=stamp),
            )
        else:
            append(
                t,
                t.data_files(first, count),
                info=commit_info("WRITE", read_version=t.version, inCommitTimestamp=stamp),
            )
    return n, f"hand-written; two commits, commitInfo first in each, inCommitTimestamp {stamps}"


def null_commit_info(url, n):
    t = HandTable(url)
    (f0, n0), (f1, n1) = split(n, 2)

    def spark_commit_info(read_version, adds):
        return {
            "timestamp": now_ms(),
            "userId": None,
            "userName": None,
            "operation": "WRITE",
            "operationParameters": {
                "mode": "Append" if read_version is not None else "ErrorIfExists",
                "partitionBy": json.dumps([PARTITION]),
            },
            "job": None,
            "notebook": None,
            "clusterId": None,
            "readVersion": read_version,
            "isolationLevel": "Serializable",
            "isBlindAppend": True,
            "operationMetrics": {
                "numFiles": str(len(adds)),
                "numOutputRows": str(sum(json.loads(a["stats"])["numRecords"] for a in adds)),
                "numOutputBytes": str(sum(a["size"] for a in adds)),
            },
            "tags": None,
            "engineInfo": None,
            "txnId": str(uuid.uuid4()),
        }

    adds0 = t.data_files(f0, n0)
    create(
        t, protocol(1, 2), metadata({}, name=None, description=None), adds0, info=spark_commit_info(None, adds0)
    )
    adds1 = t.data_files(f1, n1)
    append(t, adds1, info=spark_commit_info(0, adds1))
    return n, (
        "hand-written; (1,2), two commits whose commitInfo has userId, userName, job, "
        "notebook, clusterId, tags, engineInfo null (and readVersion null in v0), booleans, "
        "string-valued operationMetrics; metaData name and description null"
    )


FEATURES = {
    "unknown-writer-feature": unknown_writer_feature,
    "unknown-reader-feature": unknown_reader_feature,
    "append-only": append_only,
    "invariants": invariants,
    "check-constraint": check_constraint,
    "generated-column": generated_column,
    "change-data-feed": change_data_feed,
    "column-mapping": column_mapping,
    "deletion-vectors": deletion_vectors,
    "domain-metadata": domain_metadata,
    "row-tracking": row_tracking,
    "v2-checkpoint": v2_checkpoint,
    "timestamp-ntz": timestamp_ntz,
    "vacuum-protocol-check": vacuum_protocol_check,
    "in-commit-timestamp": in_commit_timestamp,
    "null-commit-info": null_commit_info,
}

# --- reading the result back -----------------------------------------------------------


def log_state(url):
    """(version, protocol, configuration) from the log itself: the newest UUID-named JSON
    checkpoint, if any, then the JSON commits after it."""
    fs, root = filesystem_and_root(url)
    names = [pafs.FileInfo(i.path).base_name for i in fs.get_file_info(pafs.FileSelector(f"{root}/_delta_log"))]
    commits = sorted(int(m.group(1)) for m in (re.fullmatch(r"(\d{20})\.json", x) for x in names) if m)
    checkpoints = sorted(
        (int(m.group(1)), x) for x in names if (m := re.fullmatch(r"(\d{20})\.checkpoint\.[0-9a-f-]{36}\.json", x))
    )
    state, start = {}, -1
    files = []
    if checkpoints:
        start, name = checkpoints[-1]
        files.append(name)
    files += [f"{v:020d}.json" for v in commits if v > start]
    for name in files:
        with fs.open_input_stream(f"{root}/_delta_log/{name}") as f:
            for line in f.read().decode().splitlines():
                if line.strip():
                    action = json.loads(line)
                    for kind in ("protocol", "metaData"):
                        if kind in action:
                            state[kind] = action[kind]
    version = max(commits + [start])
    return version, state["protocol"], state["metaData"]["configuration"]


def first_line(error):
    text = f"{type(error).__name__}: {error}".strip().splitlines()[0]
    return text if len(text) <= 240 else text[:237] + "..."


def sorted_rows(table):
    table = table.select(SCHEMA.names)
    return sorted(rows_of(table), key=lambda r: r["dt"])


def delta_rs_notes(url, expected):
    """What delta-rs and polars make of the table; raises if a reader returns wrong rows."""
    notes = []
    try:
        dt = open_table(url)
    except Exception as e:
        return [f"delta-rs DeltaTable() refuses: {first_line(e)}"]
    notes.append(
        f"delta-rs opens v{dt.version()}, protocol() {dt.protocol()}, "
        f"configuration {dt.metadata().configuration}"
    )
    want = sorted_rows(expected)
    try:
        got = dt.to_pyarrow_table()
        if got.num_rows == len(want) and all(got.column(c).null_count == got.num_rows for c in DATA_COLUMNS):
            notes.append(
                f"to_pyarrow_table returns {got.num_rows} rows with every data column null "
                "(its pyarrow dataset ignores column mapping)"
            )
        elif sorted_rows(got) == want:
            notes.append(f"to_pyarrow_table reads the {len(want)} expected rows")
        else:
            raise AssertionError(
                f"to_pyarrow_table returned {got.num_rows} rows, other than the {len(want)} expected"
            )
    except AssertionError:
        raise
    except Exception as e:
        notes.append(f"to_pyarrow_table refuses: {first_line(e)}")
    try:
        got = pa.table(dt.scan())
        if sorted_rows(got) != want:
            raise AssertionError(
                f"DeltaTable.scan returned {got.num_rows} rows, other than the {len(want)} expected"
            )
        notes.append(f"scan() (DataFusion) reads the {len(want)} expected rows")
    except AssertionError:
        raise
    except Exception as e:
        notes.append(f"scan() refuses: {first_line(e)}")
    try:
        count = (
            pl.scan_delta(table_uri(url), storage_options=storage_options(url)).select(pl.len()).collect().item()
        )
        if count != len(want):
            raise AssertionError(f"polars scan_delta counted {count} rows, not {len(want)}")
        notes.append(f"polars scan_delta counts {count} rows")
    except AssertionError:
        raise
    except Exception as e:
        notes.append(f"polars refuses: {first_line(e)}")
    return notes


def delta_rs_append_note(url):
    """Tries a delta-rs append of one row on a scratch local copy of the table."""
    fs, root = filesystem_and_root(url)
    scratch = tempfile.mkdtemp(prefix="feature-table-")
    try:
        copy = os.path.join(scratch, "t")
        pafs.copy_files(root, copy, source_filesystem=fs, destination_filesystem=pafs.LocalFileSystem())
        try:
            write_deltalake(copy, rows(10_000, 1), mode="append")
            return "a delta-rs append (on a scratch copy) is accepted"
        except Exception as e:
            return f"a delta-rs append (on a scratch copy) is refused: {first_line(e)}"
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def make(args):
    if args.rows < 1:
        raise ValueError("--rows must be at least 1")
    made, notes = FEATURES[args.feature](args.url, args.rows)
    expected = made if isinstance(made, pa.Table) else rows(0, made)
    version, proto, configuration = log_state(args.url)
    notes = "; ".join([notes] + delta_rs_notes(args.url, expected) + [delta_rs_append_note(args.url)])
    return {
        "version": version,
        "protocol": proto,
        "configuration": configuration,
        "rows": expected.num_rows,
        "notes": notes,
    }


def readers(args):
    dt = open_table(args.url)
    count = (
        pl.scan_delta(table_uri(args.url), storage_options=storage_options(args.url))
        .select(pl.len())
        .collect()
        .item()
    )
    return {"version": dt.version(), "rows": sorted_rows(pa.table(dt.scan())), "polars_rows": count}


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)
    m = sub.add_parser("make")
    m.add_argument("url")
    m.add_argument("feature", choices=sorted(FEATURES))
    m.add_argument("--rows", type=int, default=10)
    m.set_defaults(run=make)
    r = sub.add_parser("readers")
    r.add_argument("url")
    r.set_defaults(run=readers)
    args = p.parse_args()
    json.dump(args.run(args), sys.stdout, allow_nan=False)
    sys.stdout.write("\n")
    sys.stdout.flush()
    # deltalake 1.6.6 sometimes aborts during interpreter shutdown after to_pyarrow_table
    # ("terminate called without an active exception", exit 134); skip the shutdown.
    os._exit(0)


if __name__ == "__main__":
    main()
