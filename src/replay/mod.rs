//! Replay of recorded traffic.

pub mod record;
