//! How data files are written: target size, codec and batch size.

use parquet::basic::ZstdLevel;

/// The compression codec of data files.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Codec {
    /// Zstandard at the given level (1–22; parquet's default is 1). What the Delta
    /// protocol says writers should default to; files are named `*.zstd.parquet`.
    Zstd {
        /// The compression level.
        level: i32,
    },
    /// Snappy, the conventional choice of Spark; files are named `*.snappy.parquet`.
    Snappy,
}

impl Default for Codec {
    fn default() -> Self {
        Codec::Zstd {
            level: ZstdLevel::default().compression_level(),
        }
    }
}

impl Codec {
    /// The end of a data file's name: `zstd.parquet` or `snappy.parquet`.
    pub fn suffix(self) -> &'static str {
        match self {
            Codec::Zstd { .. } => "zstd.parquet",
            Codec::Snappy => "snappy.parquet",
        }
    }
}

/// How data files are written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WriterOptions {
    /// A file is completed and uploaded once its estimated encoded size reaches this
    /// many bytes (default 128 MiB). The estimate counts the page being encoded at its
    /// uncompressed size, so with targets of a few pages files come out smaller.
    pub target_file_size: usize,
    /// The compression codec (default zstd).
    pub codec: Codec,
    /// Rows buffered per partition in Arrow builders before they are encoded as one
    /// batch (default 8192); the target size is checked after each batch.
    pub batch_rows: usize,
}

impl Default for WriterOptions {
    fn default() -> Self {
        WriterOptions {
            target_file_size: 128 * 1024 * 1024,
            codec: Codec::default(),
            batch_rows: 8192,
        }
    }
}
