//! Z-order (Morton) keys: rows ordered along a Z-order curve over one or more columns,
//! so that rows close in every one of the columns share files, and a lookup on any of
//! them skips most files by their min/max stats (docs/semantics.md §6, notes §6).
//!
//! Each row's key is built in two steps:
//!
//! 1. **Per column, an order-preserving 32-bit key**: the rank of the row's value among
//!    a sample of the column's values (arrow's row format, nulls first), scaled to
//!    `0..2^32`. `a < b` gives `key(a) ≤ key(b)` and equal values equal keys, for every
//!    type arrow can compare — strings, integers, timestamps, dates, doubles (in IEEE
//!    total order), booleans, binary. A column of at most [`SAMPLE_SIZE`] values is
//!    sampled whole, so its key is the value's exact rank and distinct values get
//!    distinct keys; a longer one is sampled evenly (reservoir sampling with a fixed
//!    seed, so the same rows give the same keys), and a value's key is its rank among
//!    the sample: a quantile, as Spark's `range_partition_id` does. Being a rank, the
//!    key spreads evenly over its 32 bits whatever the values look like. A key of the
//!    raw value would not: the first bytes of decimal account ids (`"10423"`) or of
//!    timestamps within one day vary in a few bits only, so the interleaving below
//!    would order by one column before the other ever mattered.
//! 2. **Interleaving**: bit 31 of column 0, bit 31 of column 1, …, then bit 30 of each,
//!    down to bit 0: a key of 4 bytes per column, compared as bytes.
//!
//! With a single column the order is a plain sort (by quantile, for a long column).
//! [`ColumnSample`] collects a column's sample batch by batch, [`ZorderKeys`] computes
//! the keys of any batch from the samples; the rows are sorted by them in bounded
//! memory by [`crate::delta::maintenance::external_sort`].

use std::ops::Range;

use arrow::array::ArrayRef;
use arrow::compute::SortOptions;
use arrow::datatypes::DataType;
use arrow::error::ArrowError;
use arrow::row::{RowConverter, SortField};
use rand_core::{Rng, SeedableRng};
use rand_pcg::Pcg64Mcg;

/// Bytes of key per column.
pub const KEY_BYTES: usize = 4;

/// The most values of a column kept to rank its values by: a partition of up to this
/// many rows is ranked exactly; a larger one by quantiles of 1/65,536.
pub const SAMPLE_SIZE: usize = 1 << 16;

/// The seed of the reservoir sampling: a fixed one, so keys are reproducible.
const SAMPLE_SEED: u64 = 0x5EED_2024;

/// Values of one column sampled as they are read (reservoir sampling: each value seen
/// is kept with the same probability), in arrow's row format.
pub struct ColumnSample {
    converter: RowConverter,
    capacity: usize,
    seen: u64,
    values: Vec<Box<[u8]>>,
    rng: Pcg64Mcg,
}

impl ColumnSample {
    /// An empty sample of values of `data_type`, keeping at most `capacity` of them.
    pub fn new(data_type: &DataType, capacity: usize) -> Result<Self, ArrowError> {
        let options = SortOptions {
            descending: false,
            nulls_first: true,
        };
        let field = SortField::new_with_options(data_type.clone(), options);
        Ok(ColumnSample {
            converter: RowConverter::new(vec![field])?,
            capacity: capacity.max(1),
            seen: 0,
            values: Vec::new(),
            rng: Pcg64Mcg::seed_from_u64(SAMPLE_SEED),
        })
    }

    /// Samples the values of `array`.
    pub fn add(&mut self, array: &ArrayRef) -> Result<(), ArrowError> {
        let rows = self
            .converter
            .convert_columns(std::slice::from_ref(array))?;
        for row in rows.iter() {
            self.seen += 1;
            if self.values.len() < self.capacity {
                self.values.push(row.data().into());
            } else {
                let slot = self.rng.next_u64() % self.seen;
                if let Some(value) = self.values.get_mut(slot as usize) {
                    *value = row.data().into();
                }
            }
        }
        Ok(())
    }

    /// The sample, in order.
    pub fn quantiles(mut self) -> Quantiles {
        self.values.sort_unstable();
        let mut bytes = Vec::with_capacity(self.values.iter().map(|v| v.len()).sum());
        let mut values = Vec::with_capacity(self.values.len());
        for value in &self.values {
            let start = bytes.len();
            bytes.extend_from_slice(value);
            values.push(start..bytes.len());
        }
        Quantiles {
            converter: self.converter,
            bytes,
            values,
        }
    }
}

/// A column's sampled values in order ([`ColumnSample::quantiles`]): a value's key is
/// its rank among them.
pub struct Quantiles {
    converter: RowConverter,
    /// The values' row-format bytes, one after the other, in order.
    bytes: Vec<u8>,
    /// Where each value is in `bytes`.
    values: Vec<Range<usize>>,
}

impl Quantiles {
    /// The order-preserving 32-bit key of each value of `array` (see the
    /// [module docs](self)): the number of sampled values at most equal to it, less one,
    /// scaled to `0..2^32`.
    pub fn keys(&self, array: &ArrayRef) -> Result<Vec<u32>, ArrowError> {
        let rows = self
            .converter
            .convert_columns(std::slice::from_ref(array))?;
        let n = self.values.len().max(1) as u64;
        Ok(rows
            .iter()
            .map(|row| {
                let at_most = self
                    .values
                    .partition_point(|v| &self.bytes[v.clone()] <= row.data())
                    as u64;
                ((at_most.saturating_sub(1) << 32) / n) as u32
            })
            .collect())
    }
}

/// Writes the bits of `values` (one key per column) interleaved into `out`, most
/// significant first: bit 31 of each value in order, then bit 30, and so on. `out`
/// holds 4 bytes per value.
pub fn interleave_bits(values: &[u32], out: &mut [u8]) {
    out.fill(0);
    let mut position = 0;
    for bit in (0..32).rev() {
        for value in values {
            if (value >> bit) & 1 == 1 {
                out[position / 8] |= 0x80 >> (position % 8);
            }
            position += 1;
        }
    }
}

/// The Z-order keys of rows, from the quantiles of each column ordered by.
pub struct ZorderKeys {
    columns: Vec<Quantiles>,
}

impl ZorderKeys {
    /// Keys from the samples of the columns, in the order of the curve's columns.
    pub fn new(samples: Vec<ColumnSample>) -> Self {
        ZorderKeys {
            columns: samples.into_iter().map(ColumnSample::quantiles).collect(),
        }
    }

    /// Bytes of key per row: 4 per column.
    pub fn width(&self) -> usize {
        KEY_BYTES * self.columns.len()
    }

    /// The Z-order key of every row of `columns` (one array per column of the curve,
    /// all of one length), [`width`](Self::width) bytes each, one after the other.
    pub fn keys(&self, columns: &[ArrayRef]) -> Result<Vec<u8>, ArrowError> {
        let keys: Vec<Vec<u32>> = self
            .columns
            .iter()
            .zip(columns)
            .map(|(quantiles, column)| quantiles.keys(column))
            .collect::<Result<_, _>>()?;
        let rows = columns.first().map_or(0, |c| c.len());
        let width = self.width();
        let mut out = vec![0; rows * width];
        let mut values = vec![0; keys.len()];
        for (row, key) in out.chunks_exact_mut(width.max(1)).enumerate() {
            for (value, column) in values.iter_mut().zip(&keys) {
                *value = column[row];
            }
            interleave_bits(&values, key);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{
        Array, AsArray, Float64Array, Int64Array, StringArray, TimestampMicrosecondArray,
    };
    use arrow::datatypes::{DataType, Field, Int64Type, Schema};

    use arrow::record_batch::RecordBatch;

    use super::*;
    use crate::delta::maintenance::external_sort::ExternalSort;

    /// A sample of every value of `array`.
    fn whole(array: &ArrayRef) -> ColumnSample {
        let mut sample = ColumnSample::new(array.data_type(), array.len()).expect("sample");
        sample.add(array).expect("add");
        sample
    }

    /// The 32-bit key of each value of `array`, ranked among all of them.
    fn column_keys(array: &ArrayRef) -> Result<Vec<u32>, ArrowError> {
        whole(array).quantiles().keys(array)
    }

    /// The rows of `batch` in Z-order over the columns at `columns`, every value ranked.
    fn sort_by_zorder(batch: &RecordBatch, columns: &[usize]) -> RecordBatch {
        let arrays: Vec<ArrayRef> = columns.iter().map(|&i| batch.column(i).clone()).collect();
        let samples = arrays.iter().map(whole).collect();
        let keys = ZorderKeys::new(samples);
        let dir = tempfile::tempdir().expect("tempdir");
        let mut sort = ExternalSort::new(batch.schema(), keys.width(), 1 << 30, dir.path());
        sort.push(batch.clone(), keys.keys(&arrays).expect("keys"))
            .expect("push");
        let sorted: Vec<RecordBatch> = sort
            .finish()
            .expect("finish")
            .collect::<Result<_, _>>()
            .expect("sorted");
        arrow::compute::concat_batches(&batch.schema(), &sorted).expect("concat")
    }

    fn array(a: impl Array + 'static) -> ArrayRef {
        Arc::new(a)
    }

    /// Asserts that `keys` order like `values`: a < b ⇔ key(a) < key(b).
    fn assert_order_preserved<T: PartialOrd + std::fmt::Debug>(values: &[T], keys: &[u32]) {
        for (i, a) in values.iter().enumerate() {
            for (j, b) in values.iter().enumerate() {
                assert_eq!(
                    a.partial_cmp(b),
                    Some(keys[i].cmp(&keys[j])),
                    "{a:?} vs {b:?}: keys {} and {}",
                    keys[i],
                    keys[j]
                );
            }
        }
    }

    #[test]
    fn each_column_key_preserves_the_order_of_its_values() {
        let ints = [5i64, -3, i64::MIN, 0, 5, i64::MAX, -1];
        let keys = column_keys(&array(Int64Array::from(ints.to_vec()))).expect("keys");
        assert_order_preserved(&ints, &keys);

        // Long common prefixes, unicode, and the empty string: full values count.
        let strings = [
            "account-000000000000000017",
            "account-000000000000000002",
            "",
            "é",
            "account-000000000000000017",
            "b",
            "account-0000000000000000170",
        ];
        let keys = column_keys(&array(StringArray::from(strings.to_vec()))).expect("keys");
        assert_order_preserved(&strings, &keys);

        let doubles = [0.5, -0.0, -7.25, 1e300, -1e-300, 3.0];
        let keys = column_keys(&array(Float64Array::from(doubles.to_vec()))).expect("keys");
        assert_order_preserved(&doubles, &keys);

        let micros = [1_714_521_600_000_000i64, -1, 0, 1_714_521_600_000_001];
        let timestamps = TimestampMicrosecondArray::from(micros.to_vec()).with_timezone("UTC");
        let keys = column_keys(&array(timestamps)).expect("keys");
        assert_order_preserved(&micros, &keys);

        // Nulls come first; the keys use the whole 32-bit range.
        let keys =
            column_keys(&array(Int64Array::from(vec![Some(2), None, Some(1)]))).expect("keys");
        assert!(keys[1] < keys[2] && keys[2] < keys[0], "{keys:?}");
        assert_eq!(keys[1], 0);
        assert!(keys[0] > u32::MAX / 2);
    }

    #[test]
    fn bits_interleave_most_significant_first_across_columns() {
        let mut out = [0u8; 4];
        interleave_bits(&[0x8000_0001], &mut out);
        assert_eq!(out, [0x80, 0, 0, 1], "one column: its big-endian bytes");

        let mut out = [0u8; 8];
        interleave_bits(&[u32::MAX, 0], &mut out);
        assert_eq!(out, [0xAA; 8], "x bits in the even positions");
        interleave_bits(&[0, u32::MAX], &mut out);
        assert_eq!(out, [0x55; 8], "y bits in the odd positions");
        interleave_bits(&[1 << 31, 1], &mut out);
        assert_eq!(out, [0x80, 0, 0, 0, 0, 0, 0, 1]);

        let mut out = [0u8; 12];
        interleave_bits(&[1 << 31, 1 << 31, 1 << 31], &mut out);
        assert_eq!(out[0], 0xE0, "three columns: bit 31 of each, in order");
    }

    #[test]
    fn z_order_clusters_every_column_where_a_sort_clusters_one() {
        // A 64 × 64 grid of (x, y), shuffled; a string column for y.
        let mut cells: Vec<(i64, i64)> =
            (0..64).flat_map(|x| (0..64).map(move |y| (x, y))).collect();
        cells.sort_by_key(|&(x, y)| (x * 7919 + y * 104_729) % 4096);
        let schema = Arc::new(Schema::new(vec![
            Field::new("x", DataType::Int64, false),
            Field::new("y", DataType::Utf8, false),
        ]));
        let batch = RecordBatch::try_new(
            schema,
            vec![
                Arc::new(Int64Array::from_iter_values(cells.iter().map(|c| c.0))),
                Arc::new(StringArray::from_iter_values(
                    cells.iter().map(|c| format!("y{:02}", c.1)),
                )),
            ],
        )
        .expect("batch");
        let sorted = sort_by_zorder(&batch, &[0, 1]);
        assert_eq!(sorted.num_rows(), 4096);
        let x = sorted.column(0).as_primitive::<Int64Type>();
        let y = sorted.column(1).as_string::<i32>();
        // Cut into 16 files of 256 rows: each is a 16 × 16 square, so a lookup on either
        // column reads 4 files of 16 (a sort by x would read 1 for x, 16 for y).
        for file in 0..16 {
            let rows = file * 256..(file + 1) * 256;
            let xs: Vec<i64> = rows.clone().map(|i| x.value(i)).collect();
            let ys: Vec<&str> = rows.map(|i| y.value(i)).collect();
            let span = |min: i64, max: i64| max - min + 1;
            let x_span = span(*xs.iter().min().expect("x"), *xs.iter().max().expect("x"));
            let y_num = |s: &str| s[1..].parse::<i64>().expect("y");
            let y_span = span(
                ys.iter().map(|s| y_num(s)).min().expect("y"),
                ys.iter().map(|s| y_num(s)).max().expect("y"),
            );
            assert_eq!((x_span, y_span), (16, 16), "file {file}");
        }

        let by_x = sort_by_zorder(&batch, &[0]);
        let x = by_x.column(0).as_primitive::<Int64Type>();
        assert!(
            x.values().windows(2).all(|w| w[0] <= w[1]),
            "one column: a sort"
        );
    }

    #[test]
    fn a_long_column_is_keyed_by_quantiles_in_order_and_evenly() {
        // 300,000 distinct ids, shuffled, read in batches: more than the sample holds.
        let n: u64 = 300_000;
        let ids: Vec<String> = (0..n)
            .map(|i| format!("acct_{:07}", i.wrapping_mul(7_919) % n))
            .collect();
        let batches: Vec<ArrayRef> = ids
            .chunks(8192)
            .map(|c| Arc::new(StringArray::from(c.to_vec())) as ArrayRef)
            .collect();
        let sample = || {
            let mut sample =
                ColumnSample::new(&arrow::datatypes::DataType::Utf8, SAMPLE_SIZE).expect("new");
            for batch in &batches {
                sample.add(batch).expect("add");
            }
            ZorderKeys::new(vec![sample])
        };
        let keys = sample();
        let all = Arc::new(StringArray::from(ids.clone())) as ArrayRef;
        let bytes = keys.keys(std::slice::from_ref(&all)).expect("keys");
        let key = |i: usize| u32::from_be_bytes(bytes[i * 4..i * 4 + 4].try_into().expect("4"));
        // In order: a larger id never gets a smaller key.
        let mut by_id: Vec<(u64, u32)> = (0..ids.len())
            .map(|i| (ids[i][5..].parse::<u64>().expect("id"), key(i)))
            .collect();
        by_id.sort();
        assert!(by_id.windows(2).all(|w| w[0].1 <= w[1].1));
        // Evenly: the id of rank r gets about r/n of the range, within 2%.
        for &(id, k) in by_id.iter().step_by(9_973) {
            let share = f64::from(k) / 2f64.powi(32);
            let rank = id as f64 / n as f64;
            assert!(
                (share - rank).abs() < 0.02,
                "id {id}: key share {share}, rank {rank}"
            );
        }
        // Reproducible: the same rows give the same keys.
        assert_eq!(
            sample().keys(std::slice::from_ref(&all)).expect("keys"),
            bytes
        );
    }
}
