//! The handshake's answer (`GET /iclock/cdata?SN=…&options=all`): the option block
//! that tells a terminal where its uploads stand, how often to poll and which time
//! zone it is in.
//!
//! Two things in it change a terminal's behaviour for the worse when wrong. `TimeZone`
//! sets the terminal's clock (with the reply's `Date` header): whole-hour zones are sent
//! in hours, others in minutes (`330` for Asia/Kolkata, `345` for Asia/Kathmandu) —
//! `5.5` or `+05:30` shift such a terminal's clock by hours on some firmware. And
//! `TransFlag`: push 1.x firmware reads a bit string, 2.x a `TransData` list.

use chrono::{DateTime, Offset, TimeZone, Utc};
use chrono_tz::Tz;

/// Per upload table, the stamp last acknowledged (`None`: send everything).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stamps {
    pub attlog: Option<String>,
    pub operlog: Option<String>,
    pub attphoto: Option<String>,
    pub biodata: Option<String>,
}

/// What the option block says to one terminal.
#[derive(Debug, Clone)]
pub struct Options<'a> {
    pub serial: &'a str,
    /// `pushver` from the handshake; absent on very old firmware.
    pub push_version: Option<&'a str>,
    pub stamps: &'a Stamps,
    /// Seconds between command polls.
    pub delay: u32,
    /// Seconds before retrying after a failed upload.
    pub error_delay: u32,
    /// The terminal's zone, and now (for the zone's offset today).
    pub timezone: Tz,
    pub now: DateTime<Utc>,
}

impl Options<'_> {
    /// The body of the handshake's answer: `GET OPTION FROM: SN` and one `Key=Value`
    /// per line. Stamps go out under both names firmware uses (`ATTLOGStamp` and
    /// `Stamp`, …).
    pub fn block(&self) -> String {
        let stamp = |stamp: &Option<String>| stamp.clone().unwrap_or_else(|| "None".to_owned());
        let lines = [
            format!("GET OPTION FROM: {}", self.serial),
            format!("ATTLOGStamp={}", stamp(&self.stamps.attlog)),
            format!("Stamp={}", stamp(&self.stamps.attlog)),
            format!("OPERLOGStamp={}", stamp(&self.stamps.operlog)),
            format!("OpStamp={}", stamp(&self.stamps.operlog)),
            format!("ATTPHOTOStamp={}", stamp(&self.stamps.attphoto)),
            format!("PhotoStamp={}", stamp(&self.stamps.attphoto)),
            format!("BIODATAStamp={}", stamp(&self.stamps.biodata)),
            format!("ErrorDelay={}", self.error_delay),
            format!("Delay={}", self.delay),
            "TransTimes=00:00;14:05".to_owned(),
            "TransInterval=1".to_owned(),
            format!("TransFlag={}", trans_flag(self.push_version)),
            format!("TimeZone={}", time_zone(self.timezone, self.now)),
            "Realtime=1".to_owned(),
            "Encrypt=None".to_owned(),
            "ServerVer=2.4.1".to_owned(),
            "PushProtVer=2.4.1".to_owned(),
            "SupportPing=1".to_owned(),
        ];
        let mut block = lines.join("\n");
        block.push('\n');
        block
    }
}

/// The tables to upload, in the terminal's dialect: punches, the operation log (for
/// user names) and user changes; never templates or photos.
pub fn trans_flag(push_version: Option<&str>) -> &'static str {
    let major = push_version
        .and_then(|version| version.split('.').next())
        .and_then(|major| major.trim().parse::<u32>().ok());
    match major {
        Some(2..) => "TransData AttLog\tOpLog\tEnrollUser\tChgUser",
        // Bits: 1 AttLog, 2 OpLog, 5 EnrollUser, 7 ChgUser.
        _ => "1100101000",
    }
}

/// The zone's offset from UTC at `now`: whole hours in hours (`8`, `-5`), anything
/// else in minutes (`330`, `345`, `-210`).
pub fn time_zone(timezone: Tz, now: DateTime<Utc>) -> String {
    let seconds = timezone
        .offset_from_utc_datetime(&now.naive_utc())
        .fix()
        .local_minus_utc();
    if seconds % 3600 == 0 {
        (seconds / 3600).to_string()
    } else {
        (seconds / 60).to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> DateTime<Utc> {
        text.parse().unwrap()
    }

    #[test]
    fn whole_hour_zones_go_in_hours_and_the_others_in_minutes() {
        let july = at("2026-07-01T12:00:00Z");
        let january = at("2026-01-15T12:00:00Z");
        let zone = |name: &str| name.parse::<Tz>().unwrap();
        assert_eq!(time_zone(zone("Asia/Shanghai"), july), "8");
        assert_eq!(time_zone(zone("Asia/Kolkata"), july), "330");
        assert_eq!(time_zone(zone("Asia/Kathmandu"), july), "345");
        assert_eq!(time_zone(zone("America/St_Johns"), january), "-210");
        // Across a DST change the next handshake sends the new offset.
        assert_eq!(time_zone(zone("America/New_York"), january), "-5");
        assert_eq!(time_zone(zone("America/New_York"), july), "-4");
        assert_eq!(time_zone(zone("UTC"), july), "0");
    }

    #[test]
    fn trans_flag_follows_the_push_version() {
        assert_eq!(trans_flag(None), "1100101000");
        assert_eq!(trans_flag(Some("1.0.9")), "1100101000");
        assert_eq!(
            trans_flag(Some("2.4.1")),
            "TransData AttLog\tOpLog\tEnrollUser\tChgUser"
        );
        assert_eq!(trans_flag(Some("junk")), "1100101000");
    }

    #[test]
    fn the_block_echoes_each_tables_stamp_under_both_names() {
        let stamps = Stamps {
            attlog: Some("9999".into()),
            operlog: Some("120".into()),
            ..Stamps::default()
        };
        let options = Options {
            serial: "CQZ7224460246",
            push_version: Some("2.4.1"),
            stamps: &stamps,
            delay: 10,
            error_delay: 30,
            timezone: "Asia/Kolkata".parse().unwrap(),
            now: at("2026-12-05T00:00:00Z"),
        };
        let block = options.block();
        let lines: Vec<&str> = block.lines().collect();
        assert_eq!(lines[0], "GET OPTION FROM: CQZ7224460246");
        for expected in [
            "ATTLOGStamp=9999",
            "Stamp=9999",
            "OPERLOGStamp=120",
            "OpStamp=120",
            "ATTPHOTOStamp=None",
            "Delay=10",
            "ErrorDelay=30",
            "TimeZone=330",
            "Realtime=1",
            "Encrypt=None",
            "TransFlag=TransData AttLog\tOpLog\tEnrollUser\tChgUser",
        ] {
            assert!(lines.contains(&expected), "{expected} in\n{block}");
        }
        assert!(block.ends_with('\n'));
    }
}
