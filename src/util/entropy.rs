//! Whether the kernel's random pool is ready, and how long the boot waited
//! for it. The TPM session's salt and nonces need fresh randomness; early in
//! a boot on a machine without a credited hardware RNG (RDRAND with
//! `random.trust_cpu`, virtio-rng, a TPM the kernel trusts) the first
//! blocking `getrandom()` waits until the kernel has gathered jitter
//! entropy. The stage waits here, once, so that the wait is reported as
//! what it is and not hidden in the unseal.

use std::time::{Duration, Instant};

use rustix::io::Errno;
use rustix::rand::{getrandom, GetRandomFlags};

/// How the pool was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PoolWait {
    /// Ready at once.
    Ready,
    /// Not ready: the blocking call returned after this long.
    Waited(Duration),
    /// `getrandom()` failed (not interrupted, not "not ready"): the caller's
    /// own use of randomness will fail with its own error.
    Unavailable(Errno),
}

/// Returns at once when the pool is initialised; otherwise blocks until it
/// is, and says for how long.
pub fn wait_for_pool() -> PoolWait {
    let mut byte = [0u8; 1];
    match getrandom(&mut byte[..], GetRandomFlags::NONBLOCK) {
        Ok(_) => return PoolWait::Ready,
        Err(Errno::AGAIN) => {}
        Err(e) => return PoolWait::Unavailable(e),
    }
    let started = Instant::now();
    loop {
        match getrandom(&mut byte[..], GetRandomFlags::empty()) {
            Ok(_) => return PoolWait::Waited(started.elapsed()),
            Err(Errno::INTR) => continue,
            Err(e) => return PoolWait::Unavailable(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_running_system_has_a_ready_pool() {
        // Any host that runs the tests booted long ago.
        assert_eq!(wait_for_pool(), PoolWait::Ready);
    }
}
