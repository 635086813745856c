//! The verifier pool: the reading thread hands module bodies to `jobs`
//! verifier threads, one at a time, and blocks while all of them are busy.

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, Sender, SyncSender};
use std::sync::Mutex;

use super::cpio::{Limits, Sink, Walked};
use super::error::InitramfsError;
use super::outcome::Progress;
use crate::image::compression::Compression;
use crate::trust::TrustStore;
use crate::verify::{Options, Report};

/// One module body to check.
struct Job {
    id: usize,
    bytes: Vec<u8>,
    formats: Vec<Compression>,
    path: String,
}

/// Buffers kept for reuse are at most this large.
const POOL_BUFFER_MAX: usize = 32 << 20;

/// The reports of every job, by job number (`None`: never checked).
pub(super) type Results = Vec<Option<Vec<Report>>>;

/// The reading thread's end of the verifier pool.
struct PoolSink<'a> {
    jobs: &'a SyncSender<Job>,
    free: &'a Receiver<Vec<u8>>,
    next: &'a AtomicUsize,
    progress: &'a (dyn Fn(Progress) + Sync),
    at: Progress,
}

impl Sink for PoolSink<'_> {
    fn buffer(&mut self) -> Vec<u8> {
        self.free.try_recv().unwrap_or_default()
    }

    fn submit(&mut self, bytes: Vec<u8>, formats: Vec<Compression>, path: &str) -> usize {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        self.at.modules = self.at.modules.saturating_add(1);
        let job = Job {
            id,
            bytes,
            formats,
            path: path.to_owned(),
        };
        // The workers only stop when this sender is dropped, so this cannot
        // fail while the reader runs; a lost job would be reported unchecked.
        let _ = self.jobs.send(job);
        id
    }

    fn progress(&mut self, file_pos: u64) {
        self.at.pos = file_pos;
        (self.progress)(self.at);
    }
}

/// Walks every image on this thread while `jobs` verifier threads check
/// the module bodies it finds; returns each image's walk and every job's
/// reports.
pub(super) fn run(
    images: &[PathBuf],
    trust: &TrustStore,
    opts: &Options,
    jobs: usize,
    limits: &Limits,
    progress: &(dyn Fn(Progress) + Sync),
) -> (Vec<Result<Walked, InitramfsError>>, Results) {
    let next = AtomicUsize::new(0);
    let results: Mutex<Results> = Mutex::new(Vec::new());
    let mut walked = Vec::with_capacity(images.len());
    // A rendezvous channel: a body is handed over only when a worker is
    // ready for it, so at most `jobs + 1` bodies exist at once.
    let (job_tx, job_rx) = sync_channel::<Job>(0);
    let (free_tx, free_rx) = std::sync::mpsc::channel::<Vec<u8>>();
    let job_rx = Mutex::new(job_rx);
    std::thread::scope(|s| {
        for _ in 0..jobs {
            let free_tx = free_tx.clone();
            let (job_rx, results) = (&job_rx, &results);
            s.spawn(move || worker(job_rx, &free_tx, results, trust, opts));
        }
        drop(free_tx);
        let mut at = Progress {
            image: 0,
            images: images.len(),
            pos: 0,
            len: 0,
            modules: 0,
        };
        for (i, image) in images.iter().enumerate() {
            at.image = i;
            at.pos = 0;
            at.len = std::fs::metadata(image).map(|m| m.len()).unwrap_or(0);
            let mut sink = PoolSink {
                jobs: &job_tx,
                free: &free_rx,
                next: &next,
                progress,
                at,
            };
            walked.push(super::file::walk_file(image, &mut sink, limits));
            at = sink.at;
        }
        drop(job_tx);
    });
    (walked, results.into_inner().unwrap_or_default())
}

/// One verifier thread: checks bodies until the reader drops its sender,
/// and hands small buffers back for reuse.
fn worker(
    job_rx: &Mutex<Receiver<Job>>,
    free_tx: &Sender<Vec<u8>>,
    results: &Mutex<Results>,
    trust: &TrustStore,
    opts: &Options,
) {
    loop {
        let job = match job_rx.lock() {
            Ok(rx) => rx.recv(),
            Err(_) => break,
        };
        let Ok(job) = job else { break };
        let reports: Vec<Report> = job
            .formats
            .iter()
            .map(|&f| crate::image::module::verify_bytes(&job.bytes, f, &job.path, trust, opts))
            .collect();
        if let Ok(mut r) = results.lock() {
            if r.len() <= job.id {
                r.resize(job.id.saturating_add(1), None);
            }
            if let Some(slot) = r.get_mut(job.id) {
                *slot = Some(reports);
            }
        }
        let mut bytes = job.bytes;
        if bytes.capacity() <= POOL_BUFFER_MAX {
            bytes.clear();
            let _ = free_tx.send(bytes);
        }
    }
}
