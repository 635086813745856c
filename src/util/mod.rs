//! The bottom layer: hex, PEM, capped file reads, atomic writes, the kernel
//! log, clipped text for messages. One of each.

pub mod fs;
pub mod hex;
pub mod kmsg;
pub mod pem;
pub mod read;
pub mod text;
