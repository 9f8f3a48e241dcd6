//! Model scoring (docs/scoring.md): a fraud classifier trained on the features table
//! (`tidelake train`), scoring every transaction of the features job (`--model`).

pub mod metrics;
