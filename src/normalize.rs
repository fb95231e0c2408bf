//! From what a source read to a [`Punch`] with its ID — or to the quarantine.
//!
//! The plausibility rules catch what misaligned decoding and unset device clocks
//! produce (the Python tool uploaded all of these): an empty PIN, a date that does not
//! exist, a year before 2000, and times further in the device's future than
//! `max_future_skew` — and what a broken or hostile device sends: text fields of
//! implausible length or with hidden characters (see [`crate::device_text`]). Such a
//! record is quarantined with its reason and never blocks the records around it.

use std::sync::Arc;
use std::time::Duration;

use chrono::{Datelike, NaiveDateTime};
use serde_json::json;

use crate::device_text;
use crate::duration;
use crate::punch::{DeviceLabel, IdScheme, Punch, PunchId, WALL_TIME_FORMAT};
use crate::quarantine::QuarantineEntry;
use crate::source::{Fetched, RecordTime, SourceRecord};

#[derive(Debug, Clone)]
pub struct Normalizer {
    pub scheme: IdScheme,
    pub max_future_skew: Duration,
}

impl Normalizer {
    /// `now_local` is the current wall time in the device's zone.
    pub fn normalize(
        &self,
        device: &Arc<DeviceLabel>,
        now_local: NaiveDateTime,
        fetched: Fetched,
    ) -> Result<Punch, Box<QuarantineEntry>> {
        let record = match fetched {
            Fetched::Record(record) => record,
            Fetched::Undecodable {
                source_key,
                reason,
                raw,
            } => {
                return Err(Box::new(QuarantineEntry {
                    source_key,
                    device: device.name.to_string(),
                    reason,
                    record: raw,
                }));
            }
        };
        let local_time = match self.plausible_time(&record, now_local) {
            Ok(time) => time,
            Err(reason) => {
                return Err(Box::new(QuarantineEntry {
                    source_key: record.source_key.clone(),
                    device: device.name.to_string(),
                    reason,
                    record: describe(&record),
                }));
            }
        };
        let id = match self.scheme {
            IdScheme::Native => {
                PunchId::native(&record.serial, &record.user_id, local_time, record.state)
            }
            IdScheme::LegacyMd5 => PunchId::legacy_md5(&record.user_id, local_time),
        };
        Ok(Punch {
            id,
            device: Arc::clone(device),
            serial: record.serial,
            terminal: record.terminal,
            user_id: record.user_id,
            local_time,
            state: record.state,
            verify_mode: record.verify_mode,
            work_code: record.work_code,
            source: record.source,
            source_key: record.source_key,
            received_at: None,
        })
    }

    /// The record's time if the record is plausible, else why not.
    fn plausible_time(
        &self,
        record: &SourceRecord,
        now_local: NaiveDateTime,
    ) -> Result<NaiveDateTime, String> {
        if record.user_id.trim().is_empty() {
            return Err("empty user id (PIN)".into());
        }
        device_text::check("PIN", &record.user_id, device_text::PIN)?;
        device_text::check("serial number", &record.serial, device_text::SERIAL)?;
        device_text::check("terminal alias", &record.terminal, device_text::ALIAS)?;
        device_text::check("work code", &record.work_code, device_text::WORK_CODE)?;
        let time = match &record.time {
            RecordTime::Invalid(text) => {
                return Err(format!("'{text}' is not a real date and time"));
            }
            RecordTime::Valid(time) => *time,
        };
        if time.year() < 2000 {
            return Err(format!(
                "year {} is before 2000 (the device clock was probably never set)",
                time.year()
            ));
        }
        let ahead = time - now_local;
        let skew =
            chrono::Duration::from_std(self.max_future_skew).unwrap_or(chrono::Duration::MAX);
        if ahead > skew {
            let ahead = ahead.to_std().unwrap_or_default();
            return Err(format!(
                "{} is {} in the future (more than max_future_skew = {}); the device clock is probably wrong",
                time.format(WALL_TIME_FORMAT),
                duration::display(ahead),
                duration::display(self.max_future_skew),
            ));
        }
        Ok(time)
    }
}

fn describe(record: &SourceRecord) -> serde_json::Value {
    let time = match &record.time {
        RecordTime::Valid(time) => time.format(WALL_TIME_FORMAT).to_string(),
        RecordTime::Invalid(text) => text.clone(),
    };
    let shown = |text: &str| device_text::excerpt(text, 64);
    json!({
        "user_id": shown(&record.user_id),
        "time": shown(&time),
        "state": record.state,
        "verify_mode": record.verify_mode,
        "work_code": shown(&record.work_code),
        "serial": shown(&record.serial),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::punch::SourceKind;

    fn at(text: &str) -> NaiveDateTime {
        NaiveDateTime::parse_from_str(text, WALL_TIME_FORMAT).unwrap()
    }

    fn device() -> Arc<DeviceLabel> {
        Arc::new(DeviceLabel {
            name: "Office".into(),
            timezone: chrono_tz::UTC,
        })
    }

    fn record(user: &str, time: RecordTime) -> Fetched {
        Fetched::Record(SourceRecord {
            source: SourceKind::Biotime,
            source_key: format!("k-{user}"),
            serial: "SN1".into(),
            terminal: "".into(),
            user_id: user.into(),
            time,
            state: 1,
            verify_mode: 15,
            work_code: "0".into(),
        })
    }

    fn normalizer(scheme: IdScheme) -> Normalizer {
        Normalizer {
            scheme,
            max_future_skew: Duration::from_secs(3600),
        }
    }

    const NOW: &str = "2026-06-01 12:00:00";

    #[test]
    fn a_good_record_becomes_a_punch_with_the_configured_id() {
        let time = RecordTime::Valid(at("2026-06-01 08:00:00"));
        let native = normalizer(IdScheme::Native)
            .normalize(&device(), at(NOW), record("7", time.clone()))
            .unwrap();
        assert_eq!(
            native.id,
            PunchId::native("SN1", "7", at("2026-06-01 08:00:00"), 1)
        );
        assert_eq!((native.state, native.verify_mode), (1, 15));
        let legacy = normalizer(IdScheme::LegacyMd5)
            .normalize(&device(), at(NOW), record("7", time))
            .unwrap();
        assert_eq!(
            legacy.id,
            PunchId::legacy_md5("7", at("2026-06-01 08:00:00"))
        );
    }

    #[test]
    fn implausible_records_are_quarantined_with_a_reason() {
        let cases = [
            (
                record("  ", RecordTime::Valid(at("2026-06-01 08:00:00"))),
                "empty user id",
            ),
            (
                record("7", RecordTime::Invalid("2025-02-30 10:00:00".into())),
                "not a real date",
            ),
            (
                record("7", RecordTime::Valid(at("1999-12-31 23:59:59"))),
                "before 2000",
            ),
            (
                record("7", RecordTime::Valid(at("2026-06-01 13:00:01"))),
                "in the future",
            ),
        ];
        for (fetched, expected) in cases {
            let entry = normalizer(IdScheme::Native)
                .normalize(&device(), at(NOW), fetched)
                .unwrap_err();
            assert!(
                entry.reason.contains(expected),
                "{} / {expected}",
                entry.reason
            );
            assert_eq!(entry.device, "Office");
        }
        // Exactly at the skew limit is still accepted.
        let edge = record("7", RecordTime::Valid(at("2026-06-01 13:00:00")));
        assert!(
            normalizer(IdScheme::Native)
                .normalize(&device(), at(NOW), edge)
                .is_ok()
        );
    }
}
