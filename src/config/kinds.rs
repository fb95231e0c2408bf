//! The table from a configured kind to the module that reads and builds it: the one
//! place a new source or sink is added. Each kind owns its keys, their checks and the
//! construction of its component (see [`crate::source::DeviceKind`] and
//! [`crate::sink::SinkKind`]).

use crate::adms;
use crate::sink::{self, SinkKind};
use crate::source::{self, DeviceKind};

/// `kind = "…"` of a `[[device]]`.
pub const DEVICES: &[DeviceKind] = &[source::zk::KIND, source::biotime::KIND, adms::device::KIND];

/// `[sink.NAME]`.
pub const SINKS: &[SinkKind] = &[
    sink::sqlite::KIND,
    sink::firestore::KIND,
    sink::frappe::KIND,
    sink::sql::POSTGRES,
    sink::sql::MYSQL,
    sink::mongodb::KIND,
];
