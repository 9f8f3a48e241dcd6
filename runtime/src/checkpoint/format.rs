//! The binary format of checkpoint files (docs/checkpoints.md §4).
//!
//! Every file is one frame:
//!
//! | bytes | what |
//! |---|---|
//! | 8 | magic: `TLCKPART` (a worker's parts) or `TLCKMANI` (a manifest) |
//! | 4 | format version, u32 little-endian ([`FORMAT_VERSION`]) |
//! | 8 | payload length `n`, u64 little-endian |
//! | n | payload: the list of [`Part`]s or the [`Manifest`] in bincode 1 (fixed-width little-endian integers, u64 length prefixes) |
//! | 4 | CRC-32C (Castagnoli) of the payload, u32 little-endian |
//!
//! A reader refuses a frame whose magic, length or checksum is wrong, and one whose
//! version is newer than its own ([`CheckpointError::FutureVersion`]).

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::{CheckpointError, Manifest, Part};

/// The format version this tidelake writes and the newest it reads. Format 2 is
/// format 1 whose fraud states leave the clean-up timer's time empty (the key's timers
/// hold it): this tidelake reads both, one that reads only format 1 refuses it.
pub const FORMAT_VERSION: u32 = 2;

/// The magic number of a worker's part.
pub const PART_MAGIC: &[u8; 8] = b"TLCKPART";
/// The magic number of a manifest.
pub const MANIFEST_MAGIC: &[u8; 8] = b"TLCKMANI";

const HEADER: usize = 8 + 4 + 8;
const TRAILER: usize = 4;
const CRC32C: crc::Crc<u32> = crc::Crc::<u32>::new(&crc::CRC_32_ISCSI);

/// The CRC-32C of `bytes`, as manifests record it for whole part files.
pub fn crc32c(bytes: &[u8]) -> u32 {
    CRC32C.checksum(bytes)
}

/// One worker's parts (for successive ranges of boundaries) as the bytes of a file.
pub fn encode_parts(parts: &[Part]) -> Vec<u8> {
    encode(PART_MAGIC, &parts)
}

/// A manifest as the bytes of its file.
pub fn encode_manifest(manifest: &Manifest) -> Vec<u8> {
    encode(MANIFEST_MAGIC, manifest)
}

/// The parts in the bytes of `file`.
pub fn decode_parts(file: &str, bytes: &[u8]) -> Result<Vec<Part>, CheckpointError> {
    decode(PART_MAGIC, file, bytes)
}

/// The manifest in the bytes of `file`.
pub fn decode_manifest(file: &str, bytes: &[u8]) -> Result<Manifest, CheckpointError> {
    decode(MANIFEST_MAGIC, file, bytes)
}

fn encode<T: Serialize>(magic: &[u8; 8], value: &T) -> Vec<u8> {
    // Our own types into memory: bincode cannot fail on them.
    let payload = bincode::serialize(value).unwrap_or_default();
    let mut out = Vec::with_capacity(HEADER + payload.len() + TRAILER);
    out.extend_from_slice(magic);
    out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
    out.extend_from_slice(&(payload.len() as u64).to_le_bytes());
    out.extend_from_slice(&payload);
    out.extend_from_slice(&crc32c(&payload).to_le_bytes());
    out
}

fn decode<T: DeserializeOwned>(
    magic: &[u8; 8],
    file: &str,
    bytes: &[u8],
) -> Result<T, CheckpointError> {
    let corrupt = |reason: String| CheckpointError::Corrupt {
        file: file.to_owned(),
        reason,
    };
    if bytes.len() < HEADER + TRAILER {
        return Err(corrupt(format!(
            "{} bytes, shorter than a frame's {} bytes of header and trailer",
            bytes.len(),
            HEADER + TRAILER
        )));
    }
    if &bytes[..8] != magic {
        return Err(corrupt(format!(
            "magic number {:?}, expected {:?}",
            String::from_utf8_lossy(&bytes[..8]),
            String::from_utf8_lossy(magic)
        )));
    }
    let version = u32::from_le_bytes(bytes[8..12].try_into().unwrap_or_default());
    if version > FORMAT_VERSION {
        return Err(CheckpointError::FutureVersion {
            file: file.to_owned(),
            version,
        });
    }
    if version == 0 {
        return Err(corrupt("format version 0".to_owned()));
    }
    let length = u64::from_le_bytes(bytes[12..20].try_into().unwrap_or_default());
    let expected = (HEADER + TRAILER) as u64 + length;
    if bytes.len() as u64 != expected {
        return Err(corrupt(format!(
            "{} bytes where its header gives {expected} (truncated or extended)",
            bytes.len()
        )));
    }
    let payload = &bytes[HEADER..bytes.len() - TRAILER];
    let stored = u32::from_le_bytes(
        bytes[bytes.len() - TRAILER..]
            .try_into()
            .unwrap_or_default(),
    );
    let computed = crc32c(payload);
    if stored != computed {
        return Err(corrupt(format!(
            "checksum {computed:#010x} of the payload, the file records {stored:#010x}"
        )));
    }
    bincode::deserialize(payload).map_err(|e| corrupt(format!("bad payload: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checkpoint::{
        GroupSnapshot, Kind, Layout, OperatorState, OutputLength, PartEntry, PartitionState,
        Position,
    };

    fn part() -> Part {
        Part {
            worker: 3,
            range: (50_000, 60_000),
            sources: vec![PartitionState {
                partition: 1,
                resume: Position {
                    offset: 1_024,
                    lines: 40,
                },
                max_ts: Some(59_000),
                read_until: Position {
                    offset: 2_048,
                    lines: 80,
                },
                done: false,
            }],
            operators: vec![OperatorState {
                operator: "FraudDetector#0".to_owned(),
                groups: vec![GroupSnapshot {
                    group: 7,
                    keys: 2,
                    timers: 1,
                    entries: vec![1, 2, 3],
                }],
            }],
            outputs: vec![OutputLength {
                output: "alerts".to_owned(),
                bytes: 300,
                lines: 3,
            }],
        }
    }

    #[test]
    fn parts_and_manifests_round_trip() {
        let part = part();
        let bytes = encode_parts(std::slice::from_ref(&part));
        assert_eq!(&bytes[..8], b"TLCKPART");
        assert_eq!(decode_parts("p", &bytes).expect("decodes"), vec![part]);
        let manifest = Manifest {
            id: 2,
            kind: Kind::Savepoint,
            job_id: "job".to_owned(),
            attempt: 1,
            rule_time: 60_000,
            created_ms: 1_700_000_000_000,
            settings: vec![("--rule".to_owned(), "fraud".to_owned())],
            layout: Layout {
                processes: 2,
                workers: 2,
                key_groups: 128,
            },
            parts: vec![PartEntry {
                worker: 0,
                file: "part-00000.tlck".to_owned(),
                size: bytes.len() as u64,
                crc32c: crc32c(&bytes),
                index: 0,
                range: (50_000, 60_000),
            }],
        };
        let encoded = encode_manifest(&manifest);
        assert_eq!(decode_manifest("m", &encoded).expect("decodes"), manifest);
        let err = decode_parts("m", &encoded).expect_err("a manifest is not a part");
        assert!(err.to_string().contains("magic number"), "{err}");
    }

    #[test]
    fn damaged_frames_are_refused_naming_the_file_and_why() {
        let bytes = encode_parts(&[part()]);
        let cases: Vec<(Vec<u8>, &str)> = vec![
            (bytes[..bytes.len() - 1].to_vec(), "truncated"),
            (bytes[..10].to_vec(), "shorter than a frame"),
            (
                {
                    let mut b = bytes.clone();
                    b[HEADER + 2] ^= 0xff;
                    b
                },
                "checksum",
            ),
            (
                {
                    let mut b = bytes.clone();
                    b.push(0);
                    b
                },
                "extended",
            ),
        ];
        for (damaged, why) in cases {
            let err = decode_parts("parts/a1-w3.tlck", &damaged).expect_err(why);
            let text = err.to_string();
            assert!(
                text.contains("parts/a1-w3.tlck") && text.contains(why),
                "{why}: {text}"
            );
        }
    }

    #[test]
    fn a_newer_format_version_is_refused_as_such() {
        let mut bytes = encode_parts(&[part()]);
        bytes[8..12].copy_from_slice(&(FORMAT_VERSION + 1).to_le_bytes());
        let err = decode_parts("f", &bytes).expect_err("future");
        assert!(
            matches!(err, CheckpointError::FutureVersion { version, .. } if version == FORMAT_VERSION + 1),
            "{err}"
        );
    }

    #[test]
    fn the_checksum_is_crc32c() {
        // The check value of CRC-32C (RFC 3720 §B.4): "123456789" → 0xE3069283.
        assert_eq!(crc32c(b"123456789"), 0xE306_9283);
    }
}
