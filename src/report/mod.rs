//! Report model and one exporter per output format.

pub mod writer;
