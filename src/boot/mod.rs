//! `modseal boot`: the initramfs flow, runnable on a host.
//!
//! Unseal and check the trust bundle, verify every module file, check the
//! module-loading configuration and every loaded module (taint flags, a
//! verified file of its name), then measure the outcome (failures too) into
//! the PCR with a matching event-log record ([`run_stage`]). `predict`
//! builds the same records from the same code ([`predicted_contents`]).
//!
//! The mode and PCR are sealed with the trust bundle; the kernel command
//! line and flags may change them only within that policy ([`resolve`]).

mod cmdline;
mod config;
mod derived;
mod error;
mod findings;
mod loaded;
pub mod modprobe;
mod names;
mod policy;
mod predict;
mod stage;
mod system;
pub mod taint;

pub use cmdline::{
    cmdline_last, cmdline_params, parse_cmdline_pcr, read_cmdline, shell_options, BootMode,
    CMDLINE_MODE, CMDLINE_PCR,
};
pub use config::{
    Config, DEFAULT_CONFIG, DEFAULT_DERIVED, DEFAULT_LOG, DEFAULT_PCR, DEFAULT_SEALED,
    DEFAULT_TRUST,
};
pub use error::{BootError, ConfigError};
pub use loaded::{config_checks, module_config};
pub use names::module_name;
pub use policy::{refuse_tcti, resolve, sealed_mode, Policy, Requests, OFF_NOTICE};
pub use predict::{predicted_contents, predicted_pcr, PredictInput};
pub use stage::{
    bundle_trust, run_stage, sealed_options, stage_content, verify_tree, Findings, Outcome,
    StageEnd, StageInput,
};
pub use system::{
    in_initramfs, kernel_module_dir, kernel_release, module_dir_conflict, RootUnderneath,
};
