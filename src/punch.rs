//! The one punch model every source produces and every sink consumes, and its IDs.
//!
//! Devices record local wall time with no zone, so a punch keeps exactly that
//! (`local_time`) plus the device's configured IANA zone, and derives the real UTC
//! instant from the pair. The ID is what makes delivery idempotent: every sink writes
//! "insert if absent" keyed on it, so it must be identical across runs and must differ
//! for different punches. Two schemes exist:
//!
//! * **native** (default): first 32 hex digits of SHA-256 over
//!   `"v1|{device serial}|{user id}|{YYYY-MM-DD HH:MM:SS}|{punch state}"`. The serial
//!   is the terminal's own serial number, so the same punch read directly from the
//!   terminal and through BioTime gets the same ID.
//! * **legacy-md5**: the Python iclock-sync's document ID, lowercase hex MD5 of
//!   `"{user id}_{YYYY-MM-DD HH:MM:SS}"`. It ignores the device and the state, so an IN
//!   and an OUT by one person in the same second collapse into one ID; kept only so
//!   existing deployments (cache file, Firestore documents) carry on unchanged.

use std::fmt;
use std::sync::Arc;

use chrono::{DateTime, Datelike, LocalResult, NaiveDateTime, Offset, TimeZone, Timelike, Utc};
use chrono_tz::Tz;
use md5::Md5;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// How devices and BioTime write times, and how we write local wall time everywhere.
pub const WALL_TIME_FORMAT: &str = "%Y-%m-%d %H:%M:%S";

/// `YYYY-MM-DD HH:MM:SS`. Written by hand: it runs several times per punch, and
/// chrono's format-string interpreter was a visible share of a large sync.
pub fn wall_time_text(time: NaiveDateTime) -> String {
    timestamp_text(time, ' ', "")
}

/// `YYYY-MM-DDTHH:MM:SSZ`.
pub fn utc_text(instant: DateTime<Utc>) -> String {
    timestamp_text(instant.naive_utc(), 'T', "Z")
}

fn timestamp_text(time: NaiveDateTime, separator: char, suffix: &str) -> String {
    if !(0..=9999).contains(&time.year()) {
        let format = format!("%Y-%m-%d{separator}%H:%M:%S{suffix}");
        return time.format(&format).to_string();
    }
    let digit = |value: u32| char::from(b'0' + (value % 10) as u8);
    let year = time.year() as u32;
    let mut out = String::with_capacity(21);
    out.extend([
        digit(year / 1000),
        digit(year / 100),
        digit(year / 10),
        digit(year),
    ]);
    let fields = [
        ('-', time.month()),
        ('-', time.day()),
        (separator, time.hour()),
        (':', time.minute()),
        (':', time.second()),
    ];
    for (before, value) in fields {
        out.extend([before, digit(value / 10), digit(value)]);
    }
    out.push_str(suffix);
    out
}

/// Where a punch came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SourceKind {
    /// The BioTime / ZKBioTime REST API.
    Biotime,
    /// A terminal read directly over the ZK binary protocol (port 4370).
    Zk,
    /// A terminal pushing to our ADMS receiver (the iclock PUSH protocol).
    Adms,
}

impl SourceKind {
    pub fn as_str(self) -> &'static str {
        match self {
            SourceKind::Biotime => "biotime",
            SourceKind::Zk => "zk",
            SourceKind::Adms => "adms",
        }
    }

    pub fn parse(text: &str) -> Option<SourceKind> {
        match text {
            "biotime" => Some(SourceKind::Biotime),
            "zk" => Some(SourceKind::Zk),
            "adms" => Some(SourceKind::Adms),
            _ => None,
        }
    }
}

impl fmt::Display for SourceKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which ID the dedup cache (and by default every sink) keys punches on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum IdScheme {
    #[default]
    #[serde(rename = "native")]
    Native,
    #[serde(rename = "legacy-md5")]
    LegacyMd5,
}

/// A punch ID: 32 lowercase hex digits under either scheme.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PunchId(String);

impl PunchId {
    /// The native ID (see the module docs for the exact definition).
    pub fn native(serial: &str, user_id: &str, local_time: NaiveDateTime, state: i32) -> Self {
        let text = format!(
            "v1|{serial}|{user_id}|{}|{state}",
            wall_time_text(local_time)
        );
        let digest = Sha256::digest(text.as_bytes());
        PunchId(hex(&digest[..16]))
    }

    /// The Python iclock-sync's document ID.
    pub fn legacy_md5(user_id: &str, local_time: NaiveDateTime) -> Self {
        let text = format!("{user_id}_{}", wall_time_text(local_time));
        PunchId(hex(&Md5::digest(text.as_bytes())))
    }

    /// Wraps an ID read back from a cache or audit file.
    pub fn from_stored(text: String) -> Self {
        PunchId(text)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

impl fmt::Display for PunchId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// 16 hex digits of the SHA-256 of `text`: a short stable key for something a source
/// could not decode (the quarantine's key for it).
pub fn short_digest(text: &str) -> String {
    hex(&Sha256::digest(text.as_bytes())[..8])
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut out, byte| {
            let _ = write!(out, "{byte:02x}");
            out
        })
}

/// The `terminal` of punches whose source names no terminal (one shared allocation).
pub fn unnamed_terminal() -> Arc<str> {
    static UNNAMED: std::sync::LazyLock<Arc<str>> = std::sync::LazyLock::new(|| Arc::from(""));
    Arc::clone(&UNNAMED)
}

/// The configured device a punch was collected through.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceLabel {
    /// The `name` of the `[[device]]` entry.
    pub name: Arc<str>,
    /// The device's IANA time zone, in which `local_time` is expressed.
    pub timezone: Tz,
}

/// One attendance punch, normalized.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Punch {
    /// The ID under the configured scheme; the dedup cache and the sinks key on it.
    pub id: PunchId,
    pub device: Arc<DeviceLabel>,
    /// Serial number of the terminal that recorded the punch ("" when BioTime holds a
    /// manually added punch with no terminal).
    pub serial: Arc<str>,
    /// The terminal's name where the source reports one (BioTime's terminal alias);
    /// empty otherwise.
    pub terminal: Arc<str>,
    /// The user's PIN as the device shows it.
    pub user_id: String,
    /// Wall-clock time as the device recorded it, second resolution.
    pub local_time: NaiveDateTime,
    /// 0 check-in, 1 check-out, 2 break-out, 3 break-in, 4 OT-in, 5 OT-out, 255 not tracked.
    pub state: i32,
    /// How the person identified: 1 finger, 4 card, 15 face, ... (raw device number).
    pub verify_mode: i32,
    pub work_code: String,
    pub source: SourceKind,
    /// The source's own key for this record (e.g. `biotime:http://host:8081#1234`).
    pub source_key: String,
    /// When iclock-sync first read it (kept by the ledger); `None` until it is journaled.
    pub received_at: Option<DateTime<Utc>>,
}

impl Punch {
    /// The real instant, from the wall time and the device's zone. In the hour a DST
    /// change repeats, the earlier instant is chosen; in the hour it skips, the wall time
    /// is read with the offset in force just before the change.
    pub fn utc(&self) -> DateTime<Utc> {
        utc_instant(self.local_time, self.device.timezone)
    }

    pub fn native_id(&self) -> PunchId {
        PunchId::native(&self.serial, &self.user_id, self.local_time, self.state)
    }

    pub fn legacy_id(&self) -> PunchId {
        PunchId::legacy_md5(&self.user_id, self.local_time)
    }

    pub fn local_time_text(&self) -> String {
        wall_time_text(self.local_time)
    }
}

/// See [`Punch::utc`].
pub fn utc_instant(local_time: NaiveDateTime, timezone: Tz) -> DateTime<Utc> {
    match timezone.from_local_datetime(&local_time) {
        LocalResult::Single(instant) | LocalResult::Ambiguous(instant, _) => {
            instant.with_timezone(&Utc)
        }
        LocalResult::None => {
            let before = local_time - chrono::Duration::hours(3);
            let offset = match timezone.from_local_datetime(&before) {
                LocalResult::Single(instant) | LocalResult::Ambiguous(instant, _) => {
                    instant.offset().fix()
                }
                LocalResult::None => Utc.fix(),
            };
            DateTime::<Utc>::from_naive_utc_and_offset(
                local_time - chrono::Duration::seconds(i64::from(offset.local_minus_utc())),
                Utc,
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> NaiveDateTime {
        NaiveDateTime::parse_from_str(text, WALL_TIME_FORMAT).unwrap()
    }

    #[test]
    fn legacy_ids_match_the_python_tool_vectors() {
        assert_eq!(
            PunchId::legacy_md5("1", at("2022-11-13 16:34:51")).as_str(),
            "c45d4288f29e9feb6751b7973c1625b7"
        );
        assert_eq!(
            PunchId::legacy_md5("", at("2025-09-01 15:25:52")).as_str(),
            "00003e2c00a363fff3a25881ccb3e36e"
        );
        assert_eq!(
            PunchId::legacy_md5("", at("2025-08-28 12:01:04")).as_str(),
            "000b3b87dd02baa497dfa32a63f348f4"
        );
    }

    /// Vectors published in the README; computed independently with Python's hashlib:
    /// `hashlib.sha256(b"v1|CLGY211460005|4|2024-06-05 23:59:39|0").hexdigest()[:32]`.
    #[test]
    fn native_ids_match_the_documented_vectors() {
        assert_eq!(
            PunchId::native("CLGY211460005", "4", at("2024-06-05 23:59:39"), 0).as_str(),
            "d1a29a9fd296fbd28813b709b3cf825b"
        );
        assert_eq!(
            PunchId::native("", "1", at("2022-11-13 16:34:51"), 1).as_str(),
            "5af8c4dbea3f4234fd4de23bffbf2141"
        );
        assert_eq!(
            PunchId::native("CLGY211460005", "1001", at("2026-01-05 07:58:12"), 1).as_str(),
            "dc802a84c77d14c44a044f9935877fd9"
        );
    }

    #[test]
    fn native_ids_differ_by_device_user_time_and_state() {
        let t = at("2026-01-05 08:00:00");
        let base = PunchId::native("SN1", "7", t, 0);
        assert_eq!(base, PunchId::native("SN1", "7", t, 0));
        assert_ne!(base, PunchId::native("SN2", "7", t, 0));
        assert_ne!(base, PunchId::native("SN1", "8", t, 0));
        assert_ne!(
            base,
            PunchId::native("SN1", "7", at("2026-01-05 08:00:01"), 0)
        );
        assert_ne!(base, PunchId::native("SN1", "7", t, 1));
        // The legacy scheme collapses IN and OUT in the same second: the flaw we avoid.
        assert_eq!(PunchId::legacy_md5("7", t), PunchId::legacy_md5("7", t));
    }

    #[test]
    fn hand_written_timestamps_match_chrono() {
        for text in [
            "2024-06-05 23:59:39",
            "2000-01-01 00:00:00",
            "0999-12-31 09:05:07",
        ] {
            let time = at(text);
            assert_eq!(
                wall_time_text(time),
                time.format(WALL_TIME_FORMAT).to_string()
            );
            assert_eq!(
                utc_text(time.and_utc()),
                time.format("%Y-%m-%dT%H:%M:%SZ").to_string()
            );
        }
        let far = at("2026-01-01 00:00:00").with_year(12345).unwrap();
        assert_eq!(
            wall_time_text(far),
            far.format(WALL_TIME_FORMAT).to_string()
        );
    }

    #[test]
    fn utc_instant_follows_the_device_zone() {
        let male: Tz = "Indian/Maldives".parse().unwrap();
        assert_eq!(
            utc_instant(at("2026-03-01 08:00:00"), male).to_rfc3339(),
            "2026-03-01T03:00:00+00:00"
        );
        let berlin: Tz = "Europe/Berlin".parse().unwrap();
        // 02:30 does not exist on 2026-03-29 in Berlin: read with the winter offset.
        assert_eq!(
            utc_instant(at("2026-03-29 02:30:00"), berlin).to_rfc3339(),
            "2026-03-29T01:30:00+00:00"
        );
        // 02:30 happens twice on 2026-10-25: the earlier (summer) instant is chosen.
        assert_eq!(
            utc_instant(at("2026-10-25 02:30:00"), berlin).to_rfc3339(),
            "2026-10-25T00:30:00+00:00"
        );
    }
}
