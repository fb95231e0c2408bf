//! Punches as Firestore writes, in either schema.
//!
//! **schoolsync** — the Python iclock-sync's documents, which the SchoolSync app reads.
//! Collection `staffAttendanceLogs`, document ID the legacy MD5, and exactly these fields:
//!
//! | field | type | value |
//! |---|---|---|
//! | `staffId` | string | the PIN |
//! | `timestamp` | timestamp | the device's wall time labelled as UTC ("fake UTC", read by SchoolSync with `getUTC*`) |
//! | `status` | integer | the verify mode (despite the name) |
//! | `workCode` | integer | the punch state (despite the name) |
//! | `uploadedAt` | timestamp | server time of the write |
//!
//! **native** — native ID; `deviceName`, `deviceSerial`, `userId` (the PIN), `localTime`
//! (wall time as `YYYY-MM-DD HH:MM:SS`), `time` (the true UTC instant), `timeZone`,
//! `punchState`, `verifyMode` (integers), `workCode`, `source`, `sourceKey`,
//! `uploadedAt` (server time).
//!
//! Every write is a create: an update with the precondition "does not exist yet", so an
//! existing document — and its `uploadedAt` — is never touched.

use std::collections::HashMap;

use firestore::gcloud_sdk::google::firestore::v1::document_transform::FieldTransform;
use firestore::gcloud_sdk::google::firestore::v1::document_transform::field_transform::{
    ServerValue, TransformType,
};
use firestore::gcloud_sdk::google::firestore::v1::precondition::ConditionType;
use firestore::gcloud_sdk::google::firestore::v1::value::ValueType;
use firestore::gcloud_sdk::google::firestore::v1::write::Operation;
use firestore::gcloud_sdk::google::firestore::v1::{Document, Precondition, Value, Write};
use firestore::gcloud_sdk::prost_types::Timestamp;

use super::config::Schema;
use crate::punch::Punch;

/// Why the schoolsync schema does not send a punch, if it does not: the Python
/// iclock-sync skipped logs whose staffId is not a positive number ("Skipped N logs
/// with invalid staffId"), so SchoolSync never received them, and must not now.
pub fn withheld_by_schema(punch: &Punch, schema: Schema) -> Option<String> {
    if schema != Schema::SchoolSync {
        return None;
    }
    let pin = punch.user_id.trim();
    let digits = pin.strip_prefix('+').unwrap_or(pin);
    let positive = !digits.is_empty()
        && digits.bytes().all(|byte| byte.is_ascii_digit())
        && digits.bytes().any(|byte| byte != b'0');
    (!positive).then(|| {
        format!(
            "staffId '{}' is not a positive number: the Python iclock-sync skipped such logs, so SchoolSync does not receive them",
            punch.user_id
        )
    })
}

/// The document ID of `punch` under `schema`.
pub fn document_id(punch: &Punch, schema: Schema) -> String {
    match schema {
        Schema::Native => punch.native_id().into_string(),
        Schema::SchoolSync => punch.legacy_id().into_string(),
    }
}

/// The create-if-absent write of `punch` as document `id` in `collection_path`
/// (`projects/…/databases/…/documents/<collection>`).
pub fn create(punch: &Punch, schema: Schema, collection_path: &str, id: &str) -> Write {
    let fields: HashMap<String, Value> = match schema {
        Schema::SchoolSync => HashMap::from([
            field("staffId", text(&punch.user_id)),
            field(
                "timestamp",
                timestamp(punch.local_time.and_utc().timestamp()),
            ),
            field("status", integer(punch.verify_mode)),
            field("workCode", integer(punch.state)),
        ]),
        Schema::Native => HashMap::from([
            field("deviceName", text(&punch.device.name)),
            field("deviceSerial", text(&punch.serial)),
            field("userId", text(&punch.user_id)),
            field("localTime", text(&punch.local_time_text())),
            field("time", timestamp(punch.utc().timestamp())),
            field("timeZone", text(punch.device.timezone.name())),
            field("punchState", integer(punch.state)),
            field("verifyMode", integer(punch.verify_mode)),
            field("workCode", text(&punch.work_code)),
            field("source", text(punch.source.as_str())),
            field("sourceKey", text(&punch.source_key)),
        ]),
    };
    Write {
        operation: Some(Operation::Update(Document {
            name: format!("{collection_path}/{id}"),
            fields,
            create_time: None,
            update_time: None,
        })),
        update_mask: None,
        update_transforms: vec![FieldTransform {
            field_path: "uploadedAt".to_owned(),
            transform_type: Some(TransformType::SetToServerValue(
                ServerValue::RequestTime as i32,
            )),
        }],
        current_document: Some(Precondition {
            condition_type: Some(ConditionType::Exists(false)),
        }),
    }
}

fn field(name: &str, value: ValueType) -> (String, Value) {
    (
        name.to_owned(),
        Value {
            value_type: Some(value),
        },
    )
}

fn text(value: &str) -> ValueType {
    ValueType::StringValue(value.to_owned())
}

fn integer(value: i32) -> ValueType {
    ValueType::IntegerValue(i64::from(value))
}

fn timestamp(seconds: i64) -> ValueType {
    ValueType::TimestampValue(Timestamp { seconds, nanos: 0 })
}
