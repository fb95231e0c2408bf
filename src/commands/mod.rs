//! One module per subcommand; each returns the process's [`crate::exit::Exit`].

pub mod adms;
pub mod backfill;
pub mod build_cache;
pub mod db;
pub mod demo;
pub mod devices;
pub mod init;
mod ledger;
pub mod punches;
pub mod retry;
pub mod serve;
pub mod signals;
pub mod simulate;
pub mod status;
pub mod sync;
pub mod user_control;
