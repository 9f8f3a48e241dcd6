//! Model scoring (docs/scoring.md): a fraud classifier trained on the features table
//! (`tidelake train`, [`train`]) and written as a versioned [`file`], scoring every
//! transaction of the features job (`--model`, [`score`]) by the catalog's [`features`].

pub mod alert;
pub mod features;
pub mod file;
pub mod metrics;
pub mod quality;
pub mod score;
pub mod train;

pub use file::{Model, ModelError};
