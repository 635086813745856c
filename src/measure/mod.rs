//! What modseal measures: the stage record, the event log and its replay.

mod record;

pub use record::*;
