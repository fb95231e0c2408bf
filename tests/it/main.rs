//! The integration tests: one binary (so a fresh clone links the crate once, not once
//! per file), a module per area. Each drives the real `iclock-sync` binary against our
//! simulators on loopback sockets, or the real services it talks to (SQLite,
//! PostgreSQL, MariaDB, Google's Firestore emulator), and inspects what it leaves
//! behind; `support` holds what they share.

mod support;

mod adms_faults;
mod adms_receiver;
mod adms_third_party;
pub mod api;
mod biotime_auth;
mod biotime_paging;
mod cache_and_lock;
mod cli;
mod crash_safety;
mod dashboard;
mod database_faults;
mod database_servers;
pub mod database_sinks;
mod disk_faults;
mod firestore_credentials;
mod firestore_sink;
mod frappe_sink;
mod frappe_user_control;
mod hostile_devices;
mod https;
mod ledger_migration;
mod ledger_sinks;
mod mongodb_sink;
mod python_tool_crosscheck;
mod pyzk_crosscheck;
pub mod serve;
mod sync_delivery;
mod zk_client;
mod zk_terminals;
