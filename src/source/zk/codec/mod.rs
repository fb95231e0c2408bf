//! The ZK binary protocol (TCP/UDP port 4370), written once and used by both the client
//! and the terminal simulator, so the simulator is not a second, drifting copy. Every
//! function here is pure and total: truncated, oversized or hostile bytes give an error
//! or a best-effort value, never a panic (each module has property tests for that).
//! Layouts and vectors follow `docs/zk-protocol.md`.

pub mod attendance;
pub mod commkey;
pub mod counters;
pub mod event;
pub mod le;
pub mod messages;
pub mod packet;
pub mod time;
pub mod users;
