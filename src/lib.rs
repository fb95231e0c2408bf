//! iclock-sync: moves attendance punches from ZKTeco devices into the systems people
//! already use, each exactly once. The binary (`main.rs`) is a thin shell over this
//! library, which the integration tests drive directly.
//!
//! The flow (see `sync`): `source` → `normalize` (IDs, plausibility, `quarantine`) →
//! `cache` → every `sink` → record what all acknowledged (`cache`, `audit`,
//! `cursor_store`).

pub mod atomic_file;
pub mod audit;
pub mod cache;
pub mod cache_repair;
pub mod cli;
pub mod commands;
pub mod config;
pub mod crash_point;
pub mod cursor_store;
pub mod device_text;
pub mod duration;
pub mod exit;
pub mod http_client;
pub mod instance_lock;
pub mod normalize;
pub mod output;
pub mod progress;
pub mod punch;
pub mod quarantine;
pub mod report;
pub mod shutdown;
pub mod simulate;
pub mod sink;
pub mod source;
pub mod sync;
pub mod tls;
pub mod user_control;
