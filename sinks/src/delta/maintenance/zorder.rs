//! Z-order (Morton) keys: rows ordered along a Z-order curve over one or more columns,
//! so that rows close in every one of the columns share files, and a lookup on any of
//! them skips most files by their min/max stats (docs/semantics.md §6, notes §6).
//!
//! Each row's key is built in two steps:
//!
//! 1. **Per column, an order-preserving 32-bit key**: the rank of the row's value among
//!    the values being ordered (arrow's `rank` kernel, on full values, nulls first),
//!    scaled to `0..2^32`. `a < b` gives `key(a) < key(b)` and equal values equal keys,
//!    for every type arrow can rank — strings, integers, timestamps, dates, doubles
//!    (in IEEE total order), booleans, binary. Being a rank, the key spreads evenly
//!    over its 32 bits whatever the values look like, as Spark's `range_partition_id`
//!    does. A key of the raw value would not: the first bytes of decimal account ids
//!    (`"10423"`) or of timestamps within one day vary in a few bits only, so the
//!    interleaving below would order by one column before the other ever mattered.
//! 2. **Interleaving**: bit 31 of column 0, bit 31 of column 1, …, then bit 30 of each,
//!    down to bit 0: a key of 4 bytes per column, compared as bytes.
//!
//! With a single column the order is a plain sort. [`sort_by_zorder`] sorts a batch by
//! the keys (stable, with arrow's `take`); cutting the result into files is the
//! caller's business.

use arrow::array::{Array, ArrayRef, UInt32Array};
use arrow::compute::{SortOptions, rank, take_record_batch};
use arrow::error::ArrowError;
use arrow::record_batch::RecordBatch;

/// Bytes of key per column.
const KEY_BYTES: usize = 4;

/// The order-preserving 32-bit key of each value of `array` (see the
/// [module docs](self)): its rank among `array`'s values, nulls first, scaled to
/// `0..2^32`.
pub fn column_keys(array: &dyn Array) -> Result<Vec<u32>, ArrowError> {
    let options = SortOptions {
        descending: false,
        nulls_first: true,
    };
    // Ranks run from 1 to n; equal values share the highest of their ranks.
    let ranks = rank(array, Some(options))?;
    let n = ranks.len().max(1) as u64;
    Ok(ranks
        .into_iter()
        .map(|r| ((u64::from(r.saturating_sub(1)) << 32) / n) as u32)
        .collect())
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

/// The Z-order key of every row of `columns` (all of one length), `4 × columns`
/// bytes each, laid out one after the other.
pub fn zorder_keys(columns: &[ArrayRef]) -> Result<Vec<u8>, ArrowError> {
    let keys: Vec<Vec<u32>> = columns
        .iter()
        .map(|c| column_keys(c.as_ref()))
        .collect::<Result<_, _>>()?;
    let rows = columns.first().map_or(0, |c| c.len());
    let width = KEY_BYTES * columns.len();
    let mut out = vec![0; rows * width];
    let mut values = vec![0; columns.len()];
    for (row, key) in out.chunks_exact_mut(width.max(1)).enumerate() {
        for (value, column) in values.iter_mut().zip(&keys) {
            *value = column[row];
        }
        interleave_bits(&values, key);
    }
    Ok(out)
}

/// The rows of `batch` in Z-order over the columns at `columns` (indices into the
/// batch's columns); rows with equal keys keep their order.
pub fn sort_by_zorder(batch: &RecordBatch, columns: &[usize]) -> Result<RecordBatch, ArrowError> {
    let arrays: Vec<ArrayRef> = columns.iter().map(|&i| batch.column(i).clone()).collect();
    let keys = zorder_keys(&arrays)?;
    let width = KEY_BYTES * columns.len();
    let rows = u32::try_from(batch.num_rows()).map_err(|_| {
        ArrowError::ComputeError(format!(
            "{} rows are too many to z-order at once",
            batch.num_rows()
        ))
    })?;
    let mut order: Vec<u32> = (0..rows).collect();
    let key = |row: u32| &keys[row as usize * width..(row as usize + 1) * width];
    order.sort_by(|&a, &b| key(a).cmp(key(b)));
    take_record_batch(batch, &UInt32Array::from(order))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{AsArray, Float64Array, Int64Array, StringArray, TimestampMicrosecondArray};
    use arrow::datatypes::{DataType, Field, Int64Type, Schema};

    use super::*;

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
        let keys = column_keys(&Int64Array::from(ints.to_vec())).expect("keys");
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
        let keys = column_keys(&StringArray::from(strings.to_vec())).expect("keys");
        assert_order_preserved(&strings, &keys);

        let doubles = [0.5, -0.0, -7.25, 1e300, -1e-300, 3.0];
        let keys = column_keys(&Float64Array::from(doubles.to_vec())).expect("keys");
        assert_order_preserved(&doubles, &keys);

        let micros = [1_714_521_600_000_000i64, -1, 0, 1_714_521_600_000_001];
        let array = TimestampMicrosecondArray::from(micros.to_vec()).with_timezone("UTC");
        let keys = column_keys(&array).expect("keys");
        assert_order_preserved(&micros, &keys);

        // Nulls come first; the keys use the whole 32-bit range.
        let keys = column_keys(&Int64Array::from(vec![Some(2), None, Some(1)])).expect("keys");
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
        let sorted = sort_by_zorder(&batch, &[0, 1]).expect("sort");
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

        let by_x = sort_by_zorder(&batch, &[0]).expect("sort");
        let x = by_x.column(0).as_primitive::<Int64Type>();
        assert!(
            x.values().windows(2).all(|w| w[0] <= w[1]),
            "one column: a sort"
        );
    }
}
