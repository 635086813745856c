//! Files as they are stored: decompression, kernel images, initramfs
//! archives and module trees.

pub mod authenticode;
pub mod compression;
pub mod decompress;
pub mod derive;
pub mod initramfs;
pub mod kernel_image;
pub mod module;
pub mod pe;
pub mod walk;
