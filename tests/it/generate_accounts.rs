//! `tidelake generate accounts`: the reference data of the generator's accounts,
//! deterministic from the seed, every change inside the span and of one attribute, and
//! loadable into a Delta table with `tidelake ingest` (read back by delta-rs).

use std::collections::BTreeMap;
use std::path::Path;

use crate::python::Python;
use crate::support::{assert_exit, epoch_ms, tidelake};

const HEADER: &str = "accountId,homeCountry,birthYear,creditLimit,openedAt,validFrom";
const START: &str = "2024-05-01T00:00:00Z";

fn generate(dir: &Path, out: &str, seed: &str) -> String {
    let output = tidelake(
        dir,
        &[
            "generate",
            "accounts",
            "--accounts",
            "3000",
            "--seed",
            seed,
            "--start",
            START,
            "--span",
            "6h",
            "--out",
            out,
        ],
    );
    assert_exit(&output, 0);
    std::fs::read_to_string(dir.join(out)).expect("written")
}

#[test]
fn accounts_are_deterministic_and_change_one_attribute_at_a_time_within_the_span() {
    let dir = tempfile::tempdir().expect("dir");
    let text = generate(dir.path(), "a.csv", "7");
    assert_eq!(
        text,
        generate(dir.path(), "b.csv", "7"),
        "same seed, same file"
    );
    assert_ne!(text, generate(dir.path(), "c.csv", "8"));

    let mut lines = text.lines();
    assert_eq!(lines.next(), Some(HEADER));
    let mut versions: BTreeMap<u64, Vec<Vec<String>>> = BTreeMap::new();
    for line in lines {
        let fields: Vec<String> = line.split(',').map(str::to_owned).collect();
        assert_eq!(fields.len(), 6, "{line}");
        let account = fields[0].parse().expect("decimal account id");
        versions.entry(account).or_default().push(fields);
    }
    assert_eq!(versions.len(), 3000);
    assert_eq!(versions.keys().next_back(), Some(&2999));
    let (start, end) = (epoch_ms(START), epoch_ms(START) + 6 * 3_600_000);
    let mut changed = 0;
    for rows in versions.values() {
        let first = &rows[0];
        assert_eq!(
            first[4], first[5],
            "the first version holds from the opening"
        );
        assert!(epoch_ms(&first[4]) < start);
        assert_eq!(first[1].len(), 2, "ISO 3166 alpha-2: {first:?}");
        changed += usize::from(rows.len() > 1);
        for pair in rows.windows(2) {
            let (before, after) = (&pair[0], &pair[1]);
            let from = epoch_ms(&after[5]);
            assert!((start..end).contains(&from), "{rows:?}");
            assert!(from > epoch_ms(&before[5]), "{rows:?}");
            assert_eq!((&before[2], &before[4]), (&after[2], &after[4]), "{rows:?}");
            let limit = before[3] != after[3];
            let moved = before[1] != after[1];
            assert!(limit ^ moved, "one attribute per change: {rows:?}");
        }
    }
    assert!(
        (200..400).contains(&changed),
        "{changed} of 3000 accounts changed"
    );
}

#[test]
fn accounts_load_into_a_delta_table_with_ingest() {
    let dir = tempfile::tempdir().expect("dir");
    std::fs::create_dir(dir.path().join("accounts")).expect("dir");
    let text = generate(dir.path(), "accounts/accounts.csv", "42");
    let schema = "accountId string, homeCountry string, birthYear int, creditLimit long, \
                  openedAt timestamp, validFrom timestamp";
    let out = tidelake(
        dir.path(),
        &[
            "ingest",
            "--input",
            "accounts",
            "--format",
            "csv",
            "--table",
            "table",
            "--schema",
            schema,
            "--dead-letters",
            "dead.jsonl",
        ],
    );
    assert_exit(&out, 0);
    let read = Python::find().read(&dir.path().join("table").display().to_string(), &[]);
    assert_eq!(read.rows.len(), text.lines().count() - 1);
    assert_eq!(read.schema["accountId"], "string");
    assert_eq!(read.schema["validFrom"], "timestamp[us, tz=UTC]");
    let first = text.lines().nth(1).expect("a row");
    let fields: Vec<&str> = first.split(',').collect();
    let row = read
        .rows
        .iter()
        .find(|r| {
            r["accountId"] == fields[0] && r["validFrom"] == epoch_ms(fields[5]) as i64 * 1000
        })
        .expect("the first row");
    assert_eq!(row["homeCountry"], fields[1]);
    assert_eq!(row["creditLimit"], fields[3].parse::<i64>().expect("limit"));
}
