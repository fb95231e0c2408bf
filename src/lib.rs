//! iclock-sync: moves attendance punches from ZKTeco devices into the systems people
//! already use, each exactly once. The binary (`main.rs`) is a thin shell over this
//! library, which the integration tests drive directly.
//!
//! The flow (see `sync`): `source` → `normalize` (IDs, plausibility, `quarantine`) →
//! `ledger` (each punch journaled once, with the device's cursor, and a pending
//! delivery per sink) → each `sink` drains its own deliveries → what every sink has is
//! exported to the Python tool's files (`cache`, `audit`).
//!
//! # Layout
//!
//! | module | what |
//! |---|---|
//! | `cli`, `commands` | the command line, one file per subcommand; signals handled there |
//! | `config` | loading `iclock-sync.toml` and `.env`; a table of kinds hands each section to its source or sink; shared types (`ConfigError`, `Secret`, `section`) import nothing else |
//! | `source` | where punches come from: `zk` (terminals, port 4370), `biotime` (the REST API) |
//! | `adms` | terminals that push (the iclock PUSH protocol): the punch line, the handshake |
//! | `sink` | where they go: `sqlite`, `firestore`, `frappe`; each answers per punch |
//! | `sync` | the engine: a cycle over devices and sinks, hosted by whoever passes it a shutdown and an observer |
//! | `normalize`, `punch`, `device_text` | from a source's record to a `Punch` with its ID, or to the quarantine |
//! | `ledger` | the tool's own state in one SQLite file: punches, deliveries per sink, devices, quarantine, cycles |
//! | `cache`, `cache_repair`, `audit`, `cursor_store`, `quarantine`, `atomic_file`, `instance_lock` | the files kept for the Python tool and for people (`cursor_store` only imports the old cursors), and how safely they are written |
//! | `memory` | how the process allocates: one malloc arena |
//! | `report`, `output`, `progress` | the summary, JSON, the progress line |
//! | `http_client`, `http_server`, `tls` | one way to build HTTP clients, one accept loop for what `serve` listens on (limits, timeouts, graceful stop), one crypto provider, HTTPS for what we serve |
//! | `simulate` | terminal, BioTime and Frappe simulators for the demo, tests and benchmarks |
//! | `user_control` | switching people on and off after their checkins, and undoing it |
//! | `web`, `events` | `serve`'s dashboard, HTTP API, health and metrics; what happens, for live watchers |
//!
//! The protocols the code relies on are described in `docs/`.

pub mod adms;
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
pub mod events;
pub mod exit;
pub mod http_client;
pub mod http_server;
pub mod instance_lock;
pub mod ledger;
pub mod memory;
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
pub mod web;
