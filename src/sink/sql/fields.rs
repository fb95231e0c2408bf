//! What a database row says about a punch: our fields, the columns of our table (named
//! after the fields), and the mapping of fields to the columns of a table of theirs.

use std::fmt;

use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::punch::{Punch, utc_text};

/// One thing a row can hold about a punch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Field {
    /// The punch ID (the primary key of our table).
    Id,
    DeviceName,
    DeviceSerial,
    /// The PIN.
    UserId,
    /// The wall time the terminal showed.
    LocalTime,
    /// The real instant.
    UtcTime,
    Timezone,
    PunchState,
    VerifyMode,
    WorkCode,
    Source,
    SourceKey,
    /// When iclock-sync first read it.
    ReceivedAt,
    /// When this database got it.
    DeliveredAt,
}

impl Field {
    /// Every field, in the order of our table's columns.
    pub const ALL: [Field; 14] = [
        Field::Id,
        Field::DeviceName,
        Field::DeviceSerial,
        Field::UserId,
        Field::LocalTime,
        Field::UtcTime,
        Field::Timezone,
        Field::PunchState,
        Field::VerifyMode,
        Field::WorkCode,
        Field::Source,
        Field::SourceKey,
        Field::ReceivedAt,
        Field::DeliveredAt,
    ];

    /// Its name in `[sink.x.columns]`, and its column in our table.
    pub fn name(self) -> &'static str {
        match self {
            Field::Id => "id",
            Field::DeviceName => "device_name",
            Field::DeviceSerial => "device_serial",
            Field::UserId => "user_id",
            Field::LocalTime => "local_time",
            Field::UtcTime => "utc_time",
            Field::Timezone => "timezone",
            Field::PunchState => "punch_state",
            Field::VerifyMode => "verify_mode",
            Field::WorkCode => "work_code",
            Field::Source => "source",
            Field::SourceKey => "source_key",
            Field::ReceivedAt => "received_at",
            Field::DeliveredAt => "delivered_at",
        }
    }

    pub fn parse(name: &str) -> Option<Field> {
        Field::ALL.into_iter().find(|field| field.name() == name)
    }
}

impl fmt::Display for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// How a database wants its times written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeStyle {
    /// The wall time with the device's UTC offset (`…+05:30`), so that a `timestamptz`
    /// column gets the right instant and a `timestamp` one the wall time; instants as
    /// `YYYY-MM-DDTHH:MM:SS.ffffffZ`.
    Postgres,
    /// No offsets (MySQL refuses them): the bare wall time, and instants as the UTC
    /// wall time `YYYY-MM-DD HH:MM:SS.ffffff` for a session whose time zone is UTC.
    Mysql,
    /// Text: the bare wall time, instants as `YYYY-MM-DDTHH:MM:SSZ` (they sort).
    Sqlite,
}

impl TimeStyle {
    fn instant(self, instant: DateTime<Utc>) -> String {
        match self {
            TimeStyle::Postgres => instant.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string(),
            TimeStyle::Mysql => instant.format("%Y-%m-%d %H:%M:%S%.6f").to_string(),
            TimeStyle::Sqlite => utc_text(instant),
        }
    }
}

/// The value of `field` for `punch`, as JSON the database converts to the column's
/// type. In a table of theirs an empty serial or work code is unknown, written as NULL
/// (their NOT NULL constraint then refuses it rather than storing a blank).
pub fn value(
    field: Field,
    punch: &Punch,
    style: TimeStyle,
    delivered_at: DateTime<Utc>,
    empty_as_null: bool,
) -> Value {
    let text = |text: &str| {
        if empty_as_null && text.is_empty() {
            Value::Null
        } else {
            Value::String(text.to_owned())
        }
    };
    match field {
        Field::Id => text(punch.id.as_str()),
        Field::DeviceName => text(&punch.device.name),
        Field::DeviceSerial => text(&punch.serial),
        Field::UserId => text(&punch.user_id),
        Field::LocalTime => {
            let wall = punch.local_time_text();
            if style == TimeStyle::Postgres {
                let offset = punch.utc().with_timezone(&punch.device.timezone);
                Value::String(format!("{wall}{}", offset.format("%:z")))
            } else {
                Value::String(wall)
            }
        }
        Field::UtcTime => Value::String(style.instant(punch.utc())),
        Field::Timezone => Value::String(punch.device.timezone.name().to_owned()),
        Field::PunchState => Value::from(punch.state),
        Field::VerifyMode => Value::from(punch.verify_mode),
        Field::WorkCode => text(&punch.work_code),
        Field::Source => Value::String(punch.source.as_str().to_owned()),
        Field::SourceKey => text(&punch.source_key),
        Field::ReceivedAt => {
            Value::String(style.instant(punch.received_at.unwrap_or(delivered_at)))
        }
        Field::DeliveredAt => Value::String(style.instant(delivered_at)),
    }
}
