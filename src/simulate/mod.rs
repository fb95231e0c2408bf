//! Device simulators: real servers on local ports that behave as the specs in
//! `spec/protocols.md` record, used by `demo`, the integration tests and the benchmarks.
//! They share no parsing code with the connectors, so a connector bug is not mirrored
//! by the simulator and hidden.

pub mod biotime;
pub mod frappe;
pub mod random;
pub mod zk;
