//! The bottom layer: hex, PEM, capped file reads, atomic writes, the kernel
//! log, the enforce-mode halt, clipped text for messages. One of each.

pub mod entropy;
pub mod fs;
pub mod halt;
pub mod hex;
pub mod kmsg;
pub mod pem;
pub mod read;
pub mod text;
