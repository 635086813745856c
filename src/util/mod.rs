//! The bottom layer: hex, files (capped reads, atomic writes), the kernel log.

pub mod fs;
pub mod hex;
pub mod kmsg;
