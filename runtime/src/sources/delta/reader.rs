//! One partition of the Delta source: its files of each unit, row by row
//! (docs/delta-source.md §2).
//!
//! A position is `(version, file index in the version, row)`, packed into a
//! [`Position`]: `offset` is `version << 32 | n` (`n`: the partition's rows of the unit
//! before it, which numbers the records' `seq`), `lines` is the snapshot flag (bit 63),
//! the file index (bits 32–62) and the row in the file (bits 0–31).

use std::sync::Arc;

use arrow::array::RecordBatch;
use tidelake_sinks::delta::files::reader::{DataFileBatches, open_data_file};

use super::decode::{Decoder, row_json};
use super::log::{Found, TableLog, Unit};
use crate::dead_letter::Reason;
use crate::sources::files::Outcome;
use crate::sources::{Emitter, PartitionReader, Position, ReadStatus, SourceError};

const SNAPSHOT_FLAG: u64 = 1 << 63;
const LOW: u64 = (1 << 32) - 1;

/// Where a partition reads: see the [module docs](self).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Place {
    pub(super) version: u64,
    pub(super) snapshot: bool,
    /// The file's index among the unit's files.
    pub(super) file: u32,
    /// The row in the file.
    pub(super) row: u64,
    /// The partition's rows of the unit before this one.
    pub(super) n: u64,
}

impl Place {
    /// The start of the snapshot at `version` or of the changes of `version`.
    pub(super) fn start(version: u64, snapshot: bool) -> Self {
        Place {
            version,
            snapshot,
            file: 0,
            row: 0,
            n: 0,
        }
    }

    pub(super) fn position(&self) -> Position {
        let flag = if self.snapshot { SNAPSHOT_FLAG } else { 0 };
        Position {
            offset: self.version << 32 | self.n,
            lines: flag | u64::from(self.file) << 32 | self.row,
        }
    }

    pub(super) fn of(position: Position) -> Self {
        Place {
            version: position.offset >> 32,
            snapshot: position.lines & SNAPSHOT_FLAG != 0,
            file: ((position.lines & !SNAPSHOT_FLAG) >> 32) as u32,
            row: position.lines & LOW,
            n: position.offset & LOW,
        }
    }

    /// The record `seq` of the next row.
    fn seq(&self) -> u64 {
        self.version << 32 | self.n
    }
}

/// The reader of one partition.
pub(super) struct DeltaReader<R> {
    pub(super) log: Arc<TableLog>,
    pub(super) runtime: tokio::runtime::Runtime,
    pub(super) partition: u32,
    pub(super) decoder: Decoder<R>,
    /// The last version a bounded source reads.
    pub(super) end: Option<u64>,
    pub(super) place: Place,
    /// The unit of `place`, once read.
    pub(super) unit: Option<Arc<Unit>>,
    /// The open file of `place`, with its rows decoded but not yet emitted.
    pub(super) file: Option<OpenFile<R>>,
    /// The greatest least event time of the files of the units read to their end.
    pub(super) passed: Option<u64>,
}

/// A data file being read.
pub(super) struct OpenFile<R> {
    batches: DataFileBatches,
    /// The current batch and its records; the next is at `at`.
    batch: Option<(RecordBatch, Vec<Outcome<R>>)>,
    at: usize,
    /// Rows of the file before the current batch.
    before: u64,
    /// For a file whose statistics give no least event time, the least read so far.
    read_min: Option<u64>,
}

/// A fault of reading the table: the job fails naming it.
fn failed(e: impl std::fmt::Display) -> SourceError {
    SourceError::Stopped(e.to_string())
}

/// The error of a unit or file with more rows than a position can number.
fn too_many_rows(place: &Place, partition: u32) -> SourceError {
    SourceError::Stopped(format!(
        "version {} holds more than {LOW} rows for source partition {partition} (or in one file): raise --source-partitions",
        place.version
    ))
}

impl<R> DeltaReader<R> {
    /// The unit of `place`, read if need be; `None` if its version is not committed yet.
    fn unit(&mut self) -> Result<Option<Arc<Unit>>, SourceError> {
        if let Some(unit) = &self.unit {
            return Ok(Some(Arc::clone(unit)));
        }
        let found = self
            .runtime
            .block_on(self.log.unit(self.place.version, self.place.snapshot))?;
        Ok(match found {
            Found::NotYet => None,
            Found::Unit(unit) => Some(Arc::clone(self.unit.insert(unit))),
        })
    }

    /// This partition's files of `unit` from `place.file` on.
    fn files_from<'u>(&self, unit: &'u Unit) -> &'u [u32] {
        let files = &unit.by_partition[self.partition as usize];
        &files[files.partition_point(|&f| f < self.place.file)..]
    }

    /// Past the end of the current unit.
    fn next_unit(&mut self, unit: &Unit) {
        if unit.max_min.is_some() {
            self.passed = self.passed.max(unit.max_min);
        }
        self.place = Place::start(unit.version + 1, false);
        self.unit = None;
        self.file = None;
    }

    fn done(&self) -> bool {
        !self.place.snapshot && self.end.is_some_and(|end| self.place.version > end)
    }
}

impl<R: crate::sources::SourceRecord> PartitionReader<R> for DeltaReader<R> {
    fn first_ts(&mut self) -> Result<Option<u64>, SourceError> {
        if self.done() {
            return Ok(None);
        }
        let Some(unit) = self.unit()? else {
            return Ok(None);
        };
        Ok(self
            .files_from(&unit)
            .first()
            .and_then(|&f| unit.mins[f as usize]))
    }

    fn read(&mut self, max: usize, emit: &mut Emitter<'_, R>) -> Result<ReadStatus, SourceError> {
        let mut budget = max;
        loop {
            if self.done() {
                return Ok(ReadStatus::Done);
            }
            let Some(unit) = self.unit()? else {
                return Ok(ReadStatus::Idle);
            };
            if self.file.is_none() {
                let Some(&next) = self.files_from(&unit).first() else {
                    self.next_unit(&unit);
                    continue;
                };
                if next != self.place.file {
                    self.place.file = next;
                    self.place.row = 0;
                }
                let add = &unit.files[next as usize];
                let batches = self
                    .runtime
                    .block_on(open_data_file(&self.log.table, add, &unit.schema.arrow))
                    .map_err(failed)?;
                // No row of the file is older than its least event time: the partition's
                // watermark moves there as the file is started.
                if let Some(min) = unit.mins[next as usize] {
                    emit.advance_watermark(min);
                }
                self.file = Some(OpenFile {
                    batches,
                    batch: None,
                    at: 0,
                    before: 0,
                    read_min: None,
                });
            }
            if budget == 0 {
                return Ok(ReadStatus::More);
            }
            let stated = unit.mins[self.place.file as usize].is_some();
            let Some(open) = self.file.as_mut() else {
                continue;
            };
            // The next batch holding the row at `place.row`.
            if open
                .batch
                .as_ref()
                .is_none_or(|(b, _)| open.at >= b.num_rows())
            {
                if let Some((b, _)) = open.batch.take() {
                    open.before += b.num_rows() as u64;
                }
                match open.batches.next() {
                    None => {
                        // A file without statistics moves the watermark once it is read.
                        if let Some(min) = open.read_min {
                            emit.advance_watermark(min);
                        }
                        self.file = None;
                        self.place.file += 1;
                        self.place.row = 0;
                        continue;
                    }
                    Some(batch) => {
                        let batch = batch.map_err(failed)?;
                        let rows = batch.num_rows() as u64;
                        if open.before + rows <= self.place.row {
                            // Read before a restore: skipped.
                            open.before += rows;
                            continue;
                        }
                        let decoded = (self.decoder.decode)(&batch).map_err(|e| {
                            failed(format!(
                                "data file {} of version {}: {e}",
                                unit.files[self.place.file as usize].path, unit.version
                            ))
                        })?;
                        open.at = (self.place.row - open.before) as usize;
                        open.batch = Some((batch, decoded));
                    }
                }
            }
            let Some((batch, records)) = open.batch.as_mut() else {
                continue;
            };
            let path = &unit.files[self.place.file as usize].path;
            while open.at < records.len() && budget > 0 {
                if self.place.n >= LOW || self.place.row >= LOW {
                    return Err(too_many_rows(&self.place, self.partition));
                }
                let seq = self.place.seq();
                let row = open.at;
                let outcome = std::mem::replace(&mut records[row], Outcome::Blank);
                let rejected = match outcome {
                    Outcome::Valid(record) => {
                        if !stated {
                            let ts = record.event_time();
                            open.read_min = Some(open.read_min.map_or(ts, |m| m.min(ts)));
                        }
                        emit.record(seq, record)
                            .err()
                            .map(|late| (Reason::Late, late.detail))
                    }
                    Outcome::Invalid(reason, detail) => Some((reason, detail)),
                    Outcome::Blank | Outcome::Header => None,
                };
                if let Some((reason, detail)) = rejected {
                    let raw = row_json(batch, row)
                        .map(|object| serde_json::Value::Object(object).to_string())
                        .unwrap_or_default();
                    emit.reject(
                        seq,
                        None,
                        raw.as_bytes(),
                        reason,
                        format!(
                            "data file {path} (version {}), row {}: {detail}",
                            unit.version, self.place.row
                        ),
                    );
                }
                open.at += 1;
                self.place.row += 1;
                self.place.n += 1;
                budget -= 1;
            }
        }
    }

    fn position(&self) -> Option<Position> {
        Some(self.place.position())
    }

    fn sets_watermark(&self) -> bool {
        true
    }

    fn idle_hold(&self) -> Option<u64> {
        self.passed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn places_round_trip_through_positions_in_reading_order() {
        let places = [
            Place {
                version: 7,
                snapshot: true,
                file: 3,
                row: 12,
                n: 40,
            },
            Place {
                version: 7,
                snapshot: true,
                file: 9,
                row: 0,
                n: 41,
            },
            Place::start(8, false),
            Place {
                version: 8,
                snapshot: false,
                file: (1 << 31) - 1,
                row: LOW - 1,
                n: LOW - 1,
            },
        ];
        for place in places {
            assert_eq!(Place::of(place.position()), place);
        }
        for pair in places.windows(2) {
            assert!(pair[0].position() < pair[1].position(), "{pair:?}");
        }
    }
}
