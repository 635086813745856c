//! `modseal boot`: the initramfs flow, runnable on a host.
//!
//! Unseal and check the trust bundle, verify every module file, at pre-pivot
//! reconcile the loaded modules, then measure the outcome (failures too) into
//! the PCR with a matching event-log record ([`run_stage`]). `predict`
//! builds the same records from the same code ([`predicted_contents`]).
//!
//! The mode and PCR come from, lowest precedence first: built-in defaults,
//! the config file ([`Config`]), the kernel command line (`rd.modseal=`,
//! `rd.modseal.pcr=`, see [`resolve`]), explicit `--mode` / `--pcr` flags.

mod cmdline;
mod config;
mod error;
pub mod modprobe;
mod predict;
mod reconcile;
mod stage;
pub mod taint;

pub use cmdline::{
    cmdline_last, cmdline_mode_allowed, cmdline_params, parse_cmdline_pcr, read_cmdline, resolve,
    BootMode, Resolved, CMDLINE_MODE, CMDLINE_PCR, OFF_NOTICE,
};
pub use config::{Config, DEFAULT_CONFIG, DEFAULT_LOG, DEFAULT_PCR, DEFAULT_SEALED, DEFAULT_TRUST};
pub use error::{BootError, ConfigError};
pub use predict::{predicted_contents, predicted_pcr, PredictInput};
pub use reconcile::{module_name, read_proc_modules, reconcile};
pub use stage::{
    bundle_trust, run_stage, stage_content, verify_tree, Findings, Outcome, StageInput,
};
