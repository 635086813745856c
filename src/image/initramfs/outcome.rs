//! What `check_images` hands back: reports, a summary per image, and
//! progress while it reads.

use super::member::Member;
use crate::verify::Report;

/// What was found in one image.
#[derive(Debug, Clone)]
pub struct ImageSummary {
    /// The image as given.
    pub path: String,
    /// Its members, in order.
    pub members: Vec<Member>,
    /// cpio entries read.
    pub entries: u64,
    /// Bytes its compressed members decompressed to.
    pub unpacked: u64,
    /// Module entries reported (not counting failure rows for the image).
    pub modules: usize,
    /// The image itself failed (corrupt, truncated, a bomb, unreadable…).
    pub failed: bool,
    /// Things said on standard error that are not failures.
    pub notes: Vec<String>,
}

/// The reports of all images, in order, and a summary per image.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// One per module entry, then one per failure of each image.
    pub reports: Vec<Report>,
    /// One per image.
    pub images: Vec<ImageSummary>,
}

/// How far the reading has got, for a progress display.
#[derive(Debug, Clone, Copy)]
pub struct Progress {
    /// Image number (from 0).
    pub image: usize,
    /// How many images there are.
    pub images: usize,
    /// Bytes of the image file read so far.
    pub pos: u64,
    /// The image file's size.
    pub len: u64,
    /// Module bodies handed to the verifiers so far (all images).
    pub modules: usize,
}
