//! One module per subcommand; each returns the process's [`crate::exit::Exit`].

pub mod build_cache;
pub mod demo;
pub mod devices;
pub mod init;
pub mod signals;
pub mod simulate;
pub mod sync;
pub mod user_control;
