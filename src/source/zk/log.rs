//! What one read of a terminal's log becomes: the records handed to the cycle, and the
//! cursor that lets the next read skip the history already handled.
//!
//! The cursor is the number of records at the start of the log that were handled and
//! a SHA-256 of exactly those bytes. A later read covers that prefix only if it still
//! starts with the same bytes — after the log is cleared, or on another terminal, it
//! does not, and everything is read again (the dedup cache keeps that cheap).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::codec::attendance::{self, AttendanceLayout, AttendanceRecord, Identity};
use super::codec::users::UserRecord;
use crate::punch::SourceKind;
use crate::source::{Fetched, RecordTime, SourceRecord};

/// Where the next read starts.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct LogCursor {
    serial: String,
    record_size: usize,
    records: usize,
    prefix_sha256: String,
}

impl LogCursor {
    /// How many records at the start of `read` this cursor covers.
    pub fn covers(&self, read: &LogRead) -> usize {
        let size = read.layout.size();
        match read.records().get(..self.records * size) {
            Some(prefix)
                if self.serial == *read.serial
                    && self.record_size == size
                    && sha256_hex(prefix) == self.prefix_sha256 =>
            {
                self.records
            }
            _ => 0,
        }
    }

    /// The cursor once the first `handled` records of `read` are handled.
    pub fn after(read: &LogRead, handled: usize) -> LogCursor {
        let size = read.layout.size();
        LogCursor {
            serial: read.serial.to_string(),
            record_size: size,
            records: handled,
            prefix_sha256: sha256_hex(read.records().get(..handled * size).unwrap_or_default()),
        }
    }
}

/// One read of the log, kept until the cycle settles.
pub(super) struct LogRead {
    pub serial: Arc<str>,
    pub layout: AttendanceLayout,
    /// The whole buffer as read (`u32 total` then the records).
    pub buffer: Vec<u8>,
    pub users: UserTable,
    /// Records at the start that the cursor already covered.
    pub skipped: usize,
    /// Records passed on this cycle, after the skipped ones.
    pub sent: usize,
    /// The terminal's punch counter at the time of the read.
    pub counted: u32,
    /// Read for a `--since` window: only part of it was passed on.
    pub window: bool,
    /// The terminal's clock minus the host's, in seconds, when it answered.
    pub clock_drift: Option<i64>,
}

impl LogRead {
    pub fn records(&self) -> &[u8] {
        attendance::split_log(&self.buffer).unwrap_or_default()
    }

    pub fn record_count(&self) -> usize {
        self.records().len() / self.layout.size()
    }

    /// Record `index` as the cycle receives it.
    pub fn fetched(&self, index: usize) -> Fetched {
        let size = self.layout.size();
        let bytes = self
            .records()
            .get(index * size..(index + 1) * size)
            .unwrap_or_default();
        let record = attendance::decode_record(bytes, self.layout);
        let serial = &self.serial;
        let user_id = match &record.identity {
            Identity::Pin(pin) if matches!(self.layout, AttendanceLayout::Extended { .. }) => {
                self.users.pin_of_number(pin)
            }
            Identity::Pin(pin) => pin.clone(),
            Identity::Index(uid) => match self.users.by_uid.get(uid) {
                Some(user_id) => user_id.clone(),
                None => {
                    return Fetched::Undecodable {
                        source_key: format!("zk:{serial}:uid{uid}:{:08x}", record.time.to_packed()),
                        reason: format!(
                            "user index {uid} is not in the terminal's user table (a deleted user?), so the PIN cannot be known"
                        ),
                        raw: describe_raw(index, bytes, self.layout),
                    };
                }
            },
        };
        let time = match record.time.to_datetime() {
            Some(time) => RecordTime::Valid(time),
            None => RecordTime::Invalid(record.time.text()),
        };
        Fetched::Record(SourceRecord {
            source: SourceKind::Zk,
            source_key: source_key(serial, &user_id, &record),
            serial: Arc::clone(serial),
            terminal: crate::punch::unnamed_terminal(),
            user_id,
            time,
            state: i32::from(record.state),
            verify_mode: i32::from(record.verify),
            work_code: match self.layout {
                AttendanceLayout::Extended { .. } => record.work_code.to_string(),
                _ => String::new(),
            },
        })
    }
}

/// The terminal's users, for records that name users by number.
#[derive(Debug, Default)]
pub(super) struct UserTable {
    by_uid: HashMap<u16, String>,
    pins: HashSet<String>,
}

impl From<Vec<UserRecord>> for UserTable {
    fn from(users: Vec<UserRecord>) -> UserTable {
        UserTable {
            pins: users.iter().map(|user| user.user_id.clone()).collect(),
            by_uid: users
                .into_iter()
                .map(|user| (user.uid, user.user_id))
                .collect(),
        }
    }
}

impl UserTable {
    /// A 16-byte record's number is the PIN on most firmware and the user index on
    /// some; it is read as pyzk reads it: a PIN if a user has it, else an index if a
    /// user has that, else the number itself.
    fn pin_of_number(&self, number: &str) -> String {
        if self.pins.contains(number) {
            return number.to_owned();
        }
        number
            .parse::<u16>()
            .ok()
            .and_then(|uid| self.by_uid.get(&uid))
            .cloned()
            .unwrap_or_else(|| number.to_owned())
    }
}

/// `zk:{serial}:{PIN}:{packed time}:{state}:{verify}` — the key a record is known by across reads.
fn source_key(serial: &str, user_id: &str, record: &AttendanceRecord) -> String {
    format!(
        "zk:{serial}:{user_id}:{:08x}:{}:{}",
        record.time.to_packed(),
        record.state,
        record.verify
    )
}

fn describe_raw(index: usize, bytes: &[u8], layout: AttendanceLayout) -> Value {
    let hex: String = bytes.iter().map(|byte| format!("{byte:02x}")).collect();
    json!({ "record_index": index, "record_size": layout.size(), "bytes": hex })
}

fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::zk::codec::time::DeviceTime;
    use crate::source::zk::codec::users::UserLayout;

    #[test]
    fn a_16_byte_records_number_is_a_pin_or_else_a_user_index() {
        let users = UserTable::from(vec![
            UserRecord::build(7, "1007", "", 0, 0, UserLayout::Old28),
            UserRecord::build(8, "2", "", 0, 0, UserLayout::Old28),
        ]);
        assert_eq!(users.pin_of_number("1007"), "1007");
        assert_eq!(users.pin_of_number("2"), "2", "a PIN wins over an index");
        assert_eq!(users.pin_of_number("7"), "1007", "an index is resolved");
        assert_eq!(
            users.pin_of_number("555"),
            "555",
            "unknown numbers stay as they are"
        );
    }

    fn read_of(pins: &[&str]) -> LogRead {
        let layout = AttendanceLayout::Pin { size: 40 };
        let records: Vec<u8> = pins
            .iter()
            .flat_map(|pin| {
                let record = AttendanceRecord {
                    identity: Identity::Pin((*pin).into()),
                    uid: Some(1),
                    time: DeviceTime::from_packed(0x2368_B36B),
                    state: 0,
                    verify: 1,
                    work_code: 0,
                };
                attendance::encode(&record, layout)
            })
            .collect();
        let mut buffer = (records.len() as u32).to_le_bytes().to_vec();
        buffer.extend(records);
        LogRead {
            serial: "SN".into(),
            layout,
            buffer,
            users: UserTable::default(),
            skipped: 0,
            sent: 0,
            counted: pins.len() as u32,
            window: false,
            clock_drift: None,
        }
    }

    #[test]
    fn a_cursor_covers_only_an_unchanged_prefix() {
        let first = read_of(&["1", "2", "3"]);
        let cursor = LogCursor::after(&first, 2);
        assert_eq!(cursor.covers(&read_of(&["1", "2", "3", "4"])), 2);
        assert_eq!(
            cursor.covers(&read_of(&["1", "9", "3"])),
            0,
            "the log changed"
        );
        assert_eq!(cursor.covers(&read_of(&["1"])), 0, "the log was cleared");
        let mut elsewhere = read_of(&["1", "2", "3"]);
        elsewhere.serial = "OTHER".into();
        assert_eq!(cursor.covers(&elsewhere), 0, "another terminal");
    }
}
